"""``read_images``: labelled images from a folder, a ``datasets`` dataset or arrays, checked at
the door and stored as one fixed-shape uint8 array per image.

Storage: a ``datasets.Array3D`` (uint8 [H, W, C]) column, decoded once. 5,000 28x28 digits take
3.9 MB and read back as one numpy block per batch (no PNG decoding per epoch); a folder of
1,000 224x224 RGB photos takes 150 MB. Mixed sizes are resized to the most common one, and
grayscale mixed with RGB becomes RGB, with ONE ``LabkitWarning`` saying how many images changed
from what: a classifier needs one input shape, and a folder of photos rarely has one.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import DataError, InputError, LabkitWarning

if TYPE_CHECKING:
    import numpy as np

    from labkit.vision.data import ImageData

__all__ = ["load_images", "read_images"]


@dataclass
class _Split:
    """One split as read: images (uint8 [H, W, C]), raw label values, and where each came from
    (a file path or ``row N``) for error messages."""

    images: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    where: list[str] = field(default_factory=list)


def read_images(
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
    """Labelled images as an :class:`~labkit.vision.ImageData`.

    ``source`` is a folder of class subfolders (``root/<class>/*.png``, optionally under
    ``train/``, ``validation/`` (``val/``, ``dev/``) and ``test/`` split folders), a
    ``datasets.Dataset`` / ``DatasetDict`` with an ``image`` column (a ``datasets.Image`` feature
    or arrays) and a ``label`` column, or a pair ``(images, labels)``: images [N, H, W],
    [N, H, W, C] or a list of arrays / PIL images, labels ints or names. Labels work as for text
    (``labels=`` fixes names and order, ``label_map`` renames, a label mapped to None drops the
    row); validation (and with ``test_size`` test) splits are carved from train, stratified by
    label, with ``seed``.

    Raises ``DataError`` for an empty folder, an unreadable image file (named), a missing label
    column, missing or unknown labels (split and row named) and fewer than two classes.
    """
    from labkit.vision.data import ImageData

    if isinstance(source, ImageData):
        return source
    splits, classlabel, name = _read(source, image, label)
    return _build(splits, classlabel, name, labels, label_map, validation_size, test_size, seed)


# -- sources --------------------------------------------------------------------------------------
def _read(source: Any, image: str, label: str) -> tuple[dict[str, _Split], list[str] | None, str]:
    if isinstance(source, str | os.PathLike):
        folder = Path(os.path.expanduser(os.fspath(source)))
        if not folder.is_dir():
            raise DataError(
                f"no image folder at {folder}: give a folder of class subfolders "
                "(root/<class>/*.png), a datasets Dataset, or (images, labels)."
            )
        return _read_folder(folder), None, str(folder)
    if isinstance(source, tuple) and len(source) == 2:
        return {"train": _read_arrays(*source)}, None, "arrays"
    if type(source).__name__ == "DatasetDict" or hasattr(source, "features"):
        return _read_dataset(source, image, label)
    raise DataError(
        f"cannot read images from {type(source).__name__}: give a folder of class subfolders, a "
        "datasets Dataset / DatasetDict with image and label columns, or a pair (images, labels)."
    )


def _is_split_name(name: str) -> str | None:
    from labkit._utils.labels import _SPLIT_ALIASES

    return _SPLIT_ALIASES.get(name.lower())


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_folder(root: Path) -> dict[str, _Split]:
    subdirs = _visible_dirs(root)
    split_dirs = {s: p for p in subdirs if (s := _is_split_name(p.name)) is not None}
    if split_dirs and "train" not in split_dirs:
        raise DataError(
            f"{root} has split folders {sorted(p.name for p in split_dirs.values())} but no "
            "train/ folder: add train/<class>/ images, or put the class folders directly in it."
        )
    layout = split_dirs if split_dirs else {"train": root}
    out: dict[str, _Split] = {}
    for split, folder in layout.items():
        part = _Split()
        for class_dir in _visible_dirs(folder):
            files = sorted(
                f for f in class_dir.iterdir() if f.is_file() and _is_image_file(f)
            )  # other files (README, .DS_Store) are not images and are skipped
            for f in files:
                part.images.append(_decode(f))
                part.values.append(class_dir.name)
                part.where.append(str(f))
        if not part.images:
            raise DataError(
                f"{folder} holds no images in class subfolders (expected "
                f"{folder}/<class>/*.png; found {', '.join(p.name for p in _visible_dirs(folder)[:6]) or 'no subfolders'})."
            )
        out[split] = part
    return out


def _is_image_file(path: Path) -> bool:
    from labkit.vision.data import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _decode(path: Path) -> np.ndarray:
    from labkit.vision.pixels import as_image

    try:
        return as_image(path, what=str(path))
    except InputError as exc:
        raise DataError(
            f"cannot read the image file {path}: {exc} Remove or replace it, then load again."
        ) from None


def _read_arrays(images: Any, values: Any) -> _Split:
    from labkit.vision.pixels import as_images

    try:
        arrays = as_images(images, what="images")
    except InputError as exc:
        raise DataError(str(exc)) from None
    if values is None:
        raise DataError("the labels are missing: give (images, labels) with one label per image.")
    try:
        vals = values.tolist() if hasattr(values, "tolist") else list(values)
    except TypeError:
        raise DataError(
            f"labels must be a sequence (one per image), got {type(values).__name__}."
        ) from None
    if len(vals) != len(arrays):
        raise DataError(
            f"(images, labels) hold {len(arrays)} images but {len(vals)} labels: give one "
            "label per image."
        )
    return _Split(arrays, vals, [f"row {i}" for i in range(len(arrays))])


def _read_dataset(
    source: Any, image: str, label: str
) -> tuple[dict[str, _Split], list[str] | None, str]:
    from labkit._utils.labels import _SPLIT_ALIASES

    parts = dict(source) if type(source).__name__ == "DatasetDict" else {"train": source}
    named: dict[str, Any] = {}
    for key, ds in parts.items():
        named[_SPLIT_ALIASES.get(str(key).lower(), str(key))] = ds
    if "train" not in named:
        raise DataError(
            f"the DatasetDict has splits {list(parts)} but no train split: rename one to 'train'."
        )
    classlabel: list[str] | None = None
    out: dict[str, _Split] = {}
    for split, ds in named.items():
        cols = list(ds.column_names)
        if image not in cols:
            raise DataError(
                f"split {split!r} has no {image!r} column (columns: {cols}). Pass image= naming "
                "the image column."
            )
        if label not in cols:
            raise DataError(
                f"split {split!r} has no {label!r} column, so the labels are missing (columns: "
                f"{cols}). Pass label= naming the label column."
            )
        names = getattr(ds.features[label], "names", None)
        if names is not None:
            classlabel = list(names)
        images = _dataset_images(ds, image, split)
        vals = list(ds[label])
        out[split] = _Split(images, vals, [f"row {i}" for i in range(len(vals))])
    info = getattr(source, "info", None)
    return out, classlabel, str(getattr(info, "dataset_name", None) or "dataset")


def _dataset_images(ds: Any, image: str, split: str) -> list[Any]:
    from labkit.vision.pixels import as_image

    column = ds.with_format("numpy")[:][image] if _is_array_feature(ds.features[image]) else None
    items = list(column) if column is not None else list(ds[image])
    out = []
    for i, x in enumerate(items):
        try:
            out.append(as_image(_as_uint8(x), what=f"split {split!r} row {i}"))
        except InputError as exc:
            raise DataError(str(exc)) from None
    return out


def _is_array_feature(feature: Any) -> bool:
    return type(feature).__name__ in ("Array2D", "Array3D")


def _as_uint8(x: Any) -> Any:
    """Integer arrays 0-255 as uint8, so that as_image does not read a dark integer image
    (max <= 1) as a float image in [0, 1]."""
    import numpy as np

    if (
        isinstance(x, np.ndarray)
        and x.dtype.kind in "iu"
        and x.size
        and x.min() >= 0
        and x.max() <= 255
    ):
        return x.astype(np.uint8)
    return x


# -- checks and the splits -----------------------------------------------------------------------
def _same_shape(splits: dict[str, _Split]) -> tuple[tuple[int, int], int]:
    """Resize every image to the most common (height, width) and give every image the same
    channels (grayscale -> RGB when any image is RGB); one warning says what changed."""
    import numpy as np

    sizes = Counter(im.shape[:2] for s in splits.values() for im in s.images)
    channels = {im.shape[2] for s in splits.values() for im in s.images}
    (h, w), _ = sizes.most_common(1)[0]
    c = 3 if 3 in channels else 1
    resized = gray = 0
    for s in splits.values():
        for i, im in enumerate(s.images):
            if im.shape[2] != c:
                im = np.repeat(im, 3, axis=2)
                gray += 1
            if im.shape[:2] != (h, w):
                im = _resize(im, h, w)
                resized += 1
            s.images[i] = im
    notes = []
    if resized:
        others = ", ".join(f"{a}x{b}" for (a, b), _ in sizes.most_common()[1:4])
        more = " ..." if len(sizes) > 4 else ""
        notes.append(
            f"{resized} image(s) of other sizes ({others}{more}) were resized to {h}x{w}, the "
            "most common size"
        )
    if gray:
        notes.append(f"{gray} grayscale image(s) were converted to RGB (the others are RGB)")
    if notes:
        warnings.warn(
            "; ".join(notes) + ". Resize or convert them yourself to choose how.",
            LabkitWarning,
            stacklevel=4,
        )
    return (int(h), int(w)), c


def _resize(im: np.ndarray, h: int, w: int) -> np.ndarray:
    import numpy as np
    from PIL import Image

    pil = Image.fromarray(im[:, :, 0] if im.shape[2] == 1 else im)
    out = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR))
    return out[:, :, None] if out.ndim == 2 else out


def _build(
    splits: dict[str, _Split],
    classlabel: list[str] | None,
    name: str,
    labels: Sequence[str] | None,
    label_map: Mapping[Any, str] | None,
    validation_size: float,
    test_size: float | None,
    seed: int,
) -> ImageData:
    import numpy as np
    from datasets import Array3D, ClassLabel, Dataset, DatasetDict, Features

    from labkit._utils.labels import _carve_missing, _is_missing, _label_name, _label_names
    from labkit.vision.data import ImageData

    for split, s in splits.items():
        missing = [i for i, v in enumerate(s.values) if _is_missing(v)]
        if missing:
            raise DataError(
                f"split {split!r}: {len(missing)} image(s) have no label (None/NaN), first "
                f"{s.where[missing[0]]}. Drop them or fill in their labels."
            )
    # _label_names reads only the values of (texts, values) pairs
    frames: dict[str, tuple[list[str], list[Any]]] = {k: ([], s.values) for k, s in splits.items()}
    try:
        names = _label_names(frames, classlabel, labels, label_map)
    except InputError as exc:
        raise DataError(str(exc)) from None
    if len(names) < 2:
        raise DataError(
            f"the images have {len(names)} class(es) ({list(names)}); an image classifier "
            "needs at least two. Check the labels (a folder needs one subfolder per class)."
        )
    index = {n: i for i, n in enumerate(names)}
    for s in splits.values():  # drop rows whose label maps to None before sizes are counted
        keep = [_label_name(v, classlabel, label_map) is not None for v in s.values]
        if not all(keep):
            s.images = [x for x, k in zip(s.images, keep) if k]
            s.where = [x for x, k in zip(s.where, keep) if k]
            s.values = [x for x, k in zip(s.values, keep) if k]
    for split, s in splits.items():
        if not s.images:
            raise DataError(f"split {split!r} has no images left after dropping unlabelled ones.")
    (h, w), c = _same_shape(splits)
    features = Features(
        {"image": Array3D(shape=(h, w, c), dtype="uint8"), "label": ClassLabel(names=list(names))}
    )
    out: dict[str, Dataset] = {}
    for split, s in splits.items():
        ids = []
        for v, where in zip(s.values, s.where):
            label_name = _label_name(v, classlabel, label_map)
            if label_name not in index:
                raise DataError(
                    f"split {split!r} {where} has label {label_name!r}, which is not among "
                    f"labels={list(names)}. Fix the data or pass labels= with every label name."
                )
            ids.append(index[label_name])
        block = np.stack(s.images).astype(np.uint8, copy=False)
        out[split] = Dataset.from_dict({"image": block, "label": ids}, features=features)
    if len(set(out["train"]["label"])) < 2 and labels is None:
        raise DataError(
            f"the training images hold a single class ({names[int(out['train'][0]['label'])]!r}); "
            "a classifier needs at least two. Check the labels, or pass labels= to load anyway."
        )
    return ImageData(
        splits=_carve_missing(DatasetDict(out), validation_size, test_size, seed),
        labels=tuple(names),
        image_size=(h, w),
        channels=c,
        source=name,
    )


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
