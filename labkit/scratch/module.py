"""A plain ``torch.nn.Module`` built by hand (an MLP on the digits) as a labkit image classifier:
``lk.finetune(mlp, data)`` trains it with the same Run, panel, stop and checkpoints as a
transformers model.

The module maps ``pixel_values`` [B, C, H, W] (or, when it takes them flattened, [B, C*H*W]) to
logits [B, num_labels]. labkit wraps it in :class:`ModuleClassifier`, which adds what the
trainer and labkit read from a transformers model: a ``config`` (labels, image size, channels),
a forward that takes ``pixel_values`` and ``labels`` and returns the loss and logits, and
``labkit_task`` (:class:`labkit.scratch._classifier.ModuleClassifier`). The wrapper holds the
module itself, so training changes the user's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError

if TYPE_CHECKING:
    import torch

    from labkit.model import Model
    from labkit.vision.data import ImageData

__all__ = ["as_model", "wrap_module"]


def _config(labels: Sequence[str], image_size: tuple[int, int], channels: int) -> Any:
    from transformers import PretrainedConfig

    names = [str(x) for x in labels]
    fields: dict[str, Any] = {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
        # what labkit.vision.pixels.image_shape reads
        "image_size": [int(image_size[0]), int(image_size[1])],
        "num_channels": int(channels),
    }
    return PretrainedConfig(**fields)


def _probe(module: torch.nn.Module, shape: tuple[int, int, int], num_labels: int) -> bool:
    """Whether ``module`` takes flattened pixels: try [2, C, H, W], then [2, C*H*W]. Raises
    ``ConfigError`` when neither works or the output is not [2, num_labels]."""
    import torch

    try:
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    c, h, w = shape
    x = torch.zeros((2, c, h, w), device=device, dtype=dtype)
    errors = []
    was_training = module.training
    module.eval()
    try:
        for flatten in (False, True):
            try:
                with torch.no_grad():
                    out = module(x.flatten(1) if flatten else x)
            except (RuntimeError, ValueError, TypeError) as exc:
                errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            found = tuple(getattr(out, "shape", ()))
            if found != (2, num_labels):
                raise ConfigError(
                    f"{type(module).__name__} maps a batch of 2 images to an output of shape "
                    f"{found or type(out).__name__}, but the data has {num_labels} labels: its "
                    f"last layer must output [batch, {num_labels}] logits."
                )
            return flatten
    finally:
        module.train(was_training)
    raise ConfigError(
        f"{type(module).__name__} takes neither pixel_values [B, {c}, {h}, {w}] nor flattened "
        f"[B, {c * h * w}] ({'; '.join(errors)}). Its first layer must take one of those."
    )


def wrap_module(
    module: torch.nn.Module,
    *,
    labels: Sequence[str],
    image_size: int | tuple[int, int],
    channels: int = 1,
    name: str | None = None,
) -> Model:
    """A labkit :class:`~labkit.Model` (task ``"image-classification"``) around a hand-built
    ``module`` that maps pixel_values [B, ``channels``, H, W] (or flattened) to logits
    [B, len(labels)]; images are scaled to [0, 1] and normalized with mean and std 0.5 by an
    image processor sized ``image_size``. ``predict``, ``evaluate`` and ``lk.finetune`` work on
    it; the weights stay on the module's device.

    Raises ``ConfigError`` before anything trains when the module's output does not match the
    labels, or its input matches neither layout."""
    from labkit.model import Model
    from labkit.scratch._classifier import ModuleClassifier
    from labkit.vision.pixels import make_processor

    names = [str(x) for x in labels]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"labels must name at least two distinct classes, got {names!r}.")
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    flatten = _probe(module, (int(channels), int(h), int(w)), len(names))
    wrapped = ModuleClassifier(module, _config(names, (h, w), channels), flatten=flatten)
    return Model.wrap(
        wrapped,  # type: ignore[arg-type]
        make_processor((int(h), int(w)), int(channels)),
        labels=names,
        name=name or f"{type(module).__name__} (by hand)",
    )


def as_model(module: torch.nn.Module, data: Any) -> tuple[Model, ImageData]:
    """``module`` wrapped for ``lk.finetune`` (:func:`wrap_module`), with the labels, image size
    and channels of ``data`` (an ImageData, or anything ``labkit.load_data`` reads as images)."""
    from labkit.vision.data import ImageData

    if not isinstance(data, ImageData):
        from labkit.data import load_data

        data = load_data(data, task="image-classification")
        assert isinstance(data, ImageData)  # task="image-classification" returns ImageData
    model = wrap_module(
        module, labels=data.labels, image_size=data.image_size, channels=data.channels
    )
    return model, data
