"""The page skeleton: header and model banner, prompt bar, pipeline overview, controls, the stage tabs; and the
callbacks that belong to the skeleton (model status, running a prompt, the overview, the shareable URL)."""
from __future__ import annotations

import math
from urllib.parse import parse_qs

from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from . import ids, state
from .views import VIEWS

EXAMPLES = [
    "Data visualization empowers users to",
    "The capital of France is",
    "When Mary and John went to the store, John gave a drink to",
    "1, 2, 3, 4, 5,",
    "The Eiffel Tower is located in the city of",
    "She picked up the guitar and began to",
]
VIEW_VALUES = [value for value, _, _ in VIEWS]
# Defaults, also the fallback for every junk value in a hand-edited URL.
DEFAULTS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 0, "top_n": 20, "block": 0, "head": 0,
            "view": "tokens"}
CONTROL_IDS = {"temperature": ids.TEMPERATURE, "top_k": ids.TOP_K, "top_p": ids.TOP_P, "seed": ids.SEED,
               "top_n": ids.TOP_N, "block": ids.BLOCK, "head": ids.HEAD, "view": ids.VIEW}


def _slider(id_, low, high, step, value, marks):
    return dcc.Slider(id=id_, min=low, max=high, step=step, value=value, marks=marks, updatemode="drag",
                      allow_direct_input=False, className="control-slider")


def _control(label, label_id, component):
    return html.Div([html.Label([label, " ", html.Span(id=label_id, className="control-value")]), component],
                    className="control")


def controls() -> html.Div:
    n_layer, n_head = 12, 12  # replaced by the model's sizes once it is loaded
    return html.Div([
        html.Div([
            html.Label("Block", htmlFor=ids.BLOCK),
            dcc.Dropdown(id=ids.BLOCK, options=_numbered(n_layer), value=0, clearable=False, searchable=False),
            html.Label("Head", htmlFor=ids.HEAD),
            dcc.Dropdown(id=ids.HEAD, options=_numbered(n_head), value=0, clearable=False, searchable=False),
        ], className="selectors"),
        html.Div([
            _control("Temperature", "temperature-value",
                     _slider(ids.TEMPERATURE, 0, 2, 0.05, 1.0, {0: "0", 1: "1", 2: "2"})),
            _control("Top-k", "top-k-value", _slider(ids.TOP_K, 0, 100, 1, 0, {0: "off", 50: "50", 100: "100"})),
            _control("Top-p", "top-p-value", _slider(ids.TOP_P, 0.05, 1, 0.01, 1.0, {0.05: "0.05", 1: "1"})),
            html.Div([html.Label("Seed", htmlFor=ids.SEED),
                      dcc.Input(id=ids.SEED, type="number", min=0, max=2**32 - 1, step=1, value=0,
                                debounce=True, className="seed-input")], className="control control-seed"),
            _control("Candidates shown", "top-n-value", _slider(ids.TOP_N, 10, 50, 5, 20, {10: "10", 50: "50"})),
        ], className="sampling"),
    ], className="controls")


def _numbered(n: int) -> list[dict]:
    return [{"label": str(i + 1), "value": i} for i in range(n)]


def page() -> html.Div:
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.SEQUENCE),
        dcc.Store(id=ids.GENERATION),
        dcc.Store(id="url-written"),
        dcc.Interval(id="model-poll", interval=700),
        html.Header([
            html.H1(["Inside ", html.Span("GPT-2", className="accent")]),
            html.P("Type a prompt and follow it through the model to the next token, with the real numbers.",
                   className="tagline"),
            dcc.Checklist(id="projector", options=[{"label": " Projector mode (large type)", "value": "on"}],
                          value=[], className="projector-toggle"),
        ], className="header"),
        html.Div("Loading GPT-2…", id=ids.BANNER, className="banner banner-loading", role="status"),
        html.Div([
            dcc.Textarea(id=ids.PROMPT, value=EXAMPLES[0], className="prompt-box", rows=2, maxLength=200_000,
                         placeholder="Type a prompt, then Enter (Shift+Enter for a new line)"),
            html.Button("Run", id=ids.RUN, className="run-button", n_clicks=0),
        ], className="prompt-row"),
        html.Div([html.Span("Examples:", className="examples-label")] + [
            html.Button(text, id={"type": "example", "index": i}, className="example-chip", n_clicks=0)
            for i, text in enumerate(EXAMPLES)], id=ids.EXAMPLES, className="examples"),
        html.Div(id=ids.PROMPT_MESSAGE, className="prompt-message", role="alert"),
        html.Div(id=ids.APP_ERROR, className="prompt-message", role="alert"),
        html.Div(id="pipeline", className="pipeline"),
        controls(),
        dcc.Tabs(id=ids.VIEW, value="tokens", className="view-tabs", mobile_breakpoint=0, children=[
            dcc.Tab(label=label, value=value, children=html.Div(module.section(), className="view"),
                    className="view-tab", selected_className="view-tab-selected")
            for value, label, module in VIEWS]),
        html.Footer(["GPT-2 small: 124M parameters, 12 blocks of 12 heads. Built with PyTorch, Dash and Plotly."],
                    className="footer"),
    ], id="page", className="page")


def parse_settings(search: str | None) -> tuple[str | None, dict]:
    """Prompt and control values from a query string; anything missing or invalid takes its default."""
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=True)

    def get(key):
        return query.get(key, [None])[0]

    def number(key, low, high, integer=False):
        try:
            value = float(get(key))
        except (TypeError, ValueError):
            return DEFAULTS[key]
        if not math.isfinite(value) or not low <= value <= high or (integer and value != int(value)):
            return DEFAULTS[key]
        return int(value) if integer else value

    settings = {
        "temperature": number("temperature", 0, 2), "top_k": number("top_k", 0, 100, True),
        "top_p": number("top_p", 0.05, 1), "seed": number("seed", 0, 2**32 - 1, True),
        "top_n": number("top_n", 10, 50, True), "block": number("block", 0, 1000, True),
        "head": number("head", 0, 1000, True),
        "view": get("view") if get("view") in VIEW_VALUES else DEFAULTS["view"],
    }
    prompt = get("prompt")
    return (prompt if prompt and prompt.strip() else None), settings


def register(app) -> None:
    @app.callback(Output(ids.BANNER, "children"), Output(ids.BANNER, "className"),
                  Output("model-poll", "disabled"), Output(ids.BLOCK, "options"), Output(ids.HEAD, "options"),
                  Input("model-poll", "n_intervals"))
    def model_status(_):
        if not state.model.ready:
            return "Loading GPT-2… the page fills in as soon as the weights are in memory.", \
                "banner banner-loading", False, no_update, no_update
        if state.model.error:
            return state.model.error, "banner banner-error", True, no_update, no_update
        runtime = state.model.get()
        cfg = runtime.config
        if runtime.pretrained:
            text, cls = f"{cfg.name}: {cfg.n_params / 1e6:.0f}M parameters on {runtime.device}.", "banner banner-ok"
        else:
            text, cls = runtime.message, "banner banner-untrained"
        return text, cls, True, _numbered(cfg.n_layer), _numbered(cfg.n_head)

    outputs = [Output(ids.SEQUENCE, "data"), Output(ids.PROMPT_MESSAGE, "children"), Output(ids.PROMPT, "value")]
    outputs += [Output(cid, "value") for cid in CONTROL_IDS.values()]

    @app.callback(*outputs, Input(ids.RUN, "n_clicks"), Input({"type": "example", "index": ALL}, "n_clicks"),
                  Input(ids.URL, "search"), State(ids.PROMPT, "value"))
    def run_prompt(_, __, search, text):
        """Runs the prompt (Run, Enter, an example chip) or, on page load, restores a shared link."""
        keep = [no_update] * len(CONTROL_IDS)
        trigger = callback_context.triggered_id
        if isinstance(trigger, dict):  # an example chip
            text = EXAMPLES[trigger["index"]] if 0 <= trigger.get("index", -1) < len(EXAMPLES) else text
            prompt_out = text
        elif trigger == ids.URL or trigger is None:  # page load: the link's prompt and settings
            prompt, settings = parse_settings(search)
            text = prompt or EXAMPLES[0]
            prompt_out, keep = text, [settings[key] for key in CONTROL_IDS]
        else:
            prompt_out = no_update
        try:
            sequence, message = state.prompt_to_sequence(text)
        except RuntimeError as error:  # the model failed to load or is still loading
            return no_update, str(error), prompt_out, *keep
        if sequence is None:
            return no_update, message, prompt_out, *keep
        return sequence, message or "", prompt_out, *keep

    @app.callback(Output("pipeline", "children"), Input(ids.SEQUENCE, "data"), Input(ids.BLOCK, "value"),
                  Input(ids.VIEW, "value"))
    def pipeline(sequence, block, view):
        if not sequence or not state.model.ready or state.model.error:
            raise PreventUpdate
        return pipeline_stages(state.model.get().config, len(sequence["ids"]), block, view)

    @app.callback(Output(ids.VIEW, "value", allow_duplicate=True), Output(ids.BLOCK, "value", allow_duplicate=True),
                  Input({"type": "stage", "view": ALL, "block": ALL}, "n_clicks"), prevent_initial_call=True)
    def open_stage(clicks):
        trigger = callback_context.triggered_id
        if not isinstance(trigger, dict) or not any(clicks):
            raise PreventUpdate
        view = trigger["view"] if trigger["view"] in VIEW_VALUES else "tokens"
        return view, (trigger["block"] if trigger["block"] >= 0 else no_update)

    # Value labels beside the sliders, and the shareable URL: both in the browser, no round trip.
    app.clientside_callback(
        """function(t, k, p, n) {
            return [t === 0 ? "0 (greedy)" : Number(t).toFixed(2), k === 0 ? "off" : String(k),
                    p >= 1 ? "1 (off)" : Number(p).toFixed(2), String(n)];
        }""",
        Output("temperature-value", "children"), Output("top-k-value", "children"),
        Output("top-p-value", "children"), Output("top-n-value", "children"),
        Input(ids.TEMPERATURE, "value"), Input(ids.TOP_K, "value"), Input(ids.TOP_P, "value"),
        Input(ids.TOP_N, "value"))
    app.clientside_callback(
        """function(sequence, temperature, top_k, top_p, seed, top_n, block, head, view) {
            if (!sequence || sequence.prompt === undefined) { return window.dash_clientside.no_update; }
            const q = new URLSearchParams({prompt: sequence.prompt, temperature, top_k, top_p,
                                           seed: seed === null || seed === undefined ? 0 : seed,
                                           top_n, block, head, view});
            window.history.replaceState(null, "", "?" + q.toString());
            return q.toString();
        }""",
        Output("url-written", "data"), Input(ids.SEQUENCE, "data"),
        *[Input(cid, "value") for cid in CONTROL_IDS.values()])
    app.clientside_callback(
        """function(value) { return value && value.length ? "page projector" : "page"; }""",
        Output("page", "className"), Input("projector", "value"))


def pipeline_stages(cfg, n_tokens: int, block: int | None, view: str | None) -> list:
    """The row Tokens → Embeddings → Block 1 … Block n → Output, with each stage's shapes; each is a button."""
    T = n_tokens

    def stage(title, shape, view_value, block_index=-1, active=False):
        return html.Button([html.Div(title, className="stage-title"), html.Div(shape, className="stage-shape")],
                           id={"type": "stage", "view": view_value, "block": block_index}, n_clicks=0,
                           className="stage" + (" stage-active" if active else ""))

    arrow = html.Span("→", className="stage-arrow")
    row = [stage("Tokens", f"{T} tokens", "tokens", active=view == "tokens"), arrow,
           stage("Embeddings", f"{T} × {cfg.d_model:,}", "embeddings", active=view == "embeddings"), arrow]
    block_views = {"attention", "heads", "mlp", "residual", "ablation"}
    for i in range(cfg.n_layer):
        row += [stage(f"Block {i + 1}",
                      [html.Div(f"{cfg.n_head} heads × {T} × {cfg.d_head}"), html.Div(f"MLP {T} × {cfg.d_mlp:,}")],
                      "attention", i, active=(i == block and view in block_views)), arrow]
    row += [stage("Output", f"{T} × {cfg.vocab_size:,} logits", "output", active=view in ("output", "logit-lens"))]
    return row
