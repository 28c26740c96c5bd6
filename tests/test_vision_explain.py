"""labkit.explain on an image classifier: integrated gradients over pixels and occlusion over
patches find a planted signal; overlays escape labels; bad input is refused."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import labkit
from labkit import ConfigError, InputError
from labkit.vision.attribution_result import ImageAttribution
from tests.test_vision_attention import tiny_vit

pytest.importorskip("captum")

XSS = "<img src=x onerror=alert(1)>"
HOT = (2, 3)  # the patch that decides


def one_patch_model():
    """An image classifier whose answer is the brightness of patch HOT alone: "on" = XSS."""
    import torch
    import transformers

    from labkit.vision.pixels import make_processor

    class OnePatch(torch.nn.Module):
        labkit_task = "image-classification"

        def __init__(self) -> None:
            super().__init__()
            self.config = transformers.ViTConfig(
                image_size=28, patch_size=4, num_channels=1, num_labels=2
            )
            self.w = torch.nn.Parameter(torch.tensor(3.0))

        def forward(self, pixel_values):
            r, c = HOT
            v = pixel_values[:, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].mean((1, 2, 3))
            return SimpleNamespace(logits=torch.stack([-self.w * v, self.w * v], -1))

    return labkit.Model.wrap(OnePatch(), make_processor(28, 1), labels=["off", XSS], name="1p")


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


@pytest.fixture(scope="module")
def planted():
    return one_patch_model()


@pytest.fixture(scope="module")
def lit():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[8:12, 12:16] = 255  # patch HOT
    img[20:24, 0:8] = 255  # bright, but it decides nothing
    return img


def test_integrated_gradients_find_the_patch_that_decides(planted, lit):
    r = labkit.explain(planted, lit)
    assert isinstance(r, ImageAttribution)
    assert r.target == XSS and r.predicted == XSS and r.method == "integrated_gradients"
    assert r.scores.shape == (28, 28) and r.patch_scores.shape == (7, 7)
    assert r.top_patches(1)[0][0] == HOT
    others = np.delete(r.patch_scores.ravel(), HOT[0] * 7 + HOT[1])
    assert np.abs(others).max() < 1e-6 < r.patch_scores[HOT]
    # completeness: the scores add up to p(image) - p(black image); the patch is +1 after the
    # processor's normalisation in the image (logits -3, 3) and -1 in the baseline (3, -3)
    change = _sigmoid(6.0) - _sigmoid(-6.0)
    assert r.scores.sum() == pytest.approx(change, abs=0.01)
    assert r.probability == pytest.approx(_sigmoid(6.0), abs=1e-6)
    assert r.delta is not None and r.delta < 0.01
    assert r.options["baseline"] == "black" and r.options["n_steps"] >= 50


def test_occlusion_over_patches_finds_it_too(planted, lit):
    r = labkit.explain(planted, lit, method="occlusion", target=1)
    assert r.method == "occlusion" and r.delta is None and r.options["window"] == (4, 4)
    assert r.top_patches(1)[0][0] == HOT
    assert np.count_nonzero(np.abs(r.patch_scores) > 1e-7) == 1
    # a patch's pixels share its drop: their sum is p(image) - p(the patch blacked out)
    assert r.patch_scores[HOT] == pytest.approx(_sigmoid(6.0) - _sigmoid(-6.0), abs=1e-5)


def test_both_methods_run_on_the_tiny_vit():
    model = tiny_vit()
    img = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    ig = labkit.explain(model, img, target="3", n_steps=8, tolerance=None)
    occ = labkit.explain(model, img, method="occlusion", target=3, baseline="mean")
    assert ig.target == occ.target == "3" and ig.options["n_steps"] == 8
    assert ig.scores.shape == occ.scores.shape == (28, 28)
    np.testing.assert_allclose(ig.patch_scores.sum(), ig.scores.sum(), rtol=1e-4, atol=1e-7)
    assert np.isfinite(ig.scores).all() and np.isfinite(occ.scores).all()


def test_static_overlay_escapes_labels_and_has_a_legend(planted, lit):
    page = labkit.explain(planted, lit)._repr_html_()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "labkit-legend" in page and "toward &lt;img" in page and "against &lt;img" in page
    assert page.count("class='labkit-overlay'") == 2  # pixel scores, patch sums
    assert page.count("data:image/png;base64,") == 3


def test_bad_targets_methods_and_options_are_refused(planted, lit):
    with pytest.raises(InputError, match="not a label"):
        labkit.explain(planted, lit, target="cat")
    with pytest.raises(InputError, match="out of range"):
        labkit.explain(planted, lit, target=5)
    with pytest.raises(ConfigError, match="integrated_gradients, occlusion"):
        labkit.explain(planted, lit, method="lime")
    with pytest.raises(ConfigError, match="does not take option"):
        labkit.explain(planted, lit, window=2)
    with pytest.raises(ConfigError, match="baseline"):
        labkit.explain(planted, lit, baseline="pad")
    with pytest.raises(InputError, match=r"\(28, 28, 2\)"):
        labkit.explain(planted, np.zeros((28, 28, 2), dtype=np.uint8))


def test_float_weights_only_and_images_only_for_image_models(planted, lit, tiny_model):
    int8 = dataclasses.replace(planted, backend="torch-int8")
    with pytest.raises(InputError, match="float torch weights"):
        labkit.explain(int8, lit)
    with pytest.raises(InputError, match="image-classification model"):
        labkit.explain(tiny_model, lit)


def test_with_scale_changes_the_drawing_only(planted, lit):
    r = labkit.explain(planted, lit, method="occlusion")
    s = r.with_scale(1.0)
    assert s.display_scale == 1.0 and s.scores is r.scores
    page = s._repr_html_()
    assert "shared scale ±1" in page
    assert page.count("class='labkit-overlay'") == 1  # one number per patch: one figure
    assert "drop when a patch is blacked out" in page
    with pytest.raises(InputError):
        r.with_scale(0)


def test_view_shows_the_scores_and_recomputes_another_label(planted, lit):
    pytest.importorskip("anywidget")
    from labkit.ui import view_for
    from labkit.ui.image_view import ImageAttributionView

    r = labkit.explain(planted, lit, method="occlusion")
    view = view_for(r)
    assert isinstance(view, ImageAttributionView) and view.interactive
    assert view.labels == ["off", XSS] and view.target == XSS and view.grid == [7, 7]
    np.testing.assert_array_equal(np.frombuffer(view.scores, "<f4").reshape(28, 28), r.scores)
    view.target = "off"  # the label picker: explained again on the view's worker
    view.wait(60)
    assert not view.busy and view.error == "" and view.result.target == "off"
    patches = np.frombuffer(view.patch_scores, "<f4").reshape(7, 7)
    assert patches[HOT] < 0  # the bright patch pushes away from "off"
    shown = ImageAttributionView(dataclasses.replace(r, model=None))
    assert not shown.interactive  # a copy without its model is shown only


def test_explaining_another_label_starts_from_the_image_as_given(planted, lit):
    """The view re-explains from the input, not from the processed image (a processor that
    resizes or crops would otherwise do it twice): a 56x56 input is kept as given."""
    big = np.kron(lit, np.ones((2, 2), dtype=np.uint8))  # 56x56: the processor resizes it
    r = labkit.explain(planted, big, method="occlusion")
    assert r.image.shape[:2] == (28, 28) and r.given.shape[:2] == (56, 56)
    from labkit.ui.image_view import ImageAttributionView

    view = ImageAttributionView(r)
    other = next(label for label in r.probs if label != r.target)
    view.target = other
    view.wait(60)
    assert view.error == "" and view.result.target == other
    assert np.array_equal(view.result.given, r.given)
    assert np.allclose(
        view.result.scores, labkit.explain(planted, big, target=other, method="occlusion").scores
    )
