"""Speculative decoding, round by round: the draft's proposals, the ones the target kept, the first it rejected
and the token it drew in its place (or its bonus token when it kept them all); the acceptance rate and the
measured speed-up over plain decoding of the same text, with why it is what it is on this machine.

The draft (default `distilgpt2`) loads once per process, in the background, through the same loader as the main
model (hub cache, else an untrained stand-in, which the page says)."""
from __future__ import annotations

import os
import time

import plotly.graph_objects as go
from dash import Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from model_runtime.speculative import MAX_K

from .. import common, generation, ids, state
from .. import figure_text as words
from ..figure_access import accessible_graph
from ..figure_access import register as register_figures
from ..i18n import _, number, percent
from ..output import checked_int, checked_params
from . import solo

K, N_TOKENS, RUN = "spec-k", "spec-n", "spec-run"
MESSAGE, SUMMARY, FIGURE, WHY = "spec-message", "spec-summary", "spec-rounds", "spec-why"
DRAFT_SOURCE = os.environ.get("INSIDE_GPT2_DRAFT", "distilgpt2")
DRAFT_WAIT_S = 20.0   # a press waits this long for the draft to load, then says to press again

COLORS = {"accepted": "#2a9d8f", "rejected": "#e4572e", "unchecked": "#d9d9d9", "resampled": "#7b2cbf",
          "bonus": "#3b75af"}

draft = state.ModelHolder()
draft.configure(source=DRAFT_SOURCE)


def status_names() -> dict:
    return {"accepted": _("draft token kept"), "rejected": _("first rejected draft token"),
            "unchecked": _("not checked (after a rejection)"), "resampled": _("target's token in its place"),
            "bonus": _("target's bonus token (all kept)")}


def explanation() -> str:
    """The view's explanation (Markdown), in the reader's language."""
    return _("""
**Speculative decoding.** Decoding one token reads every weight of the model from memory, and the arithmetic
units wait most of that time. So a small **draft** model guesses the next *k* tokens, one by one (cheap), and the
big **target** model checks all *k* in **one** forward pass (k + 1 positions for about the price of one, where
spare arithmetic exists). The target keeps a draft token with probability min(1, p/q) (p: the target's probability
of it, q: the draft's); at the first rejection it draws its own token from what is left of its distribution,
max(0, p − q) renormalised, and the round ends; if it keeps all *k* it adds one more token of its own (the bonus).
This rule leaves the output distributed **exactly as the target's own sampling** (with temperature 0: exactly
the target's greedy text); only the speed changes. Each row below is one round.
""")
EQUATION = (r"P(\text{keep } d_i) = \min\!\left(1, \frac{p(d_i)}{q(d_i)}\right), \qquad "
            r"x \sim \frac{\max(0,\ p - q)}{\sum \max(0,\ p - q)}")


# ----------------------------------------------------------------------------------------------------------
# Pure builders: from Round.to_dict() records (with the tokens' texts) to what the page shows.

def round_cells(rounds: list[dict], texts: dict[int, str]) -> list[dict]:
    """One cell per token of each round: {round, slot (1..k: the draft's, k + 1: the target's), status, text,
    q, p, keep (min(1, p/q)); the target's cell has no q, p}."""
    cells = []
    for r in rounds:
        for i, token in enumerate(r["proposed"]):
            status = ("accepted" if i < r["accepted"] else "rejected" if i == r["accepted"] else "unchecked")
            cells.append({"round": r["index"], "slot": i + 1, "status": status, "text": texts[token],
                          "q": r["draft_probs"][i], "p": r["target_probs"][i], "keep": r["accept_probs"][i]})
        cells.append({"round": r["index"], "slot": len(r["proposed"]) + 1, "text": texts[r["drawn"]],
                      "status": "bonus" if r["bonus"] else "resampled", "q": None, "p": None, "keep": None})
    return cells


def rounds_figure(cells: list[dict], k: int) -> go.Figure:
    """Rows: rounds (the first on top); columns: the draft's k proposals, then the target's own token."""
    if not cells:
        return common.message_figure(_("No round to show."))
    names, fig = status_names(), go.Figure()
    n_rounds = max(c["round"] for c in cells) + 1
    for status in ("accepted", "rejected", "unchecked", "resampled", "bonus"):
        mine = [c for c in cells if c["status"] == status]
        if not mine:
            continue
        draft_cell = status in ("accepted", "rejected", "unchecked")
        fig.add_trace(go.Scatter(
            x=[c["slot"] for c in mine], y=[c["round"] + 1 for c in mine], mode="markers+text", name=names[status],
            text=[c["text"] for c in mine], textposition="middle center", textfont=dict(size=11),
            marker=dict(symbol="square", size=34, color=COLORS[status], opacity=0.55),
            # The CSV's columns (figure_csv): the cells of this status.
            customdata=[[c["round"] + 1, c["slot"], c["text"]] + ([c["q"], c["p"], c["keep"]] if draft_cell else [])
                        for c in mine],
            meta={"csv_columns": [_("round"), _("slot (k + 1: the target's)"), _("token")]
                  + ([_("q (draft)"), _("p (target)"), _("keep probability")] if draft_cell else [])},
            hovertemplate=(_("round %{y}, draft token %{x}: %{text}<br>q (draft) = %{customdata[3]:.3f}, "
                             "p (target) = %{customdata[4]:.3f}<br>kept with probability %{customdata[5]:.3f}")
                           if draft_cell else _("round %{y}: the target's %{text}")) + "<extra></extra>"))
    ticks = list(range(1, k + 2))
    fig.update_xaxes(tickvals=ticks, ticktext=[str(i) for i in ticks[:-1]] + [_("target")], range=[0.4, k + 1.6],
                     title_text=_("draft proposals 1 … k, then the target's own token"), showgrid=False)
    fig.update_yaxes(autorange="reversed", title_text=_("round"), dtick=1, showgrid=False)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return words.attach(common.style(fig, height=max(260, 120 + 40 * n_rounds)), words.rounds_text(cells, k))


def speed_summary(timings: dict, plain_seconds: float, plain_tokens: int) -> dict:
    """The run's measured figures: tokens/s of both, speed-up, acceptance, where the speculative time went."""
    spec_tps = timings["new_tokens"] / timings["seconds"] if timings["seconds"] else None
    plain_tps = plain_tokens / plain_seconds if plain_seconds else None
    rounds = max(timings["rounds"], 1)
    return {"speculative_tokens_per_s": spec_tps, "plain_tokens_per_s": plain_tps,
            "speedup": spec_tps / plain_tps if spec_tps and plain_tps else None,
            "acceptance_rate": timings["acceptance_rate"], "tokens_per_round": timings["tokens_per_round"],
            "draft_ms_per_round": 1000 * timings["draft_seconds"] / rounds,
            "target_ms_per_round": 1000 * timings["target_seconds"] / rounds,
            "plain_ms_per_token": 1000 * plain_seconds / plain_tokens if plain_tokens else None}


def _f(value, decimals: int = 2, unit: str = "") -> str:
    return "—" if value is None else number(value, decimals) + unit


def summary_cards(s: dict) -> html.Div:
    rate = s["acceptance_rate"]
    return common.stats([(_("acceptance rate"), "—" if rate is None else percent(rate)),
                         (_("tokens per round"), _f(s["tokens_per_round"])),
                         (_("speculative tokens/s"), _f(s["speculative_tokens_per_s"], 1)),
                         (_("plain decoding tokens/s"), _f(s["plain_tokens_per_s"], 1)),
                         (_("measured speed-up"), _f(s["speedup"], 2, "×"))])


def why_text(s: dict, k: int, draft_pretrained: bool) -> str:
    """Why the speed-up is what it is, from this run's own timings."""
    plain = s["plain_ms_per_token"] or float("nan")
    parts = [_("Each round, the draft's {k} steps took {draft} ms ({draft_x}× a plain step of {plain} "
               "ms), the target's check of k + 1 positions {target} ms ({target_x}× a plain step), and the "
               "round added {tokens} tokens.").format(
        k=k, draft=number(s["draft_ms_per_round"], 0), draft_x=number(s["draft_ms_per_round"] / plain, 1),
        plain=number(plain, 0), target=number(s["target_ms_per_round"], 0),
        target_x=number(s["target_ms_per_round"] / plain, 1), tokens=number(s["tokens_per_round"] or 0, 2))]
    parts.append(_("It pays only when a round costs less than the plain steps it replaces. A draft such as "
                   "distilgpt2 (6 blocks instead of 12) still reads GPT-2's 38.6M-parameter embedding matrix at "
                   "every step (it is the output layer too), so a draft step costs well over half a target step; "
                   "and a CPU has little spare arithmetic, so checking k + 1 positions costs more than one step. "
                   "Speculative decoding needs a much cheaper draft, or spare parallel compute, as a GPU has, "
                   "where checking k + 1 positions costs about as much as one step."))
    if not draft_pretrained:
        parts.append(_("The draft has untrained weights here (its checkpoint is not in the cache), so it rarely "
                       "proposes what the target would write, and few proposals are kept."))
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------------------
# The callback and the layout.

def get_draft():
    """The draft model, loading it in the background on first use; RuntimeError with a message meanwhile."""
    draft.configure(device=state.model.settings["device"])
    try:
        return draft.get(timeout=DRAFT_WAIT_S)
    except RuntimeError as why:
        if not draft.ready:
            raise RuntimeError(_("the draft model ({name}) is still loading; press Run again in a moment.")
                               .format(name=DRAFT_SOURCE)) from None
        raise RuntimeError(_("the draft model could not be loaded: {why}").format(why=why)) from None


def speculate(n_clicks, sequence, prompt, k, n_tokens, temperature, top_k, top_p, seed):
    """Run -> (message, summary cards, rounds figure, why line)."""
    if not n_clicks:
        raise PreventUpdate
    try:
        k = checked_int(k, _("k (draft tokens per round)"), 1, MAX_K)
        n = checked_int(n_tokens, _("The number of new tokens"), 1, solo.MAX_NEW_TOKENS)
        params = checked_params(temperature, top_k, top_p, seed)
        prompt_ids = solo.prompt_ids(sequence, prompt)
        target, draft_model = state.model.get(), get_draft()
        settings = dict(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p, seed=params.seed)
        with solo.solo_slot():
            spec = target.speculative_generate(draft_model, prompt_ids, k=k, max_new_tokens=n,
                                               max_seconds=solo.MAX_SECONDS / 2, **settings).run()
            started = time.perf_counter()  # plain decoding of as many tokens, same settings
            plain = target.generate(prompt_ids, max_new_tokens=len(spec.new_ids), max_seconds=solo.MAX_SECONDS / 2,
                                    **settings).run()
            plain_seconds = time.perf_counter() - started
    except (ValueError, RuntimeError) as why:
        return _("Cannot run speculative decoding: {why}").format(why=why), no_update, no_update, no_update
    texts = {t: target.tokenizer.token(t).text for r in spec.rounds for t in r.proposed + [r.drawn]}
    summary = speed_summary(spec.timings, plain_seconds, len(plain.new_ids))
    note = "" if draft_model.pretrained else _(
        "The draft ({name}) is an untrained stand-in: its weights are not in the hub cache on this server "
        "(`python -m model_runtime.download {name}` fetches them).").format(name=DRAFT_SOURCE)
    why = _("The draft ({name}, {mb} MB of weights) was loaded once on this server and is kept. ").format(
        name=DRAFT_SOURCE, mb=number(draft_model.weight_bytes() / 1e6, 0))
    why += why_text(summary, k, draft_model.pretrained)
    return (note, summary_cards(summary),
            rounds_figure(round_cells([r.to_dict() for r in spec.rounds], texts), k), why)


def section() -> html.Div:
    return html.Div([
        common.explanation(explanation(), EQUATION),
        html.Div([
            generation.number_box(_("Draft tokens per round (k)"), K, 4, 1, MAX_K, 1,
                                  _("How many tokens the draft proposes before the target checks them (1 to 8)")),
            generation.number_box(_("New tokens"), N_TOKENS, 24, 1, solo.MAX_NEW_TOKENS, 1,
                                  _("How many tokens to write, speculatively and then plainly, to compare")),
            html.Button(_("Run"), id=RUN, n_clicks=0, className="run-button"),
            html.Span(_("Draft: {draft}; target: the model above. Uses the temperature, top-k, top-p and seed "
                        "above.").format(draft=DRAFT_SOURCE), className="hint"),
        ], className="gen-controls"),
        html.Div(id=MESSAGE, className="view-message", role="alert"),
        html.Div(id=SUMMARY),
        accessible_graph(FIGURE, _("Speculative decoding, round by round")),
        html.P(id=WHY, className="hint"),
    ])


def register(app) -> None:
    app.callback(Output(MESSAGE, "children"), Output(SUMMARY, "children"), Output(FIGURE, "figure"),
                 Output(WHY, "children"),
                 Input(RUN, "n_clicks"), State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"),
                 State(K, "value"), State(N_TOKENS, "value"), State(ids.TEMPERATURE, "value"),
                 State(ids.TOP_K, "value"), State(ids.TOP_P, "value"), State(ids.SEED, "value"),
                 prevent_initial_call=True)(speculate)
    register_figures(app, FIGURE)
