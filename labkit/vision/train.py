"""An image classifier's pieces of finetuning: ImageData rows, the collator that turns them into
``pixel_values`` + ``labels``, and the metrics of an evaluation.

``labkit.finetune`` dispatches here for a model whose ``task`` is ``"image-classification"``;
the run, its trainer, events, checkpoints and the panel are the ones text classifiers use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

    from labkit.model import Model
    from labkit.train.config import FinetuneConfig
    from labkit.train.parts import TaskParts
    from labkit.vision.data import ImageData

__all__ = ["ImageCollator", "ImageRows", "shifted", "training_parts"]


def shifted(image: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 [H, W, C] image moved by up to ``shift`` pixels up/down and left/right (drawn
    from ``rng``), its edge pixels repeated into the space it leaves: the same size out."""
    import numpy as np

    h, w = image.shape[:2]
    dy, dx = rng.integers(0, 2 * shift + 1, size=2)
    padded = np.pad(image, ((shift, shift), (shift, shift), (0, 0)), mode="edge")
    return padded[dy : dy + h, dx : dx + w]


class ImageRows:
    """One split as rows ``{"pixel_values": uint8 [H, W, C], "labels": id}`` for the trainer.

    Held as one uint8 block (5,000 28x28 digits: 3.9 MB); the collator makes float pixels per
    batch, so a folder of 224x224 photos never sits in memory as float32. The keys are the
    model's own argument names: the trainer's ``remove_unused_columns`` keeps them. With
    ``shift`` > 0 each row is moved at random as it is read (:func:`shifted`), from a generator
    seeded with ``seed``: a run draws the same shifts each time, a resumed one starts them
    again (its losses then differ from the uninterrupted run's).
    """

    def __init__(
        self, images: np.ndarray, labels: Sequence[int], *, shift: int = 0, seed: int = 0
    ) -> None:
        import numpy as np

        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.shift = int(shift)
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = self.images[i]
        if self.shift:
            image = shifted(image, self.shift, self._rng)
        return {"pixel_values": image, "labels": int(self.labels[i])}


class ImageCollator:
    """Rows of :class:`ImageRows` -> ``{"pixel_values": float32 [B, C, H, W], "labels": [B]}``
    through the model's image processor (:func:`labkit.vision.pixels.pixel_batch`), on the CPU."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        import torch

        from labkit.vision.pixels import pixel_batch

        images = [r["pixel_values"] for r in rows]
        pixels = pixel_batch(self.model, images, what="training images")
        labels = torch.tensor([int(r["labels"]) for r in rows], dtype=torch.long)
        return {"pixel_values": pixels, "labels": labels}


def _rows(model: Model, data: ImageData, split: str, *, shift: int = 0, seed: int = 0) -> ImageRows:
    from labkit._utils.labels import label_ids
    from labkit.vision.data import image_block

    ds = data.splits[split]
    ids = label_ids(model.labels, data.labels, list(ds["label"]))
    return ImageRows(image_block(ds), ids, shift=shift, seed=seed)


def training_parts(model: Model, data: ImageData, config: FinetuneConfig) -> TaskParts:
    """Train and validation rows of ``data`` for ``model`` (labels matched by name; training
    images shifted at random when ``data.shift`` asks), the collator, accuracy/precision/recall/F1 at each evaluation (the trainer adds the loss), and
    the image processor as what each checkpoint saves beside the weights, so that
    ``labkit.load_model(checkpoint)`` reloads it.

    Raises ``DataError`` when the data has labels the model does not know."""
    from labkit.metrics import compute_metrics
    from labkit.train.parts import TaskParts

    def metrics(pred: Any) -> Any:
        p = pred.predictions
        scores = p[0] if isinstance(p, tuple) else p
        return compute_metrics(pred.label_ids, scores.argmax(-1), model.labels)

    train = _rows(model, data, "train", shift=data.shift, seed=config.seed)
    return TaskParts(
        train=train,
        lengths=[1] * len(train),  # every image is one input of the same size
        evalset=_rows(model, data, "validation"),
        collator=ImageCollator(model),
        metrics=metrics,
        processing_class=model.processor,
    )
