"""Small pieces every view uses: token labels for axes, the explanation block, figure styling, graph config."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from dash import dcc, html

from . import palette
from .figure_text import attach
from .i18n import _, number, separators

FONT = "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
# Diverging scale for signed values (activations, embeddings), sequential for probabilities (components/palette.py).
DIVERGING = palette.DIVERGING
SEQUENTIAL = palette.SEQUENTIAL
MASKED_COLOR = palette.MASKED  # attention cells a token may not look at (the causal mask)
HIGHLIGHT = "#e4572e"
# Class of a figure whose points do something when clicked: assets/a11y.js gives it a keyboard cursor.
KEYBOARD_FIGURE = "keyboard-figure"

# Plotly's toolbar: PNG download at 2x for projectors and slides; no logo.
GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2},
                "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def token_texts(tokens: Sequence) -> list[str]:
    """Display text of each token (visible spaces, byte pieces), from `model_runtime.tokenizer.Token`s or
    dicts with a "text" key."""
    return [t["text"] if isinstance(t, dict) else t.text for t in tokens]


def axis_labels(tokens: Sequence) -> list[str]:
    """Unique axis labels "position:text": Plotly merges equal category labels, and prompts repeat tokens."""
    return [f"{i}:{text}" for i, text in enumerate(token_texts(tokens))]


def thin_ticks(labels: list[str], max_ticks: int = 40) -> dict:
    """Axis ticks for long prompts: every k-th label, so they never overlap."""
    step = max(1, -(-len(labels) // max_ticks))
    return dict(tickmode="array", tickvals=labels[::step], ticktext=labels[::step])


WINDOW_ROWS = 128     # per-token charts on long prompts show this many tokens, as attention's windows do
ROWS_MAX_PX = 360     # and never grow taller than this (plus title and axes): a view stays about two screens


def token_window(n_tokens: int, position: int, size: int = WINDOW_ROWS) -> tuple[int, int]:
    """(start, stop) of the tokens a per-token chart shows: all of them up to `size`, else `size` tokens
    around `position` (the token chosen in the view), kept inside the prompt."""
    if n_tokens <= size:
        return 0, n_tokens
    start = min(max(0, position - size // 2), n_tokens - size)
    return start, start + size


def window_note(start: int, stop: int, n_tokens: int) -> str:
    """" (positions 896–1,023 of 1,024 tokens)" when a chart shows a window, else ""."""
    if stop - start == n_tokens:
        return ""
    return " " + _("(positions {start}–{last} of {n} tokens)").format(
        start=number(start), last=number(stop - 1), n=number(n_tokens))


def rows_height(n_rows: int, row_px: int, extra: int, minimum: int) -> int:
    """Height of a chart with a row per token: row_px each, capped so long prompts stay within a screen."""
    return max(minimum, min(row_px * n_rows, ROWS_MAX_PX) + extra)


def valid_index(index, size: int) -> bool:
    """A block, head or position index as sent by the page (or by hand): an int in range, nothing else."""
    return isinstance(index, int) and not isinstance(index, bool) and 0 <= index < size


def _unit(value: float) -> float:
    """A domain bound, with float dust (-5e-17) kept inside [0, 1]."""
    return min(1.0, max(0.0, round(value, 6)))


def panels(rows: int, cols: int, titles: list[str], *, x: dict | None = None, y: dict | None = None,
           col_widths: list[float] | None = None, hgap: float = 0.05, vgap: float = 0.1,
           share_x: bool = False, share_y: bool = False) -> tuple[dict, list[tuple[str, str]]]:
    """The layout of a grid of panels, and each panel's (xaxis, yaxis) names for its traces, row by row.

    What make_subplots builds, written out: make_subplots and the update_*axes calls after it cost ~20 ms per
    figure, more than the view's data. `x` / `y` go into every axis; shared axes label only the outer panels."""
    widths = col_widths or [1 / cols] * cols
    scale = (1 - hgap * (cols - 1)) / sum(widths)
    height = (1 - vgap * (rows - 1)) / rows
    layout, refs, annotations = {}, [], []
    for r in range(rows):
        for c in range(cols):
            n = r * cols + c + 1
            k = "" if n == 1 else n  # Plotly names the first axes x / y, not x1 / y1
            left = sum(widths[:c]) * scale + hgap * c
            right = left + widths[c] * scale
            top = 1 - r * (height + vgap)
            layout[f"xaxis{k}"] = {**(x or {}), "domain": [_unit(left), _unit(right)], "anchor": f"y{k}"}
            layout[f"yaxis{k}"] = {**(y or {}), "domain": [_unit(top - height), _unit(top)], "anchor": f"x{k}"}
            if share_x and r < rows - 1:
                layout[f"xaxis{k}"]["showticklabels"] = False
            if share_y and c > 0:
                layout[f"yaxis{k}"]["showticklabels"] = False
            refs.append((f"x{k}", f"y{k}"))
            if n <= len(titles):
                annotations.append({"text": titles[n - 1], "x": (left + right) / 2, "y": top, "xref": "paper",
                                    "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False})
    layout["annotations"] = annotations
    return layout, refs


def style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """The shared look; the top margin holds the title and, above the top row of panels, their own titles."""
    panel_titles = any(a.yref == "paper" and a.yanchor == "bottom" and (a.y or 0) >= 0.99
                       for a in fig.layout.annotations)
    top = (50 if title else 20) + (26 if panel_titles else 0)
    fig.update_layout(title=title, font_family=FONT, margin=dict(l=60, r=20, t=top, b=50),
                      paper_bgcolor="white", plot_bgcolor="white", height=height, separators=separators())
    return fig


def clear_of_toolbar(fig: go.Figure) -> go.Figure:
    """Room above the panel titles for Plotly's toolbar, which sits in the figure's top-right corner."""
    fig.update_layout(margin_t=72)
    return fig


def message_figure(text: str) -> go.Figure:
    """An empty figure that says why it is empty (no prompt yet, a bad input), instead of blank axes."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, font=dict(size=16, color="#555"), x=0.5, y=0.5,
                       xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return attach(style(fig, height=220), text)


def graph(graph_id: str, **kwargs) -> dcc.Graph:
    """A dcc.Graph with the shared toolbar config and a loading spinner."""
    return dcc.Loading(dcc.Graph(id=graph_id, config=GRAPH_CONFIG, **kwargs), type="dot", delay_show=300)


def register_token_choices(app, dropdown_id: str, view: str) -> None:
    """Fill a view's token dropdown with the current sequence's tokens, the last one selected."""
    from dash import Input, Output
    from dash.exceptions import PreventUpdate

    from . import ids, state

    @app.callback(Output(dropdown_id, "options"), Output(dropdown_id, "value"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"))
    def token_choices(sequence, open_view):
        if open_view != view or not sequence:
            raise PreventUpdate
        labels = axis_labels(state.model.get().tokenizer.tokens(sequence["ids"]))
        return [{"label": label, "value": i} for i, label in enumerate(labels)], len(labels) - 1


def stats(cards: Sequence[tuple[str, str]]) -> html.Div:
    """A row of headline numbers: (label, value) pairs, the value large above its label."""
    return html.Div([html.Div([html.Div(value, className="stat-value"), html.Div(label, className="stat-label")],
                              className="stat", style={"display": "inline-block", "marginInlineEnd": "2em"})
                     for label, value in cards], className="stats")


def explanation(text: str, equation: str | None = None) -> html.Div:
    """A short plain-language explanation (Markdown: our own text, never a user's) and its equation in TeX,
    typeset in the browser by KaTeX (assets/render_math.js)."""
    children = [dcc.Markdown(text, className="explain-text")]
    if equation:
        children.append(html.Div(equation, className="equation"))
    return html.Div(children, className="explain")
