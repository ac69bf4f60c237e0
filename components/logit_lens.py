"""Logit lens: read the residual stream after every block as if it were the last one (final LayerNorm, then
the output head), to watch the prediction form block by block."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from . import figure_text as words
from . import ids, state
from .common import SEQUENTIAL, axis_labels, explanation, register_token_choices, style, thin_ticks, \
    token_window, valid_index
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import _, number

# Columns shown: the chosen token and those around it. Each costs (blocks + 1) × 50,257 × 768 multiply-adds,
# and a column must stay wide enough for its guesses to be read from the back of the room.
MAX_POSITIONS = 12


def lens_stack(trace, start: int = 0, stop: int | None = None) -> tuple[list[str], torch.Tensor]:
    """The residual stream after the embedding and after each block, [blocks + 1, stop - start, d_model]."""
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(trace.config.n_layer)]
    labels = [_("embedding")] + [_("block {block}").format(block=l + 1) for l in range(trace.config.n_layer)]
    return labels, torch.stack([trace[n][start:stop] for n in names])


@torch.inference_mode()
def logit_lens(resid: torch.Tensor, ln_weight: torch.Tensor, ln_bias: torch.Tensor, eps: float,
               w_u: torch.Tensor, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-k token ids and probabilities [stages, T, k] of softmax(LN_final(resid) W_Eᵀ)."""
    logits = F.linear(F.layer_norm(resid, resid.shape[-1:], ln_weight, ln_bias, eps), w_u)
    top = logits.softmax(-1).topk(k, dim=-1)
    return top.indices.numpy(), top.values.numpy().astype(np.float32)


def lens_figure(stage_labels: list[str], token_labels: list[str], top_ids: np.ndarray, top_probs: np.ndarray,
                texts: dict[int, str]) -> go.Figure:
    """Blocks × tokens: colour = probability of the top guess, written in the cell; hover lists the top 5."""
    cell_text = [[texts[int(top_ids[s, t, 0])] for t in range(top_ids.shape[1])] for s in range(top_ids.shape[0])]
    hover = [["<br>".join(f"{texts[int(i)]} {p:.3f}" for i, p in zip(top_ids[s, t], top_probs[s, t]))
              for t in range(top_ids.shape[1])] for s in range(top_ids.shape[0])]
    fig = go.Figure(go.Heatmap(z=top_probs[:, :, 0], x=token_labels, y=stage_labels, text=cell_text,
                               texttemplate="%{text}", textfont=dict(size=11), customdata=hover,
                               colorscale=SEQUENTIAL, zmin=0, zmax=1, colorbar=dict(title="p(top)"),
                               hovertemplate=_("after %{y}, at %{x}<br>%{customdata}<extra></extra>")))
    fig.update_xaxes(type="category", side="top", **thin_ticks(token_labels, 32))
    fig.update_yaxes(type="category", autorange="reversed")
    style(fig, _("Logit lens: the most likely next token after each position, read after each block"),
          height=max(360, 30 * len(stage_labels) + 150))
    return fig.update_layout(margin_t=100)  # room for the token labels above the table


def section():
    return [
        explanation(
            _("What would the model predict if it stopped after block l? The **logit lens** applies the final "
              "LayerNorm and the output head to the residual stream after every block. Early blocks guess generic "
              "tokens; the answer usually sharpens in the later blocks. The last row is exactly the model's own "
              "prediction."),
            r"\text{lens}_l(x) = \mathrm{softmax}\big(\mathrm{LN}_{\text{final}}(x_l)\, W_E^{\top}\big)"),
        html.Div([html.Label(_("Around token"), htmlFor="lens-token"), dcc.Dropdown(id="lens-token", clearable=False)],
                 className="inline-control"),
        html.P(id="lens-note", className="facts"),
        accessible_graph("lens-table", _("Logit lens")),
    ]


def register(app) -> None:
    register_token_choices(app, "lens-token", "logit-lens")
    register_figures(app, "lens-table")

    @app.callback(Output("lens-table", "figure"), Output("lens-note", "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("lens-token", "value"))
    @state.memoized
    def show_lens(sequence, view, position):
        if view != "logit-lens" or not sequence:
            raise PreventUpdate
        runtime = state.model.get()
        trace = state.trace_for(sequence["ids"])
        T = len(trace.tokens)
        position = position if valid_index(position, T) else T - 1
        start, stop = token_window(T, position, MAX_POSITIONS)
        stage_labels, resid = lens_stack(trace, start, stop)
        ln = runtime.model.ln_f
        to_cpu = {"device": "cpu", "dtype": torch.float32}
        top_ids, top_probs = logit_lens(resid, ln.weight.to(**to_cpu), ln.bias.to(**to_cpu), ln.eps,
                                        runtime.model.wte.weight.to(**to_cpu))
        texts = {int(i): runtime.tokenizer.token(int(i)).text for i in np.unique(top_ids)}
        note = (_("Positions {start}–{stop} of the {t} tokens: choose a token to move along.").format(
            start=number(start), stop=number(stop - 1), t=number(T))
                if stop - start < T else "")
        token_labels = axis_labels(trace.tokens)[start:stop]
        return words.attach(lens_figure(stage_labels, token_labels, top_ids, top_probs, texts),
                            words.lens_text(stage_labels, token_labels, top_ids, top_probs, texts,
                                            position - start)), note
