"""Attention views in a real Chromium: labkit's own views (fake anywidget model, layers served on
request like the kernel does), the static HTML, and bertviz's views with their CDN files routed
to local copies in tests/assets (d3 5.7.0, require.js 2.3.6 and jQuery 2.1.0 from npm)."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit.ui.attention_view import AttentionDiffView, AttentionView
from tests._browser import ORIGIN, widget_page

pytestmark = pytest.mark.browser

ASSETS = Path(__file__).resolve().parent / "assets"
XSS = "<img src=x onerror=window.__xss=1>"
XSS2 = "</script><script>window.__xss=2</script>"
CDN = {
    "require.js/2.3.6/require.min.js": "require-2.3.6.js",
    "d3/5.7.0/d3.min.js": "d3-5.7.0.min.js",
    "jquery/2.0.0/jquery.min.js": "jquery-2.1.0.min.js",
}

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


def _html_page(page: Any, body: str) -> list[str]:
    """Serve ``body`` at ORIGIN with bertviz's CDN URLs routed to tests/assets; record the rest."""
    blocked: list[str] = []
    served: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url == f"{ORIGIN}/":
            r.fulfill(status=200, content_type="text/html", body=body)
            return
        for suffix, name in CDN.items():
            if url == f"https://cdnjs.cloudflare.com/ajax/libs/{suffix}":
                served.append(name)
                r.fulfill(
                    status=200,
                    content_type="text/javascript",
                    body=(ASSETS / name).read_text(encoding="utf-8"),
                )
                return
        blocked.append(url)
        r.abort()

    page.route("**/*", route)
    page.goto(f"{ORIGIN}/")
    page.blocked = blocked
    return served


def _page(html: str) -> str:
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{html}</body></html>"


@pytest.mark.parametrize("kind", ["head", "model", "neuron"])
def test_bertviz_views_render_with_routed_cdn(page, tiny_model, kind):
    view = _xss_result(tiny_model).to_bertviz(kind)
    served = _html_page(page, _page(view.html))
    page.wait_for_function("document.querySelectorAll('#vis svg text').length > 0", timeout=15_000)
    assert sorted(served) == sorted(CDN.values())
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
    assert len(images) == len(result.layers) + 1 + 2 * len(result.layers) * len(result.heads)
    assert all(src == "data:image/png;base64," and width > 0 for src, width in images)
    assert page.evaluate("window.__xss") is None
    assert page.blocked == [] and page.console_errors == []
