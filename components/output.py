"""The "Next token" view: the candidates for the token after the LAST position of the sequence, and each stage
of turning logits into one drawn token: logits -> divide by the temperature -> keep the top k -> keep the
nucleus (top p) -> renormalise -> draw.

Moving a sampling control never runs the model again: the logits come from the cached trace
(`state.next_logits(ids)`) and `model_runtime.sampling` recomputes the pipeline over the whole
vocabulary in a few milliseconds; only the top N candidates travel to the browser (float32 arrays).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from model_runtime.sampling import SamplingParams, draw, make_generator, sampling_record

from . import common, ids, state
from . import figure_text as words
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import N_, _, ngettext, number, percent, separators

TAB = "output"
FIGURE = "output-candidates"
SUMMARY = "output-summary"
TABLE = "output-table"
MESSAGE = "output-message"

TOP_N_RANGE = (10, 50)
KEPT_COLOR = "#3b75af"
CUT_K_COLOR = "#dcdcdc"     # removed by top-k: light grey
CUT_P_COLOR = "#a8a8a8"     # removed by top-p: darker grey, hatched
CUMULATIVE_COLOR = "#2a9d8f"

# Each bar's stage, in legend order.
STATUS_NAMES = {
    "kept": N_("kept: drawn from"),
    "top_k": N_("removed by top-k"),
    "top_p": N_("removed by top-p"),
    "greedy": N_("not chosen (greedy)"),
}

EXPLANATION = N_("**From logits to the next token.** The last position's vector is compared with every token's "
                 "embedding: one score (a *logit* z) for each token of the vocabulary. Dividing the logits by the "
                 "**temperature** T sharpens the distribution (T below 1) or flattens it (T above 1); T = 0 means "
                 "*greedy*: always take the most likely token. **Top-k** keeps only the k most likely tokens (0 = "
                 "off). **Top-p** (the *nucleus*) keeps the smallest set of most likely tokens whose probabilities "
                 "add up to at least p (1 = off), so it keeps few tokens when the model is sure and many when it is "
                 "not. What is left is renormalised to add up to 1, and one token is drawn at random from it (with a "
                 "seed, the same draw every time).\n\nUpper panel: the probabilities after the temperature, before "
                 "filtering; grey bars were removed, and the line is the running total that top-p compares with p. "
                 "Lower panel: the renormalised probabilities the token is drawn from.")
EQUATION = r"p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}"


# ----------------------------------------------------------------------------------------------------------
# Input checks: everything a callback receives may have been sent by hand.

def checked_sequence(sequence, missing: str = N_("Run a prompt to see the next-token candidates.")) -> list[int]:
    """The token ids of a `sequence` store; ValueError with a message for people."""
    token_ids = sequence.get("ids") if isinstance(sequence, dict) else None
    if not isinstance(token_ids, list) or not token_ids:
        raise ValueError(_(missing))
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in token_ids):
        raise ValueError(_("The sequence holds something other than token ids; run the prompt again."))
    return token_ids


def checked_int(value, name: str, low: int, high: int) -> int:
    if value is None:  # what a number box sends when it is empty or outside its own min / max
        raise ValueError(_("{name} must be a whole number from {low} to {high}; the box is empty or out of "
                           "range").format(name=name, low=low, high=high))
    if isinstance(value, bool):
        raise ValueError(_("{name} must be a whole number from {low} to {high}, not {value!r}").format(
            name=name, low=low, high=high, value=value))
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a whole number too large for a float
        raise ValueError(_("{name} must be a whole number from {low} to {high}, not {value!r}").format(
            name=name, low=low, high=high, value=str(value)[:40])) from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(_("{name} must be a whole number from {low} to {high}; got {value}").format(
            name=name, low=low, high=high, value=str(value)[:40]))
    return int(number)


def checked_params(temperature, top_k, top_p, seed) -> SamplingParams:
    """SamplingParams from the controls (an empty seed box means no seed)."""
    if isinstance(seed, str) and not seed.strip():
        seed = None
    return SamplingParams.checked(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)


# ----------------------------------------------------------------------------------------------------------
# Data: the top N candidates with every stage's value (no model run here).

def candidate_labels(texts: Sequence[str], token_ids: Sequence[int]) -> list[str]:
    """Unique category labels: a token's display text, with its id added where two tokens display alike."""
    counts = Counter(texts)
    return [f"{text} ({i})" if counts[text] > 1 else text for text, i in zip(texts, token_ids)]


def candidate_rows(record, tokenizer, n: int) -> list[dict]:
    """The n most likely tokens before filtering, in order, as plain dicts: `record.top(n)` plus the display
    text, a unique label, and `p_topk` (the distribution top-p looks at: renormalised over the top-k set)."""
    rows = record.top(n)
    kept_k = record.kept_top_k
    mass_k = float(record.probs_before[kept_k].sum()) if not record.params.greedy else 1.0
    texts = [tokenizer.token(r["id"]).text for r in rows]
    for row, text, label in zip(rows, texts, candidate_labels(texts, [r["id"] for r in rows])):
        row["text"], row["label"] = text, label
        row["p_topk"] = row["prob_before"] / mass_k if row["kept_top_k"] and mass_k > 0 else 0.0
    return rows


def row_status(row: dict, greedy: bool) -> str:
    if row["kept_top_p"]:
        return "kept"
    if greedy:
        return "greedy"
    return "top_p" if row["kept_top_k"] else "top_k"


def entropy_bits(probs) -> float:
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    return max(0.0, float(-(p * np.log2(p)).sum()))  # a certain choice is 0 bits, never "-0.00"


# ----------------------------------------------------------------------------------------------------------
# Pure figure / table builders.

def _hover(row: dict, greedy: bool) -> str:
    scaled = _("(greedy: no temperature)") if greedy else f"→ z/T {row['scaled']:.3f}"
    status = _(STATUS_NAMES[row_status(row, greedy)])
    return (_("<b>{row}</b> (id {row2}, rank {value} by logit)<br>logit z {row3} {scaled}<br>p before filtering "
              "{row4}<br>p after filtering {row5}<br>{status}").format(
        row=row["text"], row2=row["id"], value=row["rank"] + 1, row3=number(row["logit"], 3), scaled=scaled,
        row4=number(row["prob_before"], 4), row5=number(row["prob"], 4), status=status))


def candidates_figure(rows: list[dict], drawn_id: int | None, top_p: float, greedy: bool = False, *,
                      drawn_label: str = _("drawn token"), title: str | None = None) -> go.Figure:
    """Two panels over the top-N candidates (x: token labels, most likely first).

    Upper: probability before filtering, one bar trace per stage ("kept", "removed by top-k", "removed by
    top-p", or "not chosen (greedy)"), the highlighted token in its own trace, and the cumulative mass of the
    top-k-renormalised distribution (right axis) with the top-p threshold. Lower: the renormalised
    probabilities the token is drawn from. `rows` are `candidate_rows` dicts.

    Built as one spec (no make_subplots / update_* calls): a slider move costs a few milliseconds, not 50."""
    labels = [r["label"] for r in rows]
    hover = [_hover(r, greedy) for r in rows]
    statuses = [row_status(r, greedy) for r in rows]
    highlight = [r["id"] == drawn_id for r in rows]
    before = [r["prob_before"] for r in rows]
    final = [r["prob"] for r in rows]
    colors = {"kept": KEPT_COLOR, "top_k": CUT_K_COLOR, "top_p": CUT_P_COLOR, "greedy": CUT_K_COLOR}

    def bars(indices, y, name, color, pattern="", lower=False, showlegend=True, group=None):
        return {"type": "bar", "x": [labels[i] for i in indices],
                "y": np.asarray([y[i] for i in indices], dtype=np.float32), "name": name,
                "marker": {"color": color, "pattern": {"shape": pattern, "fgcolor": "#666"}},
                "hovertext": [hover[i] for i in indices], "hoverinfo": "text", "showlegend": showlegend,
                "legendgroup": group or name, "xaxis": "x2" if lower else "x", "yaxis": "y3" if lower else "y"}

    data, annotations, shapes = [], [], []
    for status in ("kept", "top_p", "top_k", "greedy"):
        idx = [i for i, s in enumerate(statuses) if s == status and not highlight[i]]
        if idx:
            data.append(bars(idx, before, _(STATUS_NAMES[status]), colors[status], "/" if status == "top_p" else ""))
    marked = [i for i, h in enumerate(highlight) if h]
    if marked:
        data.append(bars(marked, before, drawn_label, common.HIGHLIGHT))
        i = marked[0]
        annotations.append({"x": labels[i], "y": before[i], "xref": "x", "yref": "y", "text": drawn_label,
                            "showarrow": True, "arrowhead": 2, "ay": -30, "font": {"color": common.HIGHLIGHT}})
    if not greedy:
        cumulative = np.cumsum(np.asarray([r["p_topk"] for r in rows], dtype=np.float64)).astype(np.float32)
        data.append({"type": "scatter", "x": labels, "y": cumulative, "name": _("cumulative mass (top-p looks at "
                                                                                "this)"),
                     "mode": "lines+markers", "line": {"color": CUMULATIVE_COLOR, "width": 2}, "marker": {"size": 5},
                     "hovertemplate": _("cumulative %{y:.3f}<extra></extra>"), "xaxis": "x", "yaxis": "y2"})
        if top_p < 1:
            # Shape and label both on the cumulative axis (on the probability axis they would stretch its range).
            shapes.append({"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y2", "y0": top_p,
                           "y1": top_p, "line": {"color": CUMULATIVE_COLOR, "dash": "dash"}})
            annotations.append({"text": _("top-p = {top_p}").format(top_p=number(top_p, 2)), "x": 1,
                                "xref": "x domain", "xanchor": "right",
                                "y": top_p, "yref": "y2", "yanchor": "bottom", "showarrow": False,
                                "font": {"color": CUMULATIVE_COLOR}})
    plain = [i for i in range(len(rows)) if not highlight[i]]
    if plain:
        data.append(bars(plain, final, _("renormalised"), KEPT_COLOR, lower=True, showlegend=False,
                         group=_(STATUS_NAMES["kept"])))
    if marked:
        data.append(bars(marked, final, drawn_label, common.HIGHLIGHT, lower=True, showlegend=False))

    upper, lower = [0.5, 1.0], [0.0, 0.38]
    for text, y in ((_("Probabilities after the temperature, before filtering"), upper[1]),
                    (_("Renormalised: what the token is drawn from"), lower[1])):
        annotations.append({"text": text, "x": 0.5, "xref": "paper", "y": y, "yref": "paper", "xanchor": "center",
                            "yanchor": "bottom", "showarrow": False, "font": {"size": 14}})
    axis = {"type": "category", "categoryorder": "array", "categoryarray": labels, "tickangle": -45,
            "automargin": True}
    layout = {
        "xaxis": {**axis, "anchor": "y", "matches": "x2", "showticklabels": False},
        "xaxis2": {**axis, "anchor": "y3"},
        "yaxis": {"domain": upper, "anchor": "x", "title": {"text": _("probability")}, "rangemode": "tozero",
                  "tickformat": ".3~g"},
        "yaxis2": {"overlaying": "y", "side": "right", "anchor": "x", "range": [0, 1.05], "showgrid": False,
                   "tickmode": "array", "tickvals": [0, 0.25, 0.5, 0.75, 1], "title": {"text": _("cumulative")}},
        "yaxis3": {"domain": lower, "anchor": "x2", "title": {"text": "p"}, "rangemode": "tozero",
                   "tickformat": ".3~g"},
        "barmode": "overlay", "bargap": 0.15, "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "hoverlabel": {"align": "left"}, "annotations": annotations, "shapes": shapes,
        "title": {"text": title}, "font": {"family": common.FONT}, "height": 620, "separators": separators(),
        "margin": {"l": 60, "r": 60, "t": 110, "b": 50}, "paper_bgcolor": "white", "plot_bgcolor": "white",
    }
    return go.Figure({"data": data, "layout": layout})


def logits_table(rows: list[dict], temperature: float, greedy: bool) -> html.Table:
    """Raw logits -> scaled logits -> probabilities for the top N, as real numbers (a plain HTML table)."""
    scaled_head = "z (greedy)" if greedy else f"z / T (T = {temperature:g})"
    cell = {"padding": "2px 10px", "textAlign": "end", "borderBottom": "1px solid #eee"}
    token_cell = {**cell, "textAlign": "start", "whiteSpace": "pre", "direction": "ltr"}
    head = html.Tr([html.Th(h, style=cell) for h in ("#", "token", "id", "logit z", scaled_head,
                                                     _("p before filtering"), _("after top-k"), _("after top-p"),
                                                     "p renormalised")])
    body = []
    for i, r in enumerate(rows):
        status = row_status(r, greedy)
        values = [i + 1, r["text"], r["id"], f"{r['logit']:.3f}", f"{r['scaled']:.3f}", f"{r['prob_before']:.4g}",
                  "kept" if r["kept_top_k"] else "removed",
                  "kept" if r["kept_top_p"] else ("—" if status == "top_k" else "removed"), f"{r['prob']:.4g}"]
        body.append(html.Tr([html.Td(v, style=token_cell if j == 1 else cell) for j, v in enumerate(values)],
                            className=f"row-{status}",
                            style={"color": "#999"} if status != "kept" else None))
    return html.Table([html.Thead(head), html.Tbody(body)], className="numbers-table",
                      style={"fontSize": "13px", "borderCollapse": "collapse"})


def summary(record, drawn: dict, vocab_size: int, generated: dict | None = None) -> html.Div:
    """Entropy, kept-set size and mass, and which token was drawn (plain text for the page)."""
    probs_before = record.probs_before.numpy()
    h_before = entropy_bits(probs_before)
    h_after = max(0.0, record.entropy_bits)  # greedy: -0.0 would print as "-0.00 bits"
    kept = int(record.kept_top_p.sum())
    mass_before = float(record.probs_before[record.kept_top_p].sum())
    items = [
        html.Li([html.B(_("Entropy:") + " "), _(
            "{h_before} bits after the temperature (like choosing evenly among {choices} tokens), {h_after} bits "
            "after filtering; a uniform choice among {vocab} tokens would be {h_uniform} bits.").format(
                h_before=number(h_before, 2), choices=number(2 ** h_before, 0 if h_before > 4 else 1),
                h_after=number(h_after, 2), vocab=number(vocab_size), h_uniform=number(math.log2(vocab_size), 1))]),
        html.Li([html.B(_("Kept set:") + " "), (
            ngettext("{n} token holding {mass} of the probability before filtering.",
                     "{n} tokens holding {mass} of the probability before filtering.", kept)
            if record.params.greedy else
            ngettext("{n} token holding {mass} of the probability before filtering ({top_p_mass} of what top-p "
                     "looked at, after top-k).",
                     "{n} tokens holding {mass} of the probability before filtering ({top_p_mass} of what top-p "
                     "looked at, after top-k).", kept)).format(
            n=number(kept), mass=percent(mass_before, 1), top_p_mass=percent(record.top_p_cumulative_mass, 1))]),
    ]
    drawn_line = (_("“{drawn}” (id {drawn2}), probability {drawn3}, rank {value} by logit").format(
        drawn=drawn['text'], drawn2=drawn['id'], drawn3=number(drawn['prob'], 4), value=drawn['rank'] + 1))
    if record.params.greedy:
        items.append(html.Li([html.B(_("Greedy (temperature 0): ")), _("the most likely token is always taken: "),
                              drawn_line + "."]))
    elif generated is None:
        seed = record.params.seed
        how = (_("with seed {seed}").format(seed=seed) if seed is not None else
               _("with no seed (a new random draw each time)"))
        items.append(html.Li([html.B(_("Drawn") + " "), _("{how}: {token}.").format(how=how, token=drawn_line)]))
    if generated is not None:
        gid = generated["id"]
        now = (_("probability {value} with the current settings, rank {value2} by logit").format(
            value=number(float(record.probs[gid]), 4), value2=int((record.logits > record.logits[gid]).sum()) + 1))
        items.append(html.Li([html.B(_("The generation drew at step {generated}: ").format(
            generated=generated['step'])),
                              _("“{generated}” (id {gid}) with {generated2}; {now}. A fresh draw with the current "
                                "settings gives “{drawn}”.").format(
                                  generated=generated["text"], gid=gid, generated2=generated["settings"], now=now,
                                  drawn=drawn["text"])]))
    return html.Div(html.Ul(items), className="output-summary")


# ----------------------------------------------------------------------------------------------------------
# The callback (thin glue).

def generated_token(sequence: dict, token_ids: list[int]) -> dict | None:
    """When the sequence is step n of a generation, the token the generation drew there.

    The Generation view's chips copy it from the `ids.GENERATION` store into `sequence["drawn"]` (a few
    bytes), so a slider move does not upload the whole generation record; `length` and `last` tie it to
    exactly this sequence."""
    drawn = sequence.get("drawn")
    label = sequence.get("label")
    if not (isinstance(label, str) and label.startswith("step") and isinstance(drawn, dict)):
        return None
    numbers = [drawn.get(key) for key in ("step", "id", "length", "last")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        return None
    step, token, length, last = numbers
    if length != len(token_ids) or last != token_ids[-1]:
        return None
    text, settings = drawn.get("text"), drawn.get("settings")
    return {"step": step, "id": token, "text": text if isinstance(text, str) else str(token),
            "settings": settings if isinstance(settings, str) else _("its own settings")}


def empty(message: str, shown_message: str = ""):
    return common.message_figure(message), [], [], shown_message


def update_output(sequence, view, temperature, top_k, top_p, seed, top_n):
    """(figure, summary, table, message) for the candidates of the next token after the sequence."""
    if view != TAB:
        raise PreventUpdate
    try:
        token_ids = checked_sequence(sequence)
    except ValueError as why:
        return empty(str(why))
    try:
        params = checked_params(temperature, top_k, top_p, seed)
        n = checked_int(top_n, _("The number of candidates shown (top N)"), *TOP_N_RANGE)
    except ValueError as why:
        message = _("Check the sampling controls: {why}.").format(why=why)
        return empty(message, message)
    try:
        runtime = state.model.get()
        logits = state.next_logits(token_ids)
    except (ValueError, RuntimeError) as why:
        return empty(str(why), str(why))

    record = draw(sampling_record(logits, params), make_generator(params.seed))
    tokenizer = runtime.tokenizer
    rows = candidate_rows(record, tokenizer, n)
    drawn = {"id": record.token, "text": tokenizer.token(record.token).text,
             "prob": float(record.probs[record.token]), "rank": record.rank}
    generated = generated_token(sequence, token_ids)
    if generated is not None and not 0 <= generated["id"] < runtime.config.vocab_size:
        generated = None  # a hand-edited store
    if generated is not None:
        highlight, label = generated["id"], _("generation drew (step {generated})").format(
            generated=generated['step'])
    else:
        highlight, label = record.token, _("greedy choice") if params.greedy else _("drawn token")
    last = tokenizer.token(token_ids[-1]).text
    shown = sum(r["id"] == highlight for r in rows)
    title = _("After “{last}”: the top {n} of {vocab_size} candidates").format(
        last=last, n=n, vocab_size=number(runtime.config.vocab_size))
    if not shown:
        title += _(" (the {label} is not among them)").format(label=label)
    figure = words.attach(candidates_figure(rows, highlight, params.top_p, params.greedy, drawn_label=label, title=title),
                          words.candidates_text(rows, highlight, label, last))
    return (figure, summary(record, drawn, runtime.config.vocab_size, generated),
            logits_table(rows, params.temperature, params.greedy), "")


def section():
    return html.Div([
        common.explanation(_(EXPLANATION), EQUATION),
        html.Div(id=MESSAGE, className="view-message", role="status"),
        html.Div(id=SUMMARY),
        accessible_graph(FIGURE, _("Next-token candidates")),
        html.Details([html.Summary(_("The numbers: logits → scaled logits → probabilities")), html.Div(id=TABLE)],
                     open=False),
    ], className="view view-output")


def register(app) -> None:
    register_figures(app, FIGURE)
    app.callback(
        Output(FIGURE, "figure"), Output(SUMMARY, "children"), Output(TABLE, "children"),
        Output(MESSAGE, "children"),
        Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.TEMPERATURE, "value"),
        Input(ids.TOP_K, "value"), Input(ids.TOP_P, "value"), Input(ids.SEED, "value"), Input(ids.TOP_N, "value"),
    )(update_output)
