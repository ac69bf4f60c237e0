"""The colour scales and colour sets every figure takes its colours from, chosen to stay readable with the common
colour-vision deficiencies (deuteranopia, protanopia; tests/test_palette.py simulates both):

- SEQUENTIAL: ColorBrewer's single-hue "Blues" (probabilities, norms, attention): the value is carried by
  lightness, which every kind of colour vision sees.
- DIVERGING: ColorBrewer's "RdBu" reversed (signed values: red positive, blue negative), one of ColorBrewer's
  colour-blind-safe diverging schemes; the sign is also in every hover label.
- CATEGORICAL: Okabe and Ito's eight colours (2008), made to be told apart with any common deficiency
  (heads in the head view; series in line and bar charts).

Where a colour tells two kinds of thing apart (kept vs cut, intact vs ablated, prefill vs decode), a pattern, a
marker or the text says it too (see each figure)."""
from __future__ import annotations

import plotly.colors

SEQUENTIAL = "Blues"
DIVERGING = "RdBu_r"
OKABE_ITO = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]
CATEGORICAL = OKABE_ITO
MASKED = "#d9d9d9"   # cells with no value (the causal mask): neutral grey, and named in the hover
GAP = "#ffffff"      # the page's white, between the cells of a grid


def scale(name: str) -> list[tuple[float, str]]:
    """A named Plotly colour scale as (position, "rgb(...)") pairs."""
    return [(float(position), colour) for position, colour in plotly.colors.get_colorscale(name)]


def to_hex(colour: str) -> str:
    """"rgb(r, g, b)", "rgba(...)" or "#rrggbb" as "#rrggbb"."""
    if colour.startswith("#"):
        return colour.lower()
    return "#%02x%02x%02x" % tuple(round(float(v)) for v in colour[colour.index("(") + 1:-1].split(",")[:3])


def hex_colours(name: str) -> list[str]:
    """The colours of a named scale as "#rrggbb"."""
    return [to_hex(colour) for _, colour in scale(name)]


SAFE_SCALES = {"sequential": SEQUENTIAL, "diverging": DIVERGING}
# Every colour a figure's colour scale may use: the safe scales' own colours, the mask grey and the gaps' white.
SCALE_COLOURS = frozenset(c for name in SAFE_SCALES.values() for c in hex_colours(name)) | {MASKED, GAP}
