"""labkit.attention on an image classifier: maps over patches, rollout, overlays, the view."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import labkit
from labkit import InputError

XSS = "<img src=x onerror=alert(1)>"
LABELS = [str(i) for i in range(10)]


def tiny_vit(**overrides):
    import transformers

    config = {
        "image_size": 28,
        "patch_size": 4,
        "num_channels": 1,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        **overrides,
    }
    return labkit.from_config(transformers.ViTConfig(**config), labels=LABELS, device="cpu")


@pytest.fixture(scope="module")
def vit():
    return tiny_vit()


@pytest.fixture(scope="module")
def digit():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 12:16] = 255  # a "1"
    return img


def test_maps_over_patches_have_the_class_token_first(vit, digit):
    r = labkit.attention(vit, digit)
    assert r.weights.shape == (2, 4, 7 * 7 + 1, 7 * 7 + 1)  # [layers, heads, patches+1, patches+1]
    assert r.tokens[:3] == ("[CLS]", "patch (0,0)", "patch (0,1)")
    assert r.tokens[-1] == "patch (6,6)"
    assert r.special.tolist() == [True] + [False] * 49
    assert r.grid == (7, 7) and r.patch_size == (4, 4)
    np.testing.assert_array_equal(r.image[:, :, 0], digit)  # the image the model saw
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    assert vit.hf.config._attn_implementation == "sdpa"  # eager for that pass only


def test_layers_and_heads_keep_those(vit, digit):
    r = labkit.attention(vit, digit, layers=1, heads=[0, 3])
    assert r.weights.shape == (1, 2, 50, 50) and r.layers == (1,) and r.heads == (0, 3)
    full = labkit.attention(vit, digit)
    np.testing.assert_allclose(r.weights[0], full.weights[1, [0, 3]], atol=1e-6)
    with pytest.raises(InputError, match="layers"):
        labkit.attention(vit, digit, layers=5)


def test_rollout_rows_sum_to_one_and_match_abnar_zuidema(digit):
    # q and k at zero: every map is uniform (1/T), so the rollout over L layers is
    # (1 - 0.5^L) / T everywhere plus 0.5^L on the diagonal
    model = tiny_vit()
    for name, p in model.hf.named_parameters():
        if any(part in name for part in ("q_proj", "k_proj", "query", "key")):
            p.data.zero_()
    r = labkit.attention(model, digit)
    np.testing.assert_allclose(r.weights, 1 / 50, atol=1e-6)
    roll = r.rollout()
    assert roll.shape == (50, 50)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-5)
    expected = 0.75 / 50 * np.ones((50, 50)) + 0.25 * np.eye(50)
    np.testing.assert_allclose(roll, expected, atol=1e-6)
    cls = r.patch_map()  # rollout from [CLS] over the patches
    assert cls.shape == (7, 7)
    np.testing.assert_allclose(cls, 0.75 / 50, atol=1e-6)


def test_patch_map_from_a_patch_a_layer_and_a_head(vit, digit):
    r = labkit.attention(vit, digit)
    m = r.patch_map((2, 3), layer=1, head=2)
    i = r.token_index((2, 3))
    assert i == 1 + 2 * 7 + 3 and r.tokens[i] == "patch (2,3)"
    np.testing.assert_allclose(m.ravel(), r.weights[1, 2, i, 1:], atol=1e-7)
    np.testing.assert_allclose(
        r.patch_map("[CLS]", layer=0).ravel(), r.weights[0, :, 0, 1:].mean(0), atol=1e-7
    )
    with pytest.raises(InputError, match="outside the 7x7 grid"):
        r.patch_map((7, 0))
    with pytest.raises(InputError, match="head"):
        r.patch_map(0, layer=0, head=9)


def test_rgb_and_float_images_are_converted(vit, digit):
    rgb = np.repeat(digit[:, :, None], 3, axis=-1)
    a = labkit.attention(vit, digit)
    np.testing.assert_allclose(labkit.attention(vit, rgb).weights, a.weights, atol=1e-5)
    np.testing.assert_allclose(labkit.attention(vit, digit / 255.0).weights, a.weights, atol=1e-5)


def test_wrong_images_are_refused_naming_the_shapes(vit, digit):
    with pytest.raises(InputError, match=r"one image; found 2.*28x28 with 1 channel"):
        labkit.attention(vit, np.stack([digit, digit]))
    with pytest.raises(InputError, match=r"\(28, 28, 2\).*takes one image of 28x28"):
        labkit.attention(vit, np.zeros((28, 28, 2), dtype=np.uint8))
    with pytest.raises(InputError, match=r"shape \(5,\)"):
        labkit.attention(vit, np.zeros(5))
    with pytest.raises(InputError, match="pair"):
        labkit.attention(vit, digit, pair="text")


def test_a_processor_that_does_not_resize_refuses_another_size(digit):
    model = tiny_vit()
    model.processor.do_resize = False
    with pytest.raises(InputError, match=r"\(1, 32, 32\).*\(1, 28, 28\)"):
        labkit.attention(model, np.zeros((32, 32), dtype=np.uint8))


def test_a_text_model_given_an_image_says_it_needs_an_image_classifier(tiny_model, digit):
    with pytest.raises(InputError, match=r"image-classification model.*classification model"):
        labkit.attention(tiny_model, digit)


def test_static_view_draws_the_image_and_escapes_names(vit, digit):
    r = dataclasses.replace(labkit.attention(vit, digit), model_name=XSS)
    page = r._repr_html_()
    assert "labkit-image-attention" in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("class='labkit-overlay'") == 3  # rollout, last layer, centre patch
    assert page.count("data:image/png;base64,") >= 4 + 2 * 5  # figures + every head + means
    assert "http" not in page.replace("http://www.w3.org", "")  # nothing fetched
    text = dataclasses.replace(r, image=None, grid=None, patch_size=None)
    assert "labkit-image-attention" not in text._repr_html_()  # a text result as before


def test_overlay_is_the_attention_ramp_over_the_ghosted_image(digit):
    from labkit.render.heatmap import BLUE
    from labkit.render.image import GHOST, attention_overlay

    values = np.zeros((7, 7))
    values[3, 3] = 1.0
    out = attention_overlay(digit[:, :, None], values)
    assert out.shape == (28, 28, 3)
    # the hot patch holds the ramp's dark end, a cold dark pixel is white dimmed by the ghost
    np.testing.assert_allclose(out[12, 13], np.rint((1 - GHOST) * np.array(BLUE) + GHOST * 255))
    np.testing.assert_allclose(out[0, 0], np.rint([(1 - GHOST) * 255] * 3))


def test_view_routes_images_to_the_image_view(vit, digit, tiny_model):
    pytest.importorskip("anywidget")
    from labkit.ui import view_for
    from labkit.ui.attention_view import AttentionView
    from labkit.ui.image_view import ImageAttentionView

    r = labkit.attention(vit, digit)
    view = view_for(r)
    assert isinstance(view, ImageAttentionView)
    assert len(view.image) == 28 * 28 and view.grid == [7, 7] and view.channels == 1
    assert len(view.rollout) == 50 * 50 * 2
    roll = np.frombuffer(view.rollout, dtype=np.float16).reshape(50, 50)
    np.testing.assert_allclose(roll, r.rollout(), atol=2e-3)
    msg, buffers = view.layer_message(1)
    assert msg == {"type": "layer", "layer": 1, "heads": 4, "tokens": 50}
    assert len(buffers[0]) == 4 * 50 * 50 * 2
    assert isinstance(view_for(labkit.attention(tiny_model, "a good movie")), AttentionView)


def test_the_image_view_refuses_a_text_result(tiny_model):
    pytest.importorskip("anywidget")
    import labkit.ui

    with pytest.raises(InputError, match="over text"):
        labkit.ui.ImageAttentionView(labkit.attention(tiny_model, "a good movie"))


def test_a_model_whose_modules_hide_their_maps_is_asked_for_them(vit, digit, monkeypatch):
    from contextlib import contextmanager

    from labkit.inspect.attention import maps

    @contextmanager
    def sees_nothing(*_args, **_kwargs):
        yield maps.LayerMaps((0,), (0,), 1, None)  # no module handed its maps over

    expected = labkit.attention(vit, digit, layers=[0, 1], heads=[1, 2])
    monkeypatch.setattr(maps, "layer_maps", sees_nothing)
    r = labkit.attention(vit, digit, layers=[0, 1], heads=[1, 2])
    np.testing.assert_allclose(r.weights, expected.weights, atol=1e-6)
    assert r.layers == (0, 1) and r.heads == (1, 2) and r.num_layers == 2
