"""Views of a GenerationAttribution: static HTML, the live widget (traits, no browser), the
display path, and one real-browser check of hover / click / escape."""

from __future__ import annotations

import sys
from html import escape
from html.parser import HTMLParser
from types import ModuleType

import numpy as np
import pytest

import labkit
from labkit.inspect.attribution.api import explain
from labkit.render.display import LIVE_MIME
from labkit.render.generation_attribution import display_piece, generation_attribution_html

EVIL = '<img src=x onerror="window.__pwned=1">'
PROMPT = f"the movie {EVIL} was dull"
TARGET = " <script>window.__pwned=2</script>"
WIDGET = "application/vnd.jupyter.widget-view+json"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)
        self.classes.extend(v for n, v in attrs if n == "class" and v)


@pytest.fixture
def evil(tiny_lm):
    """An explanation whose prompt and target are markup."""
    return explain(tiny_lm, PROMPT, target=TARGET, method="feature_ablation")


def test_static_html_escapes_every_text(evil):
    html = evil._repr_html_()
    tags = _Tags()
    tags.feed(html)
    assert "script" not in tags.tags and "onerror" not in tags.attrs
    assert [t for t in tags.tags if t == "img"] == ["img"]  # the matrix, nothing else
    marked = [t for t in (*evil.pieces, *evil.target_pieces) if "<" in t]
    assert marked and all(escape(t, quote=False) in html for t in marked)  # shown as text
    assert tags.classes.count("labkit-token") == len(evil.tokens)
    assert tags.classes.count("labkit-answer-token") == len(evil.target_tokens)
    n, p = evil.scores.shape
    assert f"{n} answer tokens (rows) x {p} prompt tokens" in html


def test_static_html_colours_the_prompt_by_the_whole_answer(evil):
    html = generation_attribution_html(evil)
    strongest = int(np.argmax(np.abs(evil.sequence_scores)))
    value = float(evil.sequence_scores[strongest])
    assert f"{evil.pieces[strongest]}: {value:+.4g}".replace("<", "&lt;") in html
    assert f"own scale ±{float(np.abs(evil.sequence_scores).max()):.2g}" in html
    shared = evil.with_scale(3.0)
    assert "shared scale ±3" in shared._repr_html_() and shared.scores is evil.scores
    with pytest.raises(labkit.InputError, match="scale must be a positive finite number"):
        evil.with_scale(0)


def test_answer_pieces_as_shown():
    assert display_piece(" Paris") == (True, "Paris")
    assert display_piece("\n") == (False, "↵")
    assert display_piece(" ") == (True, "␣")
    assert display_piece("\t x") == (False, "⇥ x")


def test_widget_gets_text_as_text_and_scores_as_buffers(tiny_lm):
    from labkit.ui.generation_attribution_view import GenerationAttributionView

    r = explain(tiny_lm, PROMPT, target=TARGET, n_steps=20)
    view = GenerationAttributionView.from_result(r)
    assert view.tokens == list(r.pieces) and any("<" in t or "img" in t for t in view.tokens)
    n, p = r.scores.shape
    np.testing.assert_array_equal(np.frombuffer(view.scores, "<f4").reshape(n, p), r.scores)
    np.testing.assert_array_equal(np.frombuffer(view.sequence_scores, "<f4"), r.sequence_scores)
    assert len(view.target_tokens) == n == len(view.target_logprobs) == len(view.delta)
    assert view.logprob == pytest.approx(r.logprob) and view.n_steps == 20
    assert view.selected == -1 and view.method == "integrated_gradients"
    assert view.result is r
    ablated = GenerationAttributionView.from_result(
        explain(tiny_lm, PROMPT, target=TARGET, method="occlusion")
    )
    assert ablated.delta == [] and ablated.n_steps is None


def test_a_notebook_shows_the_live_view_and_keeps_the_static_one(evil, monkeypatch):
    import labkit.ui

    assert set(evil._repr_mimebundle_()) == {"text/plain", "text/html"}  # plain Python
    kernel = ModuleType("ipykernel")  # "in a kernel", as labkit.render.display checks it
    kernel.version_info = (6, 29, 0)  # type: ignore[attr-defined]  # read by ipywidgets
    monkeypatch.setitem(sys.modules, "ipykernel", kernel)
    bundle = evil._repr_mimebundle_()
    assert WIDGET in bundle and bundle[LIVE_MIME]["view"] == "GenerationAttribution"
    assert bundle["text/html"] == evil._repr_html_()
    view = labkit.ui.view_for(evil)
    assert type(view).__name__ == "GenerationAttributionView"
    assert "GenerationAttributionView" in labkit.ui.__all__


@pytest.mark.browser
def test_hover_and_click_recolour_the_prompt_in_a_browser(page, evil):
    from labkit.ui.generation_attribution_view import GenerationAttributionView
    from tests._browser import screenshot, widget_page

    view = GenerationAttributionView.from_result(evil)
    state = {k: v for k, v in view.get_state().items() if not k.startswith("_")}
    buffers = {k: bytes(state.pop(k)) for k in ("scores", "sequence_scores")}
    widget_page(page, "generation_attribution", state, buffers)
    # the prompt's markup arrives as a trait change too (not pasted into the page's script)
    page.evaluate("t => window.__model.set('tokens', t)", [EVIL, *state["tokens"][1:]])
    root = page.locator(".labkit-gattr")
    assert root.get_attribute("data-row") == "-1"
    assert page.locator(".labkit-gattr-token").first.text_content() == EVIL
    answer = page.locator(".labkit-gattr-answer-token")
    assert answer.count() == len(evil.target_tokens)
    before = page.locator(".labkit-gattr-token").evaluate_all(
        "spans => spans.map((s) => s.style.background)"
    )
    answer.nth(1).hover()
    assert root.get_attribute("data-row") == "1"
    after = page.locator(".labkit-gattr-token").evaluate_all(
        "spans => spans.map((s) => s.style.background)"
    )
    assert after != before  # recoloured by answer token 1's row
    answer.nth(1).click()
    assert page.evaluate("window.__model.get('selected')") == 1
    page.mouse.move(5, 5)
    assert root.get_attribute("data-row") == "1"  # the selection stays after the pointer goes
    answer.nth(1).click()
    assert page.evaluate("window.__model.get('selected')") == -1
    answer.nth(2).click()
    page.locator(".labkit-gattr-whole").click()
    assert page.evaluate("window.__model.get('selected')") == -1
    assert page.evaluate("window.__pwned") is None and page.blocked == []
    screenshot(page, "generation_attribution")
