"""labkit.App with an image classifier, without a browser: the tabs follow the model's task, the
Predict tab picks an image (thumbnail strip, index, upload) and predicts it, Attention and
Explain work on the picked image, training marks the prediction as stale, the snapshot keeps
what was shown, escaped. A tiny ViT built from a config and small synthetic images (a folder of
class subfolders written here, as a user would point the Data tab at one)."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import numpy as np
import pytest

import labkit

VISION_TABS = ["Model", "Data", "Train", "Predict", "Attention", "Explain"]
CLASSIFIER_TABS = ["Model", "Data", "Train", "Attention", "Explain", "Compare", "Compress"]
HOSTILE = "<img src=x onerror=alert(1)>"
LABELS = ("0", "1", "2")


def _titles(app) -> list[str]:
    return [app.tabs.get_title(i) for i in range(len(app.tabs.children))]


def _digits(n: int = 60, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """28x28 grayscale images whose class k has a bright band in the k-th third of its rows."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    labels = [str(i % 3) for i in range(n)]
    for i, k in enumerate(labels):
        top = int(k) * 9
        images[i, top : top + 9] = 230
    return images, labels


def _tiny_vit(labels=LABELS):
    from transformers import ViTConfig

    config = ViTConfig(
        image_size=28,
        patch_size=7,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    return labkit.from_config(config, labels=list(labels), device="cpu", name="tiny-vit")


def _png(image: np.ndarray) -> bytes:
    from labkit.render.heatmap import image_png

    return image_png(image)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """A folder of class subfolders of PNG files, as a user has one."""
    root = tmp_path_factory.mktemp("digits")
    images, labels = _digits(45)
    for i, (im, k) in enumerate(zip(images, labels)):
        (root / k).mkdir(exist_ok=True)
        (root / k / f"{i}.png").write_bytes(_png(im))
    return root


@pytest.fixture(scope="module")
def image_data():
    return labkit.load_data(_digits(), test_size=0.5, seed=0)


@pytest.fixture
def app(image_data, tmp_path):
    from labkit.ui.app import App

    return App(model=_tiny_vit(), data=image_data, output_dir=str(tmp_path / "runs"))


def _upload(widget, name: str, payload: bytes) -> None:
    widget.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(payload),
            "content": memoryview(payload),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


def test_the_offline_vit_preset_shows_the_image_tabs_and_back(monkeypatch, tiny_dirs, toy_data):
    """The ViT preset calls labkit.demo.vit() on the worker and switches to the image tabs:
    the Labels field is off (the digits ViT has its own ten), Train starts in full mode with
    the demo's settings, the Data tab offers image data with an image column and no upload; a
    classifier folder brings the classifier's tabs and its data back."""
    from labkit.ui.app import DEFAULT_VIT, App
    from labkit.ui.app_vision import VISION_DATA, VISION_FOLDER
    from labkit.vision.demo import VIT_TRAINING

    monkeypatch.setattr(labkit.demo, "vit", lambda: _tiny_vit())
    app = App(data=toy_data)
    app.model_preset.value = DEFAULT_VIT
    assert app.model_labels.disabled and app.model_name.value == ""
    app.model_load.click()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert "an image classifier" in app.status.message
    assert app.task == "image-classification" and _titles(app) == VISION_TABS
    assert "image classifiers" in app.heading.value
    assert list(app.data_preset.options) == [VISION_DATA, VISION_FOLDER]
    assert app.data_text.layout.display == "none"  # load_data reads the "image" column
    assert app.data_upload.layout.display == "none" and app.data_label.layout.display is None
    assert app.train_mode.value == "full" and app.train_lr.value == VIT_TRAINING["lr"]
    assert app.train_batch.value == VIT_TRAINING["batch_size"]
    assert app.data is None and "No image data loaded" in app.vision.strip_note.value
    # back to a classifier: its tabs, LoRA and its data again
    app.model_preset.value = "other: type a hub name or folder below"
    app.model_labels.value = "bad,good"
    app.model_name.value = str(tiny_dirs["bert"])
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert _titles(app) == CLASSIFIER_TABS and app.data is toy_data
    assert app.train_mode.value == "LoRA" and app.data_text.layout.display is None


def test_a_hub_vit_preset_keeps_its_own_labels(tmp_path):
    """A hub ViT's labels are its own unless some are typed: choosing it empties the text
    classifier's default labels; a folder holding a ViT loads as an image classifier with the
    labels typed."""
    from labkit.ui.app import App

    app = App()
    app.model_preset.value = "google/vit-base-patch16-224 (hub)"
    assert app.model_name.value == "google/vit-base-patch16-224"
    assert app.model_labels.value == "" and not app.model_labels.disabled
    folder = tmp_path / "vit"
    vit = _tiny_vit()
    vit.hf.save_pretrained(folder)
    vit.processor.save_pretrained(folder)
    app.model_name.value = str(folder)
    app.model_labels.value = "a,b,c,d"
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.model.task == "image-classification" and app.model.labels == ("a", "b", "c", "d")
    assert _titles(app) == VISION_TABS


def test_a_folder_of_class_subfolders_fills_the_picker(digits_folder):
    """The Data tab's folder preset reads class subfolders; the picker shows the test split
    (else validation) as thumbnails with their labels and picks its first image."""
    from labkit.ui.app import App
    from labkit.ui.app_vision import STRIP, VISION_FOLDER

    app = App(model=_tiny_vit())
    app.data_preset.value = VISION_FOLDER
    app.data_source.value = str(digits_folder)
    app.load_data()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert "3 labels, images 28x28x1" in app.status.message
    v = app.vision
    split = app.data.test if app.data.test is not None else app.data.validation
    shown = min(STRIP, len(split))
    assert len(v.strip.thumbs) == shown and v.strip.thumbs[0].startswith(b"\x89PNG")
    first = app.data.labels[split[0]["label"]]
    assert v.strip.captions[0] == f"0: {first}" and v.strip.selected == 0
    assert v.picked is not None and v.picked.label == first
    assert v.picked.image.shape == (28, 28, 1)
    # a folder that is not there: the status line says so, the data stays
    before = app.data
    app.data_source.value = str(digits_folder / "missing")
    app.load_data()
    app.wait()
    assert app.status.kind == "error" and app.data is before
    app.data_source.value = ""
    app.load_data()
    app.wait()
    assert app.status.kind == "error" and "Source field" in app.status.message


def test_picking_from_the_strip_and_by_index_predicts_the_image(app, image_data):
    from labkit.ui.app_vision import STRIP

    v = app.vision
    test = image_data.test
    assert v.strip_note.value == f"images 0–{STRIP - 1} of {len(test)} (test)"
    v.strip.selected = 3  # a click on the fourth thumbnail
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert v.index.value == 3 and v.picked.what == "test image 3"
    expected = app.model.predict(test.select([3]))[0]
    assert v.prediction.label == expected.label
    assert v.prediction.probs == pytest.approx(expected.probs)
    assert "test image 3: predicted" in app.status.message
    assert "Prediction:" in v.picked_box.value and "data:image/png;base64," in v.picked_box.value
    # a number typed past the strip: the strip moves to its page
    v.index.value = STRIP + 2
    app.wait()
    assert v.strip.selected == 2 and v.strip.captions[0].startswith(f"{STRIP}: ")
    assert v.picked.what == f"test image {STRIP + 2}"
    v.earlier.click()
    assert v.strip.captions[0].startswith("0: ") and v.strip.selected == -1
    assert v.earlier.disabled and not v.later.disabled


def test_an_uploaded_image_is_picked_and_a_bad_file_is_named(app):
    v = app.vision
    image = _digits(3)[0][2]
    _upload(v.upload, "mine.png", _png(image))
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert v.picked.what == "upload mine.png" and v.picked.label is None
    assert np.array_equal(v.picked.image[:, :, 0], image)
    assert v.strip.selected == -1 and "upload mine.png" in v.picked_box.value
    _upload(v.upload, "broken.png", b"not an image at all")
    assert app.status.kind == "error" and "broken.png" in app.status.message
    assert v.picked.what == "upload mine.png"  # the last good image stays picked


def test_attention_and_explain_of_the_picked_image(app):
    from labkit.ui.image_view import ImageAttentionView
    from labkit.vision.explain import IMAGE_METHODS

    v = app.vision
    v.strip.selected = 1
    app.wait()
    app.show_attention()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    (view,) = v.attention_box.children
    assert isinstance(view, ImageAttentionView)
    assert v.attended.weights.shape == (2, 4, 17, 17) and v.attended.grid == (4, 4)
    assert "test image 1" in v.attention_image.value
    assert tuple(v.method.options) == IMAGE_METHODS
    v.method.value = "occlusion"
    app.show_explanation()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    r = v.explained
    assert r.target == v.prediction.label and r.method == "occlusion"
    assert r.scores.shape == (28, 28)
    (view,) = v.explain_box.children
    assert view is v.explain_view and "Explained '" in app.status.message
    # another label from the view's own picker: it recomputes, the status line follows
    other = next(label for label in LABELS if label != r.target)
    view.target = other
    view.wait(60)
    assert app.status.kind == "ok" and f"Explained '{other}'" in app.status.message
    assert v.explained.target == other
    # the next Explain (another method) keeps the label picked in the view
    v.method.value = "integrated_gradients"
    app.show_explanation()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert v.explained.target == other and v.explained.method == "integrated_gradients"
    assert "completeness error" in app.status.message
    # another image: what the tabs showed belonged to the last one
    v.strip.selected = 2
    app.wait()
    assert v.attended is None and v.explained is None and not v.attention_box.children


def test_without_a_model_or_an_image_the_status_line_says_what_to_do(image_data):
    from labkit.ui.app import App

    app = App(data=image_data)  # the tabs follow the data: images
    assert _titles(app) == VISION_TABS and app.vision.picked is not None
    assert "Load a model" in app.vision.picked_box.value
    app.show_attention()
    app.wait()
    assert app.status.kind == "error" and "No model loaded" in app.status.message
    app = App(model=_tiny_vit())
    app.show_explanation()
    app.wait()
    assert app.status.kind == "error" and "No image picked" in app.status.message


def test_training_marks_the_prediction_stale_and_keeps_no_copy(app):
    """The usual Train tab and panel; the prediction shown is marked as the model's from
    before the run (no copy of the weights is kept: the image tabs have no Compare)."""
    from labkit.events import TrainEnd

    v = app.vision
    assert v.picked.what == "test image 0" and "Press Predict" in v.picked_box.value
    v.predict_go.click()
    app.wait()
    assert v.prediction is not None
    assert app.train_mode.value == "full" and "random" in app.train_note.value
    app.train_steps.value = 3
    app.train_batch.value = 8
    app.start_training()
    assert type(app.train_box.children[0]).__name__ == "RunPanel"
    # subscribed after the App: called once the App has seen the run end
    ended = threading.Event()
    app.run.history.subscribe(lambda e: ended.set() if isinstance(e, TrainEnd) else None)
    assert ended.wait(120)
    assert app.run.status == "finished", app.run.error
    assert app.base is None
    assert v.stale and "from before the last training run" in v.picked_box.value
    v.predict_go.click()
    app.wait()
    assert app.status.kind == "ok" and not v.stale, app.status.message


def test_the_snapshot_keeps_the_picked_image_and_its_results_escaped(tmp_path):
    """Hostile label names are escaped in the picker, the prediction and the snapshot."""
    from labkit.ui.app import App

    labels = ["plain", HOSTILE, "x"]
    images, ids = _digits(30)
    named = [labels[int(k)] for k in ids]
    data = labkit.load_data((images, named), labels=labels, test_size=0.5)
    app = App(model=_tiny_vit(labels), data=data, output_dir=str(tmp_path))
    html = app.snapshot_html()
    assert "Predict:" in html and "Attention</div>" not in html
    app.vision.predict()
    app.wait()
    app.show_attention()
    app.wait()
    app.vision.method.value = "occlusion"
    app.show_explanation()
    app.wait()
    app.vision.explain_view.target = HOSTILE
    app.vision.explain_view.wait(60)
    assert app.status.kind == "ok", app.status.message
    assert app.vision.explained.target == HOSTILE
    html = app.snapshot_html()
    assert "Prediction:" in html and "Attention</div>" in html and "Explain</div>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in app.vision.picked_box.value


@pytest.mark.slow
def test_the_offline_presets_pick_a_real_digit():
    """The Model tab's ViT preset and the Data tab's MNIST preset, then a pick and attention
    (an untrained ViT: only the mechanics)."""
    from labkit.ui.app import DEFAULT_VIT, App

    app = App()
    app.model_preset.value = DEFAULT_VIT
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    app.load_data()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.data.labels == tuple(str(i) for i in range(10)) and len(app.data.test) == 500
    app.vision.strip.selected = 5
    app.wait()
    assert app.status.kind == "ok" and app.vision.prediction is not None, app.status.message
    app.show_attention()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.vision.attended.grid == (4, 4)


def test_a_result_for_an_image_no_longer_picked_is_not_shown_under_the_new_one(app):
    """Picking another image while its attributions are computed: they belong to the old
    image, so they are dropped and the status line says to press again."""
    v = app.vision
    v.pick(0)
    app.wait()
    with app._model_lock:  # the explanation waits here while another image is picked
        app.show_explanation()
        v.pick(1, predict=False)
    app.wait()
    assert app.status.kind == "error", app.status.message
    assert "test image 0" in app.status.message and "test image 1" in app.status.message
    assert v.explained is None and not v.explain_box.children
    assert v.picked.what == "test image 1"
