"""The head view's colours (widgets/attention_view.js ``headPalette``), run in node.

Heads used to cycle through 10 colours, so heads 0 and 10, 1 and 11 looked the same on a
12-head model. Every head of a layer now gets its own colour, for any head count, and the
colours are checked here in OKLab (computed in Python, not by the module under test).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit.ui import _base

NODE = shutil.which("node")
COUNTS = [1, 2, 4, 9, 12, 16, 32, 64]


@pytest.fixture(scope="module")
def palettes(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[dict[str, str]]]:
    if NODE is None:
        pytest.fail("node is not installed: the widget modules are checked with it")
    script = _base.esm("attention_view.js") + (
        f"\nconsole.log(JSON.stringify(Object.fromEntries({json.dumps(COUNTS)}"
        ".map((n) => [n, headPalette(n)]))));\n"
    )
    path = Path(tmp_path_factory.mktemp("colours")) / "palette.mjs"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [NODE, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return {int(n): p for n, p in json.loads(done.stdout).items()}


def _linear(hex_colour: str) -> list[float]:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]


def _luminance(hex_colour: str) -> float:
    r, g, b = _linear(hex_colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(x: str, y: str) -> float:
    a, b = sorted((_luminance(x), _luminance(y)))
    return (b + 0.05) / (a + 0.05)


def _oklab(hex_colour: str) -> tuple[float, float, float]:
    r, g, b = _linear(hex_colour)
    lms = (
        0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b,
        0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b,
        0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b,
    )
    l_, m_, s_ = (math.copysign(abs(v) ** (1 / 3), v) for v in lms)
    return (
        0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
        1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
        0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_,
    )


@pytest.mark.parametrize("n", COUNTS)
def test_every_head_gets_its_own_colour(palettes, n):
    colours = [p["color"] for p in palettes[n]]
    assert len(colours) == n
    assert all(len(c) == 7 and c.startswith("#") for c in colours)
    assert len(set(colours)) == n


@pytest.mark.parametrize(("n", "apart"), [(9, 0.08), (12, 0.08), (32, 0.03)])
def test_colours_are_told_apart_and_neighbours_most(palettes, n, apart):
    """OKLab distance (about 0.02 is a just-noticeable difference): every pair is apart, and
    heads next to each other (chips side by side) differ in lightness too."""
    lab = [_oklab(p["color"]) for p in palettes[n]]
    assert min(math.dist(a, b) for a, b in itertools.combinations(lab, 2)) >= apart
    assert min(math.dist(a, b) for a, b in itertools.pairwise(lab)) >= 0.08
    assert min(abs(a[0] - b[0]) for a, b in itertools.pairwise(lab)) >= 0.08


@pytest.mark.parametrize("n", COUNTS)
def test_links_read_on_light_and_dark_themes_and_chip_text_on_its_colour(palettes, n):
    for p in palettes[n]:
        assert _contrast(p["color"], "#ffffff") >= 2.5, p  # JupyterLab light
        assert _contrast(p["color"], "#111111") >= 3.0, p  # JupyterLab dark
        assert _contrast(p["color"], p["ink"]) >= 4.5, p  # the chip's label, WCAG AA


def test_head_zero_is_the_same_blue_for_any_head_count(palettes):
    """Colours depend on a head's position and the head count only, never on which heads are
    shown (hiding a chip repaints nothing); head 0 starts the wheel at blue."""
    first = {palettes[n][0]["color"] for n in COUNTS}
    assert len(first) == 1
    colour = first.pop()
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    assert b > r and b > g
