"""Embedding view: each token's row of the token-embedding table, its position's row, and their sum (the
vector block 1 reads), as heatmaps, and their lengths."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from . import figure_text as words
from . import ids, state
from .common import DIVERGING, axis_labels, explanation, message_figure, style, thin_ticks
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import N_, _, ngettext, number
from .tokens import sequence_ids

# Rows sent to the browser (float32, 768 columns: 3 KB a row): a 1,024-token heatmap would be 3 MB a part.
MAX_ROWS = 64       # one part
MAX_ROWS_ALL = 32   # all three parts stacked
PARTS = {"all": N_("All three: token + position = sum"), "sum": N_("Sum (what block 1 reads)"),
         "token": N_("Token embedding W_E[t]"), "position": N_("Position embedding W_P[i]")}
PART_TITLES = {"token": N_("Token embedding W_E[tᵢ]"), "position": N_("Position embedding W_P[i]"),
               "sum": N_("Sum xᵢ = W_E[tᵢ] + W_P[i]")}


def colour_limit(*matrices: np.ndarray) -> float:
    """Symmetric colour range shared by the panels: the 99.5th percentile of |value|, so a few outlier
    dimensions do not wash out the rest (hover still shows every exact value)."""
    values = np.abs(np.concatenate([np.asarray(m, dtype=np.float32).ravel() for m in matrices]))
    limit = float(np.percentile(values, 99.5)) if values.size else 1.0
    return limit if np.isfinite(limit) and limit > 0 else 1.0


def _heatmap(matrix: np.ndarray, labels: list[str], name: str, limit: float, showscale: bool) -> go.Heatmap:
    return go.Heatmap(
        z=np.asarray(matrix, dtype=np.float32), y=labels, name=name, colorscale=DIVERGING, zmid=0,
        zmin=-limit, zmax=limit, showscale=showscale,
        colorbar=dict(title=dict(text=_("value"), side="right"), thickness=12),
        hovertemplate=f"{name}<br>{_('token')} %{{y}}<br>{_('dimension')} %{{x}}<br>{_('value')} %{{z:.4f}}"
                      "<extra></extra>")


def _row_height(n_rows: int) -> int:
    return 22 if n_rows <= 16 else 14 if n_rows <= 40 else 9


def embedding_heatmap_figure(matrix: np.ndarray, labels: list[str], title: str) -> go.Figure:
    """Tokens × d_model heatmap of one part (rows in token order), diverging colours centred at 0."""
    matrix = np.asarray(matrix, dtype=np.float32)
    fig = go.Figure(_heatmap(matrix, labels, title, colour_limit(matrix), True))
    fig.update_yaxes(autorange="reversed", type="category", title=_("token"), **thin_ticks(labels))
    fig.update_xaxes(title=_("dimension (0 … {last})").format(last=matrix.shape[1] - 1))
    return style(fig, title, height=max(260, _row_height(len(labels)) * len(labels) + 130))


def embedding_parts_figure(tok: np.ndarray, pos: np.ndarray, labels: list[str]) -> go.Figure:
    """Token embedding, position embedding and their sum stacked (same dimensions on one x axis, one colour
    scale), so the sum can be read off as the two above it added cell by cell."""
    tok, pos = np.asarray(tok, dtype=np.float32), np.asarray(pos, dtype=np.float32)
    parts = {"token": tok, "position": pos, "sum": tok + pos}
    limit = colour_limit(*parts.values())
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[_(PART_TITLES[k]) for k in parts])
    for row, (key, matrix) in enumerate(parts.items(), start=1):
        fig.add_trace(_heatmap(matrix, labels, _(PART_TITLES[key]), limit, row == 1), row=row, col=1)
        fig.update_yaxes(autorange="reversed", type="category", row=row, col=1, **thin_ticks(labels, 16))
    fig.update_xaxes(title=_("dimension (0 … {last})").format(last=tok.shape[1] - 1), row=3, col=1)
    panel = max(90, _row_height(len(labels)) * len(labels))
    return style(fig, None, height=3 * panel + 170)


def embedding_norms_figure(tok: np.ndarray, pos: np.ndarray, labels: list[str]) -> go.Figure:
    """L2 norm per token of the token embedding, the position embedding and their sum."""
    tok, pos = np.asarray(tok, dtype=np.float32), np.asarray(pos, dtype=np.float32)
    fig = go.Figure()
    for name, matrix, colour in ((_("‖token‖"), tok, "#3b7dd8"), (_("‖position‖"), pos, "#9aa5b8"),
                                 (_("‖sum‖"), tok + pos, "#e4572e")):
        fig.add_bar(x=labels, y=np.linalg.norm(matrix, axis=1).astype(np.float32), name=name, marker_color=colour,
                    hovertemplate=_("token") + " %{x}<br>" + name + " = %{y:.3f}<extra></extra>")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
                      bargap=0.25 if len(labels) < 40 else 0.05)
    fig.update_xaxes(type="category", title=_("token"), **thin_ticks(labels))
    fig.update_yaxes(title=_("length (L2 norm)"))
    return style(fig, _("Vector lengths per token"), height=320)


def table_facts(cfg, n_tokens: int | None = None) -> str:
    facts = _("Token-embedding table W_E: {vocab} × {d_model} = {n_tok} parameters (the same matrix scores the "
              "next token at the output: the weights are tied). Position-embedding table W_P: {n_ctx} × {d_model} "
              "= {n_pos} parameters.").format(
        vocab=number(cfg.vocab_size), d_model=number(cfg.d_model), n_tok=number(cfg.vocab_size * cfg.d_model),
        n_ctx=number(cfg.n_ctx), n_pos=number(cfg.n_ctx * cfg.d_model))
    if n_tokens is not None:
        facts += " " + ngettext("This prompt reads {n} row of each.", "This prompt reads {n} rows of each.",
                                n_tokens).format(n=number(n_tokens))
    return facts


def section():
    return [
        explanation(
            _("Each token id picks one row of the **token-embedding** table: 768 learned numbers that stand for "
              "the token, whatever its position. Each position picks one row of the **position-embedding** "
              "table, so the model knows the order. Their sum is the vector that enters block 1: the start of "
              "the residual stream. Red is positive, blue negative; hover a cell for its value."),
            r"x_i = W_E[t_i] + W_P[i], \qquad W_E \in \mathbb{R}^{50\,257 \times 768},\;"
            r" W_P \in \mathbb{R}^{1\,024 \times 768}"),
        html.P(id="embedding-facts", className="facts"),
        dcc.RadioItems(id="embedding-part", options=[{"label": _(v), "value": k} for k, v in PARTS.items()],
                       value="all", inline=True, className="radio"),
        accessible_graph("embedding-heatmap", _("Embeddings heatmap")),
        accessible_graph("embedding-norms", _("Vector lengths per token")),
    ]


def register(app) -> None:
    register_figures(app, "embedding-heatmap", "embedding-norms")

    @app.callback(Output("embedding-heatmap", "figure"), Output("embedding-norms", "figure"),
                  Output("embedding-facts", "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("embedding-part", "value"))
    @state.memoized
    def show_embeddings(sequence, view, part):
        if view != "embeddings":
            raise PreventUpdate
        cfg = state.model.get().config
        seq, _n_prompt, problem = sequence_ids(sequence, cfg.vocab_size, cfg.n_ctx,
                                               empty=N_("Run a prompt to see its embeddings."))
        if problem:
            return message_figure(problem), message_figure(""), ""
        part = part if part in PARTS else "all"
        trace = state.trace_for(seq)
        labels = axis_labels(trace.tokens)
        tok, pos = trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy()
        rows = MAX_ROWS_ALL if part == "all" else MAX_ROWS
        start = max(0, len(labels) - rows)
        matrices = {"token": tok[start:], "position": pos[start:], "sum": tok[start:] + pos[start:]}
        if part == "all":
            heatmap = embedding_parts_figure(tok[start:], pos[start:], labels[start:])
            shown = {_(PART_TITLES[k]): m for k, m in matrices.items()}
        else:
            heatmap = embedding_heatmap_figure(matrices[part], labels[start:], _(PARTS[part]))
            shown = {_(PARTS[part]): matrices[part]}
        if start:
            heatmap.update_layout(title=_("The last {rows} of {n} tokens (the lengths below cover all)").format(
                rows=rows, n=number(len(labels))))
        return (words.attach(heatmap, words.embedding_text(shown, labels[start:], len(labels))),
                words.attach(embedding_norms_figure(tok, pos, labels), words.embedding_norms_text(tok, pos, labels)),
                table_facts(cfg, len(labels)))
