"""Interface text in the reader's language. Every user-facing string goes through `_()` (a msgid in English,
formatted after translation: `_("Block {block}").format(block=3)`, never an f-string inside `_()`), so that
Babel's extractor finds it. Until the gettext catalogues under locale/ exist, `_()` returns the English."""
from __future__ import annotations


def _(message: str) -> str:
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural
