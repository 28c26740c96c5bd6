"""``load_data`` and ``TextData``: labelled text from anywhere, validated at the door; text for a
causal or masked LM (``labkit.lm.data.LMData``) and labelled images (``labkit.vision.ImageData``)
through the same door."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from labkit._errors import ConfigError, DataError, InputError
from labkit._utils.hub import hub_unreachable
from labkit._utils.labels import (  # noqa: F401 - label_ids is labkit.data.label_ids too
    _SPLIT_ALIASES,
    _carve,
    _carve_missing,
    _is_missing,
    _label_name,
    _label_names,
    label_ids,
)
from labkit._utils.splits import Splits
from labkit._utils.text import clean_text, path_kind, short

if TYPE_CHECKING:
    import pandas as pd
    from datasets import Dataset, DatasetDict

    from labkit.lm.data import LMData
    from labkit.vision.data import ImageData

__all__ = ["DATA_TASKS", "TextData", "label_ids", "labelled_split", "load_data"]

# what load_data can return data for (``task=``): a classifier's TextData, a causal or masked LM's
# LMData (a masked LM's is plain text), an image classifier's ImageData
DATA_TASKS = ("classification", "causal-lm", "masked-lm", "image-classification")

_FILE_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}


@dataclass(eq=False)
class TextData(Splits):
    """Labelled text in splits: each split has a ``text`` (str) and a ``label`` (ClassLabel id)
    column; ``labels`` are the class names in id order.

    ``train`` and ``validation`` always exist; ``test`` is None when the source had no test split.
    """

    splits: DatasetDict
    labels: tuple[str, ...]
    source: str = ""

    def __repr__(self) -> str:
        sizes = self.split_sizes()
        return f"TextData({self.source!r}, labels={list(self.labels)}, {sizes})"

    def _repr_html_(self) -> str:
        from labkit.render.summary import data_html

        return data_html(self)


@overload
def load_data(
    source: Any,
    *,
    text: str = ...,
    label: str = ...,
    image: str = ...,
    labels: Sequence[str] | None = ...,
    config: str | None = ...,
    validation_size: float = ...,
    test_size: float | None = ...,
    seed: int = ...,
    label_map: Mapping[Any, str] | None = ...,
    task: Literal["classification"],
) -> TextData: ...


@overload
def load_data(
    source: Any,
    *,
    text: str = ...,
    label: str = ...,
    image: str = ...,
    labels: Sequence[str] | None = ...,
    config: str | None = ...,
    validation_size: float = ...,
    test_size: float | None = ...,
    seed: int = ...,
    label_map: Mapping[Any, str] | None = ...,
    task: Literal["causal-lm", "masked-lm"],
) -> LMData: ...


@overload
def load_data(
    source: Any,
    *,
    text: str = ...,
    label: str = ...,
    image: str = ...,
    labels: Sequence[str] | None = ...,
    config: str | None = ...,
    validation_size: float = ...,
    test_size: float | None = ...,
    seed: int = ...,
    label_map: Mapping[Any, str] | None = ...,
    task: Literal["image-classification"],
) -> ImageData: ...


@overload
def load_data(
    source: Any,
    *,
    text: str = ...,
    label: str = ...,
    image: str = ...,
    labels: Sequence[str] | None = ...,
    config: str | None = ...,
    validation_size: float = ...,
    test_size: float | None = ...,
    seed: int = ...,
    label_map: Mapping[Any, str] | None = ...,
    task: str = ...,
) -> TextData | LMData | ImageData: ...


def load_data(
    source: Any,
    *,
    text: str = "text",
    label: str = "label",
    image: str = "image",
    labels: Sequence[str] | None = None,
    config: str | None = None,
    validation_size: float = 0.1,
    test_size: float | None = None,
    seed: int = 0,
    label_map: Mapping[Any, str] | None = None,
    task: str = "auto",
) -> TextData | LMData | ImageData:
    """Load labelled text (a :class:`TextData`) or text for a causal LM (a
    :class:`labkit.lm.LMData`) and check it.

    ``source`` is a hub dataset name (``"rotten_tomatoes"``), a local ``.csv``/``.tsv``/``.json``/
    ``.jsonl``/``.parquet`` file, a pandas DataFrame, a list of dicts, a ``datasets.Dataset`` or
    ``DatasetDict``. ``text`` and ``label`` name the columns to use (``image`` an image dataset's
    image column). ``labels`` fixes the class
    names and their order; otherwise they come from the data (a ClassLabel's names, or the
    sorted distinct values). ``label_map`` renames raw label values (``{"fresh": "positive"}``);
    rows whose raw label maps to ``None`` are dropped. A ``validation`` split of
    ``validation_size`` is carved from ``train`` (stratified by label for a classifier,
    ``seed``) when none exists; with ``test_size`` a test split is carved too when there is
    none.

    ``task`` is ``"classification"``, ``"causal-lm"``, ``"masked-lm"``,
    ``"image-classification"`` or ``"auto"``. Causal-LM data is either instruction data
    (``prompt`` and ``response`` columns) or plain text (the ``text`` column; rows with no text
    are dropped); masked-LM data is plain text. Image data (an :class:`labkit.vision.ImageData`)
    is a folder of class subfolders of image files, a ``datasets`` dataset with an ``image``
    column, or a pair ``(images, labels)`` of arrays: see :func:`labkit.vision.load_images`.
    ``"auto"`` picks images for any of those, causal-lm when the source has ``prompt``
    and ``response`` columns, or has the ``text`` column but no label column while ``label``,
    ``labels`` and ``label_map`` were left at their defaults; anything else is classification.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    for name, frac in (("validation_size", validation_size), ("test_size", test_size)):
        if frac is not None and not 0 < frac < 1:
            raise InputError(f"{name} must be a fraction between 0 and 1, got {frac}.")
    if task not in (*DATA_TASKS, "auto"):
        raise ConfigError(f"task must be 'auto' or one of {', '.join(DATA_TASKS)}, got {task!r}.")
    from labkit.vision._read import load_images
    from labkit.vision.data import is_image_source

    if task == "image-classification" or (task == "auto" and is_image_source(source)):
        return load_images(
            source,
            image=image,
            label=label,
            labels=labels,
            validation_size=validation_size,
            test_size=test_size,
            seed=seed,
            label_map=label_map,
        )
    if (
        task in ("causal-lm", "masked-lm")
        and isinstance(source, list | tuple)
        and source
        and all(isinstance(t, str) for t in source)
    ):
        source = [{text: t} for t in source]  # plain strings: the text column itself
    raw, name = _read(source, config)
    parts = _parts(raw)
    chosen = _task_of(task, parts["train"], text, label, labels, label_map)
    if chosen != "classification":
        return _lm_data(parts, chosen, text, name, validation_size, test_size, seed)
    splits = _columns(parts, text, label)
    raw_names = splits.pop("__classlabel__", None)
    frames = {k: _clean_split(v[0], v[1], text, label, k) for k, v in splits.items()}
    names = _label_names(frames, raw_names, labels, label_map)

    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    index = {n: i for i, n in enumerate(names)}
    out: dict[str, Dataset] = {}
    for split, (texts, values) in frames.items():
        ids = []
        kept_texts = []
        for row, (t, v) in enumerate(zip(texts, values)):
            label_name = _label_name(v, raw_names, label_map)
            if label_name is None:
                continue
            if label_name not in index:
                raise DataError(
                    f"split {split!r} row {row} has label {label_name!r}, which is not "
                    f"among labels={list(names)}. Fix the data or pass labels= with "
                    "every label name."
                )
            ids.append(index[label_name])
            kept_texts.append(t)
        if not kept_texts:
            raise DataError(f"split {split!r} has no rows left after dropping unlabelled ones.")
        out[split] = Dataset.from_dict({"text": kept_texts, "label": ids}, features=features)

    if len({int(i) for i in out["train"]["label"]}) < 2 and labels is None:
        raise DataError(
            f"the training data holds a single class ({names[0]!r}); a classifier "
            "needs at least two. Check the label column, or pass labels= to load it "
            "anyway."
        )
    return TextData(
        splits=_carve_missing(DatasetDict(out), validation_size, test_size, seed),
        labels=tuple(names),
        source=name,
    )


_Columns = dict[str, list[Any]]


def _read(source: Any, config: str | None) -> tuple[Any, str]:
    """The source as a Dataset, a DatasetDict, or plain columns ({name: list}); and a name.

    Row and DataFrame sources stay plain Python until they are validated: Arrow would reject
    mixed types (a NaN among strings) with an error that names neither row nor column.
    """
    from datasets import Dataset, DatasetDict

    if isinstance(source, Dataset | DatasetDict):
        return source, "dataset"
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return {str(c): source[c].tolist() for c in source.columns}, "DataFrame"
    if isinstance(source, list | tuple):
        if not source:
            raise DataError("the list of rows is empty; give at least a few labelled examples.")
        if not all(isinstance(r, Mapping) for r in source):
            bad = next(type(r).__name__ for r in source if not isinstance(r, Mapping))
            raise DataError(
                f"a list source must hold dicts like {{'text': ..., 'label': ...}}; found a {bad}."
            )
        keys: list[str] = []
        for r in source:
            keys += [str(k) for k in r if str(k) not in keys]
        return {k: [r.get(k) for r in source] for k in keys}, "rows"
    if isinstance(source, str | os.PathLike):
        return _read_path_or_hub(os.fspath(source), config)
    raise DataError(
        f"cannot read data from a {type(source).__name__}; give a hub name, a file "
        "path, a DataFrame, a list of dicts or a datasets.Dataset."
    )


def _read_path_or_hub(source: str, config: str | None) -> tuple[Any, str]:
    import datasets

    path = Path(os.path.expanduser(source))
    suffix = "".join(path.suffixes[-2:]) if path.suffix in {".gz", ".bz2", ".xz"} else path.suffix
    builder = _FILE_BUILDERS.get(suffix.split(".gz")[0].split(".bz2")[0].lower() or "")
    kind = path_kind(path)
    if kind != "missing" or builder or source.startswith((".", "/", "~")):
        if kind == "missing":
            raise DataError(f"no data file at {short(source)!r}. Check the path.")
        if kind == "dir":
            raise DataError(
                f"{short(source)!r} is a folder; pass a .csv, .json, .jsonl or .parquet file."
            )
        if builder is None:
            raise DataError(
                f"{short(source)!r} has an unsupported extension {path.suffix!r}; use .csv, "
                ".tsv, .json, .jsonl or .parquet."
            )
        kwargs: dict[str, Any] = {"delimiter": "\t"} if suffix.startswith(".tsv") else {}
        try:
            return datasets.load_dataset(
                builder, data_files=str(path), split="train", **kwargs
            ), path.name
        except Exception as exc:
            raise DataError(
                f"could not read {short(source)!r} as {builder}: "
                f"{short(str(exc).splitlines()[0], 300) if str(exc) else type(exc).__name__}"
            ) from exc
    try:
        return datasets.load_dataset(source, config), source
    except Exception as exc:
        if hub_unreachable(exc):
            raise DataError(
                f"could not load dataset {short(source)!r}: the Hugging Face hub is "
                "unreachable from here and the dataset is not cached. Use a local "
                "file, a DataFrame, or labkit.demo.data() for the offline "
                "default."
            ) from exc
        raise DataError(
            f"could not load dataset {short(source)!r} from the hub: "
            f"{short(str(exc).splitlines()[0], 300) if str(exc) else type(exc).__name__}"
        ) from exc


def _parts(raw: Any) -> dict[str, Any]:
    """{split: Dataset or plain columns} with standard split names; the first is ``train``
    when none is called so."""
    from datasets import DatasetDict

    if isinstance(raw, dict) and not isinstance(raw, DatasetDict):
        return {"train": raw}
    dd = raw if isinstance(raw, DatasetDict) else DatasetDict({"train": raw})
    parts = {_SPLIT_ALIASES.get(k.lower(), k): v for k, v in dd.items()}
    if "train" not in parts:
        first = next(iter(parts))
        parts = {"train" if k == first else k: v for k, v in parts.items()}
    return parts


def _task_of(
    task: str,
    train: Any,
    text: str,
    label: str,
    labels: Sequence[str] | None,
    label_map: Mapping[Any, str] | None,
) -> str:
    """``"classification"``, or the LMData kind (``"text"`` / ``"instruction"``) to load."""
    from labkit.lm.data import columns_of, lm_kind

    if task == "classification":
        return "classification"
    found = columns_of(train)
    if task == "masked-lm":
        if text not in found:
            raise DataError(
                f"masked-LM data needs a {text!r} column of plain text; columns found: "
                f"{list(found)}. Pass text='<column>' to load_data."
            )
        return "text"
    if task == "causal-lm":
        kind = lm_kind(found, text)
        if kind is None:
            raise DataError(
                f"causal-LM data needs a {text!r} column (language modelling) or 'prompt' and "
                f"'response' columns (instruction tuning); columns found: {list(found)}. Pass "
                "text='<column>' to load_data."
            )
        return kind
    named = label != "label" or labels is not None or label_map is not None
    if named or (label in found and not {"prompt", "response"} <= set(found)):
        return "classification"  # a label was asked for or is there: as before causal LMs
    return lm_kind(found, text) or "classification"


def _lm_data(
    parts: dict[str, Any],
    kind: str,
    text: str,
    name: str,
    validation_size: float,
    test_size: float | None,
    seed: int,
) -> LMData:
    from datasets import DatasetDict

    from labkit.lm.data import KINDS, LMData, columns_of, lm_split

    wanted = (text,) if kind == "text" else KINDS[kind]
    out = {}
    for split, part in parts.items():
        missing = [c for c in wanted if c not in columns_of(part)]
        if missing:
            raise DataError(
                f"split {split!r} lacks the {missing[0]!r} column; it has {list(columns_of(part))}."
            )
        cols = {dest: part[src] for dest, src in zip(KINDS[kind], wanted)}
        out[split] = lm_split(kind, cols, split)
    return LMData(
        splits=_carve_missing(DatasetDict(out), validation_size, test_size, seed),
        kind=kind,
        source=name,
    )


def _columns(parts: dict[str, Any], text: str, label: str) -> dict[str, Any]:
    """{split: (texts, labels)}, plus ClassLabel names if any."""
    from labkit.lm.data import columns_of

    first_split = parts["train"]
    found = list(columns_of(first_split))
    for col, role in ((text, "text"), (label, "label")):
        if col not in found:
            raise DataError(
                f"the data has no {role} column {col!r}; columns found: {found}. "
                f"Pass {role}='<column>' to load_data."
            )
    out: dict[str, Any] = {}
    for split, part in parts.items():
        if isinstance(part, dict):
            out[split] = (part[text], part[label])
        else:
            if text not in part.column_names or label not in part.column_names:
                raise DataError(
                    f"split {split!r} lacks the {text!r} or {label!r} column; it has "
                    f"{part.column_names}."
                )
            out[split] = (part[text], part[label])
    if not isinstance(first_split, dict):
        out["__classlabel__"] = _classlabel_names(first_split, label)
    return out


def _classlabel_names(ds: Dataset, label: str) -> list[str] | None:
    feature = ds.features[label]
    return list(feature.names) if hasattr(feature, "names") else None


def _clean_split(
    texts: list[Any], values: list[Any], text: str, label: str, split: str
) -> tuple[list[str], list[Any]]:
    bad_text = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad_text:
        i = bad_text[0]
        raise DataError(
            f"split {split!r}: {len(bad_text)} row(s) have a {text!r} value that is not "
            f"text (row {i}: {texts[i]!r:.40}). Drop or fill them before loading."
        )
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise DataError(
            f"split {split!r}: {len(missing)} row(s) have no label (None/NaN), first at "
            f"row {missing[0]}. Drop them or fill the {label!r} column."
        )
    return [clean_text(t) for t in texts], list(values)


def to_frame(data: TextData, split: str = "train") -> pd.DataFrame:
    """One split as a DataFrame with the label names spelled out (for previews)."""
    df = data.splits[split].to_pandas()
    df["label_name"] = [data.labels[i] for i in df["label"]]
    return df


def labelled_split(data: Any, split: str | None) -> tuple[Any, tuple[str, ...] | None]:
    """(dataset with text/label, label names or None) from TextData or a datasets.Dataset."""
    if isinstance(data, TextData):
        if split is None:
            split = "test" if data.test is not None else "validation"
        ds = data.splits.get(split) if split in data.splits else None
        if ds is None:
            raise DataError(
                f"this TextData has no split {split!r}; it has {', '.join(data.splits)}."
            )
        return ds, data.labels
    cols = getattr(data, "column_names", None)
    if cols is None or "text" not in cols or "label" not in cols:
        raise DataError(
            f"evaluate needs a TextData or a datasets.Dataset with 'text' and 'label' "
            f"columns; got {type(data).__name__} with columns {cols}. "
            "Use labkit.load_data(...) first."
        )
    feature = data.features["label"]
    names = tuple(feature.names) if hasattr(feature, "names") else None
    return data, names
