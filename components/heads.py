"""All heads at once: a block × head grid of small attention patterns, and per-head statistics that make
previous-token heads, first-token ("attention sink") heads and self heads stand out. Click a head to open it."""
from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, State, callback_context, dash_table, dcc, html
from dash.dash_table import FormatTemplate
from dash.dash_table.Format import Format, Scheme
from dash.exceptions import PreventUpdate

from . import figure_text as words
from . import ids, palette, state
from .common import HIGHLIGHT, KEYBOARD_FIGURE, MASKED_COLOR, SEQUENTIAL, explanation, style
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import N_, _

CELL_TEXT_MAX = 64  # heads in the statistic map with their values written in the cells
CELL = 32  # each head's pattern is block-averaged down to at most CELL × CELL for the grid
STATISTICS = {"entropy": N_("Entropy (bits)"), "first": N_("Attention to the first token"),
              "previous": N_("Attention to the previous token"), "self": N_("Attention to itself"),
              "distance": N_("Mean distance looked back (tokens)")}
# Sort order of the table and which heads are outlined on the grid: focused heads for entropy, else the largest.
ASCENDING = {"entropy"}
STAT_FORMATS = {"entropy": ".2f", "first": ".1%", "previous": ".1%", "self": ".1%", "distance": ".1f"}

# The grid image is uint8: 0..ATTN_MAX attention (each cell scaled to its own maximum), MASKED for cells a query
# cannot see, GAP for the lines between heads. The colour scale maps these codes to colours.
ATTN_MAX, MASKED, GAP = 250, 253, 255
GRID_COLORSCALE = [[0.0, "#f7fbff"], [0.3 * ATTN_MAX / 255, "#c6dbef"], [0.6 * ATTN_MAX / 255, "#4292c6"],
                   [ATTN_MAX / 255, "#08306b"], [251 / 255, MASKED_COLOR], [254 / 255, MASKED_COLOR],
                   [254 / 255, palette.GAP], [1.0, palette.GAP]]


def head_statistics(pattern: np.ndarray) -> dict[str, np.ndarray]:
    """Per head, from attention patterns [H, T, T] (rows are queries and sum to 1), each averaged over the
    query positions i:

    - entropy: -Σ_j A_ij log2 A_ij, in bits (0 = all attention on one token; a uniform causal row i has
      log2(i + 1)); row 0 can only see itself, so its entropy is always 0 and it is included.
    - first: A_i0, the share on the first token (the "attention sink").
    - previous: A_i,i-1, the share on the token just before. Row 0 has no previous token, so this averages
      rows 1..T-1 only (0 when T = 1).
    - self: A_ii, the share on the token itself.
    - distance: Σ_j A_ij (i - j), how many tokens back the head looks on average (0 for row 0).
    """
    p = np.asarray(pattern, dtype=np.float32)
    H, T, _unused = p.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)
    entropy = -plogp.sum(-1, dtype=np.float64).mean(-1)
    previous = p[:, np.arange(1, T), np.arange(T - 1)].mean(-1, dtype=np.float64) if T > 1 else np.zeros(H)
    back = np.arange(T)[:, None] - np.arange(T)[None, :]  # i - j; negative cells are masked (weight 0)
    distance = (p * np.maximum(back, 0).astype(np.float32)).sum(-1, dtype=np.float64).mean(-1)
    return {"entropy": entropy.astype(np.float32),
            "first": p[:, :, 0].mean(-1, dtype=np.float64).astype(np.float32),
            "previous": previous.astype(np.float32),
            "self": np.diagonal(p, axis1=1, axis2=2).mean(-1, dtype=np.float64).astype(np.float32),
            "distance": distance.astype(np.float32)}


def bin_edges(T: int, size: int) -> np.ndarray:
    """size + 1 integer edges that split 0..T into size bins of near-equal width (T > size)."""
    return np.linspace(0, T, size + 1).round().astype(int)


@functools.lru_cache(maxsize=8)
def _visible_counts(T: int, size: int) -> np.ndarray:
    """How many cells of each (query bin, key bin) a query may see (key ≤ query)."""
    edges = bin_edges(T, size)[:-1]
    visible = np.tri(T, dtype=np.float32)
    return np.add.reduceat(np.add.reduceat(visible, edges, axis=0), edges, axis=1)


def block_average(pattern: np.ndarray, size: int = CELL) -> tuple[np.ndarray, np.ndarray]:
    """A [T, T] attention pattern as at most size × size bins, each the mean over the cells its queries can
    see (masked cells, above the diagonal, are left out; a bin with none is NaN). Returns (bins, edges): bin
    (r, c) covers queries edges[r]..edges[r+1]-1 and keys edges[c]..edges[c+1]-1. At T ≤ size the bins are the
    cells themselves, exactly."""
    T = pattern.shape[0]
    if T <= size:
        out = np.array(pattern, dtype=np.float32)
        out[np.triu_indices(T, k=1)] = np.nan
        return out, np.arange(T + 1)
    edges = bin_edges(T, size)
    sums = np.add.reduceat(np.add.reduceat(np.tril(pattern).astype(np.float32), edges[:-1], axis=0),
                           edges[:-1], axis=1)
    counts = _visible_counts(T, size)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / counts, np.nan).astype(np.float32), edges


def downsample(pattern: np.ndarray, size: int = CELL) -> np.ndarray:
    """Block-average a [T, T] pattern to at most size × size (masked bins are NaN): see `block_average`."""
    return block_average(pattern, size)[0]


def grid_image(patterns) -> tuple[np.ndarray, int]:
    """All heads' downsampled patterns, per block [H, T, T] (an [L, H, T, T] array or a list of per-block
    arrays: no copy of the whole model's patterns is made), tiled into one image with a one-pixel gap (-1)
    between cells. Each cell is scaled to its own maximum (the grid shows shapes); masked bins are NaN."""
    blocks = list(patterns)
    L, H = len(blocks), blocks[0].shape[0]
    s = min(CELL, blocks[0].shape[-1])
    image = np.full((L * (s + 1) - 1, H * (s + 1) - 1), -1.0, dtype=np.float32)
    for l, block in enumerate(blocks):
        for h in range(H):
            cell = downsample(np.asarray(block[h]), s)
            top = np.nanmax(cell) if np.isfinite(cell).any() else 1.0
            image[l * (s + 1): l * (s + 1) + s, h * (s + 1): h * (s + 1) + s] = cell / max(float(top), 1e-9)
    return image, s


def quantise_grid(image: np.ndarray) -> np.ndarray:
    """The grid image as uint8 codes (0..ATTN_MAX attention, MASKED, GAP): 144 patterns in ~150 kB."""
    codes = np.round(np.clip(np.nan_to_num(image, nan=0.0), 0, 1) * ATTN_MAX).astype(np.uint8)
    codes[np.isnan(image)] = MASKED
    codes[image < 0] = GAP
    return codes


def grid_figure(patterns, stats: dict[str, np.ndarray] | None = None,
                highlight: list[tuple[int, int]] = ()) -> go.Figure:
    """The block × head grid of patterns. One invisible marker per cell carries (block+1, head+1, block, head,
    and the statistics when given): hover names the head, a click opens it. `highlight` heads are outlined."""
    image, s = grid_image(patterns)
    L, H = (image.shape[0] + 1) // (s + 1), (image.shape[1] + 1) // (s + 1)
    fig = go.Figure(go.Heatmap(z=quantise_grid(image), colorscale=GRID_COLORSCALE, zmin=0, zmax=255,
                               showscale=False, hoverinfo="skip", meta={"csv": False}))  # colour codes, not data
    blocks, heads = np.divmod(np.arange(L * H), H)
    columns = [blocks + 1, heads + 1, blocks, heads]
    names = [_("block"), _("head"), "L", "H"]
    hover = "<b>block %{customdata[0]}, head %{customdata[1]}</b> (L%{customdata[2]}H%{customdata[3]})"
    if stats:
        for n, key in enumerate(STATISTICS, start=4):
            columns.append(np.round(stats[key].reshape(-1).astype(float), 4))
            names.append(_(STATISTICS[key]))
            hover += f"<br>{_(STATISTICS[key])}: %{{customdata[{n}]:{STAT_FORMATS[key]}}}"
    fig.add_scatter(x=heads * (s + 1) + (s - 1) / 2, y=blocks * (s + 1) + (s - 1) / 2, mode="markers",
                    marker=dict(size=max(8, min(40, 560 // max(L, H))), opacity=0, symbol="square"),
                    # a plain list: clickData carries it back, and typed arrays would arrive as {"0": ...} objects
                    customdata=[[int(v) for v in row[:4]] + row[4:] for row in np.stack(columns, axis=1).tolist()],
                    hovertemplate=hover + _("<br>click to open<extra></extra>"), showlegend=False,
                    meta={"csv_columns": names})  # the CSV: every head with its statistics
    for l, h in highlight:
        fig.add_shape(type="rect", x0=h * (s + 1) - 0.8, x1=h * (s + 1) + s - 0.2, y0=l * (s + 1) - 0.8,
                      y1=l * (s + 1) + s - 0.2, line=dict(color=HIGHLIGHT, width=3))
    fig.update_xaxes(tickvals=[h * (s + 1) + (s - 1) / 2 for h in range(H)], ticktext=[str(h + 1) for h in range(H)],
                     title=_("head"), side="top", showgrid=False, zeroline=False, tickangle=0)
    fig.update_yaxes(tickvals=[l * (s + 1) + (s - 1) / 2 for l in range(L)], ticktext=[str(l + 1) for l in range(L)],
                     title=_("block"), autorange="reversed", showgrid=False, zeroline=False, scaleanchor="x")
    style(fig, _("Every head's pattern (darker = more attention, grey = masked)"), height=680)
    fig.update_layout(margin=dict(t=110))
    return fig


def top_heads(values: np.ndarray, statistic: str, n: int) -> list[tuple[int, int]]:
    """The n heads that stand out by `statistic`: lowest entropy, else highest value."""
    flat = values.reshape(-1).astype(np.float64)
    order = np.argsort(flat if statistic in ASCENDING else -flat, kind="stable")[:n]
    return [tuple(int(x) for x in divmod(int(i), values.shape[1])) for i in order]


def statistic_figure(values: np.ndarray, name: str, fmt: str = ".2f") -> go.Figure:
    L, H = values.shape
    fig = go.Figure(go.Heatmap(z=values.astype(np.float32), x=[str(h + 1) for h in range(H)],
                               y=[str(l + 1) for l in range(L)], colorscale=SEQUENTIAL, zmin=0,
                               # values written in the cells only while they fit (GPT-2's 144 would crowd)
                               texttemplate=f"%{{z:{fmt}}}" if L * H <= CELL_TEXT_MAX else None, textfont=dict(size=10),
                               hovertemplate=_("block %{y}, head %{x}<br>") + name + f" = %{{z:{fmt}}}"
                               + _("<br>click to open<extra></extra>")))
    fig.update_xaxes(title=_("head"), type="category")
    fig.update_yaxes(title=_("block"), type="category", autorange="reversed")
    return style(fig, _("{name}, every head").format(name=name), height=480)


def statistics_table(stats: dict[str, np.ndarray], sort_by: str, top: int | None = None) -> list[dict]:
    """One row per head (id "block,head", 0-based), sorted by `sort_by` (entropy ascending, others
    descending); `top` keeps the first rows only."""
    L, H = stats["entropy"].shape
    rows = [{"id": f"{l},{h}", "head": _("block {l}, head {h}").format(l=l + 1, h=h + 1), "tl": f"L{l}H{h}",
             **{k: round(float(v[l, h]), 3) for k, v in stats.items()}} for l in range(L) for h in range(H)]
    rows.sort(key=lambda r: r[sort_by], reverse=sort_by not in ASCENDING)
    return rows[:top] if top else rows


def all_statistics(trace) -> dict[str, np.ndarray]:
    """Statistics for every head [L, H]."""
    per_layer = [head_statistics(trace[f"blocks.{l}.attn.hook_pattern"].numpy()) for l in range(trace.config.n_layer)]
    return {k: np.stack([s[k] for s in per_layer]) for k in STATISTICS}


def head_from_click(trigger: str, grid_click, map_click, table_cell) -> tuple[int, int]:
    """(block, head), 0-based, from a click on the grid, the statistic map or the table; ValueError etc. on junk."""
    if trigger == "heads-grid":
        data = grid_click["points"][0]["customdata"]
        return int(data[2]), int(data[3])
    if trigger == "heads-statistic-map":
        point = map_click["points"][0]
        return int(point["y"]) - 1, int(point["x"]) - 1
    if trigger == "heads-table":
        block, head = str(table_cell["row_id"]).split(",")
        return int(block), int(head)
    raise ValueError(trigger)


def section():
    stat_text = (
        _("**Entropy** (bits): how spread out a query's attention is, averaged over the queries: 0 = all on one "
          "token; a head that spreads evenly over i + 1 tokens has log₂(i + 1). **First token**: the share on token "
          "0, where many heads park attention they do not need (an *attention sink*). **Previous token**: the share "
          "on the token just before (row 0 has none, so it is left out of that mean). **Itself**: the share on the "
          "query's own token. **Distance**: how many tokens back the head looks, on average."))
    return [
        explanation(
            _("Every block has several **heads**. Each head has its own query, key and value weights, so each learns "
              "its own way of choosing which earlier tokens to read. Below is every head's pattern for this prompt "
              "(queries down, keys across, as in the *Attention head* tab; long prompts are averaged into 32 × 32 "
              "blocks). Some heads look at the **previous token**, some park their attention on the **first token** "
              "when nothing else is relevant, some look at the token itself, some spread out. Pick a statistic to "
              "find them (the top heads are outlined); click a head to open it."),
            r"A^{(\ell,h)} = \mathrm{softmax}\!\left(\frac{Q^{(\ell,h)} K^{(\ell,h)\top}}{\sqrt{d_k}} + M\right),"
            r"\quad H^{(\ell,h)} = \frac{1}{T}\sum_{i=0}^{T-1} \Big(-\sum_{j \le i} A_{ij} \log_2 A_{ij}\Big)"),
        html.Div([
            html.Div(accessible_graph("heads-grid", _("Every head's attention pattern"), className=KEYBOARD_FIGURE),
                     style={"flex": "1 1 560px", "minWidth": "0"}),
            html.Div([
                html.Div([html.Label(_("Statistic"), htmlFor="heads-statistic"),
                          dcc.Dropdown(id="heads-statistic", value="previous", clearable=False,
                                       options=[{"label": _(v), "value": k} for k, v in STATISTICS.items()])],
                         className="inline-control"),
                explanation(stat_text),
                accessible_graph("heads-statistic-map", _("The chosen statistic for every head"),
                                 className=KEYBOARD_FIGURE),
            ], style={"flex": "1 1 420px", "minWidth": "0"}),
        ], style={"display": "flex", "flexWrap": "wrap", "gap": "12px"}),
        html.H4(_("Every head, sortable (click a column title to sort, a row to open the head)")),
        dash_table.DataTable(
            id="heads-table", page_size=12, sort_action="native",
            columns=[{"name": _("head (from 1)"), "id": "head"}, {"name": _("L·H (from 0)"), "id": "tl"}]
            + [{"name": v, "id": k, "type": "numeric",
                "format": FormatTemplate.percentage(1) if STAT_FORMATS[k].endswith("%") else Format(precision=3, scheme=Scheme.fixed)}
               for k, v in STATISTICS.items()],
            style_table={"overflowX": "auto"}, style_cell={"fontFamily": "inherit", "padding": "4px 8px"},
            style_header={"fontWeight": "600", "whiteSpace": "normal"}),
    ]


def register(app) -> None:
    register_figures(app, "heads-grid", "heads-statistic-map")

    @app.callback(Output("heads-grid", "figure"), Output("heads-statistic-map", "figure"), Output("heads-table", "data"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("heads-statistic", "value"))
    @state.memoized
    def show_heads(sequence, view, statistic):
        if view != "heads" or not sequence:
            raise PreventUpdate
        statistic = statistic if isinstance(statistic, str) and statistic in STATISTICS else "previous"
        trace = state.trace_for(sequence["ids"])
        L, H = trace.config.n_layer, trace.config.n_head
        patterns = [trace[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(L)]  # views, no copy
        stats = all_statistics(trace)
        outlined = top_heads(stats[statistic], statistic, max(1, min(10, L * H // 8)))
        name, spec = _(STATISTICS[statistic]), STAT_FORMATS[statistic]
        return (words.attach(grid_figure(patterns, stats, outlined),
                             words.grid_text(stats[statistic], outlined, name, spec)),
                words.attach(statistic_figure(stats[statistic], name, spec),
                             words.statistic_text(stats[statistic], name, spec)),
                statistics_table(stats, statistic))

    @app.callback(Output(ids.BLOCK, "value", allow_duplicate=True), Output(ids.HEAD, "value", allow_duplicate=True),
                  Output(ids.VIEW, "value", allow_duplicate=True),
                  Input("heads-grid", "clickData"), Input("heads-statistic-map", "clickData"),
                  Input("heads-table", "active_cell"), State(ids.SEQUENCE, "data"), prevent_initial_call=True)
    def open_head(grid_click, map_click, table_cell, sequence):
        if not sequence:
            raise PreventUpdate
        try:
            block, head = head_from_click(callback_context.triggered_id, grid_click, map_click, table_cell)
        except (TypeError, KeyError, ValueError, IndexError, AttributeError):
            raise PreventUpdate from None
        cfg = state.model.get().config
        if not (0 <= block < cfg.n_layer and 0 <= head < cfg.n_head):
            raise PreventUpdate
        return block, head, "attention"
