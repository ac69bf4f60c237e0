"""The weights in float32, bfloat16 and int8 side by side, on the current prompt: memory, decode tokens/s, the
largest logit difference from float32 and whether the top-10 next tokens agree (`quantize.compare_dtypes`).

The converted copies are built once per process, on the first press, and kept (their memory is on the page);
each comparison is cached by prompt in the shared views cache, so a class pressing together costs one run."""
from __future__ import annotations

import threading

import plotly.graph_objects as go
from dash import Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from flask import has_app_context

from model_runtime.quantize import compare_dtypes, converted

from .. import common, ids, state
from .. import figure_text as words
from ..figure_access import accessible_graph
from ..figure_access import register as register_figures
from ..i18n import _, number
from . import solo

RUN, MESSAGE, MEMORY = "weights-run", "weights-message", "weights-memory"
FIGURE, TABLE = "weights-figure", "weights-table"
MAX_TOKENS = 128       # the comparison reads the last 128 tokens of a longer prompt (three models trace it)
DECODE_TOKENS = 8      # decode steps timed per dtype (the median step counts)
COLORS = {"float32": "#3b75af", "bfloat16": "#f4a259", "int8": "#2a9d8f"}

_copies: dict[str, dict] = {}   # model fingerprint -> {"bfloat16": runtime, "int8": runtime}
_copies_lock = threading.Lock()

def explanation() -> str:
    """The view's explanation (Markdown), in the reader's language."""
    return _("""
**Fewer bytes per weight.** Decoding a token reads every weight from memory, so smaller weights decode faster.
**bfloat16** keeps float32's range with 8 bits of precision instead of 24 (2 bytes a weight). **int8** stores
each weight as a whole number from −127 to 127 and one float scale per output channel (1 byte a weight;
activations in bfloat16): the matrix products read the int8 weights directly. The price is accuracy: the logits
move a little, and the question is whether the model's choice moves with them. Press Compare to run the three
on this prompt: weight memory, decode speed (median of 8 timed steps after the prompt), the largest change of
any logit at any position, and the ten most likely next tokens against float32's.
""")
EQUATION = (r"W \approx s \odot Q,\quad Q_{ij} = \operatorname{round}\!\left(\frac{W_{ij}}{s_i}\right) \in [-127, 127],"
            r"\quad s_i = \frac{\max_j |W_{ij}|}{127}")


# ----------------------------------------------------------------------------------------------------------
# Pure builders: from compare_dtypes' rows (with token texts) to what the page shows.

def comparison_figure(rows: list[dict]) -> go.Figure:
    """Three panels, one bar per dtype: weight memory (MB), decode tokens/s, largest |Δlogit| from float32."""
    layout, refs = common.panels(1, 3, [_("weight memory (MB)"), _("decode tokens/s"),
                                        _("largest |Δlogit| vs float32")], hgap=0.09)
    fig = go.Figure(layout=layout)
    names = [r["dtype"] for r in rows]
    colors = [COLORS.get(n, "#888") for n in names]
    columns = [([r["weight_bytes"] / 1e6 for r in rows], "%{y:.1f} MB"),
               ([r["decode_tokens_per_s"] for r in rows], _("%{y:.1f} tokens/s")),
               ([r["max_abs_dlogit"] for r in rows], "%{y:.4f}")]
    # The CSV (figure_csv): one table, every number of each dtype, carried by the first panel's bars.
    table_rows = [[r["dtype"], r["weight_bytes"] / 1e6, r["decode_tokens_per_s"], r["max_abs_dlogit"],
                   r["top10_overlap"], bool(r["top10_same_order"])] for r in rows]
    csv = [{"csv_columns": [_("weights"), _("weight memory (MB)"), _("decode tokens/s"),
                            _("largest |Δlogit| vs float32"), _("top-10 shared"), _("same order")]},
           {"csv": False}, {"csv": False}]
    for (x, y), (values, hover), meta in zip(refs, columns, csv):
        fig.add_trace(go.Bar(x=names, y=values, marker_color=colors, xaxis=x, yaxis=y, showlegend=False,
                             texttemplate=hover, textposition="outside", cliponaxis=False, meta=meta,
                             customdata=table_rows if "csv_columns" in meta else None,
                             hovertemplate="%{x}: " + hover + "<extra></extra>"))
    fig.update_yaxes(rangemode="tozero", showticklabels=False)
    return words.attach(common.clear_of_toolbar(common.style(fig, height=340)), words.weights_text(rows))


def table(rows: list[dict], texts: dict[int, str]) -> html.Table:
    head = html.Tr([html.Th(t) for t in (_("weights"), _("memory"), _("× float32"), _("decode tokens/s"),
                                         _("× float32"), _("largest |Δlogit|"), _("top-10 shared"),
                                         _("same order"), _("top-10 next tokens"))])
    yes, no = _("yes"), _("no")
    body = [html.Tr([html.Td(r["dtype"]), html.Td(number(r["weight_bytes"] / 1e6, 1) + " MB"),
                     html.Td(number(r["weight_ratio"], 2)), html.Td(number(r["decode_tokens_per_s"], 1)),
                     html.Td(number(r["speedup"], 2)), html.Td(number(r["max_abs_dlogit"], 4)),
                     html.Td(f"{r['top10_overlap']} / 10"), html.Td(yes if r["top10_same_order"] else no),
                     html.Td(" · ".join(texts[t] for t in r["top10"]), className="beam-text")]) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="numbers-table")


def memory_line(rows: list[dict], prompt_tokens: int, trimmed: bool) -> str:
    extra = sum(r["weight_bytes"] for r in rows if r["dtype"] != "float32")
    line = _("The bfloat16 and int8 copies were built once on this server and are kept for the next comparison: "
             "{mb} MB of memory beside the float32 model. Measured on {n} prompt tokens.").format(
        mb=number(extra / 1e6, 0), n=number(prompt_tokens))
    if trimmed:
        line += " " + _("(The last {n} tokens of the prompt: the comparison traces it three times.)").format(
            n=MAX_TOKENS)
    return line


# ----------------------------------------------------------------------------------------------------------
# The callback and the layout.

def copies(runtime) -> dict:
    """The bfloat16 and int8 copies of the (float32) model, built on first use and kept."""
    with _copies_lock:
        if runtime.fingerprint not in _copies:
            _copies.clear()  # a new main model (tests): the old copies go
            _copies[runtime.fingerprint] = {name: converted(runtime, name) for name in ("bfloat16", "int8")}
        return _copies[runtime.fingerprint]


def compare(n_clicks, sequence, prompt):
    """Compare -> (message, memory line, figure, table)."""
    if not n_clicks:
        raise PreventUpdate
    try:
        prompt_ids = solo.prompt_ids(sequence, prompt)
        runtime = state.model.get()
        if runtime.weights_dtype != "float32":
            raise ValueError(_("the comparison starts from float32 weights, and this server runs {dtype}.")
                             .format(dtype=runtime.weights_dtype))
        trimmed = len(prompt_ids) > MAX_TOKENS
        prompt_ids = prompt_ids[-MAX_TOKENS:]
        key = f"weights|{state.model_key()}|{','.join(map(str, prompt_ids))}"
        shared = has_app_context()  # the shared cache belongs to a running app
        rows = state.views_cache.get(key) if shared else None
        if rows is None:
            with solo.solo_slot():
                rows = compare_dtypes(runtime, prompt_ids, DECODE_TOKENS, copies(runtime))
            if shared:
                state.views_cache.set(key, rows)
    except (ValueError, RuntimeError) as why:
        return _("Cannot compare: {why}").format(why=why), no_update, no_update, no_update
    texts = {t: runtime.tokenizer.token(t).text for r in rows for t in r["top10"]}
    return "", memory_line(rows, len(prompt_ids), trimmed), comparison_figure(rows), table(rows, texts)


def section() -> html.Div:
    return html.Div([
        common.explanation(explanation(), EQUATION),
        html.Div([html.Button(_("Compare float32 / bfloat16 / int8"), id=RUN, n_clicks=0, className="run-button"),
                  html.Span(_("The first press builds the two copies (a few seconds, then kept)."), className="hint")],
                 className="gen-controls"),
        html.Div(id=MESSAGE, className="view-message", role="alert"),
        html.P(id=MEMORY, className="hint"),
        accessible_graph(FIGURE, _("float32, bfloat16 and int8 weights compared")),
        html.Div(id=TABLE),
    ])


def register(app) -> None:
    app.callback(Output(MESSAGE, "children"), Output(MEMORY, "children"), Output(FIGURE, "figure"),
                 Output(TABLE, "children"),
                 Input(RUN, "n_clicks"), State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"),
                 prevent_initial_call=True)(compare)
    register_figures(app, FIGURE)
