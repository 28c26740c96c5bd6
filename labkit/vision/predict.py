"""An image classifier's answers: raw scores (:func:`logits`), one
:class:`~labkit.model.Prediction` per image (:func:`predict`) and metrics on labelled images
(:func:`evaluate`). ``labkit.Model.logits / predict / evaluate`` route here for an image
classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from labkit.metrics import Metrics
    from labkit.model import Model
    from labkit.prediction import Prediction

__all__ = ["evaluate", "logits", "predict"]


def _arrays(model: Model, images: Any) -> list[np.ndarray]:
    """Images as uint8 [H, W, C] arrays; an ImageData split (a Dataset with an ``image``
    column) is read as one block."""
    from labkit.vision.pixels import as_images, model_images

    features = getattr(images, "features", None)
    if features is not None and "image" in features:
        from labkit.vision.data import image_block

        if type(features["image"]).__name__ == "Array3D":
            return list(image_block(images))
        return as_images(list(images["image"]))
    return model_images(model, images)


def _scores(model: Model, arrays: list[np.ndarray], batch_size: int) -> torch.Tensor:
    import torch

    from labkit.vision.pixels import pixel_values

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    model.require_task("image-classification", "logits")
    out = torch.empty(len(arrays), len(model.labels), dtype=torch.float32)
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(arrays), batch_size):
                # pixels made per batch: a 224x224 RGB image is 600 kB as float32
                pixels = pixel_values(model, arrays[start : start + batch_size])
                out[start : start + len(pixels)] = (
                    model.hf(pixel_values=pixels).logits.float().cpu()
                )
    finally:
        model.hf.train(was_training)
    return out


def logits(model: Model, images: Any, *, batch_size: int = 32) -> torch.Tensor:
    """Raw scores, float32 [N, num_labels] on the CPU, in input order, for one image or a list
    of them (see :func:`labkit.vision.pixels.as_images`; an ImageData split works too).

    Raises ``InputError`` when an image cannot become what the model takes (wrong channels, a
    size the processor does not resize)."""
    return _scores(model, _arrays(model, images), batch_size)


def predict(model: Model, images: Any, *, batch_size: int = 32) -> list[Prediction]:
    """One :class:`~labkit.model.Prediction` per image, in input order: ``label`` the top class,
    ``probs`` every class's probability, ``text`` a short description (``"image 3
    (28x28)"``)."""
    from labkit.prediction import Prediction

    arrays = _arrays(model, images)
    probs = _scores(model, arrays, batch_size).softmax(-1).tolist()
    out = []
    for i, (im, row) in enumerate(zip(arrays, probs)):
        best = max(range(len(row)), key=row.__getitem__)
        out.append(
            Prediction(
                text=f"image {i} ({im.shape[0]}x{im.shape[1]})",
                label=model.labels[best],
                probs={name: float(p) for name, p in zip(model.labels, row)},
            )
        )
    return out


def _labelled(data: Any, split: str | None) -> tuple[Any, tuple[str, ...] | None]:
    from labkit.vision.data import ImageData

    if isinstance(data, ImageData):
        if split is None:
            split = "test" if data.test is not None else "validation"
        if split not in data.splits:
            raise DataError(
                f"this ImageData has no split {split!r}; it has {', '.join(data.splits)}."
            )
        return data.splits[split], data.labels
    cols = getattr(data, "column_names", None)
    if cols is None or "image" not in cols or "label" not in cols:
        raise DataError(
            "evaluate needs an ImageData or a datasets.Dataset with 'image' and 'label' columns; "
            f"got {type(data).__name__}{f' with columns {cols}' if cols else ''}. Use "
            "labkit.load_data(...) first."
        )
    names = getattr(data.features["label"], "names", None)
    return data, tuple(names) if names is not None else None


def evaluate(model: Model, data: Any, *, split: str | None = None, batch_size: int = 64) -> Metrics:
    """Accuracy, macro precision/recall/F1, confusion matrix and mean cross-entropy (nats) on
    labelled images: an :class:`~labkit.vision.ImageData` (its ``test`` split, else
    ``validation``, or ``split=``) or a ``datasets.Dataset`` with ``image`` and ``label``
    columns. Labels are matched to the model's by name."""
    import torch

    from labkit._utils.labels import label_ids
    from labkit.metrics import compute_metrics

    ds, names = _labelled(data, split)
    ids = label_ids(model.labels, names, list(ds["label"]))
    scores = logits(model, ds, batch_size=batch_size)
    target = torch.tensor(ids, dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(scores, target).item()
    return compute_metrics(ids, scores.argmax(-1).tolist(), model.labels, loss=loss)
