"""Interface text in the reader's language, from the gettext catalogues under locale/ (Babel).

Every user-facing string goes through `_()` (a msgid in English, formatted after translation:
`_("Block {block}").format(block=3)`, never an f-string inside `_()`), so that `pybabel extract` finds it.
Module-level text is marked with `N_()` (found by the extractor, left in English) and translated where it is
shown, with `_(CONSTANT)`: a module is imported once, before any request, but a page is drawn per request.
Text from the model (tokens, prompts, generated text) never goes through here.

The language of a request: `?lang=` in the page's address, else the address of the page a Dash callback comes
from (its Referer: two tabs may show two languages), else the `lang` cookie (set when a page is opened with
`?lang=`), else the browser's Accept-Language, else English. Outside a request (start-up, tests): English.
A string a catalogue lacks is shown in English."""
from __future__ import annotations

import copy
import functools
import gettext
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_percent, get_decimal_symbol, get_group_symbol
from babel.support import Translations
from flask import g, has_request_context, request

from model_runtime.generate import STOP_REASONS
from model_runtime.messages import N_, PeopleMessage  # noqa: F401 (N_ marks module-level text here too)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT = "en"
# code in ?lang= and the catalogue's folder -> (the language's own name, the BCP 47 tag for <html lang>)
LANGUAGES = {
    "en": ("English", "en"),
    "zh": ("中文（简体）", "zh-Hans"),
    "es": ("Español", "es"),
    "ko": ("한국어", "ko"),
    "ar": ("العربية", "ar"),
}
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def _(message: str) -> str:
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for `n` in the reader's language (Arabic has six, Chinese and Korean one); format it after."""
    return translations(current_language()).ngettext(singular, plural, n)


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language`, compiled in memory from its .po file when first asked for: the .po is the
    only copy in the repository, so a clean clone runs with no compile step and no .mo can be stale. English
    (the msgids themselves) and a language without a catalogue read the msgids."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: those strings fall back to English
    compiled.seek(0)
    return Translations(compiled)


def supported(code) -> str | None:
    """A language we have for a code as people and browsers write it ("zh-CN", "es_MX", "AR"), else None."""
    if not isinstance(code, str) or not code or len(code) > 35:
        return None
    return _negotiate([code])


def _negotiate(codes) -> str | None:
    """The first of `codes` (most wanted first) we have a catalogue for, by language when no region matches."""
    return negotiate_locale([c.replace("_", "-").lower() for c in codes], list(LANGUAGES), sep="-")


def requested_language() -> str | None:
    """The language a request names itself (its ?lang=, or its page's ?lang= for a Dash callback), or None."""
    chosen = supported(request.args.get("lang"))
    if chosen is None and request.referrer:
        try:
            chosen = supported(parse_qs(urlsplit(request.referrer).query).get("lang", [None])[0])
        except ValueError:
            chosen = None
    return chosen


def current_language() -> str:
    if not has_request_context():
        return DEFAULT
    if "language" not in g:
        accepted = [code for code, _quality in request.accept_languages][:20]
        g.language = (requested_language() or supported(request.cookies.get(COOKIE)) or _negotiate(accepted)
                      or DEFAULT)
    return g.language


def is_rtl() -> bool:
    return Locale.parse(current_language()).character_order == "right-to-left"


def html_attributes() -> str:
    """`lang="…" dir="…"` for the page's <html> element."""
    return f'lang="{LANGUAGES[current_language()][1]}" dir="{"rtl" if is_rtl() else "ltr"}"'


def remember_language(response):
    """Flask after_request hook: a page opened with ?lang= keeps that language for later visits (a cookie)."""
    chosen = supported(request.args.get("lang"))
    if chosen and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, samesite="Lax")
    return response


def _formatted(value, patterns, decimals: int | None) -> str:
    """`value` in the locale's own pattern (grouping, symbols, where % goes), with `decimals` fixed digits."""
    locale = Locale.parse(current_language())
    pattern = copy.copy(patterns(locale)[None])
    if decimals is not None:
        pattern.frac_prec = (decimals, decimals)
    return pattern.apply(value, locale)


def number(value, decimals: int | None = None) -> str:
    """A number as the reader's language writes it (1,234.5 / 1.234,5): `decimals` fixed digits after the
    point, else up to three (integers get none). Western digits in every language, as the figures show them."""
    return _formatted(value, lambda locale: locale.decimal_formats, decimals)


def separators() -> str:
    """Plotly's `layout.separators` for the reader's language: its decimal mark, then its group mark, so the
    figures' axes and hover numbers read as the text around them does ("0,5" and "1.234" in Spanish)."""
    language = current_language()
    return get_decimal_symbol(language) + get_group_symbol(language)


def percent_significant(fraction) -> str:
    """A fraction as a percentage with three significant digits (an untrained model's 0.00213% must not read
    as 0.0%), in the reader's language."""
    locale = Locale.parse(current_language())
    pattern = locale.percent_formats[None].pattern.split(";")[0].replace("#,##0", "@##")
    return format_percent(fraction, format=pattern, locale=locale)


def percent(fraction, decimals: int = 0) -> str:
    """A fraction as a percentage in the reader's language (0.125 -> 12.5%, 12,5 %)."""
    return _formatted(fraction, lambda locale: locale.percent_formats, decimals)


def message(error: BaseException) -> str:
    """The message of an error raised for people, in the reader's language: the runtime's messages keep their
    English template and values apart (model_runtime/messages.py), so the template is looked up here and the
    values written as this language writes them; any other error's text is shown as it is."""
    if not isinstance(error, PeopleMessage):
        return str(error)
    if not error.values:
        return _(error.template)
    # Numbers as the language writes them; words the runtime marked (a setting's name) in the language too.
    values = {k: number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _(v) if isinstance(v, str)
              else v for k, v in error.values.items()}
    return _(error.template).format(**values)


def stop_reason(code) -> str:
    """Why a run stopped, for its reason code (model_runtime.generate.STOP_REASONS), in the reader's language."""
    return _(STOP_REASONS[code]) if code in STOP_REASONS else str(code or "")
