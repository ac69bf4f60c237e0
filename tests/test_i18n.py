"""The interface in five languages: every string of the code has a translation in every catalogue, the request
chooses its language, a missing string falls back to English, numbers follow the language, cached views are
kept per language, and no function hides `_` behind a local variable."""
import ast
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask

from app import create_app
from components import i18n
from components.i18n import _, ngettext, number, percent, percent_significant

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = sorted(ROOT.glob("locale/*/LC_MESSAGES/messages.po"))
# What scripts/translations.sh extracts: babel.cfg's own list, read here without the command line.
with open(ROOT / "babel.cfg") as _cfg:
    SOURCES = parse_mapping_cfg(_cfg)[0]


def code_messages() -> dict:
    """msgid (or (singular, plural)) -> where it is, for every _(), ngettext() and N_() in the code."""
    found = {}
    for path, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map=SOURCES):
        if isinstance(message, tuple):
            message = message[:2]
        found.setdefault(message, path)
    return found


def read(po: Path):
    with po.open("rb") as f:
        return read_po(f)


def fields(text: str) -> set:
    return {(name, conversion, spec) for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None}


def test_there_is_a_catalogue_for_every_language_but_english():
    assert {po.parent.parent.name for po in CATALOGUES} == set(i18n.LANGUAGES) - {i18n.DEFAULT}


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_every_string_of_the_code_has_a_translation(po):
    """Fails for a string the code has and the catalogue lacks (run scripts/translations.sh, then translate the
    empty msgstr), for an empty or fuzzy translation, and for an empty plural form."""
    catalog = read(po)
    missing = []
    for message, where in code_messages().items():
        entry = catalog.get(message[0] if isinstance(message, tuple) else message)
        strings = (entry.string if isinstance(entry.string, tuple) else (entry.string,)) if entry else ()
        if entry is None or entry.fuzzy or not strings or not all(s.strip() for s in strings):
            missing.append(f"{where}: {message!r}")
    assert not missing, f"{len(missing)} strings without a translation in {po}:\n" + "\n".join(missing[:40])


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_translations_keep_the_placeholders_and_the_spaces_around_them(po):
    """A translation that drops or renames a {field} would fail at .format(); one that drops a leading or
    trailing space glues words together where the code joins pieces."""
    wrong = []
    for entry in read(po):
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in strings:
            if not text:
                continue
            if not fields(text) <= fields(ids[-1]) | fields(ids[0]) or \
                    (len(ids) == 1 and fields(text) != fields(ids[0])):
                wrong.append(f"{ids[0]!r} -> {text!r}: fields")
            if text[:1].isspace() != ids[0][:1].isspace() or text[-1:].isspace() != ids[0][-1:].isspace():
                wrong.append(f"{ids[0]!r} -> {text!r}: leading or trailing space")
    assert not wrong, "\n".join(wrong[:20])


def test_catalogue_entries_the_code_no_longer_has_are_dropped():
    """The update script drops obsolete strings; a catalogue with stale ones was edited by hand."""
    wanted = {m[0] if isinstance(m, tuple) else m for m in code_messages()}
    for po in CATALOGUES:
        stale = {entry.id[0] if isinstance(entry.id, tuple) else entry.id for entry in read(po) if entry.id} - wanted
        assert not stale, f"{po}: {sorted(stale)[:10]}"


@pytest.fixture
def flask_app():
    return Flask(__name__)


def test_the_request_chooses_the_language(flask_app):
    cases = [("/?lang=zh", {}, "zh"),
             ("/?lang=zh-CN", {}, "zh"),
             ("/?lang=AR", {}, "ar"),
             ("/", {"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}, "ko"),
             ("/", {"Accept-Language": "fr-FR,es;q=0.8"}, "es"),            # the first one we have
             ("/", {"Accept-Language": "fr-FR,de;q=0.8"}, "en"),            # none we have
             ("/?lang=xx", {"Accept-Language": "es"}, "es"),                # an unknown ?lang= is ignored
             ("/_dash-update-component", {"Referer": "http://h/?prompt=a&lang=ar"}, "ar"),  # a callback
             ("/_dash-update-component", {"Cookie": "lang=ko", "Accept-Language": "es"}, "ko"),
             ("/?lang=es", {"Cookie": "lang=ko"}, "es")]
    for path, headers, expected in cases:
        with flask_app.test_request_context(path, headers=headers):
            assert i18n.current_language() == expected, (path, headers)
    assert i18n.current_language() == "en"  # outside a request: start-up, tests


def test_strings_come_from_the_catalogue_and_fall_back_to_english(flask_app):
    with flask_app.test_request_context("/?lang=zh"):
        assert _("Run") == "运行"
        assert _("A sentence no catalogue has.") == "A sentence no catalogue has."
        assert ngettext("{n} token", "{n} tokens", 3).format(n=3) == "3 个词元"
    with flask_app.test_request_context("/?lang=ar"):
        forms = [ngettext("{n} token", "{n} tokens", n).format(n=n) for n in (0, 1, 2, 3, 11, 100)]
        assert forms == ["0 رمز", "رمز واحد", "رمزان", "3 رموز", "11 رمزًا", "100 رمز"]
        assert i18n.is_rtl()
    with flask_app.test_request_context("/?lang=es"):
        assert _("Run") == "Ejecutar" and not i18n.is_rtl()
    assert _("Run") == "Run"


def test_a_catalogue_without_a_string_shows_it_in_english(tmp_path, monkeypatch):
    """An empty msgstr (a string added to the code and not yet translated) reads as its English msgid."""
    folder = tmp_path / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text('msgid ""\nmsgstr ""\n"Language: es\\n"\n\nmsgid "Run"\nmsgstr "Ejecutar"\n\n'
                                        'msgid "Generate"\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        app = Flask(__name__)
        with app.test_request_context("/?lang=es"):
            assert (_("Run"), _("Generate")) == ("Ejecutar", "Generate")
    finally:
        i18n.translations.cache_clear()


def test_numbers_are_written_as_the_language_writes_them(flask_app):
    expected = {"en": ("1,234,567.891", "1,234.50", "12.3%", "0.00213%"),
                "zh": ("1,234,567.891", "1,234.50", "12.3%", "0.00213%"),
                "ko": ("1,234,567.891", "1,234.50", "12.3%", "0.00213%"),
                "es": ("1.234.567,891", "1.234,50", "12,3\xa0%", "0,00213\xa0%"),
                "ar": ("1,234,567.891", "1,234.50", "12.3%", "0.00213%")}
    for language, (big, fixed, share, tiny) in expected.items():
        with flask_app.test_request_context(f"/?lang={language}"):
            assert number(1234567.891) == big, language
            assert number(1234.5, 2) == fixed, language
            assert percent(0.1234, 1) == share, language
            assert percent_significant(0.0000213) == tiny, language


def test_the_page_says_its_language_and_direction_and_remembers_the_choice(tiny_model):
    client = create_app(runtime=tiny_model).server.test_client()
    page = client.get("/?lang=ar")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "lang=ar" in page.headers.get("Set-Cookie", "")
    assert '<html lang="ar" dir="rtl">' in client.get("/").text                     # the cookie, later
    assert '<html lang="zh-Hans" dir="ltr">' in client.get("/?lang=zh").text
    fresh = create_app(runtime=tiny_model).server.test_client()
    assert '<html lang="es" dir="ltr">' in fresh.get("/", headers={"Accept-Language": "es-MX"}).text
    assert '<html lang="en" dir="ltr">' in fresh.get("/", headers={"Accept-Language": "de"}).text
    layout = client.get("/_dash-layout", headers={"Referer": "http://h/?lang=zh"}).text
    assert "运行" in layout and "词元" in layout


def test_cached_views_are_kept_per_language(tiny_model):
    """The views cache holds finished figures and text: the same request in two languages gets two answers."""
    from bench.dash_client import DashClient
    from components import ids

    server = create_app(runtime=tiny_model).server
    sequence = {"ids": tiny_model.tokenizer.encode("The cat sat"), "n_prompt": 3, "label": "prompt",
                "prompt": "The cat sat"}
    inputs = {f"{ids.SEQUENCE}.data": sequence, f"{ids.VIEW}.value": "tokens", "token-page.value": 0}
    answers = {}
    for language in ("en", "zh", "en"):
        client = DashClient(server.test_client())
        client.test_client.set_cookie("lang", language)
        answers.setdefault(language, []).append(client.call("token-summary.children", inputs)
                                                .value("token-summary", "children"))
    assert answers["en"][0] == answers["en"][1] == "3 tokens from 11 characters (11 bytes of UTF-8): 3.7 characters per token."
    assert answers["zh"][0] == "3 个词元，来自 11 个字符（UTF-8 编码 11 个字节）：每个词元 3.7 个字符。"


def test_no_function_hides_the_translation_function():
    """`_` is gettext here: a parameter or variable named `_` in a function that shows text would make its
    `_()` calls fail (UnboundLocalError) or call the wrong thing."""
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "components").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            stack = list(node.body) if isinstance(node.body, list) else [node.body]
            names = [a.arg for a in args]
            while stack:
                child = stack.pop()
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                                      ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    continue
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.append(child.id)
                stack.extend(ast.iter_child_nodes(child))
            if "_" in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_a_lesson_step_or_the_teachers_state_keeps_the_pages_language():
    """Following a teacher copies the teacher's address, and a lesson step writes its own: each page keeps its
    `lang` (students of one class may read different languages)."""
    from components.lesson.links import address, keep_language

    assert keep_language("?view=tokens&lang=zh&class=AB", "?lang=ar") == "?view=tokens&class=AB&lang=ar"
    assert keep_language("?view=tokens&lang=zh", "?view=attention") == "?view=tokens"
    assert address("?lesson=2", "/", "?lesson=1&lang=ko") == ("?lesson=2&lang=ko", "/?lesson=2&lang=ko")


def test_figures_write_numbers_as_the_language_does(flask_app):
    from components.common import message_figure

    with flask_app.test_request_context("/?lang=es"):
        assert i18n.separators() == ",." and message_figure("x").layout.separators == ",."
    with flask_app.test_request_context("/?lang=zh"):
        assert message_figure("x").layout.separators == ".,"


def test_the_first_starts_download_and_untrained_weights_are_told_in_the_language(flask_app, tiny_model):
    from components.layout import download_line, untrained_line

    status = {"done": 123e6, "total": 548e6, "left_s": 70}
    assert download_line(status) == ("Downloading GPT-2's weights: 123 of 548 MB (22%), about 1 min 10 s left. "
                                     "The page fills in as soon as they are in memory.")
    with flask_app.test_request_context("/?lang=es"):
        assert download_line(status).startswith("Descargando los pesos de GPT-2: 123 de 548 MB (22\xa0%), quedan "
                                                "unos 1 min 10 s.")
        assert download_line(None) is None
    untrained = type("Runtime", (), {"untrained_reason": "no network", "message": "x"})()
    with flask_app.test_request_context("/?lang=ko"):
        assert untrained_line(untrained).startswith("학습되지 않은 가중치: no network.")
        assert untrained_line(tiny_model) == tiny_model.message  # a runtime made by hand keeps its own words


def test_the_runtimes_messages_reach_the_page_in_the_readers_language(flask_app):
    """The engine's refusals and a run's stop reason are written by model_runtime in English; the page shows
    them in the reader's language, the values as the language writes them."""
    from components import generation, i18n
    from model_runtime.engine import EngineFull
    from model_runtime.engine_service import EngineError
    from model_runtime.messages import N_
    full = EngineFull(N_("The generation engine is full: {n} generations are already waiting; try again in a "
                         "moment."), n=1200)
    refused = EngineError.of(full)
    assert str(refused) == "The generation engine is full: 1200 generations are already waiting; try again in a moment."
    record = {"steps": [{}] * 3, "stop_reason": "max_new_tokens",
              "stop_message": "reached the number of tokens asked for"}
    with flask_app.test_request_context("/?lang=es"):
        assert i18n.message(refused) == ("El motor de generación está lleno: ya hay 1.200 generaciones esperando; "
                                         "vuelve a intentarlo en un momento.")
        assert i18n.message(EngineError(N_("that is not a valid {name}"), name=N_("page id"))) == \
            "eso no es un id de página válido"
        assert i18n.message(ValueError("plain")) == "plain"
        assert generation.stop_line(record) == "Detenido tras 3 tokens: se alcanzó el número de tokens pedido."
        # A message that is not a standard reason (an engine error's own text) is shown as it came.
        assert "boom" in generation.stop_line({**record, "stop_reason": "error", "stop_message": "boom"})
