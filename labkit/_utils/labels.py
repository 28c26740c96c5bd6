"""Label names and splits shared by every labelled data type (text in ``labkit.data``, images
in ``labkit.vision``): split-name aliases, label-name resolution, carving validation and test
splits, and label ids against a model's labels. A leaf: it imports no labkit data module."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labkit._errors import DataError, InputError

if TYPE_CHECKING:
    from datasets import DatasetDict

__all__ = ["label_ids"]


_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


def _carve_missing(
    dd: DatasetDict, validation_size: float, test_size: float | None, seed: int
) -> DatasetDict:
    """``dd`` with a validation split (and with ``test_size`` a test split) carved from train
    where the source had none; splits in the order train, validation, test, others."""
    from datasets import DatasetDict

    if test_size is not None and "test" not in dd:
        dd = _carve(dd, "test", test_size, seed)
    if "validation" not in dd:
        dd = _carve(dd, "validation", validation_size, seed)
    order = [k for k in ("train", "validation", "test") if k in dd]
    order += [k for k in dd if k not in order]
    return DatasetDict({k: dd[k] for k in order})


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _label_name(
    v: Any, classlabel: list[str] | None, label_map: Mapping[Any, str] | None
) -> str | None:
    if classlabel is not None and isinstance(v, int) and not isinstance(v, bool):
        v = classlabel[v] if 0 <= v < len(classlabel) else v
    if label_map is not None:
        if v in label_map:
            return None if label_map[v] is None else str(label_map[v])
        if str(v) in label_map:
            mapped = label_map[str(v)]
            return None if mapped is None else str(mapped)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _label_names(
    frames: dict[str, tuple[list[str], list[Any]]],
    classlabel: list[str] | None,
    labels: Sequence[str] | None,
    label_map: Mapping[Any, str] | None,
) -> tuple[str, ...]:
    if labels is not None:
        names = [str(x) for x in labels]
        if len(set(names)) != len(names) or not names:
            raise InputError(f"labels must be distinct names, got {list(labels)}.")
        return tuple(names)
    if classlabel is not None and label_map is None:
        return tuple(classlabel)
    found = {_label_name(v, classlabel, label_map) for _, values in frames.values() for v in values}
    seen = {s for s in found if s is not None}
    raw = sorted(
        seen,
        key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s),
    )
    return tuple(str(s) for s in raw)


def _carve(dd: DatasetDict, split: str, size: float, seed: int) -> DatasetDict:
    """Split ``size`` of train off as ``split``, stratified by label (when there is one) when
    every class has 2+ rows."""
    from collections import Counter

    from datasets import DatasetDict

    train = dd["train"]
    if len(train) < 4:
        raise DataError(
            f"the training data has {len(train)} row(s); at least 4 are needed to "
            f"carve a {split} split. Add rows or pass a {split} split."
        )
    n_small = max(1, round(len(train) * size))
    stratify = None
    if "label" in train.column_names:
        counts = Counter(train["label"])
        if min(counts.values()) >= 2 and n_small >= len(counts) > 1:
            stratify = "label"
    parts = train.train_test_split(test_size=n_small, seed=seed, stratify_by_column=stratify)
    out = dict(dd)
    out["train"] = parts["train"]
    out[split] = parts["test"]
    return DatasetDict(out)


def label_ids(
    model_labels: Sequence[str], data_labels: Sequence[str] | None, values: Sequence[Any]
) -> list[int]:
    """Map a split's labels onto the model's label ids, by name where names are known."""
    if data_labels is None:
        ids = [int(v) for v in values]
        bad = sorted({i for i in ids if not 0 <= i < len(model_labels)})
        if bad:
            raise DataError(
                f"label ids {bad[:5]} are outside the model's {len(model_labels)} "
                f"labels {list(model_labels)}."
            )
        return ids
    index = {name: i for i, name in enumerate(model_labels)}
    missing = [n for n in data_labels if n not in index]
    if missing:
        raise DataError(
            f"the data has labels {missing} that the model does not know; the model's "
            f"labels are {list(model_labels)}. Load the model with labels= matching "
            "the data."
        )
    return [index[data_labels[int(v)]] for v in values]
