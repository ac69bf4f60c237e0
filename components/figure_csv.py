"""A figure's numbers as CSV, read from its traces (so the file always holds what the figure draws): a heatmap
becomes a table with its row and column labels, bars and lines a column per trace against their shared
labels, a histogram its values. Several tables (a figure of several panels) follow one another, each under a
line with its title and a blank line between them.

A trace can steer this through its `meta` (Plotly's free field for extra data): `{"csv": False}` leaves it out
(decoration: a grid image, label markers, line segments), and `{"csv_columns": [...]}` writes its
`customdata` as rows under those column names (the numbers a figure carries only for its hover)."""
from __future__ import annotations

import base64
import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

# Plotly's typed-array codes (plotly.js `decodeTypedArraySpec`).
DTYPES = {"f4": np.float32, "f8": np.float64, "i1": np.int8, "u1": np.uint8, "i2": np.int16, "u2": np.uint16,
          "i4": np.int32, "u4": np.uint32, "u1c": np.uint8}


@dataclass
class Table:
    title: str
    header: list = field(default_factory=list)
    rows: list = field(default_factory=list)


def values(data) -> list | None:
    """A trace's array as a (nested) list, whatever form it arrived in: a list, a numpy array, Plotly's
    base64 typed array {"dtype", "bdata", "shape"}, or a typed array the browser sent back as {"0": v, ...}."""
    if data is None:
        return None
    if isinstance(data, np.ndarray):
        return _scalars(data)
    if isinstance(data, dict):
        if "bdata" in data and data.get("dtype") in DTYPES:
            flat = np.frombuffer(base64.b64decode(data["bdata"]), dtype=DTYPES[data["dtype"]])
            shape = [int(s) for s in str(data.get("shape", len(flat))).split(",")]
            return _scalars(flat.reshape(shape))
        if all(key.isdigit() for key in data):
            return [values(data[key]) if isinstance(data[key], (dict, list)) else data[key]
                    for key in sorted(data, key=int)]
        return None
    if isinstance(data, (list, tuple)):
        return [values(v) if isinstance(v, (list, tuple, dict, np.ndarray)) else v for v in data]
    return None


def _scalars(array: np.ndarray) -> list:
    """Numpy values kept as numpy scalars, so float32 ones print as their own shortest form (0.62, not
    0.6200000047683716)."""
    if array.ndim == 0:
        return [array[()]]
    if array.ndim == 1:
        return list(array)
    return [_scalars(row) for row in array]


def cell(value) -> str:
    """One CSV cell: numbers in the shortest form that reads back as the same value, gaps (NaN, None) empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(float(value)) else str(value) if isinstance(value, np.floating) else repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _axis_title(layout: dict, axis: str) -> str:
    title = (layout.get(axis) or {}).get("title")
    return (title.get("text") if isinstance(title, dict) else title) or ""


def _panel_title(layout: dict, trace: dict, fallback: str) -> str:
    """The title a trace is shown under: its name, else its panel's title (an annotation over the panel's
    top), else the figure's."""
    if trace.get("name"):
        return str(trace["name"])
    x_ref = trace.get("xaxis") or "x"
    x_axis = layout.get("xaxis" + x_ref[1:]) or {}
    y_axis = layout.get("yaxis" + (trace.get("yaxis") or "y")[1:]) or {}
    x_dom, y_dom = x_axis.get("domain", [0, 1]), y_axis.get("domain", [0, 1])
    for note in layout.get("annotations") or []:
        if note.get("xref") == "paper" and note.get("yref") == "paper" and isinstance(note.get("text"), str) \
                and x_dom[0] - 1e-6 <= (note.get("x") or 0) <= x_dom[1] + 1e-6 \
                and abs((note.get("y") or 0) - y_dom[1]) < 0.03:
            return note["text"]
    return fallback


def _labels(data, n: int) -> list:
    labels = values(data)
    return labels if labels is not None and len(labels) == n else list(range(n))


def heatmap_tables(trace: dict, title: str) -> list[Table]:
    z = values(trace.get("z")) or []
    n_cols = max((len(row) for row in z), default=0)
    x, y = _labels(trace.get("x"), n_cols), _labels(trace.get("y"), len(z))
    tables = [Table(title, [""] + x, [[label] + list(row) for label, row in zip(y, z)])]
    text = values(trace.get("text"))
    if isinstance(text, list) and text and isinstance(text[0], list):  # words written in the cells
        tables.append(Table(title + " (cell text)", [""] + x, [[label] + list(row) for label, row in zip(y, text)]))
    return tables


def _series(trace: dict) -> tuple[list, list] | None:
    """(labels, numbers) of a bar, line or histogram trace; None for one with nothing to list."""
    kind = trace.get("type") or "scatter"
    x, y = values(trace.get("x")), values(trace.get("y"))
    if kind == "histogram":
        data = x if x is not None else y
        return (list(range(len(data))), data) if data else None
    if kind == "bar" and trace.get("orientation") == "h":
        x, y = y, x
    if y is None:
        return None
    x = x if x is not None and len(x) == len(y) else list(range(len(y)))
    if all(v is None for v in x):
        return None  # a legend entry drawn at no point
    return x, y


def figure_tables(figure) -> list[Table]:
    """Every table a figure's traces hold, in trace order (series on one x axis with the same labels, or with
    category labels, share one table)."""
    fig = figure.to_plotly_json() if isinstance(figure, go.Figure) else figure
    fig = fig if isinstance(fig, dict) else {}
    layout = fig.get("layout") if isinstance(fig.get("layout"), dict) else {}
    title = layout.get("title")
    title = (title.get("text") if isinstance(title, dict) else title) or ""
    tables, groups = [], {}
    traces = fig.get("data") if isinstance(fig.get("data"), list) else []
    for n, trace in enumerate(t for t in traces if isinstance(t, dict)):
        meta = trace.get("meta") if isinstance(trace.get("meta"), dict) else {}
        if meta.get("csv") is False:
            continue
        name = _panel_title(layout, trace, title or f"trace {n + 1}")
        if meta.get("csv_columns"):
            tables.append(Table(name, list(meta["csv_columns"]), [list(r) for r in values(trace.get("customdata")) or []]))
            continue
        if trace.get("type") == "heatmap":
            tables += heatmap_tables(trace, name)
            continue
        series = _series(trace)
        if series is None:
            continue
        x, y = series
        axis = trace.get("xaxis") or "x"
        categories = all(isinstance(v, str) for v in x)
        key = (axis, None if categories else tuple(cell(v) for v in x))
        if key not in groups:
            x_title = "#" if trace.get("type") == "histogram" else _axis_title(layout, "xaxis" + axis[1:]) or "x"
            groups[key] = {"table": Table(_panel_title(layout, {**trace, "name": None}, title or name), [x_title]),
                           "rows": {}}
            tables.append(groups[key]["table"])
        group = groups[key]
        column = len(group["table"].header) - 1
        group["table"].header.append(trace.get("name") or name)
        for label, value in zip(x, y):
            row = group["rows"].setdefault(cell(label), [label])
            row += [None] * (column + 1 - len(row)) + [value]
    for group in groups.values():
        width = len(group["table"].header)
        group["table"].rows = [row + [None] * (width - len(row)) for row in group["rows"].values()]
    return tables


def to_csv(tables: list[Table]) -> str:
    """The tables as one CSV text: a lone table as it is; several, each under a line with its title."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for n, table in enumerate(tables):
        if len(tables) > 1:
            if n:
                writer.writerow([])
            writer.writerow([table.title])
        writer.writerow([cell(h) for h in table.header])
        writer.writerows([cell(v) for v in row] for row in table.rows)
    return out.getvalue()


def figure_csv(figure) -> str:
    return to_csv(figure_tables(figure))
