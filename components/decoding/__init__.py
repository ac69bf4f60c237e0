"""The Generation tab's decoding lab: sampling (the live generation, `components/generation.py`) and, beside it,
beam search, speculative decoding and the weights in float32 / bfloat16 / int8, chosen by a mode switch; each
a module of its own here. Where decode time goes is drawn under every finished generation."""
from __future__ import annotations

import json

from dash import Input, Output, dcc, html

from .. import generation
from ..i18n import _
from . import beam_view, decode_time, speculative_view, weights_view

MODE = "decoding-mode"
MODES = ["sample", "beam", "speculative", "weights"]


def modes() -> list[tuple[str, str, object]]:
    """(value, label, section) of each mode, in the order of MODES."""
    lab = (lambda content: html.Div(content, className="view view-generation"))
    return [("sample", _("Sample"), [generation.section(), lab(decode_time.section())]),
            ("beam", _("Beam search"), lab(beam_view.section())),
            ("speculative", _("Speculative"), lab(speculative_view.section())),
            ("weights", _("Weights: fp32 / bf16 / int8"), lab(weights_view.section()))]


def section() -> html.Div:
    parts = modes()
    return html.Div([
        dcc.RadioItems(id=MODE, options=[{"label": label, "value": value} for value, label, _s in parts],
                       value="sample", inline=True, className="decoding-modes",
                       inputStyle={"marginRight": "0.3em"}, labelStyle={"marginRight": "1.2em"}),
        *[html.Div(content, id=f"{MODE}-{value}", style=None if value == "sample" else {"display": "none"})
          for value, _label, content in parts],
    ], className="decoding-lab")


def register(app) -> None:
    generation.register(app)
    for module in (beam_view, speculative_view, weights_view, decode_time):
        module.register(app)
    app.clientside_callback(
        "function(mode) { return %s.map(v => v === mode ? {} : {display: 'none'}); }" % json.dumps(MODES),
        [Output(f"{MODE}-{value}", "style") for value in MODES], Input(MODE, "value"))
