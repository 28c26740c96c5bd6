"""AttributionView in a real Chromium: tokens render as text, nothing executes, nothing is fetched."""

from __future__ import annotations

import struct

import pytest

from tests._browser import widget_page

pytestmark = pytest.mark.browser

EVIL_TOKENS = [
    "[CLS]",
    "great",
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "fun",
    "[SEP]",
]
SCORES = [0.0, 0.5, -0.25, 0.125, 1.0, 0.0]


def _state(**over):
    state = {
        "text": "great fun",
        "tokens": ["[CLS]", "great", "a", "b", "fun", "[SEP]"],
        "special": [True, False, False, False, False, True],
        "spaces": [True] * 6,
        "target": "<b>positive</b>",
        "labels": ["negative", "<b>positive</b>"],
        "probs": [0.1, 0.9],
        "method": "integrated_gradients",
        "methods": ["integrated_gradients", "occlusion", "attention_rollout"],
        "delta": 0.0012,
        "n_steps": 100,
        "comprehensiveness": 0.4,
        "sufficiency": 0.05,
        "faithfulness": True,
        "interactive": True,
        "busy": False,
        "error": "",
    }
    state.update(over)
    return state


def _scores(values):
    return struct.pack(f"<{len(values)}f", *values)


def _render(page, **over):
    """Render, then hand over the tokens as the kernel would (a trait change).

    tests/_browser.py pastes the initial state into an inline <script> as JSON, where a
    "</script>" inside a string would end that script early; sending the tokens through the
    fake model afterwards avoids that and exercises the redraw path as well.
    """
    widget_page(page, "attribution_view", _state(**over), {"scores": _scores(SCORES)})
    page.evaluate("tokens => window.__model.set('tokens', tokens)", EVIL_TOKENS)


def test_tokens_are_text_and_no_payload_runs(page):
    _render(page)
    spans = page.locator(".labkit-attr-token")
    assert spans.count() == len(EVIL_TOKENS)
    assert spans.all_text_contents() == EVIL_TOKENS
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".labkit-attr-tokens img, .labkit-attr-tokens script").count() == 0
    assert page.locator(".labkit-attr b").count() == 0  # the label name is text, too
    assert page.blocked == [] and page.console_errors == []
    # colours follow the scores: the strongest token is the most opaque green, a negative is red
    fun = spans.nth(4).evaluate("e => getComputedStyle(e).backgroundColor")
    bad = spans.nth(2).evaluate("e => getComputedStyle(e).backgroundColor")
    assert fun.startswith("rgba(22, 163, 74, 0.85") and bad.startswith("rgba(220, 38, 38")
    stats = page.locator(".labkit-attr-stats").text_content()
    assert "completeness error 0.0012 at 100 steps" in stats and "comprehensiveness 0.400" in stats
    legend = page.locator(".labkit-attr-legend").text_content()
    assert "toward <b>positive</b>" in legend and "against" in legend


def test_hover_shows_the_value_and_pickers_ask_the_kernel(page):
    _render(page)
    page.locator(".labkit-attr-token").nth(1).hover()
    tip = page.locator(".labkit-attr-tip")
    tip.wait_for(state="visible", timeout=5000)
    assert tip.text_content() == "great: +0.5000"
    page.select_option(".labkit-attr-method", "occlusion")
    state = page.evaluate(
        "({m: window.__model.state.method, b: window.__model.state.busy, s: window.__model.saves})"
    )
    assert state == {"m": "occlusion", "b": True, "s": 1}
    assert page.locator(".labkit-attr-status").text_content() == "computing…"
    assert page.locator(".labkit-attr-target").is_disabled()
    # the kernel answers with new traits: the view redraws from them
    page.evaluate("""() => {
      const m = window.__model;
      m.set('tokens', ['new', '<i>x</i>']); m.set('special', [false, false]);
      m.set('scores', new DataView(new Float32Array([0.3, -0.3]).buffer));
      m.set('busy', false);
    }""")
    assert page.locator(".labkit-attr-token").all_text_contents() == ["new", "<i>x</i>"]
    assert page.locator(".labkit-attr-tokens i").count() == 0
    assert page.locator(".labkit-attr-status").text_content() == ""
    options = page.locator(".labkit-attr-target option").all_text_contents()
    assert options == ["negative (0.100)", "<b>positive</b> (0.900)"]
    assert page.blocked == [] and page.console_errors == []


def test_error_is_text_and_static_view_is_read_only(page):
    _render(page, interactive=False, error='<img src=x onerror="window.__pwned=3">')
    assert page.locator(".labkit-attr-method").is_disabled()
    assert page.locator(".labkit-attr-error").text_content().startswith("<img")
    assert page.evaluate("window.__pwned") is None
    assert page.blocked == []
