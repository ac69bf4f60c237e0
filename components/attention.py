"""Attention, one head: Q, K, V → QKᵀ → scaled → masked → softmax → pattern · V, how the heads' outputs join
and are projected back into the residual stream, and the head view (who attends to whom, as lines).

Long prompts: the per-head heatmaps show a window of at most WINDOW queries × WINDOW keys (every number in it
exact); an overview of the head's whole pattern (block-averaged past OVERVIEW tokens) picks the window."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from dash import ClientsideFunction, Input, Output, State, callback_context, dcc, html
from dash.exceptions import PreventUpdate

from . import figure_text as words
from . import ids, palette, state
from .common import (DIVERGING, HIGHLIGHT, KEYBOARD_FIGURE, MASKED_COLOR, SEQUENTIAL, axis_labels,
                     explanation, message_figure, panels, style, thin_ticks, valid_index)
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .heads import block_average
from .i18n import N_, _, number, percent

WINDOW = 128           # queries × keys shown in the per-head heatmaps (each is at most WINDOW² cells)
HOVER_TERMS_MAX = 16   # up to this many queries and keys the pattern's hover lists the top q·k terms
                       # (5 numbers per cell: beyond, a click computes them, keeping head changes light)
TOP_TERMS = 5          # q[d]·k[d] products listed per cell (the neuron view's "largest terms")
OVERVIEW = 256         # the overview shows the whole pattern exactly up to this many tokens, else averaged bins
FULL_WIDTH_ROWS = 16   # the concatenation is drawn at all 768 columns up to this many tokens, else column means
HEAD_COLORS = palette.CATEGORICAL  # heads past the eighth repeat a colour with dashed lines
HEADVIEW_HOVER = "headview-hover"  # dcc.Store: the output slot of the clientside callback that binds hover focus
LINE_MIN_WEIGHT = 0.01  # the head view draws no weaker line
HINT = N_("Click a cell of the pattern (④) to see which of the dimensions of q and k made its score.")


def head_name(layer: int, head: int) -> str:
    """On screen blocks and heads count from 1; researchers' code (TransformerLens) counts from 0: show both."""
    return _("block {layer}, head {head} (L{layer2}H{head2})").format(
        layer=layer + 1, head=head + 1, layer2=layer, head2=head)


def window_starts(T: int, q_start=None, k_start=None, size: int = WINDOW) -> tuple[int, int, int]:
    """(first query, first key, size) of the window the heatmaps show: at most `size` tokens each way, the
    starts clamped into range; missing or junk starts mean the last `size` tokens."""
    size = max(1, min(size, T))

    def start(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return T - size
        return int(min(max(int(value), 0), T - size))
    return start(q_start), start(k_start), size


def head_arrays(trace, layer: int, head: int, q0: int = 0, k0: int = 0, size: int | None = None) -> dict:
    """One head's numbers for queries q0..q0+size-1 and keys k0..k0+size-1 (all tokens by default). Raw and
    scaled scores are recomputed here as q·k (the app's traces do not keep them: one small matmul for the head
    on screen); masked cells (key after query) are NaN in "masked" and "pattern"."""
    b = f"blocks.{layer}.attn"
    T = trace[f"{b}.hook_q"].shape[0]
    size = T if size is None else size
    rows, cols = slice(q0, q0 + size), slice(k0, k0 + size)
    q = trace[f"{b}.hook_q"][rows, head].numpy()
    k = trace[f"{b}.hook_k"][cols, head].numpy()
    v = trace[f"{b}.hook_v"][cols, head].numpy()
    raw = (q @ k.T).astype(np.float32)
    scaled = (raw / np.float32(math.sqrt(q.shape[1]))).astype(np.float32)
    q_pos, k_pos = np.arange(rows.start, rows.start + q.shape[0]), np.arange(cols.start, cols.start + k.shape[0])
    hidden = k_pos[None, :] > q_pos[:, None]  # the causal mask: a token never sees later ones
    masked = np.where(hidden, np.float32(np.nan), scaled)
    pattern = trace[f"{b}.hook_pattern"][head, rows, cols].numpy().copy()
    pattern[hidden] = np.nan
    return {"q": q, "k": k, "v": v, "raw": raw, "scaled": scaled, "masked": masked, "pattern": pattern,
            "z": trace[f"{b}.hook_z"][rows, head].numpy(), "q_pos": q_pos, "k_pos": k_pos}


def qk_terms(q_i: np.ndarray, k_j: np.ndarray, top: int = TOP_TERMS) -> list[dict]:
    """The per-dimension products q_i[d]·k_j[d] that sum to the raw score, largest magnitude first."""
    products = q_i * k_j
    order = np.argsort(-np.abs(products), kind="stable")[:top]
    return [{"dim": int(d), "q": float(q_i[d]), "k": float(k_j[d]), "product": float(products[d])} for d in order]


def top_qk_terms(q: np.ndarray, k: np.ndarray, top: int = TOP_TERMS) -> tuple[np.ndarray, np.ndarray]:
    """For every (query i, key j): the `top` dimensions d with the largest |q_i[d]·k_j[d]| and those products,
    largest first (as `qk_terms`, for all cells at once): ([Tq, Tk, top] ints, [Tq, Tk, top] floats)."""
    products = q[:, None, :] * k[None, :, :]
    dims = np.argsort(-np.abs(products), axis=-1, kind="stable")[..., :top]
    return dims, np.take_along_axis(products, dims, axis=-1)


def _heatmap(z, x, y, colorscale, zmid=None, zmin=None, zmax=None, hover="%{z:.3f}", customdata=None,
             showscale=False, colorbar=None, axes=("x", "y")):
    return go.Heatmap(z=np.asarray(z, dtype=np.float32), x=x, y=y, colorscale=colorscale, zmid=zmid, zmin=zmin,
                      zmax=zmax, customdata=customdata, showscale=showscale, hoverongaps=False, colorbar=colorbar,
                      hovertemplate=hover + "<extra></extra>", xaxis=axes[0], yaxis=axes[1])


def _ticks(labels: list[str], pixels: float) -> dict:
    """Category ticks thinned to one per ~14 pixels, so long prompts never overlap their labels."""
    return thin_ticks(labels, max_ticks=max(4, int(pixels // 14)))


def qkv_figure(q: np.ndarray, k: np.ndarray, v: np.ndarray, labels: list[str], title: str,
               key_labels: list[str] | None = None, head: str = "") -> go.Figure:
    """Q (the window's queries), K and V (its keys): tokens × d_head, real values, diverging around 0."""
    key_labels = labels if key_labels is None else key_labels
    D = q.shape[1]
    height = int(min(900, max(320, 14 * max(len(labels), len(key_labels)) + 140)))
    rows = dict(type="category", autorange="reversed")
    layout, refs = panels(1, 3, [_("Q: what each token looks for ({n_labels} × {d})").format(
        n_labels=len(labels), d=D),
                                 _("K: what each token offers ({n_key_labels} × {d})").format(
                                     n_key_labels=len(key_labels), d=D),
                                 _("V: what it passes on ({n_key_labels} × {d})").format(
                                     n_key_labels=len(key_labels), d=D)],
                          x=dict(title=_("dimension d")), hgap=0.05)
    layout["yaxis"].update(rows, **_ticks(labels, height - 140))
    layout["yaxis2"].update(rows, **_ticks(key_labels, height - 140), showticklabels=key_labels != labels)
    layout["yaxis3"].update(rows, **_ticks(key_labels, height - 140), matches="y2", showticklabels=False)
    dims = list(range(D))
    limit = float(max(np.abs(q).max(initial=0), np.abs(k).max(initial=0), np.abs(v).max(initial=0))) or 1.0
    traces = [_heatmap(m, dims, rows_, DIVERGING, zmin=-limit, zmax=limit, showscale=col == 2,
                       colorbar=dict(thickness=12), axes=refs[col],
                       hover=_("{head}<br>token %{{y}}<br>{name}[%{{x}}] = %{{z:.4f}}").format(head=head, name=name))
              for col, (name, m, rows_) in enumerate((("q", q, labels), ("k", k, key_labels), ("v", v, key_labels)))]
    return style(go.Figure(data=traces, layout=layout), title, height=height)


def scores_figure(arrays: dict, labels: list[str], title: str, key_labels: list[str] | None = None,
                  head: str = "") -> go.Figure:
    """① QKᵀ raw → ② ÷√d → ③ causal mask (grey cells) → ④ softmax pattern: four heatmaps (in that trace order),
    one zoom for all. ① to ③ share one colour scale, so ② shows how much the scaling shrinks the scores;
    ④'s runs from 0 to the largest weight shown (1 whenever token 0 is in view).
    Hovering a pattern cell gives every stage and, for windows up to HOVER_TERMS_MAX tokens, the largest
    q[d]·k[d] terms of its score."""
    key_labels = labels if key_labels is None else key_labels
    raw, pattern = arrays["raw"], arrays["pattern"]
    Tq, Tk = raw.shape
    D = arrays["q"].shape[1] if "q" in arrays else 64
    root = math.sqrt(D)
    titles = [_("① QKᵀ: raw scores q·k"), _("② ÷ √{d} = {root:g}  (same colours as ①)").format(d=D, root=root),
              _("③ + causal mask M (grey: −∞, a later token)"), _("④ softmax → attention pattern A")]
    layout, refs = panels(2, 2, titles, vgap=0.07, hgap=0.04)
    limit = float(np.abs(raw).max(initial=0)) or 1.0
    hover_qk = _("{head}<br>query %{{y}} → key %{{x}}<br>").format(head=head)
    scores = dict(zmin=-limit, zmax=limit)
    traces = [
        _heatmap(raw, key_labels, labels, DIVERGING, **scores, showscale=True, axes=refs[0],
                 colorbar=dict(title=_("score"), thickness=12, len=0.42, y=0.79), hover=hover_qk + "q·k = %{z:.3f}"),
        _heatmap(arrays["scaled"], key_labels, labels, DIVERGING, **scores, axes=refs[1],
                 hover=hover_qk + f"q·k / √{D} = %{{z:.3f}}"),
        _heatmap(arrays["masked"], key_labels, labels, DIVERGING, **scores, axes=refs[2],
                 hover=hover_qk + _("score + M = %{z:.3f}"))]
    custom = [arrays["raw"], arrays["scaled"]]
    hover = hover_qk + _("<b>A = %{{z:.4f}}</b><br>raw q·k = %{{customdata[0]:.3f}}, ÷ {root:g} = "
                         "%{{customdata[1]:.3f}}").format(root=root)
    if "q" in arrays and max(Tq, Tk) <= HOVER_TERMS_MAX:
        dims, products = top_qk_terms(arrays["q"], arrays["k"], TOP_TERMS)
        custom += [dims[..., n].astype(np.float32) for n in range(TOP_TERMS)]
        custom += [products[..., n] for n in range(TOP_TERMS)]
        hover += "<br>" + _("largest q[d]·k[d] of the {d} terms:").format(d=D) + "".join(
            f"<br>  d=%{{customdata[{2 + n}]:.0f}}: %{{customdata[{2 + TOP_TERMS + n}]:+.3f}}" for n in range(TOP_TERMS))
    else:
        hover += _("<br>click for the q·k terms")
    customdata = np.stack(custom, axis=-1).astype(np.float32)
    customdata[np.isnan(pattern)] = 0  # masked cells have no hover; zeros keep the payload compressible
    top = float(np.nanmax(pattern)) if np.isfinite(pattern).any() else 1.0  # long windows: weights are small
    traces.append(_heatmap(pattern, key_labels, labels, SEQUENTIAL, zmin=0, zmax=max(top, 1e-6), axes=refs[3],
                           customdata=customdata, showscale=True,
                           colorbar=dict(title="A", thickness=12, len=0.42, y=0.21), hover=hover))
    height = int(min(1150, max(640, 2 * 16 * max(Tq, Tk) + 240)))
    panel = (height - 240) / 2
    for n in range(1, 5):  # one zoom for all four; labels on the left column and the bottom row only
        suffix = "" if n == 1 else str(n)
        layout[f"xaxis{suffix}"].update(type="category", tickangle=-60, showgrid=False, showticklabels=n > 2,
                                        **({} if n == 1 else {"matches": "x"}), **_ticks(key_labels, panel))
        layout[f"yaxis{suffix}"].update(type="category", autorange="reversed", showgrid=False,
                                        showticklabels=n % 2 == 1, **({} if n == 1 else {"matches": "y"}),
                                        **_ticks(labels, panel))
    fig = style(go.Figure(data=traces, layout=layout), title, height=height)
    fig.update_layout(plot_bgcolor=MASKED_COLOR)  # masked (NaN) cells show the background: grey
    return fig


def output_figure(z: np.ndarray, labels: list[str], head: str = "") -> go.Figure:
    """⑤ pattern · V: the head's output z (hook_z for this head), tokens × d_head."""
    D = z.shape[1]
    hover = _("{head}<br>token %{{y}}<br>z[%{{x}}] = %{{z:.4f}}").format(head=head)
    fig = go.Figure(_heatmap(z, list(range(D)), labels, DIVERGING, zmid=0, showscale=True,
                             colorbar=dict(thickness=12), hover=hover))
    height = int(min(800, max(280, 14 * len(labels) + 120)))
    fig.update_yaxes(autorange="reversed", type="category", **_ticks(labels, height - 120))
    fig.update_xaxes(title=_("dimension d"))
    return style(fig, _("⑤ A · V: this head's output z, {n_labels} × {d} (each row is an A-weighted mix of V's "
                        "rows)").format(n_labels=len(labels), d=D),
                 height=height)


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
                      head: int, group: int | None = None) -> go.Figure:
    """Concatenation [T × H·D] (the selected head's D columns outlined), each head's contribution ‖z_h W_O[h]‖
    (tokens × heads, the selected head outlined), and the block's attention output [T × d_model]. Up to
    FULL_WIDTH_ROWS tokens every column is drawn; beyond, means of `group` (8) columns keep the payload small."""
    T, H, D = z_all.shape
    group = (1 if T <= FULL_WIDTH_ROWS else 8) if group is None else group
    width = H * D
    layout, refs = panels(1, 3, [f"concat(z₁ … z_{H}) = {T} × {width}", _("‖z_h W_O[h]‖: who wrote most"),
                                 _("× W_O + b_O → attention output {t} × {value}").format(
                                     t=T, value=attn_out.shape[1])],
                          col_widths=[0.42, 0.18, 0.4], hgap=0.05)
    height = int(min(800, max(320, 14 * T + 150)))
    for n, suffix in enumerate(("", "2", "3")):
        layout[f"yaxis{suffix}"].update(autorange="reversed", type="category", showticklabels=n == 0,
                                        **_ticks(labels, height - 150))
    layout["xaxis2"]["type"] = "category"
    span = _("columns %{{x}}–%{{x}}+{last}").format(last=group - 1) if group > 1 else _("column %{x}")
    dims = _("dimensions %{{x}}–%{{x}}+{last}").format(last=group - 1) if group > 1 else _("dimension %{x}")
    what = _("mean") + " " if group > 1 else ""
    starts = np.arange(0, width - group + 1, group)
    out_starts = np.arange(0, attn_out.shape[1] - group + 1, group)
    traces = [
        _heatmap(column_means(z_all.reshape(T, width), group), starts, labels, DIVERGING, zmid=0, axes=refs[0],
                 customdata=np.tile((starts // D + 1).astype(np.uint8), (T, 1)),
                 hover=_("token %{{y}}<br>{span} (head %{{customdata}})<br>{what}%{{z:.4f}}").format(
                     span=span, what=what)),
        _heatmap(contributions.T, [str(h + 1) for h in range(H)], labels, SEQUENTIAL, zmin=0, axes=refs[1],
                 hover=_("token %{y}<br>head %{x}<br>‖z_h W_O[h]‖ = %{z:.3f}")),
        _heatmap(column_means(attn_out, group), out_starts, labels, DIVERGING, zmid=0, showscale=True, axes=refs[2],
                 colorbar=dict(thickness=12),
                 hover=_("token %{{y}}<br>{value}<br>{what}%{{z:.4f}}").format(
                     value=dims, what=what))]
    outline = dict(color=HIGHLIGHT, width=2)
    layout["shapes"] = [
        dict(type="rect", xref=refs[0][0], yref=refs[0][1], x0=head * D - group / 2, x1=(head + 1) * D - group / 2,
             y0=-0.5, y1=T - 0.5, line=outline),
        dict(type="rect", xref=refs[1][0], yref=refs[1][1], x0=head - 0.5, x1=head + 0.5, y0=-0.5, y1=T - 0.5,
             line=outline)]
    fig = go.Figure(data=traces, layout=layout)
    note = _(" (wide matrices as means of {group} columns)").format(group=group) if group > 1 else ""
    return style(fig, _("⑥ Concatenation and output projection W_O{note}").format(note=note), height=height)


def overview_figure(pattern: np.ndarray, labels: list[str], window: tuple[int, int, int],
                    max_size: int = OVERVIEW, head: str = "") -> go.Figure:
    """The head's whole pattern [T, T] (exact up to `max_size` tokens, else block-averaged bins, masked bins
    grey), with the window the heatmaps below show outlined. Click to move the window there."""
    T = pattern.shape[0]
    z, edges = block_average(pattern, max_size)
    x = (edges - 0.5).astype(np.float32)
    binned = T > max_size
    hover = (_("{head}<br>queries near %{{y:.0f}}, keys near %{{x:.0f}}<br>mean A = %{{z:.4f}}") if binned
             else _("{head}<br>query %{{y:.0f}} → key %{{x:.0f}}<br>A = %{{z:.4f}}")).format(head=head)
    visible = z[np.isfinite(z)]
    # long prompts spread attention thin: colours run to the 99th percentile (darker cells saturate)
    top = float(np.quantile(visible, 0.99)) if visible.size else 1.0
    fig = go.Figure(_heatmap(z, x, x, SEQUENTIAL, zmin=0, zmax=min(1.0, max(top, 1e-3)), showscale=True,
                             colorbar=dict(thickness=12),
                             hover=hover + _("<br>click to show this part below")))
    q0, k0, size = window
    fig.add_shape(type="rect", x0=k0 - 0.5, x1=k0 + size - 0.5, y0=q0 - 0.5, y1=q0 + size - 0.5,
                  line=dict(color=HIGHLIGHT, width=2))
    step = max(1, -(-T // 24))
    ticks = dict(tickmode="array", tickvals=list(range(0, T, step)), ticktext=labels[::step])
    fig.update_xaxes(range=[-0.5, T - 0.5], tickangle=-60, showgrid=False, zeroline=False, title=_("key"), **ticks)
    fig.update_yaxes(range=[T - 0.5, -0.5], showgrid=False, zeroline=False, title=_("query"), scaleanchor="x", **ticks)
    fig.update_layout(plot_bgcolor=MASKED_COLOR)
    n = len(edges) - 1
    scale = (_("averaged into {n} × {n} blocks of about {t} tokens a side").format(n=n, t=number(T / n, 1))
             if binned else _("every cell"))
    return style(fig, _("The whole pattern, {t} × {t} ({scale}); the outlined window is shown below").format(
        t=T, scale=scale), height=560)


def head_view_figure(patterns: dict[int, np.ndarray], texts: list[str], focus: int | None = None,
                     side: str = "query", rows=None, cols=None, min_weight: float = LINE_MIN_WEIGHT, max_lines: int = 3000,
                     layer: int | None = None) -> go.Figure:
    """BertViz-style head view: query tokens (left) attend to key tokens (right); each line's width and
    opacity is the weight, one colour per head. `rows`/`cols` pick the positions shown (all by default);
    `focus` keeps one token's lines (its queries' lines for side "query", the lines into it for "key").
    Weights below `min_weight` are not drawn and at most `max_lines` are, so long prompts stay responsive."""
    T = len(texts)
    rows = list(range(T)) if rows is None else [int(r) for r in rows]
    cols = list(range(T)) if cols is None else [int(c) for c in cols]
    r_arr, c_arr = np.asarray(rows), np.asarray(cols)
    if side == "query" and focus in rows:
        keep_r, keep_c = r_arr == focus, np.ones(len(cols), bool)
    elif side == "key" and focus in cols:
        keep_r, keep_c = np.ones(len(rows), bool), c_arr == focus
    else:
        focus, keep_r, keep_c = None, np.ones(len(rows), bool), np.ones(len(cols), bool)
    fig = go.Figure()
    per_head = max_lines // max(1, len(patterns))
    drawn, dropped = 0, 0
    buckets = ((0.0, 0.05), (0.05, 0.15), (0.15, 0.35), (0.35, 0.6), (0.6, 1.01))
    for head, pattern in patterns.items():
        color = HEAD_COLORS[head % len(HEAD_COLORS)]
        dash = "solid" if head < len(HEAD_COLORS) else "dash"
        sub = np.asarray(pattern, dtype=np.float32)[np.ix_(r_arr, c_arr)]
        visible = (c_arr[None, :] <= r_arr[:, None]) & keep_r[:, None] & keep_c[None, :] & (sub >= min_weight)
        ii, jj = np.nonzero(visible)
        weights = sub[ii, jj]
        order = np.argsort(-weights, kind="stable")[:per_head]
        drawn, dropped = drawn + len(order), dropped + len(weights) - len(order)
        ii, jj, weights = ii[order], jj[order], weights[order]
        for low, high in buckets:  # one trace per weight bucket: line width and opacity grow with the weight
            chosen = (weights >= low) & (weights < high)
            if chosen.any():
                xs, ys = [], []
                for i, j in zip(ii[chosen], jj[chosen]):
                    xs += [0, 1, None]
                    ys += [-int(i), -int(j), None]
                fig.add_scatter(x=xs, y=ys, mode="lines",
                                line=dict(color=color, width=0.5 + 5 * min(high, 1), dash=dash),
                                opacity=min(1.0, 0.12 + 0.88 * min(high, 1)), hoverinfo="skip", showlegend=False,
                                meta={"csv": False})
        name = _("head {head}").format(head=head + 1) + (f" (L{layer}H{head})" if layer is not None else f" ({head})")
        # The legend entry carries the head's drawn lines for the CSV (query, key, weight).
        fig.add_scatter(x=[None], y=[None], mode="lines", line=dict(color=color, width=4, dash=dash), name=name,
                        customdata=[[texts[rows[i]], texts[cols[j]], float(w)] for i, j, w in zip(ii, jj, weights)],
                        meta={"csv_columns": [_("query"), _("key"), _("weight")]})
    for x, anchor, positions, code, role in ((0, "left", rows, 0, "query"), (1, "right", cols, 1, "key")):
        colours = [HIGHLIGHT if (focus == p and side == role) else "#333" for p in positions]
        fig.add_scatter(x=[x] * len(positions), y=[-n for n in range(len(positions))], mode="markers+text",
                        text=[texts[p] for p in positions], textposition=f"middle {'left' if x == 0 else 'right'}",
                        textfont=dict(color=colours), marker=dict(size=7, color=colours), showlegend=False,
                        customdata=[[p, code] for p in positions], meta={"csv": False},
                        hovertemplate=_("%{{text}} as {role}<br>its lines alone while hovered; click to "
                                        "keep<extra></extra>").format(role=role))
    fig.update_xaxes(visible=False, range=[-0.9, 1.9])
    fig.update_yaxes(visible=False)
    # Each over its own column of token labels (outwards from the lines), so the two never meet on a phone.
    fig.add_annotation(x=0, y=1, xref="x", yref="paper", text=_("<b>query</b> (attends)"), showarrow=False,
                       xanchor="right", yanchor="bottom")
    fig.add_annotation(x=1, y=1, xref="x", yref="paper", text=_("<b>key</b> (is attended to)"), showarrow=False,
                       xanchor="left", yanchor="bottom")
    if not drawn:
        fig.add_annotation(x=0.5, y=0.5, xref="x", yref="paper", showarrow=False, bgcolor="white",
                           text=_("No weight here reaches {min_weight}: attention is spread thin<br>(or goes to "
                                  "tokens outside the tokens shown)").format(min_weight=percent(min_weight)))
    elif dropped:
        fig.add_annotation(x=0.5, y=1, xref="x", yref="paper", showarrow=False, yanchor="bottom",
                           text=_("the {drawn} largest weights drawn; {dropped} more of at least {min_weight} left "
                                  "out").format(
                               drawn=number(drawn), dropped=number(dropped), min_weight=percent(min_weight)))
    fig.update_layout(legend=dict(x=1.0, y=1.0, xanchor="right", yanchor="top", bgcolor="rgba(255,255,255,0.8)"),
                      dragmode="pan")
    height = max(320, 18 * max(len(rows), len(cols)) + 140)
    return style(fig, _("Head view: lines from each query token to the tokens it attends to"), height=height)


def qk_terms_figure(q_i: np.ndarray, k_j: np.ndarray, title: str) -> go.Figure:
    """All d_head products q_i[d]·k_j[d] (their sum is the raw score), the TOP_TERMS largest in colour."""
    products = (q_i * k_j).astype(np.float32)
    top = {t["dim"] for t in qk_terms(q_i, k_j)}
    colors = [HIGHLIGHT if d in top else "#9db4d8" for d in range(len(products))]
    fig = go.Figure(go.Bar(x=np.arange(len(products)), y=products, marker_color=colors,
                           customdata=np.stack([q_i, k_j], axis=1).astype(np.float32),
                           hovertemplate=_("d = %{x}<br>q[d] = %{customdata[0]:.4f}<br>k[d] = "
                                           "%{customdata[1]:.4f}<br>q[d]·k[d] = %{y:.4f}<extra></extra>")))
    fig.update_xaxes(title=_("dimension d"))
    fig.update_yaxes(title="q[d]·k[d]", zeroline=True, zerolinecolor="#999")
    return style(fig, title, height=300)


def _position(label) -> int:
    """A heatmap label "i:text" back to its position i (ValueError for anything else)."""
    if not isinstance(label, str) or ":" not in label:
        raise ValueError(label)
    return int(label.split(":", 1)[0])


def section():
    return [
        explanation(
            _("A **head** is one of the model's ways of reading the earlier tokens. For every token it makes a "
              "**query** q (what am I looking for?), a **key** k (what do I offer?) and a **value** v (what I pass "
              "on), each 64 numbers, from the token's LayerNorm-ed residual stream. A query is compared with every "
              "key by a dot product (①), divided by √64 = 8 so the scores are not too large for softmax (②); the "
              "causal mask M hides later tokens (③, grey); softmax turns each row into weights that sum to 1 (④); "
              "the head's output is the weighted sum of the values (⑤). The 12 heads' outputs are joined side by "
              "side and projected back into the residual stream (⑥). Hover a cell of ④ for every stage and the "
              "largest of the 64 products that make its score; click it for all 64."),
            r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^{\top}}{\sqrt{d_k}} + M\right) V,"
            r"\quad M_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases},"
            r"\quad Q = \mathrm{LN}_1(X)\,W_Q^h + b_Q^h"),
        html.H3(id="attention-title", className="view-title"),
        html.Div([
            html.P(id="attention-window-note", className="facts"),
            html.Div([
                html.Label(_("First query"), htmlFor="attention-q-start"),
                dcc.Input(id="attention-q-start", type="number", min=0, step=1, debounce=True, className="gen-n"),
                html.Label(_("First key"), htmlFor="attention-k-start"),
                dcc.Input(id="attention-k-start", type="number", min=0, step=1, debounce=True, className="gen-n"),
            ], className="inline-control"),
            accessible_graph("attention-overview", _("Whole attention pattern"), className=KEYBOARD_FIGURE),
        ], id="attention-long", style={"display": "none"}),
        accessible_graph("attention-qkv", _("Queries, keys and values")),
        accessible_graph("attention-scores", _("Attention scores and pattern"), className=KEYBOARD_FIGURE),
        html.Div([html.Div(_(HINT), id="attention-cell", role="status"),
                  html.Div(accessible_graph("attention-cell-terms", _("Terms of one attention score")),
                           id="attention-cell-terms-wrap", style={"display": "none"})], className="cell-inspector"),
        accessible_graph("attention-output", _("Head output")),
        explanation(
            _("Each head writes 64 numbers per token. The heads' outputs are placed side by side (12 × 64 = 768 "
              "columns; the open head's slice is outlined) and multiplied by one 768 × 768 matrix W_O (GPT-2's "
              "`c_proj`). Because the concatenation is multiplied blockwise, the result is the sum of each head's "
              "own contribution `z_h · W_O[h]` (its 64 rows of W_O); the middle chart shows how large each one is, "
              "per token: which heads wrote most into the residual stream."),
            r"\mathrm{attn\_out} = [\,z_1 \,\|\, z_2 \,\|\, \cdots \,\|\, z_{12}\,]\; W_O + b_O"
            r" = \sum_{h=1}^{12} z_h\, W_O[h] + b_O"),
        accessible_graph("attention-projection", _("Concatenation and output projection")),
        explanation(
            _("The head view draws the same pattern as lines: each token on the left (as a query) is joined to the "
              "tokens on the right (as keys) it attends to; thicker, darker lines carry more weight (weights under "
              "1% are not drawn). Choose several heads to compare them in colour; hover a token to see only its "
              "lines, click it to keep them so, click it again to see all.")),
        html.Div([
            html.Label(_("Heads"), htmlFor="headview-heads"),
            dcc.Dropdown(id="headview-heads", multi=True, placeholder=_("the open head")),
            html.Label(_("Focus on token"), htmlFor="headview-focus"),
            dcc.Dropdown(id="headview-focus", value=None, placeholder=_("all tokens")),
            dcc.RadioItems(id="headview-side", value="query", className="radio", inline=True,
                           options=[{"label": _("as query (what it reads)"), "value": "query"},
                                    {"label": _("as key (who reads it)"), "value": "key"}]),
        ], className="headview-controls"),
        accessible_graph("attention-headview", _("Head view"), className=KEYBOARD_FIGURE),
        dcc.Store(id=HEADVIEW_HOVER),
    ]


def _window(sequence, q_start, k_start):
    return window_starts(len(sequence["ids"]), q_start, k_start)


FIGURES = ("attention-overview", "attention-qkv", "attention-scores", "attention-cell-terms", "attention-output",
           "attention-projection", "attention-headview")


def register(app) -> None:
    register_figures(app, *FIGURES)

    @app.callback(Output("attention-title", "children"), Output("attention-scores", "figure"),
                  Output("attention-qkv", "figure"), Output("attention-output", "figure"),
                  Output("attention-projection", "figure"), Output("attention-overview", "figure"),
                  Output("attention-long", "style"), Output("attention-window-note", "children"),
                  Output("attention-q-start", "placeholder"), Output("attention-k-start", "placeholder"),
                  Output("headview-heads", "options"), Output("headview-focus", "options"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input(ids.HEAD, "value"), Input("attention-q-start", "value"), Input("attention-k-start", "value"))
    @state.memoized
    def show_head(sequence, view, layer, head, q_start, k_start):
        if view != "attention" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        if not valid_index(layer, cfg.n_layer) or not valid_index(head, cfg.n_head):
            bad = message_figure(_("Choose a block from 1 to {n_layer} and a head from 1 to {n_head}.").format(
                n_layer=cfg.n_layer, n_head=cfg.n_head))
            return "", bad, bad, bad, bad, bad, {"display": "none"}, "", "", "", [], []
        all_labels = axis_labels(trace.tokens)
        T = len(all_labels)
        q0, k0, size = window_starts(T, q_start, k_start)
        arrays = head_arrays(trace, layer, head, q0, k0, size)
        labels, key_labels = all_labels[q0:q0 + size], all_labels[k0:k0 + size]
        name = head_name(layer, head)
        short = name[0].upper() + name[1:]  # hover text says which head: "Block 6, head 2 (L5H1)"
        long = T > size
        where = _(", queries {q0}–{value} × keys {k0}–{value2} of {t} tokens").format(
            q0=q0, value=q0 + size - 1, k0=k0, value2=k0 + size - 1, t=T) if long else ""
        z_all = trace[f"blocks.{layer}.attn.hook_z"][q0:q0 + size].numpy()
        w_o = state.model.get().model.h[layer].attn.c_proj.weight.detach().float().cpu().numpy()
        contributions = head_contributions(z_all, w_o)
        projection = words.attach(
            projection_figure(z_all, contributions, trace[f"blocks.{layer}.hook_attn_out"][q0:q0 + size].numpy(),
                              labels, head),
            words.projection_text(contributions, labels, head))
        if long:
            whole = trace[f"blocks.{layer}.attn.hook_pattern"][head].numpy()
            overview = words.attach(overview_figure(whole, all_labels, (q0, k0, size), head=short),
                                    words.overview_text(whole, (q0, k0, size)))
            note = _("This prompt has {t} tokens: the charts below show {size} queries × {size} keys (the window "
                     "outlined here, every number exact). Click the overview or type the first positions to move "
                     "it.").format(t=T, size=size)
        else:
            overview, note = message_figure(""), ""
        head_options = [{"label": _("head {h} (L{layer}H{h2})").format(h=h + 1, layer=layer, h2=h), "value": h}
                        for h in range(cfg.n_head)]
        shown = sorted(set(range(q0, q0 + size)) | set(range(k0, k0 + size)))
        focus_options = [{"label": all_labels[p], "value": p} for p in shown]
        return (name[0].upper() + name[1:] + where,
                words.attach(scores_figure(arrays, labels, _("Scores and pattern: {name}").format(name=name),
                                           key_labels, head=short),
                             words.scores_text(arrays, labels, key_labels, short)),
                words.attach(qkv_figure(arrays["q"], arrays["k"], arrays["v"], labels,
                                        _("Queries, keys, values: {name}").format(name=name), key_labels, head=short),
                             words.qkv_text(arrays["q"], arrays["k"], arrays["v"], labels, key_labels, short)),
                words.attach(output_figure(arrays["z"], labels, head=short),
                             words.head_output_text(arrays["z"], labels, short)), projection, overview,
                {"display": "block"} if long else {"display": "none"}, note, str(q0), str(k0), head_options,
                focus_options)

    @app.callback(Output("attention-q-start", "value"), Output("attention-k-start", "value"),
                  Input("attention-overview", "clickData"), Input(ids.SEQUENCE, "data"),
                  State("attention-q-start", "value"), State("attention-k-start", "value"), prevent_initial_call=True)
    def move_window(click, sequence, q_start, k_start):
        """A click on the overview centres the window on that cell; a new sequence shows its last tokens
        (empty inputs: the default)."""
        if callback_context.triggered_id != "attention-overview":
            if q_start is None and k_start is None:
                raise PreventUpdate
            return None, None
        try:
            T = len(sequence["ids"])
            point = click["points"][0]
            query, key = int(round(float(point["y"]))), int(round(float(point["x"])))
        except (TypeError, KeyError, ValueError, IndexError, OverflowError):
            raise PreventUpdate from None
        q0, k0, _unused = window_starts(T, query - WINDOW // 2, key - WINDOW // 2)
        return q0, k0

    @app.callback(Output("attention-headview", "figure"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input(ids.HEAD, "value"), Input("headview-heads", "value"), Input("headview-focus", "value"),
                  Input("headview-side", "value"), Input("attention-q-start", "value"),
                  Input("attention-k-start", "value"))
    @state.memoized
    def show_head_view(sequence, view, layer, head, heads, focus, side, q_start, k_start):
        if view != "attention" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        chosen = heads if isinstance(heads, list) and heads else [head]
        chosen = sorted({h for h in chosen if valid_index(h, cfg.n_head)})
        if not valid_index(layer, cfg.n_layer) or not chosen:
            return message_figure(_("Choose a block from 1 to {n_layer} and at least one head.").format(
                n_layer=cfg.n_layer))
        q0, k0, size = _window(sequence, q_start, k_start)
        pattern = trace[f"blocks.{layer}.attn.hook_pattern"].numpy()
        texts = axis_labels(trace.tokens)
        patterns = {h: pattern[h] for h in chosen}
        focus = focus if valid_index(focus, len(texts)) else None
        side = side if side in ("query", "key") else "query"
        rows, cols = range(q0, q0 + size), range(k0, k0 + size)
        lines = words.head_view_lines(patterns, focus, side, rows, cols, LINE_MIN_WEIGHT)
        return words.attach(head_view_figure(patterns, texts, focus, side, rows=rows, cols=cols, layer=layer),
                            words.head_view_text(lines, texts, layer, LINE_MIN_WEIGHT))

    app.clientside_callback(ClientsideFunction("headview", "bind_hover"), Output(HEADVIEW_HOVER, "data"),
                            Input("attention-headview", "figure"), State("attention-headview", "id"))

    @app.callback(Output("headview-focus", "value"), Output("headview-side", "value"),
                  Input("attention-headview", "clickData"), State("headview-focus", "value"),
                  State("headview-side", "value"), prevent_initial_call=True)
    def focus_token(click, current, side):
        """Clicking a token shows only its lines (as a query on the left, as a key on the right); clicking
        the focused token again shows all lines."""
        try:
            position, column = (int(x) for x in click["points"][0]["customdata"])
        except (TypeError, KeyError, ValueError, IndexError):
            raise PreventUpdate from None
        role = "key" if column == 1 else "query"
        if position == current and role == side:
            return None, role
        return position, role

    @app.callback(Output("attention-cell", "children"), Output("attention-cell-terms", "figure"),
                  Output("attention-cell-terms-wrap", "style"),
                  Input("attention-scores", "clickData"), Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"),
                  Input(ids.BLOCK, "value"), Input(ids.HEAD, "value"))
    def inspect_cell(click, sequence, view, layer, head):
        """The clicked cell (query i, key j) in words and all its q[d]·k[d] terms: computed here, on demand."""
        hidden = {"display": "none"}
        if view != "attention" or not sequence:
            raise PreventUpdate
        if not click:
            return _(HINT), message_figure(""), hidden
        try:
            point = click["points"][0]
            i, j = _position(point["y"]), _position(point["x"])
        except (TypeError, KeyError, ValueError, IndexError):
            return _(HINT), message_figure(""), hidden
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        labels = axis_labels(trace.tokens)
        if not (valid_index(layer, cfg.n_layer) and valid_index(head, cfg.n_head) and valid_index(i, len(labels))
                and valid_index(j, len(labels))):
            return _("That cell is not in this prompt: click a cell of the pattern."), message_figure(""), hidden
        if j > i:
            return (_("Query {labels} cannot see key {labels2}: it comes later, so the mask sets its score to −∞ and "
                      "its weight to 0.").format(labels=labels[i], labels2=labels[j])), message_figure(""), hidden
        b = f"blocks.{layer}.attn"
        q_i, k_j = trace[f"{b}.hook_q"][i, head].numpy(), trace[f"{b}.hook_k"][j, head].numpy()
        raw = float(q_i.astype(np.float64) @ k_j.astype(np.float64))
        root = math.sqrt(q_i.shape[0])
        weight = float(trace[f"{b}.hook_pattern"][head, i, j])
        terms = qk_terms(q_i, k_j)
        rows = [html.Tr([html.Td(t["dim"]), html.Td(f"{t['q']:.4f}"), html.Td(f"{t['k']:.4f}"),
                         html.Td(f"{t['product']:+.4f}")]) for t in terms]
        name = head_name(layer, head)
        text = [html.P(_("{value}: query {labels} → key {labels2}. Raw score q·k = {raw}; ÷ {root:g} = {raw2}; after "
                         "softmax over the {i} keys it can see, attention weight A = {weight}. The raw score is the "
                         "sum of {value2} products q[d]·k[d]; the {n_terms} largest:").format(
            value=name[0].upper() + name[1:], labels=labels[i], labels2=labels[j], raw=number(raw, 4), root=root,
            raw2=number(raw / root, 4), i=i + 1, weight=number(weight, 4), value2=q_i.shape[0], n_terms=len(terms))),
                html.Table([html.Thead(html.Tr([html.Th(_("dimension d")), html.Th("q[d]"), html.Th("k[d]"),
                                                html.Th("q[d]·k[d]")])), html.Tbody(rows)], className="terms")]
        figure = words.attach(
            qk_terms_figure(q_i, k_j, _("All {value} terms of q·k for {labels} → {labels2} (sum = {raw})").format(
                value=q_i.shape[0], labels=labels[i], labels2=labels[j], raw=number(raw, 3))),
            words.qk_terms_text(q_i, k_j, labels[i], labels[j]))
        return text, figure, {"display": "block"}
