"""The attention-head and all-heads views: pure figure builders checked against the trace they draw, hand-made
patterns with known statistics, and the callbacks called through the app's endpoint (no browser)."""
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from app import create_app
from bench.dash_client import DashClient
from components import attention, heads, ids, state
from components.common import axis_labels
from model_runtime import GPT2Config
from model_runtime.model import GPT
from model_runtime.runtime import GPT2Runtime
from model_runtime.tokenizer import get_tokenizer

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def wide_head_model():
    """GPT-2's head width (d_head 64), small otherwise: the scaling is ÷ 8 as in GPT-2 small."""
    torch.manual_seed(3)
    cfg = GPT2Config(n_layer=2, n_head=2, d_model=128, d_mlp=256, n_ctx=256, name="wide-head")
    return GPT2Runtime(GPT(cfg).init_untrained(), get_tokenizer(), pretrained=False, source="test", message="test")


@pytest.fixture(scope="module")
def full_trace(wide_head_model):
    """Everything captured, raw and scaled scores included (the app's traces leave those out)."""
    return wide_head_model.trace(PROMPT)


@pytest.fixture(scope="module")
def client(tiny_model):
    return DashClient(create_app(runtime=tiny_model).server.test_client())


def sequence(runtime, text=PROMPT):
    token_ids = runtime.tokenizer.encode(text)
    return {"ids": token_ids, "n_prompt": len(token_ids), "label": "prompt"}


def z(trace_):
    return np.array(trace_.z, dtype=float)


# ---------------------------------------------------------------- one head: Q, K, V, scores, pattern

def test_pattern_figure_is_the_capture_and_masked_cells_are_the_upper_triangle(wide_head_model, full_trace):
    assert wide_head_model.config.d_head == 64
    for layer, head in ((0, 0), (1, 1)):
        arrays = attention.head_arrays(full_trace, layer, head)
        labels = axis_labels(full_trace.tokens)
        fig = attention.scores_figure(arrays, labels, "t")
        raw, scaled, masked, pattern = (z(d) for d in fig.data)
        T = len(labels)
        upper = np.triu(np.ones((T, T), dtype=bool), 1)
        capture = full_trace[f"blocks.{layer}.attn.hook_pattern"][head].numpy()
        assert np.array_equal(pattern[~upper], capture[~upper])          # every visible cell, exactly
        assert np.array_equal(np.isnan(pattern), upper)                  # masked = exactly the upper triangle
        assert np.array_equal(np.isnan(masked), upper) and not np.isnan(raw).any() and not np.isnan(scaled).any()
        assert np.allclose(raw, full_trace[f"blocks.{layer}.attn.hook_raw_scores"][head].numpy(), atol=1e-4)
        assert np.allclose(scaled, raw / 8, rtol=1e-6, atol=1e-7)       # ÷ √64
        attn_scores = full_trace[f"blocks.{layer}.attn.hook_attn_scores"][head].numpy()
        assert np.allclose(masked[~upper], attn_scores[~upper], atol=1e-5) and np.isneginf(attn_scores[upper]).all()
        # Q, K, V are the captured ones, and pattern · V is the head's output hook_z[:, h]
        attn = f"blocks.{layer}.attn"
        for name in "qkv":
            assert np.array_equal(arrays[name], full_trace[f"{attn}.hook_{name}"][:, head].numpy())
        assert np.allclose(np.nan_to_num(pattern) @ arrays["v"], full_trace[f"{attn}.hook_z"][:, head].numpy(),
                           atol=1e-5)
        # masked cells are drawn by the grey background, not as numbers
        assert fig.layout.plot_bgcolor == attention.MASKED_COLOR and fig.data[2].hoverongaps is False
        assert fig.data[0].zmin == -fig.data[0].zmax and fig.data[1].zmax == fig.data[0].zmax  # ① ② share colours
        assert fig.data[3].zmin == 0 and fig.data[3].zmax == 1


def test_qkv_and_output_figures_hold_the_head_numbers(full_trace):
    arrays = attention.head_arrays(full_trace, 1, 0)
    labels = axis_labels(full_trace.tokens)
    fig = attention.qkv_figure(arrays["q"], arrays["k"], arrays["v"], labels, "t")
    for trace_, name in zip(fig.data, "qkv"):
        assert np.array_equal(z(trace_), arrays[name]) and list(trace_.y) == labels and len(trace_.x) == 64
        assert trace_.zmin == -trace_.zmax  # diverging, centred at 0
    out = attention.output_figure(arrays["z"], labels)
    assert np.array_equal(z(out.data[0]), full_trace["blocks.1.attn.hook_z"][:, 0].numpy())


def test_window_is_a_slice_of_the_whole_head(full_trace):
    whole = attention.head_arrays(full_trace, 1, 1)
    part = attention.head_arrays(full_trace, 1, 1, q0=6, k0=2, size=5)
    rows, cols = slice(6, 11), slice(2, 7)
    for name in ("raw", "scaled", "masked", "pattern"):
        assert np.allclose(part[name], whole[name][rows, cols], atol=1e-6, equal_nan=True)
    assert np.array_equal(np.isnan(part["pattern"]), np.arange(2, 7)[None, :] > np.arange(6, 11)[:, None])
    assert np.array_equal(part["z"], whole["z"][rows]) and np.array_equal(part["v"], whole["v"][cols])
    T = 300
    assert attention.window_starts(T) == (T - 128, T - 128, 128)
    assert attention.window_starts(T, 0, 5.0) == (0, 5, 128)
    assert attention.window_starts(T, 10**9, -4) == (T - 128, 0, 128)  # clamped
    for junk in (None, "x", float("nan"), float("inf"), True, [1]):
        assert attention.window_starts(T, junk, junk) == (T - 128, T - 128, 128)
    assert attention.window_starts(20, 3, 3) == (0, 0, 20)  # short prompts: everything


def test_qk_terms_sum_to_the_raw_score_and_the_top_ones_are_the_largest(full_trace):
    arrays = attention.head_arrays(full_trace, 0, 1)
    q, k = arrays["q"][9], arrays["k"][4]
    every = attention.qk_terms(q, k, top=64)
    assert sorted(t["dim"] for t in every) == list(range(64))
    assert math.isclose(sum(t["product"] for t in every), float(arrays["raw"][9, 4]), abs_tol=1e-4)
    top = attention.qk_terms(q, k)
    magnitudes = np.sort(np.abs(q * k))[::-1]
    assert len(top) == 5 and np.allclose([abs(t["product"]) for t in top], magnitudes[:5])
    assert all(t["product"] == pytest.approx(t["q"] * t["k"]) for t in top)
    # all cells at once (the hover's precomputed terms) agree with the one-cell helper
    dims, products = attention.top_qk_terms(arrays["q"], arrays["k"])
    for i, j in ((0, 0), (9, 4), (12, 12), (12, 0)):
        cell = attention.qk_terms(arrays["q"][i], arrays["k"][j])
        assert list(dims[i, j]) == [t["dim"] for t in cell]
        assert np.allclose(products[i, j], [t["product"] for t in cell])


def test_pattern_hover_carries_every_stage_and_the_top_terms(full_trace):
    arrays = attention.head_arrays(full_trace, 1, 0)
    labels = axis_labels(full_trace.tokens)
    fig = attention.scores_figure(arrays, labels, "t", head="L1H0")
    pattern = fig.data[3]
    custom = np.array(pattern.customdata)
    assert custom.shape == (len(labels), len(labels), 2 + 2 * attention.TOP_TERMS) and custom.dtype == np.float32
    visible = ~np.isnan(arrays["pattern"])
    assert np.allclose(custom[..., 0][visible], arrays["raw"][visible])
    assert np.allclose(custom[..., 1][visible], arrays["scaled"][visible])
    i, j = 11, 3
    top = attention.qk_terms(arrays["q"][i], arrays["k"][j])
    assert list(custom[i, j, 2:7].astype(int)) == [t["dim"] for t in top]
    assert np.allclose(custom[i, j, 7:12], [t["product"] for t in top], atol=1e-6)
    for text in ("query %{y}", "key %{x}", "raw q·k", "A = %{z:.4f}", "customdata[11]", "L1H0"):
        assert text in pattern.hovertemplate
    # longer windows: no precomputed terms (the payload stays small); a click computes them
    many = {name: np.zeros((200, 200), np.float32) for name in ("raw", "scaled", "masked", "pattern")}
    many.update(q=np.zeros((200, 64), np.float32), k=np.zeros((200, 64), np.float32))
    long_fig = attention.scores_figure(many, [f"{n}:x" for n in range(200)], "t")
    assert np.array(long_fig.data[3].customdata).shape == (200, 200, 2)
    assert "click" in long_fig.data[3].hovertemplate


def test_long_windows_thin_their_tick_labels():
    T = 128
    arrays = {name: np.zeros((T, T), np.float32) for name in ("raw", "scaled", "masked", "pattern")}
    arrays.update(q=np.zeros((T, 64), np.float32), k=np.zeros((T, 64), np.float32))
    labels = [f"{n}:tok" for n in range(T)]
    fig = attention.scores_figure(arrays, labels, "t")
    for axis in ("xaxis", "yaxis", "xaxis4", "yaxis4"):
        shown = fig.layout[axis].tickvals
        assert 4 <= len(shown) < 50 and set(shown) <= set(labels)
    assert fig.layout.height <= 1150
    assert fig.layout.xaxis4.matches == "x" and fig.layout.yaxis4.matches == "y"  # one zoom for all four


def test_figures_send_float32_binary():
    arrays = {name: np.random.default_rng(0).random((20, 20)).astype(np.float32) for name in ("raw", "scaled",
                                                                                               "masked", "pattern")}
    arrays.update(q=np.ones((20, 64), np.float32), k=np.ones((20, 64), np.float32))
    data = json.loads(attention.scores_figure(arrays, [f"{n}:a" for n in range(20)], "t").to_json())["data"]
    assert all(t["z"]["dtype"] == "f4" for t in data) and data[3]["customdata"]["dtype"] == "f4"


# ---------------------------------------------------------------- concatenation and projection

def test_projection_shows_the_concatenation_and_each_heads_share(wide_head_model, full_trace):
    layer, head = 1, 1
    z_all = full_trace[f"blocks.{layer}.attn.hook_z"].numpy()
    proj = wide_head_model.model.h[layer].attn.c_proj
    w_o = proj.weight.detach().numpy()
    contributions = attention.head_contributions(z_all, w_o)
    per_head = np.einsum("thd,hdm->htm", z_all, w_o.reshape(2, 64, -1))
    attn_out = full_trace[f"blocks.{layer}.hook_attn_out"].numpy()
    assert np.allclose(per_head.sum(0) + proj.bias.detach().numpy(), attn_out, atol=1e-5)
    assert np.allclose(contributions, np.linalg.norm(per_head, axis=-1), atol=1e-5)
    labels = axis_labels(full_trace.tokens)
    T = len(labels)
    fig = attention.projection_figure(z_all, contributions, attn_out, labels, head)
    assert T <= attention.FULL_WIDTH_ROWS  # short prompts: every column, exact
    assert np.array_equal(z(fig.data[0]), z_all.reshape(T, -1)) and np.array_equal(z(fig.data[2]), attn_out)
    assert np.allclose(z(fig.data[1]), contributions.T)
    outline = fig.layout.shapes[0]
    assert (outline.x0, outline.x1) == (head * 64 - 0.5, (head + 1) * 64 - 0.5)  # the open head's 64 columns
    wide = attention.projection_figure(np.repeat(z_all, 3, 0), np.repeat(contributions, 3, 1),
                                       np.repeat(attn_out, 3, 0), [f"{n}:t" for n in range(3 * T)], head)
    assert z(wide.data[0]).shape == (3 * T, 128 // 8)  # longer prompts: means of 8 columns


# ---------------------------------------------------------------- head view

def test_head_view_draws_one_line_per_visible_weight():
    pattern = np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]
    fig = attention.head_view_figure({0: pattern}, ["a", "b", "c", "d"])
    lines = [d for d in fig.data if d.mode == "lines" and d.x and d.x[0] is not None]
    assert sum(len(d.x) // 3 for d in lines) == 10  # every visible cell of a 4-token causal pattern
    ends = {(-d.y[n], -d.y[n + 1]) for d in lines for n in range(0, len(d.y), 3)}
    assert ends == {(i, j) for i in range(4) for j in range(i + 1)}
    widths = {d.opacity: d.line.width for d in lines}
    assert list(widths.values()) == sorted(widths.values())  # heavier buckets: wider and more opaque
    focused = attention.head_view_figure({0: pattern}, list("abcd"), focus=3)
    assert sum(len(d.x) // 3 for d in focused.data if d.mode == "lines" and d.x[0] is not None) == 4
    as_key = attention.head_view_figure({0: pattern}, list("abcd"), focus=0, side="key")
    ends = {(-d.y[n], -d.y[n + 1]) for d in as_key.data if d.mode == "lines" and d.x[0] is not None
            for n in range(0, len(d.y), 3)}
    assert ends == {(i, 0) for i in range(4)}  # everyone who attends to token 0


def test_head_view_drops_small_weights_caps_lines_and_colours_heads():
    T = 300
    uniform = np.tril(np.ones((T, T), np.float32)) / np.arange(1, T + 1, dtype=np.float32)[:, None]
    fig = attention.head_view_figure({0: uniform, 3: np.eye(T, dtype=np.float32)}, [str(n) for n in range(T)],
                                     max_lines=1000)
    lines = [d for d in fig.data if d.mode == "lines" and d.x[0] is not None]
    assert sum(len(d.x) // 3 for d in lines) <= 1000
    colours = {d.line.color for d in lines}
    assert colours == {attention.HEAD_COLORS[0], attention.HEAD_COLORS[3]}
    legend = [d.name for d in fig.data if d.showlegend is not False and d.name]
    assert legend == ["head 1 (0)", "head 4 (3)"]
    # weights under 1% are not drawn: row i of the uniform head has weight 1/(i+1) < 0.01 from i = 100 on
    small = attention.head_view_figure({0: uniform}, [str(n) for n in range(T)], max_lines=10**6)
    drawn = sum(len(d.x) // 3 for d in small.data if d.mode == "lines" and d.x[0] is not None)
    assert drawn == sum(i + 1 for i in range(100))
    window = attention.head_view_figure({0: uniform}, [str(n) for n in range(T)], rows=range(250, 260),
                                        cols=range(250, 260), min_weight=0)
    assert sum(len(d.x) // 3 for d in window.data if d.mode == "lines" and d.x[0] is not None) == 55


# ---------------------------------------------------------------- overview of long prompts

def test_overview_is_exact_for_short_prompts_and_averaged_for_long_ones(full_trace):
    pattern = full_trace["blocks.0.attn.hook_pattern"][1].numpy()
    T = pattern.shape[0]
    labels = axis_labels(full_trace.tokens)
    fig = attention.overview_figure(pattern, labels, (2, 3, 5))
    shown = z(fig.data[0])
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    assert np.array_equal(shown[~upper], pattern[~upper]) and np.isnan(shown[upper]).all()
    rect = fig.layout.shapes[0]
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (2.5, 7.5, 1.5, 6.5)
    long = np.tril(np.ones((1024, 1024), np.float32)) / np.arange(1, 1025, dtype=np.float32)[:, None]
    big = attention.overview_figure(long, [f"{n}:w" for n in range(1024)], (896, 896, 128))
    assert z(big.data[0]).shape == (256, 256) and len(big.layout.xaxis.tickvals) <= 24


# ---------------------------------------------------------------- all heads: statistics, grid

def hand_made(T=6):
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    identity = np.eye(T)
    first = np.zeros((T, T))
    first[:, 0] = 1
    previous = np.eye(T, k=-1)
    previous[0, 0] = 1  # row 0 can only attend to itself
    return np.stack([uniform, identity, first, previous])


def test_head_statistics_on_hand_made_patterns():
    T = 6
    stats = heads.head_statistics(hand_made(T))
    rows = np.arange(T)
    assert np.isclose(stats["entropy"][0], np.mean(np.log2(rows + 1)), atol=1e-6)  # uniform causal
    assert np.allclose(stats["entropy"][1:], 0, atol=1e-7)                         # one token per row
    assert np.isclose(stats["self"][1], 1) and np.isclose(stats["self"][0], np.mean(1 / (rows + 1)))
    assert np.isclose(stats["first"][2], 1) and np.isclose(stats["first"][1], 1 / T)
    # previous token: averaged over rows 1..T-1 (row 0 has no previous token), so a previous-token head has 1
    assert np.isclose(stats["previous"][3], 1) and np.isclose(stats["previous"][1], 0)
    assert np.isclose(stats["previous"][0], np.mean(1 / (rows[1:] + 1)))
    assert np.isclose(stats["distance"][3], (T - 1) / T) and np.isclose(stats["distance"][1], 0)
    assert np.isclose(stats["distance"][2], np.mean(rows))
    one = heads.head_statistics(np.ones((2, 1, 1)))
    assert np.allclose(one["previous"], 0) and np.allclose(one["self"], 1) and np.allclose(one["entropy"], 0)


def test_statistics_table_and_top_heads():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    stats = {k: values for k in heads.STATISTICS}
    assert heads.top_heads(values, "previous", 2) == [(2, 3), (2, 2)]
    assert heads.top_heads(values, "entropy", 2) == [(0, 0), (0, 1)]  # lowest entropy = most focused
    rows = heads.statistics_table(stats, "first")
    assert len(rows) == 12 and rows[0]["id"] == "2,3" and rows[0]["head"] == "block 3, head 4" and rows[0]["tl"] == "L2H3"
    assert heads.statistics_table(stats, "entropy", top=3)[0]["id"] == "0,0"


def test_block_average_keeps_exact_cells_and_averages_visible_ones():
    p = hand_made(8)[0]
    small, edges = heads.block_average(p, 32)
    upper = np.triu(np.ones((8, 8), dtype=bool), 1)
    assert np.array_equal(small[~upper], p[~upper].astype(np.float32)) and np.isnan(small[upper]).all()
    assert list(edges) == list(range(9))
    binned, edges = heads.block_average(p, 4)  # 2 × 2 bins
    assert list(edges) == [0, 2, 4, 6, 8]
    assert np.isclose(binned[0, 0], (1 + 1 / 2 + 1 / 2) / 3)  # the three visible cells of the first bin
    assert np.isnan(binned[0, 1]) and np.isnan(binned[1, 3])  # bins that are all masked
    assert np.isclose(binned[3, 0], p[6:8, 0:2].mean())
    long = np.tril(np.random.default_rng(0).random((1024, 1024), dtype=np.float32))
    assert heads.downsample(long).shape == (heads.CELL, heads.CELL)


def test_grid_has_every_head_and_its_click_maps_to_that_head(tiny_model):
    trace = tiny_model.trace(PROMPT)
    L, H = trace.config.n_layer, trace.config.n_head
    patterns = [trace[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(L)]
    stats = heads.all_statistics(trace)
    fig = heads.grid_figure(patterns, stats, highlight=[(1, 2)])
    cells = fig.data[1].customdata
    assert len(cells) == L * H and {(int(c[2]), int(c[3])) for c in cells} == {(l, h) for l in range(L) for h in range(H)}
    codes = np.array(fig.data[0].z)
    s = len(trace.tokens)
    assert codes.dtype == np.uint8 and codes.shape == (L * (s + 1) - 1, H * (s + 1) - 1)
    # each cell is that head's own pattern (scaled to its maximum), masked cells coded as masked
    l, h = 1, 2
    cell = codes[l * (s + 1): l * (s + 1) + s, h * (s + 1): h * (s + 1) + s]
    pattern = patterns[l][h]
    upper = np.triu(np.ones_like(pattern, dtype=bool), 1)
    assert (cell[upper] == heads.MASKED).all()
    assert np.abs(cell[~upper] / heads.ATTN_MAX - (pattern / pattern.max())[~upper]).max() <= 0.5 / heads.ATTN_MAX + 1e-6
    assert (codes[s, :] == heads.GAP).all()  # the line between blocks
    for n, (c, point) in enumerate(zip(cells, zip(fig.data[1].x, fig.data[1].y))):
        block, head = heads.head_from_click("heads-grid", {"points": [{"customdata": list(c)}]}, None, None)
        assert (block, head) == divmod(n, H)
        assert c[4 + list(heads.STATISTICS).index("previous")] == pytest.approx(stats["previous"][block, head], abs=1e-4)
        # the marker sits in the middle of its cell
        assert point == ((head * (s + 1) + (s - 1) / 2), (block * (s + 1) + (s - 1) / 2))
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 < 2 * (s + 1) < fig.layout.shapes[0].x1
    assert heads.head_from_click("heads-statistic-map", None, {"points": [{"x": "3", "y": "2"}]}, None) == (1, 2)
    assert heads.head_from_click("heads-table", None, None, {"row": 0, "column": 0, "row_id": "1,3"}) == (1, 3)


def test_grid_renders_144_heads_of_1024_tokens_small():
    rng = np.random.default_rng(0)
    patterns = [np.tril(rng.random((12, 1024, 1024), dtype=np.float32)) for _ in range(12)]
    fig = heads.grid_figure(patterns)
    size = heads.CELL
    assert np.array(fig.data[0].z).shape == (12 * (size + 1) - 1,) * 2 and len(fig.data[1].customdata) == 144
    data = json.loads(fig.to_json())["data"]
    assert data[0]["z"]["dtype"] == "u1" and len(json.dumps(data)) < 250_000  # one byte per pixel


# ---------------------------------------------------------------- callbacks, through the app's endpoint

def test_attention_callback_draws_the_chosen_head(client, tiny_model):
    seq = sequence(tiny_model)
    inputs = {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "attention", f"{ids.BLOCK}.value": 1,
              f"{ids.HEAD}.value": 2}
    r = client.call("attention-scores.figure", inputs)
    assert r.status == 200 and r.value("attention-title", "children").startswith("Block 2, head 3 (L1H2)")
    trace = tiny_model.trace(seq["ids"])
    shown = r.value("attention-scores", "figure")["data"][3]["z"]
    assert shown["dtype"] == "f4" and "bdata" in shown
    assert r.value("attention-long", "style") == {"display": "none"}
    assert len(r.value("headview-heads", "options")) == tiny_model.config.n_head
    # junk block/head: a message, no error
    bad = client.call("attention-scores.figure", {**inputs, f"{ids.BLOCK}.value": 99})
    assert bad.status == 200 and "Choose a block" in json.dumps(bad.value("attention-scores", "figure"))
    # another tab open: nothing is computed
    closed = client.call("attention-scores.figure", {**inputs, f"{ids.VIEW}.value": "tokens"})
    assert closed.status == 204
    del trace


def test_a_repeated_view_request_is_served_from_the_shared_cache(client, tiny_model, monkeypatch):
    inputs = {f"{ids.SEQUENCE}.data": sequence(tiny_model, "A class opens the teacher's link"),
              f"{ids.VIEW}.value": "attention", f"{ids.BLOCK}.value": 0, f"{ids.HEAD}.value": 1}
    first = client.call("attention-scores.figure", inputs)
    monkeypatch.setattr(attention, "scores_figure", lambda *a, **k: pytest.fail("the view was computed again"))
    again = client.call("attention-scores.figure", inputs)
    assert again.status == 200 and again.body == first.body
    assert again.value("attention-scores", "figure")["data"][3]["z"]["dtype"] == "f4"  # still compact arrays


def test_cached_figures_are_plain_data():
    fig = go.Figure(go.Heatmap(z=np.eye(2, dtype=np.float32)))
    plain = state.as_plain_data(("title", fig, [fig], None))
    assert plain[0] == "title" and plain[3] is None
    assert plain[1] == fig.to_plotly_json() and isinstance(plain[1], dict) and isinstance(plain[2][0], dict)


def test_cell_inspector_lists_the_terms_of_a_clicked_cell(client, tiny_model):
    seq = sequence(tiny_model)
    trace = tiny_model.trace(seq["ids"])
    labels = axis_labels(trace.tokens)
    base = {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "attention", f"{ids.BLOCK}.value": 0,
            f"{ids.HEAD}.value": 3}
    click = {"points": [{"x": labels[2], "y": labels[7], "curveNumber": 3}]}
    r = client.call("attention-cell.children", {"attention-scores.clickData": click, **base},
                    changed="attention-scores.clickData")
    assert r.status == 200
    text = json.dumps(r.value("attention-cell", "children"), ensure_ascii=False)
    q, k = trace["blocks.0.attn.hook_q"][7, 3].numpy(), trace["blocks.0.attn.hook_k"][2, 3].numpy()
    assert f"{float(q @ k):.4f}" in text and labels[7] in text and labels[2] in text
    top = attention.qk_terms(q, k)[0]
    assert f"{top['product']:+.4f}" in text
    bars = r.value("attention-cell-terms", "figure")["data"][0]
    assert r.value("attention-cell-terms-wrap", "style") == {"display": "block"}
    assert len(bars["x"]["bdata"]) > 0 or len(bars["x"]) == tiny_model.config.d_head
    masked = client.call("attention-cell.children", {"attention-scores.clickData":
                                                     {"points": [{"x": labels[7], "y": labels[2]}]}, **base},
                         changed="attention-scores.clickData")
    assert "cannot see" in json.dumps(masked.value("attention-cell", "children"))
    for junk in ({"points": [{"x": "999:x", "y": "1000:y"}]}, {"points": []}, "junk", {"points": [{"x": None}]}):
        r = client.call("attention-cell.children", {"attention-scores.clickData": junk, **base},
                        changed="attention-scores.clickData")
        assert r.status == 200


def test_heads_callbacks_fill_the_grid_and_a_click_opens_the_head(client, tiny_model):
    seq = sequence(tiny_model)
    r = client.call("heads-grid.figure", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "heads",
                                          "heads-statistic.value": "first"})
    assert r.status == 200
    L, H = tiny_model.config.n_layer, tiny_model.config.n_head
    table = r.value("heads-table", "data")
    assert len(table) == L * H and [row["first"] for row in table] == sorted((row["first"] for row in table),
                                                                               reverse=True)
    cells = r.value("heads-grid", "figure")["data"][1]["customdata"]
    click = {"points": [{"customdata": cells[H + 2]}]}  # block 2, head 3
    opened = client.call(f"{ids.BLOCK}.value", {"heads-grid.clickData": click}, {f"{ids.SEQUENCE}.data": seq},
                         changed="heads-grid.clickData")
    assert opened.status == 200
    assert (opened.value(ids.BLOCK, "value"), opened.value(ids.HEAD, "value"),
            opened.value(ids.VIEW, "value")) == (1, 2, "attention")
    row = client.call(f"{ids.BLOCK}.value", {"heads-table.active_cell": {"row": 0, "column": 0, "row_id": "0,1"}},
                      {f"{ids.SEQUENCE}.data": seq}, changed="heads-table.active_cell")
    assert (row.value(ids.BLOCK, "value"), row.value(ids.HEAD, "value")) == (0, 1)
    outside = client.call(f"{ids.BLOCK}.value", {"heads-table.active_cell": {"row_id": "9,9"}},
                          {f"{ids.SEQUENCE}.data": seq}, changed="heads-table.active_cell")
    assert outside.status == 204


def test_overview_click_moves_the_window(client):
    seq = {"ids": [1] * 100, "n_prompt": 100, "label": "p"}
    r = client.call("attention-q-start.value", {"attention-overview.clickData": {"points": [{"x": 5, "y": 90}]},
                                                f"{ids.SEQUENCE}.data": seq}, changed="attention-overview.clickData")
    # 100 tokens fit one window: it starts at 0 whatever was clicked
    assert (r.value("attention-q-start", "value"), r.value("attention-k-start", "value")) == (0, 0)
    long = {"ids": [1] * 1000, "n_prompt": 1000, "label": "p"}
    r = client.call("attention-q-start.value", {"attention-overview.clickData": {"points": [{"x": 5, "y": 900}]},
                                                f"{ids.SEQUENCE}.data": long}, changed="attention-overview.clickData")
    assert (r.value("attention-q-start", "value"), r.value("attention-k-start", "value")) == (900 - 64, 0)
    reset = client.call("attention-q-start.value", {f"{ids.SEQUENCE}.data": long},
                        {"attention-q-start.value": 836, "attention-k-start.value": 0},
                        changed=f"{ids.SEQUENCE}.data")
    assert reset.value("attention-q-start", "value") is None


def test_head_view_callback_and_token_focus(client, tiny_model):
    seq = sequence(tiny_model)
    base = {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "attention", f"{ids.BLOCK}.value": 0,
            f"{ids.HEAD}.value": 0}
    r = client.call("attention-headview.figure", {**base, "headview-heads.value": [1, 3, 99, "x"]})
    names = [t.get("name") for t in r.value("attention-headview", "figure")["data"] if t.get("name")]
    assert names == ["head 2 (L0H1)", "head 4 (L0H3)"]
    focus = client.call("headview-focus.value", {"attention-headview.clickData": {"points": [{"customdata": [4, 1]}]}},
                        {"headview-focus.value": None, "headview-side.value": "query"},
                        changed="attention-headview.clickData")
    assert (focus.value("headview-focus", "value"), focus.value("headview-side", "value")) == (4, "key")
    again = client.call("headview-focus.value", {"attention-headview.clickData": {"points": [{"customdata": [4, 1]}]}},
                        {"headview-focus.value": 4, "headview-side.value": "key"},
                        changed="attention-headview.clickData")
    assert again.value("headview-focus", "value") is None  # a second click shows every line again
