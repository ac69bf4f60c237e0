"""Where decode time goes, in the Generation view: for each step of the run, the bytes it had to read (every
weight once per step, plus the KV cache of each run in the batch) and the arithmetic it did (FLOPs), against
this machine's memory bandwidth and arithmetic rate, measured once per process. Decode does about one
multiply-add per weight read (memory-bound); prefill does one per weight per prompt token (compute-bound once the
prompt is long enough). And TTFT / TPOT / throughput, from the run's own step timings."""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import plotly.graph_objects as go
import torch
from dash import Input, Output, State, html
from dash.exceptions import PreventUpdate

from .. import common, generation, ids, state
from .. import figure_text as words
from ..figure_access import accessible_graph
from ..figure_access import register as register_figures
from ..i18n import _, number

FIGURE, CARDS = "decode-time-figure", "decode-time-cards"
COPY_MB = 64   # per tensor: well beyond the CPU's caches, so the copy streams from memory
COLORS = {"measured": "#8aa9d6", "memory": "#e4572e", "compute": "#2a9d8f", "prefill": "#f4a259"}

def explanation() -> str:
    """The view's explanation (Markdown), in the reader's language."""
    return _("""
**Where decode time goes.** A step must read every weight from memory, and the KV cache of each run in the
batch, but does only about two floating-point operations (one multiply-add) per weight per token. So the time
a step needs is at least *bytes ÷ memory bandwidth* (red) and at least *FLOPs ÷ arithmetic rate* (green), both
measured on this machine: for a decode step the memory floor is the higher one, and the measured time (bars)
sits close to it. The prefill reads the same weights once for the whole prompt and does the arithmetic for
every prompt token: its FLOPs per byte (lower panel) grow with the prompt, and past the machine's *ridge point*
(dotted) the arithmetic, not the memory, sets its time. This is why batching decode steps (more tokens per
weight read), smaller weights (bfloat16, int8) and speculative decoding help.
""")


@functools.cache
def machine_rates() -> dict:
    """This machine's memory bandwidth (a large tensor copy: bytes read + written per second) and fp32 matmul
    rate (FLOP/s), each the best of 3, with the torch threads the model uses. Measured once per process."""
    src = torch.empty(COPY_MB * 2**20 // 4, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    a = torch.randn(1024, 1024)
    copy_s, mm_s = [], []
    for _repeat in range(3):
        t0 = time.perf_counter()
        dst.copy_(src)
        copy_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch.mm(a, a)
        mm_s.append(time.perf_counter() - t0)
    return {"bandwidth": 2 * src.numel() * 4 / min(copy_s), "flops": 2 * 1024**3 / min(mm_s),
            "threads": torch.get_num_threads()}


def model_dims(runtime) -> dict:
    cfg = runtime.config
    return {"name": cfg.name, "n_layer": cfg.n_layer, "d_model": cfg.d_model, "d_mlp": cfg.d_mlp,
            "vocab_size": cfg.vocab_size, "weight_bytes": runtime.weight_bytes(),
            "act_bytes": torch.empty((), dtype=runtime.dtype).element_size(),
            "dtype": runtime.weights_dtype}


def step_costs(steps: list[dict], dims: dict, prompt_tokens: int, use_cache: bool, rates: dict) -> list[dict]:
    """Per step: tokens computed, bytes read (weights once, the KV cache of each run in the batch), FLOPs (matrix
    products: 2 per weight per token, the tied output head included; attention: 4 x d_model per cached position
    per block), FLOPs per byte, and the floors bytes / bandwidth and FLOPs / rate (ms) beside the measured time."""
    L, d = dims["n_layer"], dims["d_model"]
    matmul_params = L * (4 * d * d + 2 * d * dims["d_mlp"]) + dims["vocab_size"] * d
    kv_per_position = 2 * L * d * dims["act_bytes"]
    out = []
    for n, step in enumerate(steps):
        batch = step.get("batch_size", 1) if n else 1
        if n == 0 or not use_cache:  # the whole text so far, attention over the causal triangle
            tokens = prompt_tokens + n
            attended = tokens * (tokens + 1) / 2
            kv_bytes = tokens * kv_per_position if use_cache else 0  # written, once
        else:
            tokens = batch
            attended = batch * step["cache_len"]
            kv_bytes = batch * step["cache_len"] * kv_per_position  # read: each run its own cache
        flops = 2 * matmul_params * tokens + 4 * L * d * attended
        read = dims["weight_bytes"] + kv_bytes
        out.append({"step": n, "tokens": tokens, "batch": batch, "weight_bytes": dims["weight_bytes"],
                    "kv_bytes": kv_bytes, "bytes": read, "flops": flops, "intensity": flops / read,
                    "memory_ms": 1000 * read / rates["bandwidth"], "compute_ms": 1000 * flops / rates["flops"],
                    "ms": step["ms"]})
    return out


def run_metrics(steps: list[dict]) -> dict:
    """TTFT (step 0: the prefill and the first token), TPOT (mean of the later steps), this run's tokens/s, and
    the machine's tokens/s over the same steps (each step's batch counted)."""
    decode = steps[1:]
    decode_s = sum(s["ms"] for s in decode) / 1000
    total_s = sum(s["ms"] for s in steps) / 1000
    return {"ttft_ms": steps[0]["ms"] if steps else None,
            "tpot_ms": 1000 * decode_s / len(decode) if decode else None,
            "tokens_per_s": len(steps) / total_s if total_s else None,
            "batch_tokens_per_s": sum(s.get("batch_size", 1) for s in decode) / decode_s if decode_s else None}


def costs_figure(costs: list[dict], rates: dict) -> go.Figure:
    """Upper: measured time per step (the prefill, then the decode steps) and the two floors (ms, log scale).
    Lower: FLOPs per byte per step, and the ridge point (the machine's FLOP/s over its bytes/s)."""
    layout, refs = common.panels(2, 1, [_("Time per step: measured, and the floors set by memory and arithmetic"),
                                        _("FLOPs per byte read, and this machine's ridge point")], vgap=0.2,
                                 share_x=True)
    fig = go.Figure(layout=layout)
    x = np.asarray([c["step"] for c in costs], dtype=np.int32)
    (x1, y1), (x2, y2) = refs
    measured = np.asarray([c["ms"] for c in costs], dtype=np.float32)
    # The CSV (figure_csv): one table, a row per step, carried by the memory floor's line; the rest is drawn
    # from the same numbers.
    table = {"csv_columns": [_("step (0 = prefill)"), _("tokens"), _("batch"), _("measured ms"),
                             _("memory floor ms"), _("arithmetic floor ms"), _("bytes read"), _("FLOPs"),
                             _("FLOPs per byte")]}
    rows = [[c["step"], c["tokens"], c["batch"], c["ms"], c["memory_ms"], c["compute_ms"], c["bytes"], c["flops"],
             c["intensity"]] for c in costs]
    for part, name, color in ((slice(0, 1), _("prefill, measured"), COLORS["prefill"]),
                              (slice(1, None), _("decode steps, measured"), COLORS["measured"])):
        if len(x[part]):
            fig.add_trace(go.Bar(x=x[part], y=measured[part], name=name, marker_color=color, xaxis=x1, yaxis=y1,
                                 meta={"csv": False},
                                 hovertemplate=_("step %{x}: %{y:.2f} ms measured") + "<extra></extra>"))
    for key, name in (("memory_ms", _("bytes ÷ bandwidth")), ("compute_ms", _("FLOPs ÷ arithmetic rate"))):
        color = COLORS["memory" if key == "memory_ms" else "compute"]
        memory = key == "memory_ms"
        fig.add_trace(go.Scatter(x=x, y=np.asarray([c[key] for c in costs], dtype=np.float32), name=name,
                                 mode="lines+markers", line=dict(color=color, shape="hvh"), marker=dict(size=5),
                                 xaxis=x1, yaxis=y1, meta=table if memory else {"csv": False},
                                 customdata=rows if memory else None,
                                 hovertemplate=_("step %{x}: %{y:.3f} ms") + "<extra>" + name + "</extra>"))
    fig.add_trace(go.Scatter(x=x, y=np.asarray([c["intensity"] for c in costs], dtype=np.float32),
                             name=_("FLOPs per byte"), mode="lines+markers", line=dict(color="#1b2a49"),
                             xaxis=x2, yaxis=y2, meta={"csv": False},
                             hovertemplate=_("step %{x}: %{y:.2f} FLOPs per byte") + "<extra></extra>"))
    ridge = rates["flops"] / rates["bandwidth"]
    fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[ridge, ridge], mode="lines", name=_("ridge point"),
                             line=dict(color="#555", dash="dot"), xaxis=x2, yaxis=y2, meta={"csv": False},
                             hovertemplate=_("ridge: %{y:.1f} FLOPs per byte") + "<extra></extra>"))
    ticks = [m * 10.0 ** e for e in range(-3, 7) for m in (1, 2, 5)]  # 1-2-5: no crowded minor labels
    fig.update_layout(yaxis=dict(type="log", title_text="ms", tickvals=ticks),
                      yaxis2=dict(type="log", title_text=_("FLOP/byte"), tickvals=ticks),
                      xaxis2=dict(title_text=_("step (0 = prefill)")), legend=dict(orientation="h", y=-0.22),
                      bargap=0.2)
    return words.attach(common.clear_of_toolbar(common.style(fig, height=540)), words.decode_time_text(costs, rates))


def _f(value, unit: str = "") -> str:
    return "—" if value is None else number(value, 1) + unit


def cards(metrics: dict, rates: dict, costs: list[dict]) -> html.Div:
    """The run's headline timings and the machine's rates, and one line on what bounds decode and prefill (a
    prefill's FLOPs per byte grow about linearly with its tokens, so the ridge is crossed near ridge / per-token)."""
    decode, ridge = costs[1:], rates["flops"] / rates["bandwidth"]
    bound = (sum(c["memory_ms"] for c in decode) / sum(c["ms"] for c in decode)) if decode else None
    return html.Div([
        common.stats([(_("TTFT (time to first token)"), _f(metrics["ttft_ms"], " ms")),
                      (_("TPOT (time per output token)"), _f(metrics["tpot_ms"], " ms")),
                      (_("this run's tokens/s"), _f(metrics["tokens_per_s"])),
                      (_("tokens/s for the whole batch"), _f(metrics["batch_tokens_per_s"])),
                      (_("memory bandwidth (measured)"), _f(rates["bandwidth"] / 1e9, " GB/s")),
                      (_("float32 matrix-product rate (measured)"), _f(rates["flops"] / 1e9, " GFLOP/s"))]),
        html.P(_("Decode steps took {times}× their memory floor (the time to read their bytes at the measured "
                 "bandwidth; the rest is sampling, Python and arithmetic not hidden behind the reads) and did "
                 "{decode} FLOPs per byte; the prefill of {tokens} tokens did {intensity} FLOPs per byte, "
                 "against a ridge point of {ridge}: from about {threshold} prompt tokens on, a prefill is "
                 "arithmetic-bound here.").format(
            times=number(1 / bound, 1) if bound else "—", decode=number(decode[-1]["intensity"], 2) if decode else "—",
            tokens=number(costs[0]["tokens"]),
            intensity=number(costs[0]["intensity"], 1), ridge=number(ridge, 1),
            threshold=number(math.ceil(ridge * costs[0]["tokens"] / costs[0]["intensity"]))),
            className="hint"),
    ])


def section() -> html.Div:
    return html.Details([html.Summary(_("Where decode time goes: memory vs arithmetic, TTFT and TPOT")),
                         common.explanation(explanation()), html.Div(id=CARDS),
                         accessible_graph(FIGURE, _("Where decode time goes"))],
                        className="gen-more", open=True)


def render(_rendered, view, record):
    """A finished run -> (cards, figure); the model must be the one the run was made with."""
    if view != generation.TAB:
        raise PreventUpdate
    try:
        record = generation.checked_record(record)
    except ValueError:
        return [], common.message_figure(_("Generate to see where each step's time goes."))
    steps = record["steps"]
    if record.get("live") or not steps:
        return [], common.message_figure(_("Drawn when the run ends."))
    runtime = state.model.get()
    if record.get("model", {}).get("name") != runtime.config.name:
        return [], common.message_figure(_("This run was made with another model than the one loaded."))
    try:
        costs = step_costs(steps, model_dims(runtime), len(record["prompt_ids"]), bool(record.get("use_cache")),
                           machine_rates())
    except (KeyError, TypeError):
        return [], common.message_figure(_("This run's steps lack the timings the figure needs."))
    rates = machine_rates()
    return cards(run_metrics(steps), rates, costs), costs_figure(costs, rates)


def register(app) -> None:
    app.callback(Output(CARDS, "children"), Output(FIGURE, "figure"),
                 Input(generation.RENDERED, "data"), Input(ids.VIEW, "value"), State(ids.GENERATION, "data"))(render)
    register_figures(app, FIGURE)
