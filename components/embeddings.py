"""Embedding view: each token's row of the token-embedding table, its position's row, and their sum."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from . import ids, state
from .common import DIVERGING, axis_labels, explanation, graph, style

MAX_ROWS = 64  # rows sent to the browser: a 1,024-token heatmap of 768 columns would be 3 MB
PARTS = {"sum": "Sum (what block 1 reads)", "token": "Token embedding W_E[t]", "position": "Position embedding W_P[i]"}


def embedding_heatmap_figure(matrix: np.ndarray, labels: list[str], title: str) -> go.Figure:
    """Tokens × d_model heatmap of real values (diverging colours around 0)."""
    fig = go.Figure(go.Heatmap(
        z=np.asarray(matrix, dtype=np.float32), y=labels, colorscale=DIVERGING, zmid=0,
        colorbar=dict(title="value", thickness=12),
        hovertemplate="token %{y}<br>dimension %{x}<br>value %{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", title="token")
    fig.update_xaxes(title="dimension (0 … %d)" % (matrix.shape[1] - 1))
    return style(fig, title, height=max(260, 22 * len(labels) + 120))


def embedding_norms_figure(tok: np.ndarray, pos: np.ndarray, labels: list[str]) -> go.Figure:
    """L2 norm per token of the token embedding, the position embedding and their sum."""
    fig = go.Figure()
    for name, matrix in (("‖token‖", tok), ("‖position‖", pos), ("‖sum‖", tok + pos)):
        fig.add_bar(x=labels, y=np.linalg.norm(matrix, axis=1).astype(np.float32), name=name,
                    hovertemplate="%{x}<br>" + name + " = %{y:.3f}<extra></extra>")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.12))
    fig.update_xaxes(type="category", title="token")
    fig.update_yaxes(title="L2 norm")
    return style(fig, "Vector lengths", height=300)


def table_facts(cfg) -> str:
    return (f"Token-embedding table W_E: {cfg.vocab_size:,} × {cfg.d_model:,} = {cfg.vocab_size * cfg.d_model:,} "
            f"parameters (also the output head: the weights are tied). Position-embedding table W_P: "
            f"{cfg.n_ctx:,} × {cfg.d_model:,} = {cfg.n_ctx * cfg.d_model:,} parameters.")


def section():
    return [
        explanation(
            "Each token id picks one row of the **token-embedding** table: 768 learned numbers that stand for "
            "the token. Each position picks a row of the **position-embedding** table, so the model knows the "
            "order. Their sum is the vector that enters block 1: the start of the residual stream.",
            r"x_i^{(0)} = W_E[t_i] + W_P[i], \qquad W_E \in \mathbb{R}^{50257 \times 768},\; "
            r"W_P \in \mathbb{R}^{1024 \times 768}"),
        html.P(id="embedding-facts", className="facts"),
        dcc.RadioItems(id="embedding-part", options=[{"label": v, "value": k} for k, v in PARTS.items()],
                       value="sum", inline=True, className="radio"),
        graph("embedding-heatmap"),
        graph("embedding-norms"),
    ]


def register(app) -> None:
    @app.callback(Output("embedding-heatmap", "figure"), Output("embedding-norms", "figure"),
                  Output("embedding-facts", "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("embedding-part", "value"))
    @state.memoized
    def show_embeddings(sequence, view, part):
        if view != "embeddings" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        start = max(0, len(trace.tokens) - MAX_ROWS)
        labels = axis_labels(trace.tokens)[start:]
        tok = trace["hook_embed"][start:].numpy()
        pos = trace["hook_pos_embed"][start:].numpy()
        matrix = {"token": tok, "position": pos}.get(part, tok + pos)
        title = PARTS.get(part, PARTS["sum"])
        if start:
            title += f" (last {MAX_ROWS} of {len(trace.tokens)} tokens)"
        return (embedding_heatmap_figure(matrix, labels, title), embedding_norms_figure(tok, pos, labels),
                table_facts(trace.config))
