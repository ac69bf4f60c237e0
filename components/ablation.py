"""Head ablation: switch heads off (zero their output) and compare the next-token distribution with the
intact model's."""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import plotly.graph_objects as go
import torch
from dash import Input, Output, State, callback_context, dcc, html
from dash.exceptions import PreventUpdate

from . import figure_text as words
from . import ids, state
from .common import KEYBOARD_FIGURE, explanation, message_figure, style
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import _, ngettext, number
from .palette import OKABE_ITO, SEQUENTIAL, hex_colours

BLUES = hex_colours(SEQUENTIAL)  # the picker: heads on light, heads off dark and marked "off"

MAX_ABLATED = 64   # heads switched off at once (each change is one forward pass)
TOP_N = 15


class AblationCache:
    """Next-token distributions of ablated runs, keyed by (token ids, heads); small and bounded."""

    def __init__(self, max_items: int = 64):
        self.max_items, self._items, self._lock = max_items, OrderedDict(), threading.Lock()

    def probs(self, seq_ids: list[int], heads: frozenset) -> torch.Tensor:
        key = (tuple(seq_ids), heads)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        logits = state.model.get().trace(seq_ids, capture=False, ablate=sorted(heads)).logits[-1]
        probs = logits.softmax(-1)
        with self._lock:
            self._items[key] = probs
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return probs


cache = AblationCache()


def parse_heads(value, n_layer: int, n_head: int) -> frozenset:
    """The stored [[block, head], ...] list, checked (junk sent by hand is dropped)."""
    heads = set()
    for item in value or []:
        if isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(v, int) for v in item) \
                and 0 <= item[0] < n_layer and 0 <= item[1] < n_head:
            heads.add((item[0], item[1]))
    return frozenset(sorted(heads)[:MAX_ABLATED])


def compare(base: torch.Tensor, ablated: torch.Tensor, n: int = TOP_N) -> dict:
    """Top tokens of either distribution, the KL divergence KL(base ‖ ablated) in bits, biggest movers."""
    ids_ = torch.unique(torch.cat([base.topk(n).indices, ablated.topk(n).indices]))
    ids_ = ids_[torch.argsort(base[ids_], descending=True)]
    kl = float((base * (base.clamp_min(1e-30).log2() - ablated.clamp_min(1e-30).log2())).sum())
    delta = ablated - base
    return {"ids": ids_.tolist(), "base": base[ids_].numpy(), "ablated": ablated[ids_].numpy(), "kl_bits": kl,
            "top_base": int(base.argmax()), "top_ablated": int(ablated.argmax()),
            "up": torch.topk(delta, 5).indices.tolist(), "down": torch.topk(-delta, 5).indices.tolist()}


def picker_figure(selected: frozenset, n_layer: int, n_head: int) -> go.Figure:
    z = np.zeros((n_layer, n_head), dtype=np.float32)
    for l, h in selected:
        z[l, h] = 1
    fig = go.Figure(go.Heatmap(z=z, x=[str(h + 1) for h in range(n_head)], y=[str(l + 1) for l in range(n_layer)],
                               colorscale=[[0, BLUES[0]], [1, BLUES[-1]]], zmin=0, zmax=1, showscale=False,
                               text=np.where(z > 0, _("off"), ""), texttemplate="%{text}", textfont_color="white",
                               xgap=2, ygap=2, hovertemplate=_("block %{y}, head %{x}<br>click to switch "
                                                               "on/off<extra></extra>")))
    fig.update_xaxes(title=_("head"), type="category", side="top")
    fig.update_yaxes(title=_("block"), type="category", autorange="reversed")
    style(fig, _("Heads switched off: {n_selected} (click to toggle)").format(n_selected=len(selected)), height=400)
    return fig.update_layout(margin_t=100)  # the title, then the head numbers above the grid


def comparison_figure(result: dict, texts: list[str]) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=texts, y=result["base"].astype(np.float32), name=_("intact model"), marker_color=OKABE_ITO[0],
                hovertemplate=_("%{x}<br>p = %{y:.4f}<extra></extra>"))
    fig.add_bar(x=texts, y=result["ablated"].astype(np.float32), name=_("with heads switched off"),
                marker=dict(color=OKABE_ITO[5], pattern_shape="/"),
                hovertemplate=_("%{x}<br>p = %{y:.4f}<extra></extra>"))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.12))
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(title=_("next-token probability"), tickformat=".3~g")  # 0.00015, never "150μ"
    return style(fig, _("Next-token probabilities, intact vs ablated"), height=420)


def section():
    return [
        explanation(
            _("Does the prediction depend on a head? Switch heads off — their output z is set to zero, so they write "
              "nothing into the residual stream — and compare the next-token distribution with the intact model's. "
              "The KL divergence measures how much the distribution moved."),
            r"z_h \leftarrow 0 \;\; (h \in \text{ablated}),\qquad "
            r"\mathrm{KL}(p \,\|\, \tilde p) = \sum_i p_i \log_2 \frac{p_i}{\tilde p_i}"),
        html.Div([html.Button(_("Switch off the whole selected block"), id="ablation-block", n_clicks=0,
                              className="player-button"),
                  html.Button(_("Switch all heads back on"), id="ablation-clear", n_clicks=0,
                              className="player-button")],
                 className="gen-controls"),
        accessible_graph("ablation-picker", _("Heads switched off"), className=KEYBOARD_FIGURE),
        html.Div(id="ablation-summary", className="output-summary", role="status"),
        accessible_graph("ablation-compare", _("Next-token probabilities, intact and ablated")),
        dcc.Store(id="ablation-heads", data=[]),
    ]


def register(app) -> None:
    register_figures(app, "ablation-picker", "ablation-compare")

    @app.callback(Output("ablation-picker", "figure"), Output("ablation-compare", "figure"),
                  Output("ablation-summary", "children"), Output("ablation-heads", "data"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("ablation-picker", "clickData"),
                  Input("ablation-block", "n_clicks"), Input("ablation-clear", "n_clicks"),
                  State("ablation-heads", "data"), State(ids.BLOCK, "value"))
    def show_ablation(sequence, view, click, _unused, __, heads, block):
        if view != "ablation" or not sequence:
            raise PreventUpdate
        runtime = state.model.get()
        cfg = runtime.config
        selected = set(parse_heads(heads, cfg.n_layer, cfg.n_head))
        trigger = callback_context.triggered_id
        if trigger == "ablation-picker" and click:
            try:
                cell = (int(click["points"][0]["y"]) - 1, int(click["points"][0]["x"]) - 1)
            except (KeyError, IndexError, TypeError, ValueError):
                raise PreventUpdate from None
            selected ^= {cell}
        elif trigger == "ablation-block" and isinstance(block, int) and 0 <= block < cfg.n_layer:
            selected |= {(block, h) for h in range(cfg.n_head)}
        elif trigger == "ablation-clear":
            selected = set()
        selected = parse_heads([list(c) for c in selected], cfg.n_layer, cfg.n_head)
        stored = [list(c) for c in sorted(selected)]
        picker = words.attach(picker_figure(selected, cfg.n_layer, cfg.n_head), words.picker_text(selected))
        if not selected:
            return picker, message_figure(_("Click heads in the grid above to switch them off.")), \
                _("All heads are on."), stored
        base = state.trace_for(sequence["ids"]).logits[-1].softmax(-1)
        result = compare(base, cache.probs(sequence["ids"], selected))
        tok = runtime.tokenizer
        texts = [f"{tok.token(i).text}" for i in result["ids"]]
        texts = [f"{t} ({i})" if texts.count(t) > 1 else t for t, i in zip(texts, result["ids"])]
        changed = result["top_base"] != result["top_ablated"]
        top = {"before": tok.token(result["top_base"]).text, "after": tok.token(result["top_ablated"]).text}
        summary = " ".join([
            ngettext("{n} head off.", "{n} heads off.", len(selected)).format(n=len(selected)),
            _("KL divergence {kl} bits.").format(kl=number(result["kl_bits"], 4)),
            (_("Top token: {before} → {after} (changed).") if changed else
             _("Top token: {before} → {after} (unchanged).")).format(**top),
            _("Rose most: {tokens}.").format(tokens=", ".join(tok.token(i).text for i in result["up"])),
            _("Fell most: {tokens}.").format(tokens=", ".join(tok.token(i).text for i in result["down"]))])
        comparison = words.attach(comparison_figure(result, texts), words.comparison_text(result, texts, len(selected)))
        return picker, comparison, summary, stored
