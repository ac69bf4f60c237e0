"""Attention, one head: Q, K, V → QKᵀ → scaled → masked → softmax → pattern · V, and how the heads' outputs
join and are projected back into the residual stream; plus the head view (who attends to whom, as lines)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from . import ids, state
from .common import (DIVERGING, MASKED_COLOR, SEQUENTIAL, axis_labels, explanation, graph, message_figure, panels,
                     style, thin_ticks, valid_index)

WINDOW = 128  # tokens shown in the per-head heatmaps (each is WINDOW² cells)
SQUARE = {"raw", "scaled", "masked", "pattern"}
HEAD_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173"]


def head_name(layer: int, head: int) -> str:
    """On screen blocks and heads count from 1; researchers' code (TransformerLens) counts from 0: show both."""
    return f"block {layer + 1}, head {head + 1} (L{layer}H{head})"


def head_arrays(trace, layer: int, head: int) -> dict[str, np.ndarray]:
    """One head's numbers from the trace; raw and scaled scores are recomputed here as q·k (the app's traces
    do not keep them: one small matmul for the head on screen)."""
    b = f"blocks.{layer}.attn"
    q = trace[f"{b}.hook_q"][:, head].numpy()
    k = trace[f"{b}.hook_k"][:, head].numpy()
    v = trace[f"{b}.hook_v"][:, head].numpy()
    raw = (q @ k.T).astype(np.float32)
    scaled = (raw / np.sqrt(q.shape[1])).astype(np.float32)
    masked = scaled.copy()
    masked[np.triu_indices_from(masked, k=1)] = np.nan  # the causal mask: a token never sees later ones
    pattern = trace[f"{b}.hook_pattern"][head].numpy().copy()
    pattern[np.triu_indices_from(pattern, k=1)] = np.nan
    return {"q": q, "k": k, "v": v, "raw": raw, "scaled": scaled, "masked": masked, "pattern": pattern,
            "z": trace[f"{b}.hook_z"][:, head].numpy()}


def qk_terms(q_i: np.ndarray, k_j: np.ndarray, top: int = 5) -> list[dict]:
    """The per-dimension products q_i[d]·k_j[d] that sum to the raw score, largest magnitude first."""
    products = q_i * k_j
    order = np.argsort(-np.abs(products), kind="stable")[:top]
    return [{"dim": int(d), "q": float(q_i[d]), "k": float(k_j[d]), "product": float(products[d])} for d in order]


def _heatmap(z, x, y, colorscale, zmid=None, zmin=None, zmax=None, hover="%{z:.3f}", customdata=None,
             showscale=False, axes=("x", "y")):
    return go.Heatmap(z=np.asarray(z, dtype=np.float32), x=x, y=y, colorscale=colorscale, zmid=zmid, zmin=zmin,
                      zmax=zmax, customdata=customdata, showscale=showscale, hoverongaps=False,
                      hovertemplate=hover + "<extra></extra>", xaxis=axes[0], yaxis=axes[1])


def token_axis(labels: list[str]) -> dict:
    return dict(type="category", autorange="reversed", **thin_ticks(labels))


def qkv_figure(q: np.ndarray, k: np.ndarray, v: np.ndarray, labels: list[str], title: str) -> go.Figure:
    layout, refs = panels(1, 3, ["Q (queries)", "K (keys)", "V (values)"], x=dict(title="dimension"),
                          y=token_axis(labels), hgap=0.03, share_y=True)
    dims = list(range(q.shape[1]))
    traces = [_heatmap(m, dims, labels, DIVERGING, zmid=0, showscale=col == 2, axes=refs[col],
                       hover=f"token %{{y}}<br>{name}[%{{x}}] = %{{z:.4f}}")
              for col, (name, m) in enumerate((("q", q), ("k", k), ("v", v)))]
    return style(go.Figure(data=traces, layout=layout), title, height=max(300, 14 * len(labels) + 140))


def scores_figure(arrays: dict, labels: list[str], title: str) -> go.Figure:
    """QKᵀ raw → ÷√d → causal mask (grey cells) → softmax pattern. Hover on the pattern gives every stage."""
    layout, refs = panels(2, 2, ["QKᵀ (raw dot products)", "QKᵀ / √d", "+ causal mask (grey: hidden)",
                                 "softmax → attention pattern"],
                          x=dict(type="category", tickangle=-60, showgrid=False, **thin_ticks(labels)),
                          y=token_axis(labels), hgap=0.04, vgap=0.08, share_x=True, share_y=True)
    hover_qk = "query %{y}<br>key %{x}<br>"
    custom = np.stack([arrays["raw"], arrays["scaled"]], axis=-1).astype(np.float32)
    traces = [
        _heatmap(arrays["raw"], labels, labels, DIVERGING, zmid=0, hover=hover_qk + "q·k = %{z:.3f}", axes=refs[0]),
        _heatmap(arrays["scaled"], labels, labels, DIVERGING, zmid=0, hover=hover_qk + "q·k/√d = %{z:.3f}",
                 axes=refs[1]),
        _heatmap(arrays["masked"], labels, labels, DIVERGING, zmid=0, hover=hover_qk + "score = %{z:.3f}",
                 axes=refs[2]),
        _heatmap(arrays["pattern"], labels, labels, SEQUENTIAL, zmin=0, zmax=1, customdata=custom, showscale=True,
                 hover=hover_qk + "raw %{customdata[0]:.3f}<br>scaled %{customdata[1]:.3f}<br>probability %{z:.4f}",
                 axes=refs[3]),
    ]
    fig = style(go.Figure(data=traces, layout=layout), title, height=max(520, 28 * len(labels) + 200))
    fig.update_layout(plot_bgcolor=MASKED_COLOR)  # masked (NaN) cells show the background: grey
    return fig


def output_figure(z: np.ndarray, labels: list[str]) -> go.Figure:
    fig = go.Figure(_heatmap(z, list(range(z.shape[1])), labels, DIVERGING, zmid=0, showscale=True,
                             hover="token %{y}<br>z[%{x}] = %{z:.4f}"),
                    layout=dict(yaxis=token_axis(labels), xaxis=dict(title="dimension")))
    return style(fig, "pattern · V: this head's output z (tokens × 64)", height=max(260, 14 * len(labels) + 120))


def head_contributions(z_all: np.ndarray, w_o: np.ndarray) -> np.ndarray:
    """‖z_h W_O[h]‖ for every head and token [heads, T]: how much each head writes to the residual stream.
    z_all [T, H, D]; w_o [H·D, d_model] (GPT-2's c_proj, [in, out])."""
    T, H, D = z_all.shape
    per_head = np.einsum("thd,hdm->htm", z_all, w_o.reshape(H, D, -1))
    return np.linalg.norm(per_head, axis=-1).astype(np.float32)


def column_means(matrix: np.ndarray, group: int) -> np.ndarray:
    """Mean of each run of `group` consecutive columns: a 768-wide matrix drawn as 96 columns costs 8× less
    to send and still shows where the values sit."""
    T, C = matrix.shape
    return matrix[:, : C - C % group].reshape(T, -1, group).mean(-1).astype(np.float32)


def projection_figure(z_all: np.ndarray, contributions: np.ndarray, attn_out: np.ndarray, labels: list[str],
                      head: int, group: int = 8) -> go.Figure:
    """Concatenation (T × 768, the selected head's 64 columns outlined), each head's contribution after W_O,
    and the block's attention output; the wide matrices are drawn as means of `group` columns."""
    T, H, D = z_all.shape
    layout, refs = panels(1, 3, [f"concat(z₁ … z_{H}): {T} × {H * D}", "‖z_h W_O‖ per head",
                                 f"× W_O + b → attention output {T} × {attn_out.shape[1]}"],
                          y=token_axis(labels), col_widths=[0.42, 0.2, 0.38], hgap=0.06, share_y=True)
    starts = np.arange(0, H * D - group + 1, group)
    traces = [
        _heatmap(column_means(z_all.reshape(T, H * D), group), starts, labels, DIVERGING, zmid=0, axes=refs[0],
                 customdata=np.tile((starts // D + 1).astype(np.uint8), (T, 1)),
                 hover=f"token %{{y}}<br>columns %{{x}}–%{{x}}+{group - 1} (head %{{customdata}})<br>mean %{{z:.4f}}"),
        _heatmap(contributions.T, [str(h + 1) for h in range(H)], labels, SEQUENTIAL, zmin=0, axes=refs[1],
                 hover="token %{y}<br>head %{x}<br>‖contribution‖ = %{z:.3f}"),
        _heatmap(column_means(attn_out, group), np.arange(0, attn_out.shape[1] - group + 1, group), labels, DIVERGING,
                 zmid=0, showscale=True, axes=refs[2],
                 hover=f"token %{{y}}<br>dimensions %{{x}}–%{{x}}+{group - 1}<br>mean %{{z:.4f}}"),
    ]
    layout["shapes"] = [dict(type="rect", xref=refs[0][0], yref=refs[0][1], x0=head * D - group / 2,
                             x1=(head + 1) * D - group / 2, y0=-0.5, y1=T - 0.5, line=dict(color="#e4572e", width=2))]
    return style(go.Figure(data=traces, layout=layout),
                 f"Concatenation and output projection (wide matrices as means of {group} columns)",
                 height=max(300, 14 * T + 140))


def head_view_figure(patterns: dict[int, np.ndarray], texts: list[str], focus: int | None = None,
                     min_weight: float = 0.02, max_lines: int = 3000) -> go.Figure:
    """BertViz-style: tokens on the left attend to tokens on the right; line opacity is the weight, one colour
    per head. Weights below `min_weight` are not drawn, so long prompts stay responsive."""
    T = len(texts)
    fig = go.Figure()
    y = -np.arange(T, dtype=np.float32)
    budget = max_lines
    for head, pattern in patterns.items():
        color = HEAD_COLORS[head % len(HEAD_COLORS)]
        rows = [focus] if focus is not None and 0 <= focus < T else range(T)
        edges = [(i, j, float(pattern[i, j])) for i in rows for j in range(i + 1) if pattern[i, j] >= min_weight]
        edges = sorted(edges, key=lambda e: -e[2])[:budget]
        budget -= len(edges)
        for low, high in ((0.0, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01)):  # opacity buckets: one trace each
            xs, ys = [], []
            for i, j, w in edges:
                if low <= w < high:
                    xs += [0, 1, None]
                    ys += [y[i], y[j], None]
            if xs:
                fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1 + 4 * high),
                                opacity=min(1.0, 0.15 + high * 0.85), hoverinfo="skip", showlegend=False)
        fig.add_scatter(x=[None], y=[None], mode="lines", line=dict(color=color, width=4), name=f"head {head + 1}")
    for x, anchor in ((0, "left"), (1, "right")):  # labels outside the two columns, lines between
        fig.add_scatter(x=[x] * T, y=y, mode="markers+text", text=texts, textposition=f"middle {anchor}",
                        marker=dict(size=6, color="#333"), showlegend=False, customdata=np.arange(T),
                        hovertemplate="%{text} (position %{customdata})<extra></extra>")
    fig.update_xaxes(visible=False, range=[-0.8, 1.8])
    fig.update_yaxes(visible=False)
    fig.update_layout(legend=dict(orientation="h", y=1.05))
    return style(fig, "Head view: each token (left) and what it attends to (right)", height=max(300, 22 * T + 100))


def section():
    return [
        explanation(
            "Each head asks, for every token, *which earlier tokens matter here?* The token's **query** q is "
            "compared with every earlier token's **key** k (a dot product, scaled by √64); the causal **mask** "
            "hides later tokens; **softmax** turns the scores into weights that sum to 1; the head's output is "
            "the weighted sum of the **values** v. Click a cell of the pattern to see which of the 64 dimensions "
            "made the score.",
            r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^{\top}}{\sqrt{d_k}} + M\right) V,"
            r"\quad M_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases}"),
        html.H3(id="attention-title", className="view-title"),
        graph("attention-scores"),
        html.Div(id="attention-cell", className="cell-inspector", role="status"),
        graph("attention-qkv"),
        graph("attention-output"),
        graph("attention-projection"),
        html.Div([
            html.Label("Heads in the head view", htmlFor="headview-heads"),
            dcc.Dropdown(id="headview-heads", multi=True, value=[], placeholder="the selected head"),
            html.Label("Focus on token", htmlFor="headview-focus"),
            dcc.Dropdown(id="headview-focus", value=None, placeholder="all tokens"),
        ], className="headview-controls"),
        graph("attention-headview"),
    ]


def register(app) -> None:
    @app.callback(Output("attention-title", "children"), Output("attention-scores", "figure"),
                  Output("attention-qkv", "figure"), Output("attention-output", "figure"),
                  Output("attention-projection", "figure"), Output("headview-heads", "options"),
                  Output("headview-focus", "options"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input(ids.HEAD, "value"))
    @state.memoized
    def show_head(sequence, view, layer, head):
        if view != "attention" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        if not valid_index(layer, cfg.n_layer) or not valid_index(head, cfg.n_head):
            bad = message_figure(f"Choose a block from 1 to {cfg.n_layer} and a head from 1 to {cfg.n_head}.")
            return "", bad, bad, bad, bad, [], []
        all_labels = axis_labels(trace.tokens)
        start = max(0, len(all_labels) - WINDOW)  # long prompts: the last WINDOW tokens, to keep payloads small
        labels = all_labels[start:]
        arrays = {name: (a[start:, start:] if name in SQUARE else a[start:])
                  for name, a in head_arrays(trace, layer, head).items()}
        name = head_name(layer, head) + (f", last {WINDOW} of {len(all_labels)} tokens" if start else "")
        z_all = trace[f"blocks.{layer}.attn.hook_z"][start:].numpy()
        w_o = state.model.get().model.h[layer].attn.c_proj.weight.detach().float().cpu().numpy()
        projection = projection_figure(z_all, head_contributions(z_all, w_o),
                                       trace[f"blocks.{layer}.hook_attn_out"][start:].numpy(), labels, head)
        head_options = [{"label": f"head {h + 1}", "value": h} for h in range(cfg.n_head)]
        focus_options = [{"label": label, "value": i} for i, label in enumerate(all_labels)]
        return (name[0].upper() + name[1:], scores_figure(arrays, labels, f"Scores and pattern: {name}"),
                qkv_figure(arrays["q"], arrays["k"], arrays["v"], labels, f"Queries, keys, values: {name}"),
                output_figure(arrays["z"], labels), projection, head_options, focus_options)

    @app.callback(Output("attention-headview", "figure"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input(ids.HEAD, "value"), Input("headview-heads", "value"), Input("headview-focus", "value"))
    @state.memoized
    def show_head_view(sequence, view, layer, head, heads, focus):
        if view != "attention" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        chosen = [h for h in (heads or [head]) if valid_index(h, cfg.n_head)]
        if not valid_index(layer, cfg.n_layer) or not chosen:
            return message_figure("Choose a block and at least one head.")
        pattern = trace[f"blocks.{layer}.attn.hook_pattern"].numpy()
        texts = [f"{i}:{t.text}" for i, t in enumerate(trace.tokens)]
        return head_view_figure({h: pattern[h] for h in chosen}, texts, focus if valid_index(focus, len(texts)) else None)

    @app.callback(Output("attention-cell", "children"), Input("attention-scores", "clickData"),
                  Input(ids.SEQUENCE, "data"), Input(ids.BLOCK, "value"), Input(ids.HEAD, "value"))
    def inspect_cell(click, sequence, layer, head):
        if not click or not sequence:
            return "Click a cell of the attention pattern to see which dimensions of q and k made its score."
        trace = state.trace_for(sequence["ids"])
        labels = axis_labels(trace.tokens)
        point = click["points"][0]
        if point.get("y") not in labels or point.get("x") not in labels or not valid_index(layer, trace.config.n_layer) \
                or not valid_index(head, trace.config.n_head):
            return "Click a cell of the attention pattern."
        i, j = labels.index(point["y"]), labels.index(point["x"])
        arrays = head_arrays(trace, layer, head)
        if j > i:
            return f"{labels[i]} cannot see {labels[j]}: it comes later (masked, weight 0)."
        terms = qk_terms(arrays["q"][i], arrays["k"][j])
        rows = [html.Tr([html.Td(t["dim"]), html.Td(f"{t['q']:.3f}"), html.Td(f"{t['k']:.3f}"),
                         html.Td(f"{t['product']:.3f}")]) for t in terms]
        return [html.P(f"Query {labels[i]} → key {labels[j]}: raw q·k = {arrays['raw'][i, j]:.3f}, "
                       f"÷ 8 = {arrays['scaled'][i, j]:.3f}, attention weight {arrays['pattern'][i, j]:.4f}. "
                       f"The score is the sum of 64 products q[d]·k[d]; the largest:"),
                html.Table([html.Thead(html.Tr([html.Th("dimension"), html.Th("q[d]"), html.Th("k[d]"),
                                                html.Th("q[d]·k[d]")]))] + [html.Tbody(rows)], className="terms")]
