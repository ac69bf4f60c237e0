"""Every figure for every reader: a chart is a `role="figure"` box named after it, described by a paragraph
(its text alternative, for screen readers: what it shows now, in words and its key numbers; out of sight, as
the chart is what the eye reads) and a "CSV" button that downloads its numbers (for a screen reader's table
view, a spreadsheet or a paper).

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


def figure_box(content, figure_id: str, name: str, kind: str = "") -> html.Div:
    """`content` (a chart, or the token chips) in a figure box named `name`, described by its text alternative
    (for screen readers) and followed by a CSV button whose accessible name says which figure. Ids: `text_id`,
    `csv_id` and `download_id` of `figure_id`; `kind` an extra class ("figure-chart": the button sits in the
    chart's corner)."""
    return html.Div([
        content,
        html.Div([
            html.P(id=text_id(figure_id), className="figure-text"),
            html.Button(_("CSV"), id=csv_id(figure_id), n_clicks=0, className="csv-button",
                        title=_("Download the numbers of this figure as CSV"),
                        **{"aria-label": _("Download the numbers of {figure} as CSV").format(figure=name)}),
            dcc.Download(id=download_id(figure_id)),
        ], className="figure-access"),
    ], role="figure", className=f"figure-box {kind}".strip(), **{"aria-label": name, "aria-describedby": text_id(figure_id)})


def accessible_graph(graph_id: str, name: str, **kwargs) -> html.Div:
    """The chart `graph_id` (a dcc.Graph with the shared toolbar) in its figure box."""
    return figure_box(graph(graph_id, **kwargs), graph_id, name, kind="figure-chart")


def file_name(figure_id: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", figure_id.lower()) + ".csv"


def send_csv(text: str, figure_id: str) -> dict:
    """dcc.Download's data for a figure's CSV text."""
    return dcc.send_string(text, file_name(figure_id), type="text/csv")


def csv_download(figure, graph_id: str) -> dict:
    """dcc.Download's data for the figure on screen (nothing to download before a figure is drawn)."""
    if not isinstance(figure, dict) or not figure.get("data"):
        raise PreventUpdate
    try:
        text = figure_csv(figure)
    except (ValueError, TypeError) as error:  # only a figure sent by hand past the page: say so on the page
        raise ValueError(_("the figure's numbers could not be read as a table")) from error
    return send_csv(text, graph_id)


def register(app, *graph_ids: str) -> None:
    """The text and CSV callbacks of each figure made by `accessible_graph`."""
    for graph_id in graph_ids:
        # Not at page load (no figure yet): two dozen initial calls would only slow the first screen.
        app.clientside_callback(COPY_TEXT, Output(text_id(graph_id), "children"), Input(graph_id, "figure"),
                                prevent_initial_call=True)
        app.callback(Output(download_id(graph_id), "data"), Input(csv_id(graph_id), "n_clicks"),
                     State(graph_id, "figure"), prevent_initial_call=True)(
            lambda _clicks, figure, graph_id=graph_id: csv_download(figure, graph_id))
