"""All heads at once: a block × head grid of small attention patterns, and per-head statistics that make
previous-token heads, first-token ("attention sink") heads and self heads stand out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dash_table, dcc, html
from dash.exceptions import PreventUpdate

from . import ids, state
from .common import SEQUENTIAL, explanation, graph, style

CELL = 16  # each head's pattern is block-averaged down to at most CELL × CELL for the grid
STATISTICS = {"entropy": "Entropy (bits)", "first": "Attention to the first token", "previous": "Attention to the previous token",
              "self": "Attention to itself"}


def head_statistics(pattern: np.ndarray) -> dict[str, np.ndarray]:
    """Per head, averaged over query positions, from patterns [H, T, T]:
    entropy (bits) of each row; share of attention on token 0; on the previous token (rows 1..T-1, 0 when T = 1);
    on the token itself."""
    p = np.asarray(pattern, dtype=np.float64)
    H, T, _ = p.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(-1).mean(-1)
    previous = p[:, np.arange(1, T), np.arange(T - 1)].mean(-1) if T > 1 else np.zeros(H)
    return {"entropy": entropy.astype(np.float32), "first": p[:, :, 0].mean(-1).astype(np.float32),
            "previous": previous.astype(np.float32), "self": np.diagonal(p, axis1=1, axis2=2).mean(-1).astype(np.float32)}


def downsample(pattern: np.ndarray, size: int = CELL) -> np.ndarray:
    """Block-average a [T, T] pattern to at most size × size (bins of near-equal width)."""
    T = pattern.shape[0]
    if T <= size:
        return pattern
    edges = np.linspace(0, T, size + 1).astype(int)
    rows = np.add.reduceat(pattern, edges[:-1], axis=0) / np.diff(edges)[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]


def grid_image(patterns: np.ndarray) -> tuple[np.ndarray, int]:
    """All heads' downsampled patterns [L, H, T, T] tiled into one image (one NaN row/column between cells),
    quantised to 0..255: the grid shows shapes, and uint8 keeps 144 patterns small on the wire."""
    L, H = patterns.shape[:2]
    cells = [[downsample(patterns[l, h]) for h in range(H)] for l in range(L)]
    s = cells[0][0].shape[0]
    image = np.full((L * (s + 1) - 1, H * (s + 1) - 1), np.nan, dtype=np.float32)
    for l in range(L):
        for h in range(H):
            cell = cells[l][h] / max(float(cells[l][h].max()), 1e-9)  # each cell on its own scale
            image[l * (s + 1): l * (s + 1) + s, h * (s + 1): h * (s + 1) + s] = cell
    return image, s


def grid_figure(patterns: np.ndarray) -> go.Figure:
    L, H = patterns.shape[:2]
    image, s = grid_image(patterns)
    quantised = np.where(np.isnan(image), 255, np.round((1 - image) * 254)).astype(np.uint8)
    fig = go.Figure(go.Heatmap(z=quantised, colorscale="Greys_r", zmin=0, zmax=255, showscale=False,
                               hoverinfo="skip"))
    # One invisible marker per cell carries its (block, head): hover names the head, a click opens it.
    blocks, heads = np.divmod(np.arange(L * H), H)
    fig.add_scatter(x=heads * (s + 1) + (s - 1) / 2, y=blocks * (s + 1) + (s - 1) / 2, mode="markers",
                    marker=dict(size=max(8, min(40, 560 // max(L, H))), opacity=0, symbol="square"),
                    # a plain list: clickData carries it back, and typed arrays would arrive as {"0": ...} objects
                    customdata=np.stack([blocks + 1, heads + 1, blocks, heads], axis=1).tolist(),
                    hovertemplate="block %{customdata[0]}, head %{customdata[1]} "
                                  "(L%{customdata[2]}H%{customdata[3]})<br>click to open<extra></extra>",
                    showlegend=False)
    fig.update_xaxes(tickvals=[h * (s + 1) + s / 2 for h in range(H)], ticktext=[str(h + 1) for h in range(H)],
                     title="head", side="top", showgrid=False)
    fig.update_yaxes(tickvals=[l * (s + 1) + s / 2 for l in range(L)], ticktext=[str(l + 1) for l in range(L)],
                     title="block", autorange="reversed", showgrid=False, scaleanchor="x")
    return style(fig, "Every head's attention pattern (dark = more attention; click one to open it)", height=640)


def statistic_figure(values: np.ndarray, name: str) -> go.Figure:
    L, H = values.shape
    fig = go.Figure(go.Heatmap(z=values.astype(np.float32), x=[str(h + 1) for h in range(H)],
                               y=[str(l + 1) for l in range(L)], colorscale=SEQUENTIAL,
                               hovertemplate="block %{y}, head %{x}<br>" + name + " = %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="head", type="category")
    fig.update_yaxes(title="block", type="category", autorange="reversed")
    return style(fig, name, height=420)


def statistics_table(stats: dict[str, np.ndarray], sort_by: str, top: int = 15) -> list[dict]:
    L, H = stats["entropy"].shape
    rows = [{"head": f"{l + 1}.{h + 1}", "tl": f"L{l}H{h}", **{k: round(float(v[l, h]), 3) for k, v in stats.items()}}
            for l in range(L) for h in range(H)]
    return sorted(rows, key=lambda r: r[sort_by], reverse=sort_by != "entropy")[:top]


def all_statistics(trace) -> dict[str, np.ndarray]:
    """Statistics for every head [L, H]."""
    per_layer = [head_statistics(trace[f"blocks.{l}.attn.hook_pattern"].numpy()) for l in range(trace.config.n_layer)]
    return {k: np.stack([s[k] for s in per_layer]) for k in STATISTICS}


def section():
    return [
        explanation(
            "Every block has several heads, each with its own pattern. Some heads look at the **previous token**, "
            "some park their attention on the **first token** when nothing else is relevant (an attention "
            "sink), some look at the token itself, some spread out (high **entropy**). Pick a statistic to find "
            "them; click a head to open it.",
            r"H_{\text{head}} = \frac{1}{T}\sum_{i} \Big(-\sum_{j \le i} A_{ij} \log_2 A_{ij}\Big)"),
        graph("heads-grid"),
        html.Div([html.Label("Statistic", htmlFor="heads-statistic"),
                  dcc.Dropdown(id="heads-statistic", options=[{"label": v, "value": k} for k, v in STATISTICS.items()],
                               value="previous", clearable=False)], className="inline-control"),
        graph("heads-statistic-map"),
        dash_table.DataTable(id="heads-table", columns=[{"name": "head", "id": "head"}, {"name": "TransformerLens", "id": "tl"}]
                             + [{"name": v, "id": k} for k, v in STATISTICS.items()],
                             style_table={"overflowX": "auto"}, style_cell={"fontFamily": "inherit", "padding": "4px"}),
    ]


def register(app) -> None:
    @app.callback(Output("heads-grid", "figure"), Output("heads-statistic-map", "figure"), Output("heads-table", "data"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("heads-statistic", "value"))
    @state.memoized
    def show_heads(sequence, view, statistic):
        if view != "heads" or not sequence:
            raise PreventUpdate
        statistic = statistic if statistic in STATISTICS else "previous"
        trace = state.trace_for(sequence["ids"])
        patterns = np.stack([trace[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(trace.config.n_layer)])
        stats = all_statistics(trace)
        return (grid_figure(patterns), statistic_figure(stats[statistic], STATISTICS[statistic]),
                statistics_table(stats, statistic))

    @app.callback(Output(ids.BLOCK, "value", allow_duplicate=True), Output(ids.HEAD, "value", allow_duplicate=True),
                  Output(ids.VIEW, "value", allow_duplicate=True),
                  Input("heads-grid", "clickData"), Input("heads-statistic-map", "clickData"),
                  Input(ids.SEQUENCE, "data"), prevent_initial_call=True)
    def open_head(grid_click, map_click, sequence):
        from dash import callback_context
        trigger = callback_context.triggered_id
        if trigger not in ("heads-grid", "heads-statistic-map") or not sequence:
            raise PreventUpdate
        cfg = state.model.get().config
        try:
            point = (grid_click if trigger == "heads-grid" else map_click)["points"][0]
            if trigger == "heads-grid":
                block, head = int(point["customdata"][2]), int(point["customdata"][3])
            else:
                block, head = int(point["y"]) - 1, int(point["x"]) - 1
        except (TypeError, KeyError, ValueError, IndexError):
            raise PreventUpdate from None
        if not (0 <= block < cfg.n_layer and 0 <= head < cfg.n_head):
            raise PreventUpdate
        return block, head, "attention"
