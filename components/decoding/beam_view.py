"""Beam search as a tree: at each step the 2n continuations the search looked at, each beam's cumulative
log-probability, the beams kept, the ones pruned (grey), the finished hypotheses with their length-normalised
scores, and greedy search (one beam) on the same axes. The search is `model.beam_search` (equal to
transformers' beam search), run solo beside the engine's batch."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from model_runtime.beam import MAX_BEAMS

from .. import common, generation, ids, state
from .. import figure_text as words
from ..figure_access import accessible_graph
from ..figure_access import register as register_figures
from ..i18n import _, number
from ..output import checked_int
from . import solo

WIDTH, LENGTH_PENALTY, NO_REPEAT = "beam-width", "beam-length-penalty", "beam-no-repeat"
N_TOKENS, EOS = "beam-n", "beam-eos"
RUN, MESSAGE, SUMMARY, FIGURE, TABLE = "beam-run", "beam-message", "beam-summary", "beam-tree", "beam-table"
MAX_NGRAM = 10
MAX_LENGTH_PENALTY = 5.0

STATUS_COLORS = {"kept": "#3b75af", "finished": "#2a9d8f", "pruned": "#c8c8c8"}
GREEDY_COLOR = "#e4572e"
LABELS_UP_TO = 16  # steps: beyond this, token labels would crowd the tree (hover still shows them)


def status_names() -> dict:
    return {"kept": _("kept (a beam of the next step)"), "finished": _("finished hypothesis"),
            "pruned": _("pruned")}


def explanation() -> str:
    """The view's explanation (Markdown), in the reader's language."""
    return _("""
**Beam search** keeps the *n* best partial texts (the *beams*) instead of one. At each step every beam is
extended by its most likely next tokens; of all these candidates the search keeps the *2n* with the highest
**cumulative log-probability** (the sum of the log-probabilities of the tokens so far), and of those the best *n*
that did not end become the next beams: the rest are **pruned** (grey). A candidate that ends the text (end-of-text,
or the last token allowed) becomes a **finished hypothesis**, ranked by its score divided by its length to the
power of the **length penalty** (above 0 favours longer texts, 0 ranks by the sum alone). The search stops when
no running beam can beat the finished ones. Like a chess player thinking several moves ahead, it can take a
less likely token now for a more likely text later; **greedy search** (one beam, the orange line) takes the
most likely token every time. *No-repeat n-gram size* forbids any n tokens in a row from appearing twice.
""")
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
    """Upper panel, the tree: x is the new token's number (0 = the prompt), y the candidate's rank among the 2n a
    step looked at (best on top); each candidate is joined to the beam it extends and coloured by what became of
    it, labelled with its token and cumulative log-prob. Lower panel: the cumulative log-prob along the best
    hypothesis and along greedy search's text."""
    steps = result["steps"]
    if not steps:
        return common.message_figure(_("The search took no step."))
    names, lp = status_names(), result["settings"]["length_penalty"]
    rank = [{} for _step in steps]  # step -> next beam index -> rank of the candidate that became it
    for step in steps:
        for r, c in enumerate(step["candidates"]):
            if c["status"] == "kept":
                rank[step["index"]][c["next_beam"]] = r
    labels = len(steps) <= LABELS_UP_TO
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.1,
                        subplot_titles=(_("The search tree: every candidate, by rank at its step"),
                                        _("Cumulative log-probability: best hypothesis vs greedy search")))
    for status in ("pruned", "kept", "finished"):
        ex, ey, x, y, text, hover, custom = [], [], [], [], [], [], []
        for step in steps:
            t = step["index"]
            for r, c in enumerate(step["candidates"]):
                if c["status"] != status:
                    continue
                ex += [t, t + 1, None]
                ey += [rank[t - 1][c["parent"]] if t else 0, r, None]
                x.append(t + 1)
                y.append(r)
                text.append(f"{c['text']}<br>{c['score']:.1f}" if labels else "")
                hover.append(c["text"])
                # The CSV's columns (figure_csv): the candidates table of this status.
                custom.append([t + 1, r + 1, c["text"], c["logprob"], c["parent"] + 1, c["score"]]
                              + ([c["score"] / (t + 1) ** lp] if status == "finished" else []))
        if not x:
            continue
        color = STATUS_COLORS[status]
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=color, width=1 if status == "pruned" else 2),
                                 hoverinfo="skip", showlegend=False, legendgroup=status, meta={"csv": False}),
                      row=1, col=1)
        columns = [_("new token"), _("rank"), _("token"), _("log p"), _("extends beam"), _("cumulative log p")]
        columns += [_("score (length-normalised)")] if status == "finished" else []
        extra = (_("<br>length-normalised score %{customdata[6]:.3f}") if status == "finished" else "")
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text" if labels else "markers", name=names[status], legendgroup=status,
            text=text, textposition="middle right", textfont=dict(size=10, color="#888" if status == "pruned" else None),
            hovertext=hover, customdata=custom, meta={"csv_columns": columns},
            marker=dict(color=color, size=11 if status == "finished" else 8,
                        symbol="diamond" if status == "finished" else "circle", line=dict(color="white", width=1)),
            hovertemplate=_("token %{x}: %{hovertext}<br>log p = %{customdata[3]:.3f} after beam "
                            "%{customdata[4]}<br>cumulative %{customdata[5]:.3f}") + extra + "<extra></extra>"),
            row=1, col=1)
    paths = [(result, _("best hypothesis"), STATUS_COLORS["finished"], "solid")]
    if greedy is not None:
        paths.append((greedy, _("greedy search (1 beam)"), GREEDY_COLOR, "dash"))
    for record, name, color, dash in paths:
        scores = path_scores(record)
        if scores:
            fig.add_trace(go.Scatter(x=list(range(len(scores) + 1)), y=[0.0] + scores, mode="lines+markers",
                                     name=name, line=dict(color=color, dash=dash, width=2), marker=dict(size=5),
                                     hovertemplate=name + _(", token %{x}: cumulative %{y:.3f}") + "<extra></extra>"),
                          row=2, col=1)
    width = max(len(s["candidates"]) for s in steps)
    fig.update_yaxes(autorange=False, range=[width - 0.5, -0.7], tickvals=list(range(width)),
                     ticktext=[str(i + 1) for i in range(width)], title_text=_("rank"), showgrid=False, row=1, col=1)
    fig.update_yaxes(title_text=_("log p"), row=2, col=1)
    fig.update_xaxes(range=[-0.3, len(steps) + 1.4], dtick=1 if len(steps) <= LABELS_UP_TO else None,
                     zeroline=False)
    fig.update_xaxes(title_text=_("new token (0 = the prompt)"), row=2, col=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.12), hovermode="closest")
    return words.attach(common.clear_of_toolbar(common.style(fig, height=360 + 34 * width)),
                        words.beam_text(result, greedy))


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
                     html.Td(number(r["logprob"], 3)), html.Td(number(r["score"], 3)),
                     html.Td(ended.get(r["ended_by"], r["ended_by"]))]) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="numbers-table")


def summary_line(result: dict, greedy: dict | None) -> str:
    best = result["hypotheses"][0] if result["hypotheses"] else None
    if best is None:
        return ""
    line = _("{n} beams, {steps} steps in {seconds} s: the best text has log-probability {logprob}").format(
        n=result["settings"]["num_beams"], steps=len(result["steps"]), seconds=number(result["seconds"], 2),
        logprob=number(best["logprob"], 3))
    if greedy is not None and greedy["hypotheses"]:
        line += _(", greedy search's {logprob}.").format(logprob=number(greedy["hypotheses"][0]["logprob"], 3))
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
            # Half the time limit each: the two together are bounded like one generation.
            result = runtime.beam_search(prompt_ids, max_seconds=solo.MAX_SECONDS / 2, **settings).to_dict()
            greedy = runtime.beam_search(prompt_ids, max_seconds=solo.MAX_SECONDS / 2,
                                         **{**settings, "num_beams": 1}).to_dict()
    except (ValueError, RuntimeError) as why:
        return _("Cannot search: {why}").format(why=why), no_update, no_update, no_update
    return ("", summary_line(result, greedy), tree_figure(result, greedy),
            hypotheses_table(hypothesis_rows(result, greedy)))


def section() -> html.Div:
    box = generation.number_box
    return html.Div([
        common.explanation(explanation(), EQUATION),
        html.Div([
            box(_("Beam width"), WIDTH, 4, 1, MAX_BEAMS, 1, _("How many partial texts the search keeps (1 to 8)")),
            box(_("Length penalty"), LENGTH_PENALTY, 1.0, -MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY, 0.1,
                    _("Finished texts are ranked by their log-probability divided by length to this power")),
            box(_("No-repeat n-gram size"), NO_REPEAT, 0, 0, MAX_NGRAM, 1,
                    _("Forbid any n tokens in a row from appearing twice; 0 is off")),
            box(_("New tokens at most"), N_TOKENS, 12, 1, solo.MAX_NEW_TOKENS, 1,
                    _("The longest continuation the search may write")),
            dcc.Checklist(id=EOS, options=[{"label": " " + _("stop at end-of-text"), "value": "on"}], value=["on"],
                          inline=True),
            html.Button(_("Search"), id=RUN, n_clicks=0, className="run-button"),
        ], className="gen-controls"),
        html.Div(id=MESSAGE, className="view-message", role="alert"),
        html.Div(id=SUMMARY, className="gen-live", role="status"),
        accessible_graph(FIGURE, _("Beam search tree")),
        html.Div(id=TABLE),
    ])


def register(app) -> None:
    app.callback(Output(MESSAGE, "children"), Output(SUMMARY, "children"), Output(FIGURE, "figure"),
                 Output(TABLE, "children"),
                 Input(RUN, "n_clicks"), State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"),
                 State(WIDTH, "value"), State(LENGTH_PENALTY, "value"), State(NO_REPEAT, "value"),
                 State(N_TOKENS, "value"), State(EOS, "value"), prevent_initial_call=True)(search)
    register_figures(app, FIGURE)
