"""Image classifiers on a tiny config-built ViT: predict, evaluate, finetune, stop and resume,
checkpoints that reload with load_model, and images of the wrong shape refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import labkit as lk
from labkit._errors import DataError, InputError
from labkit.events import StepEnd
from labkit.vision.data import image_block

LABELS = ["dark", "light"]


def _vit(seed: int = 0, channels: int = 1) -> lk.Model:
    from transformers import ViTConfig

    config = ViTConfig(
        image_size=8,
        patch_size=4,
        num_channels=channels,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    return lk.from_config(config, labels=LABELS, device="cpu", seed=seed)


@pytest.fixture(scope="module")
def images() -> lk.ImageData:
    """48 8x8 grayscale images: dark ones and light ones (learnable in a few steps)."""
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 90, (24, 8, 8), dtype=np.uint8)
    light = rng.integers(160, 256, (24, 8, 8), dtype=np.uint8)
    labels = ["dark"] * 24 + ["light"] * 24
    data = lk.load_data(
        (np.concatenate([dark, light]), labels), validation_size=0.25, test_size=0.25
    )
    assert isinstance(data, lk.ImageData)
    return data


def _go(model, data, tmp_path: Path, name: str = "run", **kw):
    kw.setdefault("max_steps", 6)
    kw.setdefault("batch_size", 8)
    kw.setdefault("lr", 3e-3)
    kw.setdefault("progress", False)
    return lk.finetune(model, data, output_dir=tmp_path / name, **kw)


class StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_event(self, event, control) -> None:
        if isinstance(event, StepEnd) and event.step == self.step:
            control.stop()


def test_predict_takes_every_kind_of_image(tmp_path):
    from PIL import Image

    model = _vit()
    arr = np.full((8, 8), 200, np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    inputs = [
        arr,
        arr[:, :, None],
        torch.from_numpy(arr)[None],
        Image.fromarray(arr),
        tmp_path / "x.png",
    ]
    preds = model.predict(inputs)
    assert [p.text for p in preds] == [f"image {i} (8x8)" for i in range(5)]
    for p in preds:
        assert set(p.probs) == set(LABELS) and sum(p.probs.values()) == pytest.approx(1.0)
        assert p.probs == pytest.approx(preds[0].probs, abs=1e-5)  # the same image each time
    scores = model.logits(np.stack([arr, 255 - arr]))
    assert scores.shape == (2, 2) and scores.dtype == torch.float32
    # an RGB image becomes grayscale for a grayscale model, a 16x16 one is resized to 8x8
    assert len(model.predict(np.full((16, 16, 3), 200, np.uint8))) == 1


def test_images_of_the_wrong_shape_are_refused():
    model = _vit()
    with pytest.raises(InputError, match="channels"):
        model.predict(np.zeros((1, 8, 8, 2), np.uint8))
    with pytest.raises(InputError, match=r"shape \(2, 8, 8, 8, 1\)"):
        model.predict(np.zeros((2, 8, 8, 8, 1), np.uint8))
    model.processor.do_resize = False  # a processor that does not resize: a 12x12 image is refused
    with pytest.raises(InputError, match=r"takes \(1, 8, 8\)"):
        model.predict(np.zeros((12, 12), np.uint8))


def test_evaluate_on_image_data_and_on_a_dataset(images):
    model = _vit()
    metrics = model.evaluate(images)
    assert metrics.n == len(images.test) and metrics.labels == tuple(LABELS)
    assert metrics.loss is not None and np.isfinite(metrics.loss)
    on_ds = model.evaluate(images.test)
    assert on_ds.accuracy == metrics.accuracy and on_ds.loss == pytest.approx(metrics.loss)
    assert model.evaluate(images, split="validation").n == len(images.validation)
    with pytest.raises(DataError, match="no split 'nope'"):
        model.evaluate(images, split="nope")
    with pytest.raises(DataError, match="'image' and 'label'"):
        model.evaluate([1, 2, 3])


def test_finetune_learns_and_every_checkpoint_reloads(images, tmp_path):
    model = _vit()
    before = model.evaluate(images).loss
    run = _go(model, images, tmp_path, max_steps=12, eval_every=6, save_every=6).wait()
    assert run.status == "finished" and run.error is None
    assert set(run.metrics) == {"loss", "accuracy", "precision", "recall", "f1"}
    assert model.evaluate(images).loss < before
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-6", "checkpoint-12"]
    again = lk.load_model(run.checkpoints[-1], device="cpu")
    assert again.task == "image-classification" and again.labels == tuple(LABELS)
    batch = image_block(images.test)
    assert torch.allclose(again.logits(batch), model.logits(batch), atol=1e-5)


def test_stop_then_resume_continues_with_identical_losses(images, tmp_path):
    common = {"max_steps": 6}
    full = _go(_vit(), images, tmp_path, "full", **common).wait()
    part = _go(_vit(), images, tmp_path, "part", callbacks=[StopAt(3)], **common).wait()
    assert part.status == "stopped" and part.step == 3
    rest = _go(_vit(), images, tmp_path, "rest", resume_from=part.checkpoints[-1], **common).wait()
    assert rest.status == "finished"
    assert rest.history.column("step") == [4, 5, 6]
    assert rest.history.column("loss") == pytest.approx(full.history.column("loss")[3:], abs=1e-5)


def test_finetune_refuses_text_data_for_an_image_model(tmp_path):
    text = lk.load_data([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}] * 4)
    with pytest.raises(DataError, match="labelled images"):
        _go(_vit(), text, tmp_path)


def test_load_image_model_from_a_saved_folder_with_a_new_head(tmp_path):
    model = _vit()
    model.hf.save_pretrained(tmp_path / "vit")  # no preprocessor_config.json: a default one
    loaded = lk.load_model(tmp_path / "vit", task="image-classification", device="cpu")
    x = np.full((8, 8), 120, np.uint8)
    assert torch.allclose(loaded.logits(x), model.logits(x), atol=1e-6)
    three = lk.load_model(tmp_path / "vit", labels=["a", "b", "c"], device="cpu", seed=0)
    assert three.labels == ("a", "b", "c") and three.logits(x).shape == (1, 3)
    model.processor.save_pretrained(tmp_path / "vit")
    assert type(lk.load_model(tmp_path / "vit").processor).__name__.startswith("ViTImageProcessor")


def test_shift_augments_training_images_only(images, tmp_path):
    from labkit.vision.train import ImageRows, shifted

    rng = np.random.default_rng(0)
    im = np.zeros((8, 8, 1), np.uint8)
    im[3:5, 3:5] = 255
    moved = [shifted(im, 2, rng) for _ in range(20)]
    assert all(m.shape == im.shape and m.sum() == im.sum() for m in moved)  # moved, not cut
    assert len({m.tobytes() for m in moved}) > 1
    rows = ImageRows(np.stack([im]), [0], shift=0)
    assert np.array_equal(rows[0]["pixel_values"], im)
    augmented = images.with_shift(1)
    assert augmented.shift == 1 and images.shift == 0 and augmented.train is images.train
    run = _go(_vit(), augmented, tmp_path, max_steps=4, eval_every=4).wait()
    assert run.status == "finished" and "accuracy" in run.metrics
    with pytest.raises(InputError, match="shift"):
        images.with_shift(-1)
    with pytest.raises(InputError, match="out of the frame"):
        images.with_shift(8)


def test_a_dataset_row_is_one_image_and_a_long_name_is_no_image_folder(images):
    """``ds[0]["image"]`` comes back as nested lists: it is one image, not 28 rows of them;
    a source name too long for the file system is simply not an image folder."""
    from labkit.vision.data import is_image_source

    model = _vit()
    row = images.test[0]["image"]
    assert isinstance(row, list)
    assert len(model.predict(row)) == 1
    assert len(model.predict(images.test[:3]["image"])) == 3
    assert not is_image_source("x" * 100_000)


def test_a_numpy_image_channels_first_is_one_image_for_an_rgb_model():
    """[3, H, W] from numpy is one RGB image for an RGB model (torch's order), not three
    grayscale ones; [N, H, W] in any other count stays a batch."""
    rgb = _vit(channels=3)
    chw = np.random.default_rng(0).random((3, 8, 8))
    assert len(rgb.predict(chw)) == 1
    assert torch.allclose(rgb.logits(chw), rgb.logits(np.moveaxis(chw, 0, -1)))
    assert lk.attention(rgb, chw).weights.shape[-1] == 5  # 2x2 patches + [CLS]
    assert len(rgb.predict(np.random.default_rng(1).random((5, 8, 8)))) == 5
