"""The page skeleton: header and model banner, prompt bar, pipeline overview, controls, the stage tabs; and the
callbacks that belong to the skeleton (model status, running a prompt, the overview, the shareable URL)."""
from __future__ import annotations

import math
import re
from urllib.parse import parse_qs

from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from model_runtime import download
from model_runtime.weights import DOWNLOAD_COMMAND

from . import i18n, ids, state
from .i18n import N_, _, ngettext
from .views import MAIN, VIEWS

EXAMPLES = [
    "Data visualization empowers users to",
    "The capital of France is",
    "When Mary and John went to the store, John gave a drink to",
    "1, 2, 3, 4, 5,",
    "The Eiffel Tower is located in the city of",
    "She picked up the guitar and began to",
]
VIEW_VALUES = [value for value, _label, _module in VIEWS]
BLOCK_VIEWS = {"attention", "heads", "mlp", "residual", "ablation"}  # views that show one block
# Defaults, also the fallback for every junk value in a hand-edited URL.
DEFAULTS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 0, "top_n": 20, "block": 0, "head": 0,
            "view": "tokens"}
CONTROL_IDS = {"temperature": ids.TEMPERATURE, "top_k": ids.TOP_K, "top_p": ids.TOP_P, "seed": ids.SEED,
               "top_n": ids.TOP_N, "block": ids.BLOCK, "head": ids.HEAD, "view": ids.VIEW}
MAX_SEED = 2**32 - 1
LOADING = N_("Loading GPT-2… the page fills in as soon as the weights are in memory.")

# Skeleton-only ids (the shared ones live in components/ids.py).
MODEL_POLL = "model-poll"        # dcc.Interval: polls the model's loading state, stops once it is loaded
MODEL_READY = "model-ready"      # dcc.Store: True once the model is loaded (or failed to load)
URL_RESTORED = "url-restored"    # dcc.Store: False, "prompt" (in the box, model loading), True (all applied)
URL_WRITTEN = "url-written"      # dcc.Store: the query string last written to the address bar
PIPELINE = "pipeline"
PIPELINE_SCROLLED = "pipeline-scrolled"  # dcc.Store: output slot of the clientside callback that scrolls the row
PROJECTOR = "projector"
MORE = "more"                    # button: shows the examples and the pipeline where the layout is compact
WORKING = "working"              # html.Div: "Working…" while the page waits for the server
LANGUAGE = "language"            # dropdown: the interface's language (a choice reloads the page in it)
LANGUAGE_SET = "language-set"    # dcc.Store: the output slot of the clientside callback that reloads in a language
SLIDER_WORDS = "slider-words"    # dcc.Store: the sliders' value words ("off", "greedy") in the page's language


def _slider(id_, low, high, step, value, marks):
    return dcc.Slider(id=id_, min=low, max=high, step=step, value=value, marks=marks, updatemode="drag",
                      allow_direct_input=False, className="control-slider")


def _control(label, label_id, component):
    """A slider under its label; the label (with the value beside it) names the slider (assets/a11y.js)."""
    return html.Div([html.Label([label, " ", html.Span(id=label_id, className="control-value")],
                                id=label_id + "-label"), component],
                    className="control", **{"data-label-id": label_id + "-label"})


def _numbered(n: int) -> list[dict]:
    """Dropdown options: 0-based values, 1-based labels."""
    return [{"label": str(i + 1), "value": i} for i in range(n)]


def language_menu() -> html.Div:
    """The interface's language, each named in itself; choosing one reloads the page in it (the address keeps
    the prompt and settings, with `lang=` added)."""
    return html.Div([
        html.Label(_("Language"), htmlFor=LANGUAGE, className="language-label"),
        dcc.Dropdown(id=LANGUAGE, value=i18n.current_language(), clearable=False, searchable=False,
                     options=[{"label": html.Span(name, lang=tag), "value": code}
                              for code, (name, tag) in i18n.LANGUAGES.items()], className="language-menu"),
    ], className="language more-item")


def controls() -> html.Div:
    n_layer, n_head = 12, 12  # replaced by the model's sizes once it is loaded
    return html.Div([
        html.Div([
            html.Label(_("Block"), htmlFor=ids.BLOCK),
            dcc.Dropdown(id=ids.BLOCK, options=_numbered(n_layer), value=0, clearable=False, searchable=False),
            html.Label(_("Head"), htmlFor=ids.HEAD),
            dcc.Dropdown(id=ids.HEAD, options=_numbered(n_head), value=0, clearable=False, searchable=False),
        ], className="selectors", title=_("Blocks and heads are numbered from 1 here; in code (and L5H1) from 0.")),
        html.Div([
            _control(_("Temperature"), "temperature-value",
                     _slider(ids.TEMPERATURE, 0, 2, 0.05, 1.0, {0: "0", 1: "1", 2: "2"})),
            _control(_("Top-k"), "top-k-value",
                     _slider(ids.TOP_K, 0, 100, 1, 0, {0: _("off"), 50: "50", 100: "100"})),
            _control(_("Top-p"), "top-p-value", _slider(ids.TOP_P, 0.05, 1, 0.01, 1.0, {0.05: "0.05", 1: "1"})),
            html.Div([html.Label(_("Seed"), htmlFor=ids.SEED),
                      dcc.Input(id=ids.SEED, type="number", min=0, max=MAX_SEED, step=1, value=0,
                                debounce=True, className="seed-input")], className="control control-seed"),
            _control(_("Candidates shown"), "top-n-value", _slider(ids.TOP_N, 10, 50, 5, 20, {10: "10", 50: "50"})),
        ], className="sampling"),
    ], className="controls")


def page() -> html.Div:
    from .lesson import section as lesson_section  # the lesson reads this module's ids: imported once it exists
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.SEQUENCE),
        dcc.Store(id=ids.GENERATION),
        dcc.Store(id=URL_WRITTEN),
        dcc.Store(id=URL_RESTORED, data=False),
        dcc.Store(id=MODEL_READY, data=False),
        dcc.Store(id=PIPELINE_SCROLLED),
        dcc.Interval(id=MODEL_POLL, interval=700),
        html.Div([
            html.Header([
                html.H1(["Inside ", html.Span("GPT-2", className="accent")]),
                html.P(_("Type a prompt and follow it through the model to the next token, with the real numbers."),
                       className="tagline"),
                language_menu(),
                dcc.Checklist(id=PROJECTOR, options=[{"label": " " + _("Projector mode"), "value": "on"}], value=[],
                              className="projector-toggle", persistence=True, persistence_type="local"),
                html.Button(_("More ▾"), id=MORE, n_clicks=0, className="more-button",
                            title=_("Examples and the model's stages")),
            ], className="header"),
            html.Div(_(LOADING), id=ids.BANNER, className="banner banner-loading", role="status"),
            html.Div([
                dcc.Textarea(id=ids.PROMPT, value=EXAMPLES[0], className="prompt-box", rows=2,
                             placeholder=_("Type a prompt, then Enter (Shift+Enter for a new line)"),
                             title=_("Prompt: Enter runs it, Shift+Enter adds a new line")),
                html.Button(_("Run"), id=ids.RUN, className="run-button", n_clicks=0, title=_("Run (Enter)")),
            ], className="prompt-row"),
            html.Div(_("Working…"), id=WORKING, className="working", role="status"),
        ], className="topbar"),
        lesson_section(),
        html.Div([html.Span(_("Examples:"), className="examples-label")] + [
            html.Button(text, id={"type": "example", "index": i}, className="example-chip", n_clicks=0)
            for i, text in enumerate(EXAMPLES)], id=ids.EXAMPLES, className="examples more-item"),
        html.Div(id=ids.PROMPT_MESSAGE, className="prompt-message", role="alert"),
        html.Div(id=ids.APP_ERROR, className="prompt-message", role="alert"),
        html.Nav(id=PIPELINE, className="pipeline more-item", **{"aria-label": _("Stages of the model")}),
        controls(),
        dcc.Tabs(id=ids.VIEW, value="tokens", className="view-tabs", mobile_breakpoint=0, children=[
            dcc.Tab(label=_(label), value=value, children=html.Div(mark_main(module.section(), MAIN.get(value)),
                                                                className="view"),
                    className="view-tab", selected_className="view-tab-selected")
            for value, label, module in VIEWS]),
        dcc.Store(id=LANGUAGE_SET),
        dcc.Store(id=SLIDER_WORDS, data={"greedy": _("0 (greedy)"), "off": _("off"), "p_off": _("1 (off)")}),
        html.Footer([_("GPT-2 small: 124M parameters, 12 blocks of 12 heads. Built with PyTorch, Dash and Plotly."),
                     keyboard_help()], className="footer"),
        # Texts the browser-side repairs give to Dash's and Plotly's own parts (assets/a11y.js), and where the
        # keyboard cursor of a figure reads out the point it is on.
        html.Div(id="a11y-text", hidden=True, **{"data-first-page": _("First page"),
                                                 "data-previous-page": _("Previous page"),
                                                 "data-next-page": _("Next page"), "data-last-page": _("Last page")}),
        html.Div(id="figure-cursor", className="visually-hidden", role="status", **{"aria-live": "polite"}),
    ], id="page", className="page")


def keyboard_help() -> html.Details:
    """The page's keys, listed where everyone can find them."""
    keys = [(_("Enter"), _("in the prompt runs it; Shift+Enter adds a new line.")),
            (_("Tab"), _("moves through the controls in reading order; Shift+Tab goes back.")),
            (_("← → Home End"), _("on the tabs move between them; Enter or Space opens one.")),
            (_("Arrow keys"), _("on a slider change its value; on a dropdown open it and choose.")),
            (_("Arrow keys, Enter"), _("on a chart you can click (all heads, head ablation, attention scores, the "
                                       "head view) move a cursor over its cells and read them out; Enter or Space "
                                       "clicks the cell, Escape leaves."))]
    return html.Details([
        html.Summary(_("Keyboard")),
        html.Ul([html.Li([html.Kbd(key), " ", what], **({"id": "keys-figure"} if i == len(keys) - 1 else {}))
                 for i, (key, what) in enumerate(keys)]),
    ], className="keyboard-help")


def _holds(component, id_) -> bool:
    if getattr(component, "id", None) == id_:
        return True
    children = getattr(component, "children", None)
    children = children if isinstance(children, (list, tuple)) else [children]
    return any(_holds(child, id_) for child in children if hasattr(child, "to_plotly_json"))


def mark_main(children, main_id: str | None):
    """A view's children with the one that holds `main_id` wrapped in a "main-figure" box (projector mode
    moves it to the top and fits it to the screen)."""
    if main_id is None:
        return children
    if not isinstance(children, list):  # a section that is one block: mark inside it
        if isinstance(getattr(children, "children", None), list):
            children.children = mark_main(children.children, main_id)
        return children
    return [html.Div(child, className="main-figure") if _holds(child, main_id) else child for child in children]


def parse_settings(search, n_layer: int = 1000, n_head: int = 1000) -> tuple[str | None, dict]:
    """Prompt and control values from a query string; anything missing or invalid takes its default (a
    hand-edited link never fails). Blocks and heads must exist in the loaded model."""
    try:
        query = parse_qs(search.lstrip("?") if isinstance(search, str) else "", keep_blank_values=True,
                         max_num_fields=50)
    except ValueError:  # more fields than any link of ours has
        query = {}

    def get(key):
        return query.get(key, [None])[0]

    def number(key, low, high, integer=False):
        try:
            value = float(get(key))
        except (TypeError, ValueError, OverflowError):
            return DEFAULTS[key]
        if not math.isfinite(value) or not low <= value <= high or (integer and value != int(value)):
            return DEFAULTS[key]
        return int(value) if integer else value

    settings = {
        "temperature": number("temperature", 0, 2), "top_k": number("top_k", 0, 100, True),
        "top_p": number("top_p", 0.05, 1), "seed": number("seed", 0, MAX_SEED, True),
        "top_n": number("top_n", 10, 50, True), "block": number("block", 0, n_layer - 1, True),
        "head": number("head", 0, n_head - 1, True),
        "view": get("view") if get("view") in VIEW_VALUES else DEFAULTS["view"],
    }
    prompt = get("prompt")
    return (prompt if prompt and prompt.strip() else None), settings


def download_line(status: dict | None) -> str | None:
    """The first start's download, in the reader's language (None before it starts)."""
    if status is None:
        return None
    done, total, left = status["done"], status["total"], status["left_s"]
    if total is None:
        line = _("Downloading GPT-2's weights: {done} MB so far.").format(done=i18n.number(done / 1e6, 0))
    elif left is None:
        line = _("Downloading GPT-2's weights: {done} of {total} MB ({share}).").format(
            done=i18n.number(done / 1e6, 0), total=i18n.number(total / 1e6, 0), share=i18n.percent(done / total))
    else:
        minutes, seconds = divmod(round(left), 60)
        line = _("Downloading GPT-2's weights: {done} of {total} MB ({share}), about {time} left.").format(
            done=i18n.number(done / 1e6, 0), total=i18n.number(total / 1e6, 0), share=i18n.percent(done / total),
            time=(_("{minutes} min {seconds} s") if minutes else _("{seconds} s")).format(minutes=minutes,
                                                                                        seconds=seconds))
    return line + " " + _("The page fills in as soon as they are in memory.")


def untrained_line(runtime) -> str:
    """Why the weights are untrained and how to fetch GPT-2's, in the reader's language (the reason itself,
    from the loader, stays as it was written)."""
    if runtime.untrained_reason is None:  # a runtime made by hand (tests, notebooks): its own words
        return runtime.message
    return _("Untrained weights: {why}, so every number shown comes from random weights. Fetch GPT-2 with "
             "`{command}` and restart.").format(why=runtime.untrained_reason, command=DOWNLOAD_COMMAND)


def banner_children(message: str) -> list:
    """A model message as text, with `command` spans shown as code (still plain strings, never markup)."""
    parts = re.split(r"`([^`]+)`", message or "")
    return [html.Code(part, className="command") if i % 2 else part for i, part in enumerate(parts) if part]


def register(app) -> None:
    @app.callback(Output(ids.BANNER, "children"), Output(ids.BANNER, "className"),
                  Output(MODEL_POLL, "disabled"), Output(MODEL_READY, "data"),
                  Output(ids.BLOCK, "options"), Output(ids.HEAD, "options"),
                  Input(MODEL_POLL, "n_intervals"))
    def model_status(_unused):
        """Polled until the model is loaded: the loading line (a first start's download progress), then what
        was loaded (or why it failed: a failed download says why and how to fetch the weights again)."""
        if not state.model.ready:
            loading = download_line(download.progress.status()) or _(LOADING)
            return loading, "banner banner-loading", False, False, no_update, no_update
        if state.model.error:
            return state.model.error, "banner banner-error", True, True, no_update, no_update
        runtime = state.model.get()
        cfg = runtime.config
        if runtime.pretrained:
            text = _("{model}: {millions}M parameters, {blocks} blocks of {heads} heads, on {device}.").format(
                model=cfg.name, millions=i18n.number(cfg.n_params / 1e6, 0), blocks=cfg.n_layer, heads=cfg.n_head,
                device=runtime.device)
            children, cls = text, "banner banner-ok"
        else:
            children, cls = banner_children(untrained_line(runtime)), "banner banner-untrained"
        return children, cls, True, True, _numbered(cfg.n_layer), _numbered(cfg.n_head)

    outputs = [Output(ids.SEQUENCE, "data"), Output(ids.PROMPT_MESSAGE, "children"), Output(ids.PROMPT, "value"),
               Output(URL_RESTORED, "data")]
    outputs += [Output(cid, "value") for cid in CONTROL_IDS.values()]

    @app.callback(*outputs, Input(ids.RUN, "n_clicks"), Input({"type": "example", "index": ALL}, "n_clicks"),
                  Input(ids.URL, "search"), Input(MODEL_READY, "data"), State(ids.PROMPT, "value"),
                  State(ids.SEQUENCE, "data"), State(URL_RESTORED, "data"))
    def run_prompt(_unused, __, search, ___, text, sequence, restored):
        """Runs the prompt (Run, Enter, an example chip) or, on page load, restores a shared link: its prompt
        and settings, applied once the model is loaded (blocks and heads are checked against it)."""
        keep = [no_update] * len(CONTROL_IDS)
        trigger = callback_context.triggered_id
        ready = state.model.ready
        if trigger == ids.URL or (trigger in (None, MODEL_READY) and restored is not True):
            prompt, settings = parse_settings(search)
            if not (restored == "prompt" and trigger == MODEL_READY and isinstance(text, str)):
                text = prompt or EXAMPLES[0]  # else the box already holds the link's prompt, or what was typed
            if not ready:  # the banner says so; the prompt runs as soon as the model is there
                return no_update, "", text, "prompt", *keep
            if state.model.error:
                return no_update, state.model.error, text, True, *keep
            cfg = state.model.get().config
            _unused, settings = parse_settings(search, cfg.n_layer, cfg.n_head)
            prompt_out, restored_out, keep = text, True, [settings[key] for key in CONTROL_IDS]
        elif trigger == MODEL_READY:  # loaded after the link was restored: run what the box holds
            if sequence:
                raise PreventUpdate
            prompt_out, restored_out = no_update, no_update
        elif isinstance(trigger, dict):  # an example chip
            index = trigger.get("index")
            if not (isinstance(index, int) and 0 <= index < len(EXAMPLES)):
                raise PreventUpdate
            text, prompt_out, restored_out = EXAMPLES[index], EXAMPLES[index], no_update
        else:
            prompt_out, restored_out = no_update, no_update
        if not ready:
            return no_update, _("The model is still loading: the prompt runs as soon as it is ready."), prompt_out, \
                restored_out, *keep
        try:
            new_sequence, message = state.prompt_to_sequence(text)
        except RuntimeError as error:  # the model failed to load
            return no_update, str(error), prompt_out, restored_out, *keep
        if new_sequence is None:
            return no_update, message, prompt_out, restored_out, *keep
        return new_sequence, message or "", prompt_out, restored_out, *keep

    @app.callback(Output(PIPELINE, "children"), Input(ids.SEQUENCE, "data"), Input(ids.BLOCK, "value"),
                  Input(ids.VIEW, "value"), Input(MODEL_READY, "data"))
    def pipeline(sequence, block, view, _unused):
        if not state.model.ready or state.model.error:
            raise PreventUpdate
        n_tokens = len(sequence["ids"]) if isinstance(sequence, dict) and isinstance(sequence.get("ids"), list) \
            else None
        return pipeline_stages(state.model.get().config, n_tokens, block, view)

    @app.callback(Output(ids.VIEW, "value", allow_duplicate=True), Output(ids.BLOCK, "value", allow_duplicate=True),
                  Input({"type": "stage", "view": ALL, "block": ALL}, "n_clicks"), prevent_initial_call=True)
    def open_stage(clicks):
        """A click on a stage of the overview opens its view (a block opens its attention head view)."""
        trigger = callback_context.triggered_id
        if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in clicks or []):
            raise PreventUpdate
        view = trigger.get("view") if trigger.get("view") in VIEW_VALUES else "tokens"
        block = trigger.get("block")
        valid_block = isinstance(block, int) and not isinstance(block, bool) and block >= 0
        return view, (block if valid_block else no_update)

    # Value labels beside the sliders, and the shareable URL: both in the browser, no round trip.
    app.clientside_callback(
        """function(t, k, p, n, words) {
            const num = (v) => typeof v === "number" && isFinite(v);
            return [!num(t) ? "" : t === 0 ? words.greedy : t.toFixed(2),
                    !num(k) ? "" : k === 0 ? words.off : String(k),
                    !num(p) ? "" : p >= 1 ? words.p_off : p.toFixed(2),
                    !num(n) ? "" : String(n)];
        }""",
        Output("temperature-value", "children"), Output("top-k-value", "children"),
        Output("top-p-value", "children"), Output("top-n-value", "children"),
        Input(ids.TEMPERATURE, "value"), Input(ids.TOP_K, "value"), Input(ids.TOP_P, "value"),
        Input(ids.TOP_N, "value"), State(SLIDER_WORDS, "data"))
    # The prompt goes into the link only while the link stays short enough for any server (gunicorn refuses
    # request lines over 4,094 bytes); a longer prompt is shared by pasting it.
    app.clientside_callback(
        """function(sequence, temperature, top_k, top_p, seed, top_n, block, head, view) {
            if (!sequence || typeof sequence.prompt !== "string") { return window.dash_clientside.no_update; }
            const q = new URLSearchParams({temperature, top_k, top_p,
                                           seed: seed === null || seed === undefined ? 0 : seed,
                                           top_n, block, head, view});
            const here = new URLSearchParams(window.location.search);  // the lesson's step and a student's class
            for (const key of ["lesson", "class", "lang"]) { if (here.has(key)) { q.set(key, here.get(key)); } }
            const withPrompt = new URLSearchParams({prompt: sequence.prompt, ...Object.fromEntries(q)});
            const search = "?" + (withPrompt.toString().length <= 3000 ? withPrompt : q).toString();
            if (window.location.search !== search) { window.history.replaceState(null, "", search); }
            return search;
        }""",
        Output(URL_WRITTEN, "data"), Input(ids.SEQUENCE, "data"),
        *[Input(cid, "value") for cid in CONTROL_IDS.values()])
    app.clientside_callback(
        """function(language) {
            const query = new URLSearchParams(window.location.search);
            if (!language || query.get("lang") === language) { return window.dash_clientside.no_update; }
            query.set("lang", language);
            window.location.search = query.toString();  // the page is drawn in its language on the server
            return window.dash_clientside.no_update;
        }""",
        Output(LANGUAGE_SET, "data"), Input(LANGUAGE, "value"), prevent_initial_call=True)
    # The page's classes drive the layout in CSS, with no round trip: projector mode, the open view (each
    # tab shows only the controls it reads), and whether "More" has opened the examples and the pipeline.
    app.clientside_callback(
        """function(projector, view, more) {
            return "page" + (projector && projector.length ? " projector" : "") + " open-" + view
                + (more % 2 ? " show-more" : "");
        }""",
        Output("page", "className"), Input(PROJECTOR, "value"), Input(ids.VIEW, "value"), Input(MORE, "n_clicks"))
    # Keep the highlighted stage in sight when the row is wider than the screen (scrolls the row only, never
    # the page: the teacher may be looking at a heatmap further down).
    app.clientside_callback(
        """function(children) {
            setTimeout(function () {
                const row = document.getElementById("pipeline");
                const active = row && row.querySelector(".stage-active");
                if (!active) { return; }
                const left = active.offsetLeft, right = left + active.offsetWidth;  // the row is the offsetParent
                if (left < row.scrollLeft || right > row.scrollLeft + row.clientWidth) {
                    row.scrollLeft = Math.max(0, left - (row.clientWidth - active.offsetWidth) / 2);
                }
            }, 0);
            return window.dash_clientside.no_update;
        }""",
        Output(PIPELINE_SCROLLED, "data"), Input(PIPELINE, "children"))


def pipeline_stages(cfg, n_tokens: int | None, block, view) -> list:
    """The row Tokens → Embeddings → Block 1 … Block n → Output, with each stage's shapes (T = n_tokens);
    each stage is a button that opens its view. The block on screen is highlighted."""
    T = "T" if n_tokens is None else i18n.number(n_tokens)

    def stage(title, shape, view_value, block_index=-1, active=False, hint=""):
        return html.Button([html.Div(title, className="stage-title"), html.Div(shape, className="stage-shape")],
                           id={"type": "stage", "view": view_value, "block": block_index}, n_clicks=0,
                           title=hint, className="stage" + (" stage-active" if active else ""))

    arrow = html.Span("→", className="stage-arrow", **{"aria-hidden": "true"})
    tokens_label = _("? tokens") if n_tokens is None else \
        ngettext("{n} token", "{n} tokens", n_tokens).format(n=i18n.number(n_tokens))
    row = [stage(_("Tokens"), tokens_label, "tokens", active=view == "tokens", hint=_("The prompt cut into tokens")),
           arrow,
           stage(_("Embeddings"), f"{T} × {i18n.number(cfg.d_model)}", "embeddings", active=view == "embeddings",
                 hint=_("Token and position embeddings, added")), arrow]
    for i in range(cfg.n_layer):
        row += [stage(_("Block {block}").format(block=i + 1),
                      [html.Div(_("{heads} heads × {T} × {d_head}").format(heads=cfg.n_head, T=T, d_head=cfg.d_head)),
                       html.Div(_("MLP {T} × {d_mlp}").format(T=T, d_mlp=i18n.number(cfg.d_mlp)))],
                      "attention", i, active=(i == block and view in BLOCK_VIEWS),
                      hint=_("Block {block} (index {index}): attention, then the MLP").format(block=i + 1, index=i)),
                arrow]
    row += [stage(_("Output"), _("{T} × {vocab} logits").format(T=T, vocab=i18n.number(cfg.vocab_size)), "output",
                  active=view in ("output", "logit-lens", "generation"),
                  hint=_("Scores for every token in the vocabulary; the next token is drawn from them"))]
    return row
