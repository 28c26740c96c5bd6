"""Image attention and attributions in a real Chromium: the interactive view over the image (a
fake anywidget model, layers served on request as the kernel does) and the static overlays."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np
import pytest

import labkit
from labkit.render.heatmap import BLUE
from labkit.render.image import GHOST
from tests._browser import ORIGIN, screenshot, widget_page
from tests.test_vision_attention import tiny_vit

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"
_EMIT = """([msg, bufs]) => window.__model.emit(msg, bufs.map((b) => {
  const s = atob(b); const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return new DataView(u.buffer);
}))"""
READY = "document.querySelector('.lk-img').dataset.ready === '1'"
# canvas pixel (x, y) as [r, g, b]
_PIXEL = """([x, y]) => Array.from(document.querySelector('.lk-img-canvas')
  .getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))"""


def _planted():
    """A tiny ViT's result whose maps are planted: [CLS] looks at patch (1,5), patch (5,1)
    at patch (0,6), in every layer and head; the image is a bar."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 12:16] = 255
    r = labkit.attention(tiny_vit(), img)
    w = np.full_like(r.weights, 0.02 / 49)
    w[..., 0, r.token_index((1, 5))] = 0.98
    src = r.token_index((5, 1))
    w[..., src, :] = 0.02 / 49
    w[..., src, r.token_index((0, 6))] = 0.98
    return dataclasses.replace(r, weights=w, model_name=XSS)


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


def _serve(page: Any, view: Any, until: str) -> None:
    answered = 0
    while True:
        page.wait_for_function(f"window.__model.sent.length > {answered} || ({until})")
        sent = page.evaluate("window.__model.sent.map((s) => s.msg)")
        for msg in sent[answered:]:
            content, buffers = view.layer_message(msg["layer"])
            page.evaluate(_EMIT, [content, [base64.b64encode(b).decode() for b in buffers]])
        answered = len(sent)
        if page.evaluate(until):
            return


def _hot(rgb: list[int]) -> bool:
    """The ramp's dark end over a black pixel (the planted patches are black, and each is the
    largest weight of its map)."""
    want = (1 - GHOST) * np.array(BLUE)
    return bool(np.abs(np.array(rgb) - want).max() <= 3)


def test_view_draws_the_image_and_grid_and_a_click_shows_that_patch(page):
    pytest.importorskip("anywidget")
    from labkit.ui.image_view import ImageAttentionView

    result = _planted()
    view = ImageAttentionView(result)
    state, buffers = _state(view)
    widget_page(page, "image_attention", state, buffers)
    page.wait_for_function(READY)  # rollout: a trait, nothing to ask for
    assert page.evaluate("window.__model.sent.length") == 0
    size = page.evaluate(
        "[document.querySelector('.lk-img-canvas').width, "
        "document.querySelector('.lk-img-canvas').height]"
    )
    assert size == [280, 280]  # 28 px x 10, one patch = 40 px
    # rollout from [CLS]: patch (1, 5) is darkest; pixel (0, 0) of patch (0, 0) is not
    assert _hot(page.evaluate(_PIXEL, [5 * 40 + 5, 1 * 40 + 5]))
    assert not _hot(page.evaluate(_PIXEL, [5, 5]))
    # the grid's lines cross between the patches
    assert page.evaluate(_PIXEL, [40, 20]) != page.evaluate(_PIXEL, [20, 20])
    screenshot(page, "image_attention_rollout")

    # one layer's head: the view asks for the layer, then draws from [CLS]
    page.locator(".lk-img-layer").select_option("1")
    page.locator(".lk-img-head").select_option("2")
    _serve(page, view, READY + " && document.querySelector('.lk-img').dataset.head === '2'")
    assert _hot(page.evaluate(_PIXEL, [5 * 40 + 5, 1 * 40 + 5]))
    assert page.locator(".lk-img-thumb").count() == len(result.heads) + 1  # heads + mean

    # click patch (5, 1): its attention goes to patch (0, 6)
    page.locator(".lk-img-canvas").click(position={"x": 1 * 40 + 20, "y": 5 * 40 + 20})
    page.wait_for_function(
        f"document.querySelector('.lk-img').dataset.query === '{result.token_index((5, 1))}'"
    )
    assert page.evaluate("window.__model.state.query") == result.token_index((5, 1))
    assert page.locator(".lk-img-from").inner_text() == "from patch (5,1)"
    assert _hot(page.evaluate(_PIXEL, [6 * 40 + 5, 0 * 40 + 5]))
    assert not _hot(page.evaluate(_PIXEL, [5 * 40 + 5, 1 * 40 + 5]))
    screenshot(page, "image_attention_patch")

    # the hostile model name is text; nothing ran, nothing was fetched
    assert XSS in page.locator(".lk-img-title").inner_text()
    assert page.locator("#root img, #root script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.console_errors == [] and page.blocked == []


def _html_page(page: Any, body: str) -> None:
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == f"{ORIGIN}/":
            r.fulfill(status=200, content_type="text/html", body=body)
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{ORIGIN}/")
    page.blocked = blocked


def test_static_overlays_render_offline_with_labels_as_text(page):
    pytest.importorskip("captum")
    from tests.test_vision_explain import one_patch_model

    img = np.zeros((28, 28), dtype=np.uint8)
    img[8:12, 12:16] = 255
    attention = _planted()._repr_html_()
    explained = labkit.explain(one_patch_model(), img)._repr_html_()
    _html_page(
        page,
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        f"{attention}{explained}</body></html>",
    )
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    widths = page.evaluate("[...document.images].map((i) => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths)  # every data-URI PNG decodes
    assert page.locator(".labkit-overlay").count() == 3 + 2
    assert page.locator(".labkit-image-attention svg line").count() >= 12  # the grid
    text = page.locator("body").inner_text()
    assert XSS in text  # the model name of the attention result
    assert "toward <img src=x onerror=alert(1)>" in text  # the hostile label, as text
    assert page.evaluate("window.__xss") is None
    assert page.blocked == []
    screenshot(page, "image_static_overlays")


def test_attribution_view_toggles_pixels_and_patches_and_shows_labels_as_text(page):
    pytest.importorskip("anywidget")
    pytest.importorskip("captum")
    from labkit.ui.image_view import ImageAttributionView
    from tests.test_vision_explain import HOT, one_patch_model

    img = np.zeros((28, 28), dtype=np.uint8)
    img[8:12, 12:16] = 255
    img[9, 13] = 0  # one dark pixel inside the patch that decides
    view = ImageAttributionView(labkit.explain(one_patch_model(), img))
    state, buffers = _state(view)
    widget_page(page, "image_attribution", state, buffers)
    ready = "document.querySelector('.lk-iattr').dataset.ready === '1'"
    page.wait_for_function(ready)
    pixel = """([x, y]) => Array.from(document.querySelector('.lk-iattr-canvas')
      .getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))"""
    r, c = HOT
    inside = [(4 * c + 2) * 10 + 5, (4 * r + 2) * 10 + 5]  # a pixel of the hot patch
    dark = [13 * 10 + 5, 9 * 10 + 5]  # the dark pixel in it: the baseline's value, score 0
    assert page.evaluate(pixel, inside)[1] > page.evaluate(pixel, inside)[0]  # green: toward
    assert len(set(page.evaluate(pixel, dark))) == 1  # gray: no score
    screenshot(page, "image_attribution_pixels")
    page.get_by_text("Patches").click()
    page.wait_for_function("document.querySelector('.lk-iattr').dataset.mode === 'patches'")
    assert page.evaluate("window.__model.state.mode") == "patches"
    after = page.evaluate(pixel, dark)
    assert after[1] > after[0]  # the patch's sum colours the whole patch green
    page.locator(".lk-iattr-canvas").hover(position={"x": inside[0], "y": inside[1]})
    assert page.locator(".lk-iattr-hover").inner_text().startswith(f"patch ({r},{c}): ")
    legend = page.locator(".lk-iattr-legend").inner_text()
    assert "toward <img src=x onerror=alert(1)>" in legend  # the hostile label, as text
    assert page.locator("#root img, #root script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.console_errors == [] and page.blocked == []
    screenshot(page, "image_attribution_patches")
