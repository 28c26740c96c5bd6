"""``ImageData``: labelled images in splits, validated at the door (``labkit.load_data`` routes
here for a folder of class subfolders, a ``datasets`` dataset with an image column, or a pair of
arrays ``(images, labels)``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError
from labkit._utils.splits import Splits

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset, DatasetDict

__all__ = ["IMAGE_SUFFIXES", "ImageData", "image_block", "is_image_source"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


@dataclass(eq=False)
class ImageData(Splits):
    """Labelled images in splits: each split is a ``datasets.Dataset`` with an ``image`` column
    (uint8 arrays [H, W, C]) and a ``label`` column (ClassLabel ids); ``labels`` are the class
    names in id order, ``image_size`` (height, width) and ``channels`` what every image has.

    ``train`` and ``validation`` always exist; ``test`` is None when the source had no test split
    and none was asked for (``test_size``). The column stores a ``datasets.Array3D``: a row reads
    back as nested lists; :func:`image_block` reads rows as one uint8 array [N, H, W, C].

    ``shift`` (pixels, 0: off) is training-time augmentation: ``labkit.finetune`` moves each
    training image by up to ``shift`` pixels in each direction, at random each time it is drawn
    (edges repeated); evaluation never does. Set it with :meth:`with_shift`.
    """

    splits: DatasetDict
    labels: tuple[str, ...]
    image_size: tuple[int, int]
    channels: int
    source: str = ""
    shift: int = 0

    def with_shift(self, shift: int) -> ImageData:
        """The same data (splits shared, not copied) whose training images ``labkit.finetune``
        moves by up to ``shift`` pixels at random (0: no augmentation)."""
        import dataclasses

        if not isinstance(shift, int) or isinstance(shift, bool) or shift < 0:
            raise InputError(f"shift must be a whole number of pixels >= 0, got {shift!r}.")
        if shift >= min(self.image_size):
            raise InputError(
                f"shift={shift} would move {self.image_size[0]}x{self.image_size[1]} images "
                "out of the frame: use a few pixels (2 for 28x28 digits)."
            )
        return dataclasses.replace(self, shift=shift)

    def __repr__(self) -> str:
        sizes = self.split_sizes()
        h, w = self.image_size
        shift = f", shift={self.shift}" if self.shift else ""
        return (
            f"ImageData({self.source!r}, labels={list(self.labels)}, {h}x{w}x{self.channels}, "
            f"{sizes}{shift})"
        )

    def _repr_html_(self) -> str:
        import numpy as np

        from labkit.render.image_data import MAX_CLASSES, PER_CLASS, image_data_html

        ids = np.asarray(self.train["label"], dtype=np.int64)
        shown = range(min(len(self.labels), MAX_CLASSES))
        rows = [np.flatnonzero(ids == k)[:PER_CLASS].tolist() for k in shown]
        none = np.zeros((0, *self.image_size, self.channels), np.uint8)  # a class not in train
        return image_data_html(
            source=self.source,
            labels=self.labels,
            image_size=self.image_size,
            channels=self.channels,
            split_sizes={k: len(v) for k, v in self.splits.items()},
            counts=[int((ids == k).sum()) for k in range(len(self.labels))],
            thumbnails=[image_block(self.train, r) if r else none for r in rows],
        )


def image_block(ds: Dataset, rows: Sequence[int] | slice | None = None) -> np.ndarray:
    """The ``image`` column of an ImageData split (or of ``rows`` of it) as one uint8 array
    [N, H, W, C]: one read of the Arrow block, no per-row conversion."""
    import numpy as np

    view = ds.with_format("numpy")
    if rows is None:
        rows = slice(None)
    picked = view[rows] if isinstance(rows, slice) else view[list(rows)]
    return np.asarray(picked["image"], dtype=np.uint8)


def _image_column(features: Any) -> bool:
    try:
        from datasets import Image
    except ImportError:  # pragma: no cover - datasets is a dependency
        return False
    return any(isinstance(f, Image) for f in dict(features or {}).values()) or "image" in dict(
        features or {}
    )


def _has_class_images(folder: Path, *, depth: int) -> bool:
    """Image files in a subfolder of ``folder`` (or, for split folders ``train/`` ...,
    one level deeper)."""
    from labkit._utils.labels import _SPLIT_ALIASES

    for sub in folder.iterdir():
        if not sub.is_dir():
            continue
        if any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir()):
            return True
        if depth > 1 and sub.name.lower() in _SPLIT_ALIASES and _has_class_images(sub, depth=1):
            return True
    return False


def is_image_source(source: Any) -> bool:
    """Whether ``load_data`` should read ``source`` as images: an :class:`ImageData`, a folder
    whose subfolders hold image files, a ``datasets`` Dataset / DatasetDict with an image
    column, or a pair ``(images, labels)`` whose images are arrays. Cheap: nothing is read."""
    if isinstance(source, ImageData):
        return True
    if isinstance(source, str | os.PathLike):
        try:  # a name too long for the file system, a folder we may not read: not images
            folder = Path(os.path.expanduser(os.fspath(source)))
            return folder.is_dir() and _has_class_images(folder, depth=2)
        except OSError:
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
