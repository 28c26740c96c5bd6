"""Attention views in a real Chromium: labkit's own views (fake anywidget model, layers served on
request like the kernel does), the static HTML, and bertviz's views, which fetch nothing (labkit
inlines require.js, d3 and jQuery: tests/test_browser_bertviz.py checks them offline)."""

from __future__ import annotations

import base64
import dataclasses
import itertools
from typing import Any

import pytest

import labkit
from labkit.ui.attention_view import AttentionDiffView, AttentionView
from tests._browser import ORIGIN, screenshot, widget_page

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"
XSS2 = "</script><script>window.__xss=2</script>"

_EMIT = """([msg, bufs]) => window.__model.emit(msg, bufs.map((b) => {
  const s = atob(b); const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return new DataView(u.buffer);
}))"""


def _state(view: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    plain, buffers = {}, {}
    for key, value in view.get_state().items():
        if key.startswith("_"):
            continue
        if isinstance(value, bytes | memoryview):
            buffers[key] = bytes(value)
        else:
            plain[key] = value
    return plain, buffers


def _serve(page: Any, view: Any, until: str, *, timeout: float = 15_000) -> int:
    """Answer the view's requests with the Python widget's own replies until ``until`` is true."""
    answered = 0
    while True:
        page.wait_for_function(
            f"window.__model.sent.length > {answered} || ({until})", timeout=timeout
        )
        sent = page.evaluate("window.__model.sent.map((s) => s.msg)")
        for msg in sent[answered:]:
            if msg.get("type") == "layer":
                content, buffers = view.layer_message(msg["layer"])
            else:
                content, buffers = view.head_message(msg["layer"], msg["head"])
            page.evaluate(_EMIT, [content, [base64.b64encode(b).decode() for b in buffers]])
        answered = len(sent)
        if page.evaluate(until):
            return answered


def _xss_result(tiny_model: Any, *, script_end: bool = True) -> Any:
    result = labkit.attention(tiny_model, "the movie was not good at all")
    tokens = list(result.tokens)
    tokens[2] = XSS
    if script_end:
        tokens[4] = XSS2
    return dataclasses.replace(result, tokens=tuple(tokens))


def _set_tokens_with_script_end(page: Any, view: Any) -> None:
    """tests/_browser inlines the state in a <script>, where a "</script>" token would end it;
    such a token reaches the view as a trait change instead."""
    tokens = list(view.tokens)
    tokens[4] = XSS2
    view.tokens = tokens
    page.evaluate("(t) => window.__model.set('tokens', t)", tokens)


def _no_script_ran(page: Any) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.console_errors == []
    assert page.blocked == []


def test_head_and_model_view_render_tokens_as_text(page, tiny_model):
    view = AttentionView(_xss_result(tiny_model, script_end=False))
    state, buffers = _state(view)
    widget_page(page, "attention_view", state, buffers)
    _serve(page, view, "document.querySelector('.lk-attn').dataset.ready === '1'")
    _set_tokens_with_script_end(page, view)
    _serve(page, view, "document.querySelector('.lk-attn').dataset.ready === '1'")
    root = page.locator("#root")
    assert XSS in root.inner_text() and XSS2 in root.inner_text()
    assert page.locator("#root img, #root script").count() == 0
    links = int(page.locator(".lk-attn").get_attribute("data-links"))
    assert 0 < links <= len(view.tokens) * view.top_k * len(view.heads)

    # hover one query token: only its links are drawn, its targets light up
    page.locator(".lk-left .lk-tok").nth(1).hover()
    page.wait_for_function(f"document.querySelector('.lk-attn').dataset.links !== '{links}'")
    focused = int(page.locator(".lk-attn").get_attribute("data-links"))
    assert 0 < focused <= len(view.tokens) * len(view.heads)

    # model view: a thumbnail per layer x head; clicking one opens that head of that layer
    page.get_by_text("Model view").click()
    thumbs = page.locator(".lk-thumb")
    assert thumbs.count() == len(view.layers) * len(view.heads)
    thumbs.nth(len(view.heads) + 2).click()  # layer 1, head 2
    _serve(page, view, "document.querySelector('.lk-attn').dataset.layer === '1'")
    assert page.evaluate("window.__model.state.selected_heads") == [2]
    assert page.evaluate("window.__model.state.mode") == "head"
    assert page.evaluate("window.__model.sent.map((s) => s.msg.layer)") == [0, 0, 1]
    _no_script_ran(page)


def test_layer_reply_sent_before_render_is_kept(page, tiny_model):
    """A reply that arrives before the view renders (initialize registered the listener)."""
    view = AttentionView(labkit.attention(tiny_model, "a gorgeous, witty, seductive movie"))
    state, buffers = _state(view)
    widget_page(page, "attention_view", state, buffers)
    content, bufs = view.layer_message(1)
    page.evaluate(_EMIT, [content, [base64.b64encode(b).decode() for b in bufs]])
    page.locator(".lk-layer").select_option("1")
    page.wait_for_function("document.querySelector('.lk-attn').dataset.layer === '1'")
    assert page.evaluate("window.__model.sent.map((s) => s.msg.layer)") == [0]  # 1 not asked


def test_1024_tokens_render(page, tmp_path):
    from tests import _tiny

    folder = _tiny.build("bert", tmp_path / "long", max_positions=1100)
    model = labkit.load_model(folder, device="cpu")
    result = labkit.attention(model, " ".join(["movie"] * 1022))
    assert len(result.tokens) == 1024
    view = AttentionView(result)
    state, buffers = _state(view)
    widget_page(page, "attention_view", state, buffers)
    _serve(page, view, "document.querySelector('.lk-attn').dataset.ready === '1'")
    assert page.locator(".lk-left .lk-tok").count() == 1024
    links = int(page.locator(".lk-attn").get_attribute("data-links"))
    assert 0 < links <= 1024 * view.top_k * len(view.heads)
    page.locator(".lk-left .lk-tok").nth(1023).scroll_into_view_if_needed()
    page.locator(".lk-left .lk-tok").nth(1023).hover()
    page.wait_for_function(f"document.querySelector('.lk-attn').dataset.links !== '{links}'")
    assert page.console_errors == [] and page.blocked == []


def test_diff_view_ranks_heads_and_renders_tokens_as_text(page, tiny_model):
    a = _xss_result(tiny_model, script_end=False)
    b_weights = a.weights.copy()
    b_weights[1, 3] = b_weights[1, 3][:, ::-1]  # move one head's attention elsewhere
    b = dataclasses.replace(a, weights=b_weights, model_name="after <b>finetuning</b>")
    view = AttentionDiffView(labkit.attention_diff(a, b))
    state, buffers = _state(view)
    widget_page(page, "attention_diff", state, buffers)
    _serve(page, view, "document.querySelector('.lk-diff').dataset.ready === '1'")
    _set_tokens_with_script_end(page, view)
    first = page.locator(".lk-rank").first.inner_text()
    assert first.startswith("layer 1 head 3")
    text = page.locator("#root").inner_text()
    assert XSS in text and XSS2 in text and "after <b>finetuning</b>" in text
    assert page.locator(".lk-map").count() == 2
    page.locator(".lk-rank").nth(1).click()
    _serve(
        page,
        view,
        "window.__model.sent.length === 2 && "
        "document.querySelector('.lk-diff').dataset.ready === '1'",
    )
    assert page.locator("#root img, #root b, #root script").count() == 0
    _no_script_ran(page)


def _html_page(page: Any, body: str) -> None:
    """Serve ``body`` at ORIGIN; every other request is refused and recorded in ``page.blocked``."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url == f"{ORIGIN}/":
            r.fulfill(status=200, content_type="text/html", body=body)
            return
        blocked.append(url)
        r.abort()

    page.route("**/*", route)
    page.goto(f"{ORIGIN}/")
    page.blocked = blocked


def _page(html: str) -> str:
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{html}</body></html>"


@pytest.mark.parametrize("kind", ["head", "model", "neuron"])
def test_bertviz_views_render_offline_and_show_tokens_as_text(page, tiny_model, kind):
    view = _xss_result(tiny_model).to_bertviz(kind)
    _html_page(page, _page(view.html))
    page.wait_for_function("document.querySelectorAll('#vis svg text').length > 0", timeout=15_000)
    texts = page.evaluate("[...document.querySelectorAll('#vis svg text')].map(t => t.textContent)")
    if kind != "model":  # the model view draws tokens only on hover
        assert XSS in texts and XSS2 in texts
    assert page.evaluate("window.__xss") is None
    assert page.blocked == []
    assert page.console_errors == []


def test_static_html_renders_tokens_as_text(page, tiny_model):
    result = _xss_result(tiny_model)
    diff = labkit.attention_diff(result, result)
    body = result._repr_html_() + diff._repr_html_() + result.summary._repr_html_()
    _html_page(page, _page(body))
    page.wait_for_load_state("load")
    assert XSS in page.locator("body").inner_text()
    # every image is one of ours (a data: PNG), and each decoded
    images = page.evaluate("[...document.images].map(i => [i.src.slice(0, 22), i.naturalWidth])")
    shown = min(10, len(result.layers) * len(result.heads))  # heads listed in the diff
    assert len(images) == len(result.layers) + 1 + 2 * shown + 2  # + the most changed head
    # the diff's two maps: their own captions, every token on both axes, as text
    captions = page.evaluate(
        "[...document.querySelectorAll('figure.labkit-map figcaption')].map((f) => f.textContent)"
    )
    assert captions == ["before", "after"]
    keys = page.evaluate(
        "[...document.querySelectorAll('.labkit-map-keys div')].map((d) => d.title)"
    )
    assert len(keys) == 2 * len(result.tokens)
    assert f"token 2: {XSS}" in keys
    assert all(src == "data:image/png;base64," and width > 0 for src, width in images)
    assert page.evaluate("window.__xss") is None
    assert page.blocked == [] and page.console_errors == []


def _synthetic(heads: int, tokens: int = 6, name: str = "synthetic") -> Any:
    import numpy as np

    rng = np.random.default_rng(heads)
    w = rng.random((1, heads, tokens, tokens)) ** 4
    w /= w.sum(-1, keepdims=True)
    return labkit.AttentionResult(
        tokens=tuple(f"t{i}" for i in range(tokens)),
        weights=w.astype(np.float32),
        special=np.zeros(tokens, dtype=bool),
        model_name=name,
        layers=(0,),
        heads=tuple(range(heads)),
        text="x",
    )


@pytest.mark.parametrize("heads", [9, 12, 32])
def test_every_head_of_a_layer_has_its_own_colour(page, heads):
    """Heads 0 and 10 shared a colour (a 10-colour cycle); now every chip and its links differ."""
    view = AttentionView(_synthetic(heads))
    state, buffers = _state(view)
    widget_page(page, "attention_view", state, buffers)
    _serve(page, view, "document.querySelector('.lk-attn').dataset.ready === '1'")
    chips = page.evaluate(
        "[...document.querySelectorAll('.lk-chip')].map((c) => "
        "[c.style.getPropertyValue('--lk-color'), getComputedStyle(c).backgroundColor])"
    )
    assert len(chips) == heads
    assert len({colour for colour, _ in chips}) == heads
    assert len({shown for _, shown in chips}) == heads  # the CSS draws them apart too
    assert page.console_errors == [] and page.blocked == []


def test_diff_view_says_before_and_after_and_labels_the_tokens(page, tiny_model):
    """One model before / after training: "before" and "after", not its name twice; each map
    has its own caption and the tokens on both axes (escaped)."""
    a = _xss_result(tiny_model, script_end=False)
    w = a.weights.copy()
    w[1, 3] = w[1, 3][:, ::-1]
    view = AttentionDiffView(labkit.attention_diff(a, dataclasses.replace(a, weights=w)))
    state, buffers = _state(view)
    widget_page(page, "attention_diff", state, buffers)
    _serve(page, view, "document.querySelector('.lk-diff').dataset.ready === '1'")
    title = page.locator(".lk-diff-title").inner_text()
    assert "before → after" in title and a.model_name not in title
    captions = page.evaluate(
        "[...document.querySelectorAll('.lk-maps figcaption')].map((f) => f.textContent)"
    )
    assert captions == ["before", "after"]
    t = len(a.tokens)
    keys = page.evaluate("[...document.querySelectorAll('.lk-keys .lk-axis')].map((d) => d.title)")
    queries = page.locator(".lk-queries .lk-axis")
    assert len(keys) == 2 * t and queries.count() == 2 * t
    assert f"token 2: {XSS}" in keys
    assert queries.nth(1).inner_text() == "the"
    assert page.locator("#root img, #root script").count() == 0
    screenshot(page, "attention_diff_labels")
    _no_script_ran(page)


def test_diff_view_thins_labels_of_long_inputs_and_names_different_models(page):
    a = _synthetic(2, tokens=300, name="base")
    view = AttentionDiffView(
        labkit.attention_diff(a, dataclasses.replace(a, model_name="tuned"), labels=("A", "B"))
    )
    state, buffers = _state(view)
    widget_page(page, "attention_diff", state, buffers)
    _serve(page, view, "document.querySelector('.lk-diff').dataset.ready === '1'")
    assert "A (base) → B (tuned)" in page.locator(".lk-diff-title").inner_text()
    captions = page.evaluate(
        "[...document.querySelectorAll('.lk-maps figcaption')].map((f) => f.textContent)"
    )
    assert captions == ["A (base)", "B (tuned)"]
    keys = page.evaluate("[...document.querySelectorAll('.lk-keys .lk-axis')].map((d) => d.title)")
    assert 2 * 10 <= len(keys) <= 2 * 64  # thinned: a readable label every few pooled rows
    assert keys[0] == keys[len(keys) // 2] and keys[0].startswith("tokens 0-")
    # the labels along one axis tile the map: no overlap, none past its edge
    boxes = page.evaluate(
        "(() => { const m = document.querySelector('.lk-map').getBoundingClientRect();"
        " const ls = [...document.querySelector('.lk-queries').children]"
        ".map((d) => d.getBoundingClientRect());"
        " return [m.top, m.bottom, ls.map((r) => [r.top, r.bottom])]; })()"
    )
    top, bottom, spans = boxes
    assert spans[0][0] >= top - 1 and spans[-1][1] <= bottom + 1
    assert all(b[0] >= a_[1] - 0.5 for a_, b in itertools.pairwise(spans))
    assert all(b - a_ >= 10 for a_, b in spans[:-1])  # tall enough to read
    assert page.console_errors == [] and page.blocked == []
