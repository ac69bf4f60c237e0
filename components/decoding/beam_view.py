"""Beam search as a tree: at each step the 2n continuations the search looked at, each beam's cumulative
log-probability, the beams kept, the ones pruned (grey), the finished hypotheses with their length-normalised
scores, and greedy search (one beam) on the same axes. The search is `model.beam_search` (equal to
transformers' beam search), run solo beside the engine's batch."""
from __future__ import annotations

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from model_runtime.beam import MAX_BEAMS

from .. import common, generation, ids, state
from ..i18n import _
from ..output import checked_int
from . import solo

WIDTH, LENGTH_PENALTY, NO_REPEAT, N_TOKENS, EOS = "beam-width", "beam-length-penalty", "beam-no-repeat", "beam-n", "beam-eos"
RUN, MESSAGE, SUMMARY, FIGURE, TABLE = "beam-run", "beam-message", "beam-summary", "beam-tree", "beam-table"
MAX_NGRAM = 10
MAX_LENGTH_PENALTY = 5.0

STATUS_COLORS = {"kept": "#3b75af", "finished": "#2a9d8f", "pruned": "#c8c8c8"}
GREEDY_COLOR = "#e4572e"
LABELS_UP_TO = 30  # steps: beyond this, token labels would crowd the tree (hover still shows them)


def status_names() -> dict:
    return {"kept": _("kept (a beam of the next step)"), "finished": _("finished hypothesis"),
            "pruned": _("pruned")}


EXPLANATION = """
**Beam search** keeps the *n* best partial texts (the *beams*) instead of one. At each step every beam is
extended by its most likely next tokens; of all these candidates the search keeps the *2n* with the highest
**cumulative log-probability** (the sum of the log-probabilities of the tokens so far), and of those the best *n*
that did not end become the next beams: the rest are **pruned** (grey). A candidate that ends the text (end-of-text,
or the last token allowed) becomes a **finished hypothesis**, ranked by its score divided by its length to the
power of the **length penalty** (above 0 favours longer texts, 0 ranks by the sum alone). The search stops when
no running beam can beat the finished ones. Like a chess player thinking several moves ahead, it can take a
less likely token now for a more likely text later; **greedy search** (one beam, the orange line) takes the
most likely token every time. *No-repeat n-gram size* forbids any n tokens in a row from appearing twice.
"""
EQUATION = r"\text{score}(y) = \frac{1}{|y|^{\alpha}} \sum_{t=1}^{|y|} \log p(y_t \mid x, y_{<t})"


# ----------------------------------------------------------------------------------------------------------
# Pure builders: from BeamResult.to_dict() records to what the page shows.

def path_scores(result: dict) -> list[float]:
    """The cumulative log-prob of the best hypothesis after each of its tokens (greedy search: its one path)."""
    best = result["hypotheses"][0]["token_ids"] if result["hypotheses"] else []
    out = []
    for step, token in zip(result["steps"], best):
        prefix = best[:step["index"]]
        out += [c["score"] for c in step["candidates"] if c["token_id"] == token
                and step["beams"][c["parent"]]["token_ids"] == prefix][:1]
    return out


def tree_figure(result: dict, greedy: dict | None = None) -> go.Figure:
    """x: new token number (0 = the prompt), y: cumulative log-prob. Every candidate a step looked at, coloured
    by what became of it, joined to the beam it extends; greedy search's path as a line."""
    steps = result["steps"]
    if not steps:
        return common.message_figure(_("The search took no step."))
    names = status_names()
    # Where each step's beams sit: the prompt at (0, 0), then the kept candidates of the step before.
    beam_xy = [[(0, 0.0)]]
    for step in steps:
        row = [None] * sum(1 for c in step["candidates"] if c["status"] == "kept")
        for c in step["candidates"]:
            if c["status"] == "kept":
                row[c["next_beam"]] = (step["index"] + 1, c["score"])
        beam_xy.append(row)
    fig = go.Figure()
    for status in ("pruned", "kept", "finished"):
        ex, ey, x, y, text, hover, custom = [], [], [], [], [], [], []
        for step in steps:
            for c in step["candidates"]:
                if c["status"] != status:
                    continue
                px, py = beam_xy[step["index"]][c["parent"]]
                ex += [px, step["index"] + 1, None]
                ey += [py, c["score"], None]
                x.append(step["index"] + 1)
                y.append(c["score"])
                text.append(c["text"] if status != "pruned" and len(steps) <= LABELS_UP_TO else "")
                hover.append(c["text"])
                custom.append([c["logprob"], c["parent"] + 1,
                               c["score"] / (step["index"] + 1) ** result["settings"]["length_penalty"]])
        if not x:
            continue
        color = STATUS_COLORS[status]
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=color, width=1 if status == "pruned" else 2),
                                 hoverinfo="skip", showlegend=False, legendgroup=status))
        extra = (_("<br>length-normalised score %{customdata[2]:.3f}") if status == "finished" else "")
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text" if any(text) else "markers", name=names[status], legendgroup=status,
            text=text, textposition="top center", hovertext=hover, customdata=custom,
            marker=dict(color=color, size=11 if status == "finished" else 8,
                        symbol="diamond" if status == "finished" else "circle", line=dict(color="white", width=1)),
            hovertemplate=_("token %{x}: %{hovertext}<br>log p = %{customdata[0]:.3f} after beam "
                            "%{customdata[1]}<br>cumulative %{y:.3f}") + extra + "<extra></extra>"))
    if greedy is not None and greedy["steps"]:
        scores = path_scores(greedy)
        tokens = greedy["hypotheses"][0]["token_ids"] if greedy["hypotheses"] else []
        texts = [next(c["text"] for c in s["candidates"] if c["token_id"] == t)
                 for s, t in zip(greedy["steps"], tokens)]
        fig.add_trace(go.Scatter(x=list(range(len(scores) + 1)), y=[0.0] + scores, mode="lines+markers",
                                 name=_("greedy search (1 beam)"), hovertext=[""] + texts,
                                 line=dict(color=GREEDY_COLOR, dash="dash", width=2), marker=dict(size=6),
                                 hovertemplate=_("greedy, token %{x}: %{hovertext}<br>cumulative %{y:.3f}")
                                 + "<extra></extra>"))
    fig.update_xaxes(title_text=_("new token (0 = the prompt)"), dtick=1 if len(steps) <= LABELS_UP_TO else None,
                     zeroline=False)
    fig.update_yaxes(title_text=_("cumulative log-probability"))
    fig.update_layout(legend=dict(orientation="h", y=-0.22), hovermode="closest")
    return common.style(fig, height=480)


def hypothesis_rows(result: dict, greedy: dict | None = None) -> list[dict]:
    """The finished hypotheses best first, then greedy search's text, each with its numbers."""
    rows = [{"search": _("beam {rank}").format(rank=i + 1), **h} for i, h in enumerate(result["hypotheses"])]
    if greedy is not None and greedy["hypotheses"]:
        rows.append({"search": _("greedy"), **greedy["hypotheses"][0]})
    return rows


def hypotheses_table(rows: list[dict]) -> html.Table:
    ended = {"eos": _("end-of-text"), "length": _("length limit"), "time_limit": _("time limit (unfinished)")}
    head = html.Tr([html.Th(t) for t in (_("search"), _("text"), _("tokens"), _("sum of log p"),
                                         _("score (length-normalised)"), _("ended by"))])
    body = [html.Tr([html.Td(r["search"]), html.Td(r["text"], className="beam-text"), html.Td(len(r["token_ids"])),
                     html.Td(f"{r['logprob']:.3f}"), html.Td(f"{r['score']:.3f}"),
                     html.Td(ended.get(r["ended_by"], r["ended_by"]))]) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="numbers-table")


def summary_line(result: dict, greedy: dict | None) -> str:
    best = result["hypotheses"][0] if result["hypotheses"] else None
    if best is None:
        return ""
    line = _("{n} beams, {steps} steps in {seconds:.2f} s: the best text has log-probability {logprob:.3f}").format(
        n=result["settings"]["num_beams"], steps=len(result["steps"]), seconds=result["seconds"],
        logprob=best["logprob"])
    if greedy is not None and greedy["hypotheses"]:
        line += _(", greedy search's {logprob:.3f}.").format(logprob=greedy["hypotheses"][0]["logprob"])
    return line


# ----------------------------------------------------------------------------------------------------------
# Values from the page, the callback, the layout.

def checked_settings(width, length_penalty, no_repeat, n_tokens, eos) -> dict:
    return {"num_beams": checked_int(width, _("The beam width"), 1, MAX_BEAMS),
            "length_penalty": generation.checked_number(length_penalty, _("The length penalty"), 1.0,
                                                        -MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY),
            "no_repeat_ngram_size": checked_int(no_repeat, _("The no-repeat n-gram size"), 0, MAX_NGRAM),
            "max_new_tokens": checked_int(n_tokens, _("The number of new tokens"), 1, solo.MAX_NEW_TOKENS),
            "stop_at_eos": generation.checked_use_cache(eos)}


def search(n_clicks, sequence, prompt, width, length_penalty, no_repeat, n_tokens, eos):
    """Search -> (message, summary, tree figure, hypotheses table)."""
    if not n_clicks:
        raise PreventUpdate
    try:
        settings = checked_settings(width, length_penalty, no_repeat, n_tokens, eos)
        prompt_ids = solo.prompt_ids(sequence, prompt)
        runtime = state.model.get()
        with solo.solo_slot():
            result = runtime.beam_search(prompt_ids, max_seconds=solo.MAX_SECONDS, **settings).to_dict()
            greedy = runtime.beam_search(prompt_ids, max_seconds=solo.MAX_SECONDS,
                                         **{**settings, "num_beams": 1}).to_dict()
    except (ValueError, RuntimeError) as why:
        return _("Cannot search: {why}").format(why=why), no_update, no_update, no_update
    return ("", summary_line(result, greedy), tree_figure(result, greedy),
            hypotheses_table(hypothesis_rows(result, greedy)))


def _number(label, id_, value, low, high, step, title):
    return html.Label([label + " ", dcc.Input(id=id_, type="number", min=low, max=high, step=step, value=value,
                                              debounce=True, style={"width": "4.5em"})],
                      className="gen-setting", title=title)


def section() -> html.Div:
    return html.Div([
        common.explanation(_(EXPLANATION), EQUATION),
        html.Div([
            _number(_("Beam width"), WIDTH, 4, 1, MAX_BEAMS, 1, _("How many partial texts the search keeps (1 to 8)")),
            _number(_("Length penalty"), LENGTH_PENALTY, 1.0, -MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY, 0.1,
                    _("Finished texts are ranked by their log-probability divided by length to this power")),
            _number(_("No-repeat n-gram size"), NO_REPEAT, 0, 0, MAX_NGRAM, 1,
                    _("Forbid any n tokens in a row from appearing twice; 0 is off")),
            _number(_("New tokens at most"), N_TOKENS, 12, 1, solo.MAX_NEW_TOKENS, 1,
                    _("The longest continuation the search may write")),
            dcc.Checklist(id=EOS, options=[{"label": " " + _("stop at end-of-text"), "value": "on"}], value=["on"],
                          inline=True),
            html.Button(_("Search"), id=RUN, n_clicks=0, className="run-button"),
        ], className="gen-controls"),
        html.Div(id=MESSAGE, className="view-message", role="alert"),
        html.Div(id=SUMMARY, className="gen-live", role="status"),
        common.graph(FIGURE),
        html.Div(id=TABLE),
    ])


def register(app) -> None:
    app.callback(Output(MESSAGE, "children"), Output(SUMMARY, "children"), Output(FIGURE, "figure"),
                 Output(TABLE, "children"),
                 Input(RUN, "n_clicks"), State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"),
                 State(WIDTH, "value"), State(LENGTH_PENALTY, "value"), State(NO_REPEAT, "value"),
                 State(N_TOKENS, "value"), State(EOS, "value"), prevent_initial_call=True)(search)
