"""The class's answers beside the model's own: a pure figure builder (numbers in, figure out)."""
from __future__ import annotations

import plotly.graph_objects as go

from ..common import HIGHLIGHT, style
from ..i18n import _, ngettext

CLASS_COLOR = "#3b75af"
MODEL_COLOR = "#2a9d8f"


def class_answers_figure(question: dict, counts: list[int]) -> go.Figure:
    """Two panels side by side: the share of the class that chose each answer (with counts), and the model's
    own value for each choice (its probabilities, or 1 for its answer); the right answer's label in colour."""
    choices = question["choices"]
    counts = list(counts[:len(choices)])
    total = sum(counts)
    labels = [f"<b style='color:{HIGHLIGHT}'>{c}</b>" if i == question["answer"] else c
              for i, c in enumerate(choices)]
    fig = go.Figure([
        go.Bar(x=[n / total if total else 0 for n in counts], y=labels, orientation="h", name=_("the class"),
               marker_color=CLASS_COLOR, text=[str(n) for n in counts], textposition="auto",
               hovertemplate=_("%{y}: %{text} answers<extra></extra>"), xaxis="x", yaxis="y"),
        go.Bar(x=question["model_values"], y=labels, orientation="h", name=question["model_label"],
               marker_color=MODEL_COLOR, hovertemplate="%{y}: %{x:.3g}<extra></extra>", xaxis="x2", yaxis="y2"),
    ])
    fig.update_layout(
        xaxis={"domain": [0, 0.45],
               "title": ngettext("the class ({n} answer)", "the class ({n} answers)", total).format(n=total),
               "tickformat": ".0%", "rangemode": "tozero"},
        xaxis2={"domain": [0.55, 1], "title": question["model_label"], "rangemode": "tozero"},
        yaxis={"autorange": "reversed", "type": "category"},
        yaxis2={"autorange": "reversed", "type": "category", "anchor": "x2", "showticklabels": False},
        showlegend=False, bargap=0.3)
    return style(fig, height=90 + 40 * len(choices))
