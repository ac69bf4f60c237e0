"""The figures' colour scales and colour set stay readable with deuteranopia and protanopia: simulated with
colorspacious (Machado et al. 2009, full severity), a sequential scale's lightness still rises step by step, a
diverging scale's two sides stay apart and each half stays monotonic, and the categorical colours stay
distinguishable pair by pair (CAM02-UCS distance)."""
import itertools

import numpy as np
import pytest
from colorspacious import cspace_convert

from components import palette

DEFICIENCIES = ["deuteranomaly", "protanomaly"]


def seen(hex_colours, cvd):
    rgb = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in hex_colours])
    space = {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
    return cspace_convert(np.clip(cspace_convert(rgb, space, "sRGB1"), 0, 1), "sRGB1", "CAM02-UCS")


@pytest.mark.parametrize("cvd", DEFICIENCIES)
def test_sequential_lightness_rises_step_by_step(cvd):
    lightness = seen(palette.hex_colours(palette.SEQUENTIAL), cvd)[:, 0]
    assert np.all(np.diff(lightness) < -3)  # Blues runs light to dark: every step visibly darker


@pytest.mark.parametrize("cvd", DEFICIENCIES)
def test_diverging_sides_apart_and_halves_monotonic(cvd):
    colours = seen(palette.hex_colours(palette.DIVERGING), cvd)
    middle = len(colours) // 2
    # +v and -v never look alike: each colour stays far from its mirror on the other side of zero.
    assert min(np.linalg.norm(colours[i] - colours[-1 - i]) for i in range(middle)) > 12
    assert np.all(np.diff(colours[:middle + 1, 0]) > 0) and np.all(np.diff(colours[middle:, 0]) < 0)


@pytest.mark.parametrize("cvd", DEFICIENCIES)
def test_categorical_colours_stay_apart(cvd):
    colours = seen(palette.CATEGORICAL, cvd)
    closest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(colours, 2))
    assert closest > 8, closest


def test_scale_colours_are_the_named_scales():
    assert palette.SCALE_COLOURS == set(palette.hex_colours("Blues")) | set(palette.hex_colours("RdBu_r")) | {
        palette.MASKED, palette.GAP}
    assert palette.to_hex("rgb(8, 48, 107)") == "#08306b"
