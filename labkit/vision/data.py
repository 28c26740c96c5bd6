"""``ImageData``: labelled images in splits, validated at the door (``labkit.load_data`` routes
here for a folder of class subfolders, a ``datasets`` dataset with an image column, or a pair of
arrays ``(images, labels)``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

__all__ = ["IMAGE_SUFFIXES", "ImageData", "is_image_source", "load_images"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


@dataclass(eq=False)
class ImageData:
    """Labelled images in splits: each split is a ``datasets.Dataset`` with an ``image`` column
    (uint8 arrays [H, W, C]) and a ``label`` column (ClassLabel ids); ``labels`` are the class
    names in id order, ``image_size`` (height, width) and ``channels`` what every image has.

    ``train`` and ``validation`` always exist; ``test`` is None when the source had no test split
    and none was asked for (``test_size``).
    """

    splits: DatasetDict
    labels: tuple[str, ...]
    image_size: tuple[int, int]
    channels: int
    source: str = ""

    @property
    def train(self) -> Dataset:
        return self.splits["train"]

    @property
    def validation(self) -> Dataset:
        return self.splits["validation"]

    @property
    def test(self) -> Dataset | None:
        return self.splits.get("test")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.splits.items())
        h, w = self.image_size
        return (
            f"ImageData({self.source!r}, labels={list(self.labels)}, {h}x{w}x{self.channels}, "
            f"{sizes})"
        )


def _image_column(features: Any) -> bool:
    try:
        from datasets import Image
    except ImportError:  # pragma: no cover - datasets is a dependency
        return False
    return any(isinstance(f, Image) for f in dict(features or {}).values()) or "image" in dict(
        features or {}
    )


def is_image_source(source: Any) -> bool:
    """Whether ``load_data`` should read ``source`` as images: an :class:`ImageData`, a folder
    whose subfolders hold image files, a ``datasets`` Dataset / DatasetDict with an image
    column, or a pair ``(images, labels)`` whose images are arrays. Cheap: nothing is read."""
    if isinstance(source, ImageData):
        return True
    if isinstance(source, str | os.PathLike):
        folder = Path(os.path.expanduser(os.fspath(source)))
        if not folder.is_dir():
            return False
        for sub in folder.iterdir():
            if sub.is_dir():
                for f in sub.iterdir():
                    if f.suffix.lower() in IMAGE_SUFFIXES:
                        return True
        return False
    if isinstance(source, tuple) and len(source) == 2:
        images = source[0]
        return getattr(images, "ndim", 0) in (3, 4) or (
            isinstance(images, Sequence)
            and len(images) > 0
            and getattr(images[0], "ndim", 0) in (2, 3)
        )
    features = getattr(source, "features", None)
    if features is not None:
        return _image_column(features)
    splits = getattr(source, "values", None)
    if callable(splits) and type(source).__name__ == "DatasetDict":
        return any(_image_column(getattr(d, "features", None)) for d in source.values())
    return False


def load_images(
    source: Any,
    *,
    image: str = "image",
    label: str = "label",
    labels: Sequence[str] | None = None,
    validation_size: float = 0.1,
    test_size: float | None = None,
    seed: int = 0,
    label_map: Mapping[Any, str] | None = None,
) -> ImageData:
    """Read labelled images into an :class:`ImageData` (see ``labkit.load_data``)."""
    from labkit.vision._read import read_images

    return read_images(
        source,
        image=image,
        label=label,
        labels=labels,
        validation_size=validation_size,
        test_size=test_size,
        seed=seed,
        label_map=label_map,
    )
