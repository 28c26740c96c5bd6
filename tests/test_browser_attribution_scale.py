"""AttributionView's colour scale in a real Chromium: its own largest |score|, or a scale shared
with other results (before / after finetuning), and the legend says which."""

from __future__ import annotations

import struct

import pytest

from tests._browser import widget_page

pytestmark = pytest.mark.browser

SCORES = [9.0, 0.5, -0.25, 1.0, 0.0]  # [CLS]'s 9.0 is never on the scale


def _render(page, scale):
    state = {
        "text": "great fun",
        "tokens": ["[CLS]", "great", "not", "fun", "[SEP]"],
        "special": [True, False, False, False, True],
        "spaces": [True] * 5,
        "target": "positive",
        "labels": ["negative", "positive"],
        "probs": [0.1, 0.9],
        "method": "integrated_gradients",
        "methods": ["integrated_gradients"],
        "delta": None,
        "n_steps": None,
        "comprehensiveness": None,
        "sufficiency": None,
        "faithfulness": False,
        "interactive": False,
        "busy": False,
        "error": "",
        "scale": scale,
    }
    widget_page(page, "attribution_view", state, {"scores": struct.pack("<5f", *SCORES)})


def _alpha(page, i: int) -> float:
    css = (
        page.locator(".labkit-attr-token")
        .nth(i)
        .evaluate("e => getComputedStyle(e).backgroundColor")
    )
    return float(css.rsplit(",", 1)[1].rstrip(")"))


def test_own_scale_reaches_full_colour_and_says_so(page):
    _render(page, None)
    assert page.locator(".labkit-attr-scale").text_content() == "own scale ±1"
    assert page.get_attribute(".labkit-attr-legend", "data-shared") == "0"
    assert _alpha(page, 3) == pytest.approx(0.85)
    assert page.console_errors == []


def test_a_shared_scale_draws_weaker_scores_paler_and_says_so(page):
    _render(page, 4.0)
    assert page.locator(".labkit-attr-scale").text_content() == "shared scale ±4"
    assert page.get_attribute(".labkit-attr-legend", "data-shared") == "1"
    assert _alpha(page, 3) == pytest.approx(0.85 / 4, abs=0.01)  # drawn to 2 digits
    # the kernel moves the view back onto its own scale (a recompute with another method)
    page.evaluate("() => window.__model.set('scale', null)")
    assert page.locator(".labkit-attr-scale").text_content() == "own scale ±1"
    assert _alpha(page, 3) == pytest.approx(0.85)
    assert page.console_errors == []
