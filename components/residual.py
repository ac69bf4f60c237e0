"""Residual stream and LayerNorm: how big each token's vector gets block after block, what attention and the
MLP add, and what a LayerNorm does to one token."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from . import figure_text as words
from . import ids, state
from .common import SEQUENTIAL, axis_labels, explanation, message_figure, register_token_choices, rows_height, \
    style, thin_ticks, token_window, valid_index, window_note
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import _, number
from .palette import OKABE_ITO

TABLE_ROWS = 16  # the mean / scale table lists the tokens around the chosen one, so long prompts stay short
NORMS = {"ln1": ("hook_resid_pre", "ln1"), "ln2": ("hook_resid_mid", "ln2")}


def stream_stages(n_layer: int) -> list[tuple[str, str]]:
    """(label, capture name) for every point of the residual stream, in order."""
    stages = [("embed", "blocks.0.hook_resid_pre")]
    for l in range(n_layer):
        stages += [(f"{l + 1}·attn", f"blocks.{l}.hook_resid_mid"), (f"{l + 1}·mlp", f"blocks.{l}.hook_resid_post")]
    return stages


def stream_norms(trace) -> tuple[list[str], np.ndarray]:
    """‖residual stream‖ [stages, T] after the embedding and after each attention and MLP."""
    stages = stream_stages(trace.config.n_layer)
    return [s for s, _ in stages], np.stack([np.linalg.norm(trace[name].numpy(), axis=1) for _, name in stages])


def stream_figure(stage_labels: list[str], norms: np.ndarray, labels: list[str], window: str = "") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=norms.T.astype(np.float32), x=stage_labels, y=labels, colorscale=SEQUENTIAL,
                               hovertemplate=_("token %{y}<br>after %{x}<br>‖x‖ = %{z:.2f}<extra></extra>")))
    fig.update_xaxes(type="category", title=_("position in the network"))
    fig.update_yaxes(type="category", autorange="reversed", **thin_ticks(labels))
    return style(fig, _("Size of each token's residual-stream vector, block by block{window}").format(window=window),
                 height=rows_height(len(labels), 18, 140, 280))


def block_writes(trace, position: int) -> tuple[np.ndarray, np.ndarray]:
    """‖what attention adds‖ and ‖what the MLP adds‖ in each block, for one token: ([blocks], [blocks])."""
    L = trace.config.n_layer
    attn = np.array([np.linalg.norm(trace[f"blocks.{l}.hook_attn_out"][position].numpy()) for l in range(L)])
    mlp = np.array([np.linalg.norm(trace[f"blocks.{l}.hook_mlp_out"][position].numpy()) for l in range(L)])
    return attn, mlp


def writes_figure(attn: np.ndarray, mlp: np.ndarray, label: str) -> go.Figure:
    """The two sizes of `block_writes`, block by block, as grouped bars."""
    blocks = [str(l + 1) for l in range(len(attn))]
    fig = go.Figure()
    fig.add_bar(x=blocks, y=attn.astype(np.float32), name=_("‖attention output‖"), marker_color=OKABE_ITO[0])
    fig.add_bar(x=blocks, y=mlp.astype(np.float32), name=_("‖MLP output‖"),
                marker=dict(color=OKABE_ITO[5], pattern_shape="/"))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.12))
    fig.update_xaxes(title=_("block"), type="category")
    return style(fig, _("What each block writes into the stream of {label}").format(label=label), height=320)


def layernorm_figure(before: np.ndarray, after: np.ndarray, mean: float, scale: float, title: str) -> go.Figure:
    """One token's 768 values before and after LayerNorm, each sorted, plus their histograms."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("values, sorted"), _("distribution")), horizontal_spacing=0.1)
    # One legend above both panels: each entry names a line and a histogram (a click hides both).
    for name, values, color in ((_("before LayerNorm"), before, "#8aa9d6"), (_("after LayerNorm"), after, "#1b2a49")):
        fig.add_scatter(y=np.sort(values).astype(np.float32), mode="lines", name=name, line=dict(color=color),
                        legendgroup=name, row=1, col=1)
        fig.add_histogram(x=values.astype(np.float32), name=name, marker_color=color, opacity=0.6, nbinsx=60,
                          legendgroup=name, showlegend=False, row=1, col=2)
    fig.update_layout(barmode="overlay", legend=dict(orientation="h", y=1.12, x=0))
    return style(fig, _("{title}: mean μ = {mean}, scale √(σ²+ε) = {scale}").format(
        title=title, mean=number(mean, 3), scale=number(scale, 3)), height=380)


def section():
    return [
        explanation(
            _("The **residual stream** is each token's running vector: every block reads it (through a LayerNorm) "
              "and adds what attention and the MLP computed. **LayerNorm** rescales a token's 768 numbers to mean 0 "
              "and variance 1, then applies learned gains γ and biases β, so each block sees vectors of a "
              "predictable size even as the stream grows."),
            r"x_{l}' = x_l + \mathrm{Attn}(\mathrm{LN}_1(x_l)),\quad x_{l+1} = x_l' + \mathrm{MLP}(\mathrm{LN}_2(x_l')),"
            r"\quad \mathrm{LN}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta"),
        accessible_graph("residual-norms", _("Size of the residual stream")),
        html.Div([html.Label(_("Token"), htmlFor="residual-token"), dcc.Dropdown(id="residual-token", clearable=False),
                  html.Label(_("LayerNorm"), htmlFor="residual-ln"),
                  dcc.RadioItems(id="residual-ln", value="ln1", inline=True, options=[
                      {"label": _(" before attention (ln1)"), "value": "ln1"},
                      {"label": _(" before the MLP (ln2)"), "value": "ln2"},
                      {"label": _(" final (ln_final)"), "value": "ln_final"}])], className="inline-control"),
        accessible_graph("residual-writes", _("What each block writes")),
        accessible_graph("residual-layernorm", _("One token through LayerNorm")),
        html.Div(id="residual-ln-table", className="facts"),
    ]


def register(app) -> None:
    register_token_choices(app, "residual-token", "residual")
    register_figures(app, "residual-norms", "residual-writes", "residual-layernorm")

    @app.callback(Output("residual-norms", "figure"), Output("residual-writes", "figure"),
                  Output("residual-layernorm", "figure"), Output("residual-ln-table", "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input(ids.BLOCK, "value"),
                  Input("residual-token", "value"), Input("residual-ln", "value"))
    @state.memoized
    def show_residual(sequence, view, layer, position, which):
        if view != "residual" or not sequence:
            raise PreventUpdate
        trace = state.trace_for(sequence["ids"])
        cfg = trace.config
        labels = axis_labels(trace.tokens)
        if not valid_index(layer, cfg.n_layer):
            bad = message_figure(_("Choose a block from 1 to {n_layer}.").format(n_layer=cfg.n_layer))
            return bad, bad, bad, ""
        position = position if valid_index(position, len(labels)) else len(labels) - 1
        if which == "ln_final":
            before_name, prefix = f"blocks.{cfg.n_layer - 1}.hook_resid_post", "ln_final"
            where = _("the final LayerNorm")
        else:
            stream, ln = NORMS.get(which, NORMS["ln1"])
            before_name, prefix = f"blocks.{layer}.{stream}", f"blocks.{layer}.{ln}"
            where = (_("block {block}'s first LayerNorm") if ln == "ln1" else
                     _("block {block}'s second LayerNorm")).format(block=layer + 1)
        mean, scale = trace[f"{prefix}.hook_mean"][:, 0].numpy(), trace[f"{prefix}.hook_scale"][:, 0].numpy()
        before, after = trace[before_name][position].numpy(), trace[f"{prefix}.hook_normalized"][position].numpy()
        title = _("{where}, token {token}").format(where=where, token=labels[position])
        ln_fig = words.attach(layernorm_figure(before, after, float(mean[position]), float(scale[position]), title),
                              words.layernorm_text(before, after, float(mean[position]), float(scale[position]),
                                                   title))
        table = html.Table([html.Thead(html.Tr([html.Th(_("token")), html.Th(_("mean μ")),
                                                html.Th(_("scale √(σ²+ε)"))]))] +
                           [html.Tbody([html.Tr([html.Td(labels[i]), html.Td(f"{mean[i]:.4f}"), html.Td(f"{scale[i]:.4f}")])
                                        for i in range(*token_window(len(labels), position, TABLE_ROWS))])],
                           className="terms")
        stage_labels, norms = stream_norms(trace)
        start, stop = token_window(len(labels), position)  # long prompts: the tokens around the chosen one
        stream = words.attach(stream_figure(stage_labels, norms[:, start:stop], labels[start:stop],
                                            window_note(start, stop, len(labels))),
                              words.stream_text(stage_labels, norms[:, start:stop], labels[start:stop]))
        attn, mlp = block_writes(trace, position)
        writes = words.attach(writes_figure(attn, mlp, labels[position]),
                              words.writes_text(attn, mlp, labels[position]))
        return stream, writes, ln_fig, table
