"""Every figure for every reader: a chart is a `role="figure"` box named after it, described by a paragraph
(its text alternative, for screen readers: what it shows now, in words and its key numbers) and followed by a
"CSV" button that downloads its numbers (for a screen reader's table view, a spreadsheet or a paper).

The text is computed on the server with the figure (components/figure_text.py) and travels inside it, in
`layout.meta.description`, so a cached figure keeps its text and the paragraph always matches the figure on
screen; a clientside callback copies it into the paragraph. The CSV is made from the figure the page shows
(components/figure_csv.py), so it holds exactly the figure's data."""
from __future__ import annotations

import re

from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from .common import graph
from .figure_csv import figure_csv
from .i18n import _

# The paragraph shows the text the figure carries (a message figure carries its message).
COPY_TEXT = """
function (figure) {
    const meta = figure && figure.layout && figure.layout.meta;
    return (meta && typeof meta.description === "string") ? meta.description : "";
}
"""


def text_id(graph_id: str) -> str:
    return graph_id + "-text"


def csv_id(graph_id: str) -> str:
    return graph_id + "-csv"


def download_id(graph_id: str) -> str:
    return graph_id + "-download"


def accessible_graph(graph_id: str, name: str, **kwargs) -> html.Div:
    """The chart `graph_id` in a figure box named `name`, its text alternative under it (visually hidden in
    projector mode, still read by screen readers) and a CSV button whose accessible name says which figure."""
    return html.Div([
        graph(graph_id, **kwargs),
        html.Div([
            html.P(id=text_id(graph_id), className="figure-text"),
            html.Button(_("CSV"), id=csv_id(graph_id), n_clicks=0, className="csv-button",
                        title=_("Download the numbers of this figure as CSV"),
                        **{"aria-label": _("Download the numbers of {figure} as CSV").format(figure=name)}),
            dcc.Download(id=download_id(graph_id)),
        ], className="figure-access"),
    ], role="figure", className="figure-box", **{"aria-label": name, "aria-describedby": text_id(graph_id)})


def file_name(graph_id: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", graph_id.lower()) + ".csv"


def csv_download(figure, graph_id: str) -> dict:
    """dcc.Download's data for the figure on screen (nothing to download before a figure is drawn)."""
    if not isinstance(figure, dict) or not figure.get("data"):
        raise PreventUpdate
    return dcc.send_string(figure_csv(figure), file_name(graph_id), type="text/csv")


def register(app, *graph_ids: str) -> None:
    """The text and CSV callbacks of each figure made by `accessible_graph`."""
    for graph_id in graph_ids:
        app.clientside_callback(COPY_TEXT, Output(text_id(graph_id), "children"), Input(graph_id, "figure"))
        app.callback(Output(download_id(graph_id), "data"), Input(csv_id(graph_id), "n_clicks"),
                     State(graph_id, "figure"), prevent_initial_call=True)(
            lambda _clicks, figure, graph_id=graph_id: csv_download(figure, graph_id))
