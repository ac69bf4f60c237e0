#!/usr/bin/env bash
# Brings every catalogue (locale/<lang>/LC_MESSAGES/messages.po) up to date with the interface text in the code:
# extracts every _(), ngettext() and N_() string, adds new ones to each catalogue (empty, to translate), drops
# the ones the code no longer has, and lists what is left to translate. The app compiles the .po files itself
# when it starts (components/i18n.py), so there is no compile step; tests/test_i18n.py fails while a string
# has no translation.
#
#   bash scripts/translations.sh           # update the catalogues, then translate the empty msgstr lines
#   bash scripts/translations.sh add fr    # start a catalogue for a new language (then add it to i18n.LANGUAGES)
set -euo pipefail
cd "$(dirname "$0")/.."
template=$(mktemp --suffix=.pot)
trap 'rm -f "$template"' EXIT
python3 -m babel.messages.frontend -q extract -F babel.cfg --add-location=file --sort-by-file --no-wrap \
  --project="Inside GPT-2" --copyright-holder="Inside GPT-2" -o "$template" . >/dev/null
if [ "${1:-}" = add ]; then
  python3 -m babel.messages.frontend -q init -i "$template" -d locale -l "$2" --no-wrap
fi
# No fuzzy matching: a changed msgid comes back empty, to be translated again, rather than half-right.
python3 -m babel.messages.frontend -q update -i "$template" -d locale --no-wrap --no-fuzzy-matching --ignore-obsolete \
  --ignore-pot-creation-date \
  >/dev/null
python3 - <<'PY'
from pathlib import Path
from babel.messages.pofile import read_po
for po in sorted(Path("locale").glob("*/LC_MESSAGES/messages.po")):
    with po.open("rb") as f:
        catalog = read_po(f)
    todo = [m for m in catalog if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))]
    print(f"{po}: {len(catalog)} strings, {len(todo)} to translate")
PY
