"""Images in, pixel tensors out: the one place that reads whatever a user calls an image.

An image is a PIL image, a numpy array or torch tensor ([H, W] grayscale, [H, W, C] or
[C, H, W] with C 1, 3 or 4; uint8 0-255 or float 0-1), a path to an image file, or a dataset row
(a dict with an ``image``). Everything becomes a uint8 [H, W, C] array (:func:`as_images`), then
the model's image processor makes ``pixel_values`` (:func:`pixel_values`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from labkit.model import Model

__all__ = ["as_image", "as_images", "image_shape", "make_processor", "pixel_batch", "pixel_values"]

_CHANNELS = (1, 3, 4)


def _is_one_image(x: Any) -> bool:
    """``x`` is one image rather than a collection of them."""
    if isinstance(x, str | os.PathLike | dict):
        return True
    if type(x).__module__.startswith("PIL"):
        return True
    shape = getattr(x, "shape", None)
    if shape is None:
        return False
    if len(shape) == 2:
        return True
    if len(shape) == 3:
        # [H, W, C] is one image; so is a torch tensor [C, H, W] (torch's order); any other
        # [N, H, W] is a batch of grayscale images
        return shape[-1] in _CHANNELS or (hasattr(x, "detach") and shape[0] in (1, 3))
    return False


def as_image(x: Any, *, what: str = "the image") -> np.ndarray:
    """One image as a uint8 [H, W, C] array (C is 1 or 3; an alpha channel is dropped)."""
    import numpy as np

    if isinstance(x, dict):
        if "image" not in x:
            raise InputError(
                f"{what} is a dict without an 'image' key (keys: {sorted(map(str, x))[:6]})."
            )
        return as_image(x["image"], what=what)
    if isinstance(x, str | os.PathLike):
        path = Path(os.path.expanduser(os.fspath(x)))
        if not path.is_file():
            raise InputError(f"{what}: no image file at {path}.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                x = img.convert("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{what}: {path} is not a readable image file ({exc}).") from None
    if type(x).__module__.startswith("PIL"):
        mode = "L" if x.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
        arr = np.asarray(x.convert(mode))
    elif hasattr(x, "detach"):  # a torch tensor
        arr = x.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError):
            arr = np.asarray([], dtype=object)
    if arr.dtype == object or arr.ndim not in (2, 3) or arr.size == 0:
        raise InputError(
            f"{what} must be a PIL image, an image file, or an array [H, W], [H, W, C] or "
            f"[C, H, W]; found {type(x).__name__} of shape {tuple(getattr(arr, 'shape', ()))}."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.shape[-1] not in _CHANNELS and arr.shape[0] in _CHANNELS:
        arr = np.moveaxis(arr, 0, -1)  # [C, H, W] -> [H, W, C]
    if arr.shape[-1] not in _CHANNELS:
        raise InputError(
            f"{what} has shape {tuple(arr.shape)}: expected 1 (grayscale), 3 (RGB) or 4 (RGBA) "
            "channels, first or last."
        )
    if arr.shape[-1] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        values = arr.astype(np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{what} holds NaN or infinite values.")
        # float (or bool) images in [0, 1]; integers are 0-255 whatever their dtype (a dark
        # int64 image read back from a dataset must not be scaled up)
        if arr.dtype.kind in "fb" and values.min() >= 0 and values.max() <= 1.0:
            values = values * 255.0
        arr = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def as_images(images: Any, *, what: str = "images") -> list[np.ndarray]:
    """One image or a collection of them (a list, a batch array [N, H, W(, C)], a dataset
    column) as a list of uint8 [H, W, C] arrays. Nested lists of numbers (a dataset row's
    image, ``ds[0]["image"]``) read as the array they spell."""
    import numpy as np

    if isinstance(images, list | tuple) and images and not isinstance(images[0], str | dict):
        try:
            spelled = np.asarray(images)
        except (ValueError, TypeError):  # images of different sizes: one by one below
            spelled = None
        if spelled is not None and spelled.dtype.kind in "biuf":
            images = spelled
    if _is_one_image(images):
        return [as_image(images, what=what)]
    shape = getattr(images, "shape", None)
    if shape is not None and len(shape) not in (3, 4):
        raise InputError(
            f"{what} must be one image or a batch [N, H, W] / [N, H, W, C] / [N, C, H, W]; "
            f"found an array of shape {tuple(shape)}."
        )
    try:
        items = list(images)
    except TypeError:
        raise InputError(
            f"{what} must be an image or a list of images, got {type(images).__name__}."
        ) from None
    if not items:
        raise InputError(f"{what} is empty: give at least one image.")
    return [as_image(x, what=f"{what}[{i}]") for i, x in enumerate(items)]


def image_shape(model: Model) -> tuple[int, int, int]:
    """(channels, height, width) the model takes, from its config."""
    config = model.base.config
    size = getattr(config, "image_size", None)
    h, w = (size, size) if isinstance(size, int) else tuple(size or (0, 0))[:2]
    return int(getattr(config, "num_channels", 3) or 3), int(h), int(w)


def make_processor(
    size: int | tuple[int, int],
    channels: int,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Any:
    """A transformers image processor that resizes to ``size``, scales to [0, 1] and
    normalizes per channel (default mean 0.5, std 0.5): saved beside each checkpoint
    (``preprocessor_config.json``) so ``labkit.load_model`` reads it back."""
    from transformers import ViTImageProcessorPil

    h, w = (size, size) if isinstance(size, int) else size
    return ViTImageProcessorPil(
        do_resize=True,
        size={"height": int(h), "width": int(w)},
        do_rescale=True,
        do_normalize=True,
        image_mean=list(mean) if mean is not None else [0.5] * channels,
        image_std=list(std) if std is not None else [0.5] * channels,
    )


def pixel_values(model: Model, images: Any, *, what: str = "images") -> torch.Tensor:
    """``images`` (see :func:`as_images`) as the model's float32 ``pixel_values`` [N, C, H, W] on
    its device: grayscale becomes RGB for an RGB model and back (the one conversion made); the
    model's image processor resizes and normalizes.

    Raises ``InputError`` naming what was found when an image cannot become what the model
    takes.
    """
    return pixel_batch(model, images, what=what).to(model.device)


def model_images(model: Model, images: Any, *, what: str = "images") -> list[np.ndarray]:
    """:func:`as_images`, knowing the model: a numpy [C, H, W] in the model's own channel count
    (3 for RGB) is one image, not C grayscale ones."""
    import numpy as np

    channels = image_shape(model)[0]
    shape = getattr(images, "shape", None)
    if (
        shape is not None
        and not hasattr(images, "detach")  # a tensor [C, H, W] is one image already
        and len(shape) == 3
        and shape[0] == channels
        and channels in (1, 3)
        and shape[-1] not in _CHANNELS
    ):
        images = np.moveaxis(np.asarray(images), 0, -1)
    return as_images(images, what=what)


def pixel_batch(model: Model, images: Any, *, what: str = "images") -> torch.Tensor:
    """As :func:`pixel_values`, on the CPU: what a training collator makes (the trainer moves
    batches to the device, and pins CPU memory for a GPU)."""
    import numpy as np

    channels, h, w = image_shape(model)
    arrays = model_images(model, images, what=what)
    fixed = []
    for arr in arrays:
        if arr.shape[-1] != channels:
            if channels == 3 and arr.shape[-1] == 1:
                arr = np.repeat(arr, 3, axis=-1)
            elif channels == 1 and arr.shape[-1] == 3:  # ITU-R 601 luma, as PIL's "L"
                luma = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                arr = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]
            else:
                raise InputError(
                    f"{what}: an image has {arr.shape[-1]} channels; {model.name!r} takes "
                    f"{channels}."
                )
        fixed.append(arr)
    return _process(model, fixed, channels, h, w, what)


def _process(model: Model, arrays: list[Any], channels: int, h: int, w: int, what: str) -> Any:
    import torch

    from labkit._utils.quiet import hf_quiet

    processor = model.processor
    if processor is None or not callable(processor):
        raise InputError(
            f"{model.name!r} has no image processor (model.tokenizer is None): wrap it with "
            "labkit.Model.wrap(hf_model, image_processor)."
        )
    with hf_quiet():
        out = processor(arrays, return_tensors="pt", input_data_format="channels_last")
    pixels = out["pixel_values"] if isinstance(out, dict) or hasattr(out, "keys") else out
    pixels = torch.as_tensor(pixels, dtype=torch.float32)
    if h and w and tuple(pixels.shape[1:]) != (channels, h, w):
        raise InputError(
            f"{what}: the image processor made pixels of shape {tuple(pixels.shape[1:])}, but "
            f"{model.name!r} takes ({channels}, {h}, {w}). Give images of {h}x{w}, or a "
            "processor that resizes (do_resize=True)."
        )
    return pixels
