"""Acceptance on the real offline digits: the demo ViT, built from a config with fresh weights,
learns MNIST well above chance in a short run through lk.finetune."""

from __future__ import annotations

import pytest

import labkit as lk


@pytest.fixture(scope="module")
def digits() -> lk.ImageData:
    return lk.demo.images()


def test_demo_images_are_real_stratified_mnist(digits):
    from collections import Counter

    assert digits.labels == tuple(str(i) for i in range(10))
    assert digits.image_size == (28, 28) and digits.channels == 1
    assert {k: len(v) for k, v in digits.splits.items()} == {
        "train": 4000,
        "validation": 500,
        "test": 500,
    }
    assert set(Counter(digits.test["label"]).values()) == {50}


@pytest.mark.slow
def test_demo_vit_learns_real_digits_in_a_short_run(digits, tmp_path):
    model = lk.demo.vit(device="cpu")
    assert model.name == "ViT (from config, 28x28)" and model.task == "image-classification"
    before = model.evaluate(digits).accuracy
    run = lk.finetune(
        model,
        digits,
        max_steps=120,
        lr=3e-3,
        batch_size=64,
        warmup=0.05,
        eval_every=120,
        output_dir=tmp_path / "vit",
        progress=False,
    ).wait()
    assert run.status == "finished"
    after = model.evaluate(digits)
    assert before < 0.2  # fresh weights: about chance (0.1)
    assert after.accuracy >= 0.35, after  # 120 steps: well above chance, on held-out digits
    assert run.history.column("loss")[-1] < run.history.column("loss")[0]
