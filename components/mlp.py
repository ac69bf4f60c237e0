"""MLP view: expansion to 3,072 neurons, the GELU, the most active neurons, and the contraction back to 768."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from . import figure_text as words
from . import ids, state
from .common import DIVERGING, HIGHLIGHT, axis_labels, explanation, message_figure, register_token_choices, \
    rows_height, style, thin_ticks, token_window, valid_index, window_note
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import _, number

SHOWN_NEURONS = 256  # the heatmaps show the most active neurons; all 3,072 would be 12 KB per token per map


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU (tanh approximation, "gelu_new")."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def most_active_neurons(post: np.ndarray, n: int = SHOWN_NEURONS) -> np.ndarray:
    """Indices of the n neurons with the largest |activation| over all tokens, in index order."""
    n = min(n, post.shape[1])
    return np.sort(np.argsort(-np.abs(post).max(0), kind="stable")[:n])


def activation_heatmap_figure(values: np.ndarray, neurons: np.ndarray, labels: list[str], title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=values[:, neurons].astype(np.float32), x=[str(n) for n in neurons], y=labels,
                               colorscale=DIVERGING, zmid=0,
                               hovertemplate=_("token %{y}<br>neuron %{x}<br>%{z:.4f}<extra></extra>")))
    fig.update_xaxes(type="category", title=_("neuron"), **thin_ticks([str(n) for n in neurons], 24))
    fig.update_yaxes(type="category", autorange="reversed", **thin_ticks(labels))
    return style(fig, title, height=rows_height(len(labels), 16, 140, 260))


def gelu_figure(pre: np.ndarray, token_label: str) -> go.Figure:
    """The GELU curve, with this token's 3,072 pre-activations marked where they land on it."""
    lo, hi = float(min(-4.0, pre.min())), float(max(4.0, pre.max()))
    x = np.linspace(lo, hi, 400, dtype=np.float32)
    fig = go.Figure()
    fig.add_scatter(x=x, y=gelu_tanh(x), mode="lines", name="GELU", line=dict(color="#1b2a49", width=3))
    fig.add_scatter(x=pre.astype(np.float32), y=gelu_tanh(pre).astype(np.float32), mode="markers",
                    name=_("neurons of {token_label}").format(token_label=token_label),
                    marker=dict(size=5, color=HIGHLIGHT, opacity=0.45),
                    hovertemplate=_("pre %{x:.3f} → post %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title=_("before GELU"))
    fig.update_yaxes(title=_("after GELU"))
    fig.update_layout(legend=dict(x=0.01, y=0.99, bgcolor="rgba(255,255,255,0.8)"))
    return style(fig, _("GELU: negative inputs are squashed to about 0, positive ones pass"), height=360)


def top_neurons_figure(post_row: np.ndarray, token_label: str, n: int = 15) -> go.Figure:
    order = np.argsort(-post_row, kind="stable")[:n]
    fig = go.Figure(go.Bar(x=post_row[order].astype(np.float32), y=[_("neuron {i}").format(i=i) for i in order],
                           orientation="h",
                           marker_color="#3b7dd8", hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=_("activation after GELU"))
    return style(fig, _("Most active neurons for {token_label}").format(token_label=token_label), height=380)


def contraction_figure(mlp_out: np.ndarray, labels: list[str], position: int) -> go.Figure:
    """‖MLP output‖ per token, and the selected token's 768-dimensional output vector."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=(_("‖MLP output‖ per token"), _("output vector of {labels} (768)").format(
                            labels=labels[position])))
    fig.add_bar(x=labels, y=np.linalg.norm(mlp_out, axis=1).astype(np.float32), marker_color="#8aa9d6",
                hovertemplate=_("%{x}<br>norm %{y:.3f}<extra></extra>"), showlegend=False, row=1, col=1)
    fig.add_scatter(y=mlp_out[position].astype(np.float32), mode="lines", line=dict(color="#1b2a49", width=1),
                    hovertemplate=_("dimension %{x}<br>%{y:.4f}<extra></extra>"), showlegend=False, row=1, col=2)
    fig.update_xaxes(type="category", row=1, col=1, **thin_ticks(labels, 20))
    fig.update_xaxes(title=_("dimension"), row=1, col=2)
    return style(fig, _("Contraction: 3,072 → 768, added to the residual stream"), height=340)


def section():
    return [
        explanation(
            _("After attention, each token goes through the **MLP** on its own: 768 numbers are expanded to 3,072 "
              "neurons, passed through the **GELU** non-linearity (which mostly switches neurons off or on), and "
              "contracted back to 768, which are added to the residual stream. Neurons often fire for recognisable "
              "patterns."),
            r"\mathrm{MLP}(x) = \mathrm{GELU}(x W_{\text{in}} + b_{\text{in}})\, W_{\text{out}} + b_{\text{out}},"
            r"\quad \mathrm{GELU}(x) \approx \tfrac{x}{2}\Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\big)\Big)"),
        html.Div([html.Label(_("Token"), htmlFor="mlp-token"), dcc.Dropdown(id="mlp-token", clearable=False)],
                 className="inline-control"),
        accessible_graph("mlp-pre", _("Activations before GELU")),
        accessible_graph("mlp-post", _("Activations after GELU")),
        accessible_graph("mlp-gelu", _("The GELU curve")),
        accessible_graph("mlp-top", _("Most active neurons")),
        accessible_graph("mlp-out", _("The MLP's output")),
    ]


def register(app) -> None:
    register_token_choices(app, "mlp-token", "mlp")
    register_figures(app, "mlp-pre", "mlp-post", "mlp-gelu", "mlp-top", "mlp-out")

    @app.callback(Output("mlp-pre", "figure"), Output("mlp-post", "figure"), Output("mlp-gelu", "figure"),
                  Output("mlp-top", "figure"), Output("mlp-out", "figure"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input("mlp-token", "value"))
    @state.memoized
    def show_mlp(sequence, view, layer, position):
        if view != "mlp" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        labels = axis_labels(trace.tokens)
        if not valid_index(layer, trace.config.n_layer):
            bad = message_figure(_("Choose a block from 1 to {n_layer}.").format(n_layer=trace.config.n_layer))
            return bad, bad, bad, bad, bad
        position = position if valid_index(position, len(labels)) else len(labels) - 1
        pre = trace[f"blocks.{layer}.mlp.hook_pre"].numpy()
        post = trace[f"blocks.{layer}.mlp.hook_post"].numpy()
        start, stop = token_window(len(labels), position)  # long prompts: the tokens around the chosen one
        rows, window = slice(start, stop), window_note(start, stop, len(labels))
        neurons = most_active_neurons(post[rows])
        shown = _("{n_neurons} most active of {value} neurons").format(
            n_neurons=len(neurons), value=number(post.shape[1])) if len(neurons) < post.shape[1] \
            else _("all {value} neurons").format(value=number(post.shape[1]))
        before, after = _("Block {block}, before GELU").format(block=layer + 1), \
            _("Block {block}, after GELU").format(block=layer + 1)
        mlp_out = trace[f"blocks.{layer}.hook_mlp_out"].numpy()[rows]
        return (words.attach(activation_heatmap_figure(pre[rows], neurons, labels[rows],
                                                       _("Block {layer}: before GELU ({shown}){window}").format(
                                                           layer=layer + 1, shown=shown, window=window)),
                             words.activation_text(pre[rows][:, neurons], neurons, labels[rows], before)),
                words.attach(activation_heatmap_figure(post[rows], neurons, labels[rows],
                                                       _("Block {layer}: after GELU ({shown}){window}").format(
                                                           layer=layer + 1, shown=shown, window=window)),
                             words.activation_text(post[rows][:, neurons], neurons, labels[rows], after)),
                words.attach(gelu_figure(pre[position], labels[position]),
                             words.gelu_text(pre[position], gelu_tanh(pre[position]), labels[position])),
                words.attach(top_neurons_figure(post[position], labels[position]),
                             words.top_neurons_text(post[position], labels[position])),
                words.attach(contraction_figure(mlp_out, labels[rows], position - start),
                             words.contraction_text(mlp_out, labels[rows], position - start)))
