"""load_data: every source kind, validation at the door, clear errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import labkit
from labkit import DataError, InputError
from tests._tiny import toy_rows

ROWS = toy_rows(20)  # 40 rows, two classes


def _check(data: labkit.TextData, n: int = 40) -> None:
    assert set(data.labels) == {"negative", "positive"}
    assert data.train.column_names == ["text", "label"]
    assert len(data.train) + len(data.validation) + (len(data.test) if data.test else 0) == n
    names = data.train.features["label"].names
    assert tuple(names) == data.labels


def test_list_of_dicts():
    data = labkit.load_data(ROWS)
    _check(data)
    assert data.labels == ("negative", "positive")  # sorted when not given
    assert len(data.validation) == 4
    # stratified: both classes in validation
    assert set(data.validation["label"]) == {0, 1}


def test_dataframe_with_other_column_names():
    df = pd.DataFrame(ROWS).rename(columns={"text": "review", "label": "sentiment"})
    data = labkit.load_data(df, text="review", label="sentiment")
    _check(data)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_local_files(tmp_path, ext):
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"data{ext}"
    if ext == ".csv":
        df.to_csv(path, index=False)
    elif ext == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif ext == ".json":
        path.write_text(json.dumps(ROWS))
    elif ext == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    _check(labkit.load_data(path))


def test_dataset_and_datasetdict_pass_through_with_splits_kept():
    from datasets import ClassLabel, Dataset, DatasetDict

    ds = Dataset.from_list(ROWS)
    ds = ds.cast_column("label", ClassLabel(names=["negative", "positive"]))
    dd = DatasetDict(
        {
            "train": ds.select(range(30)),
            "dev": ds.select(range(30, 35)),
            "test": ds.select(range(35, 40)),
        }
    )
    data = labkit.load_data(dd)
    assert list(data.splits) == ["train", "validation", "test"]
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 5, 5)
    assert data.labels == ("negative", "positive")


def test_given_labels_fix_the_order():
    data = labkit.load_data(ROWS, labels=["positive", "negative"])
    assert data.labels == ("positive", "negative")
    first = ROWS[0]
    row = (
        next(r for r in data.train if r["text"] == first["text"])
        if any(r["text"] == first["text"] for r in data.train)
        else next(r for r in data.validation if r["text"] == first["text"])
    )
    assert data.labels[row["label"]] == first["label"]


def test_int_labels_and_label_map():
    rows = [{"text": r["text"], "label": int(r["label"] == "positive")} for r in ROWS]
    data = labkit.load_data(rows)
    assert data.labels == ("0", "1")
    named = labkit.load_data(rows, label_map={0: "negative", 1: "positive"})
    assert named.labels == ("negative", "positive")


def test_missing_column_lists_the_columns_found():
    with pytest.raises(DataError, match=r"no text column 'review'.*\['text', 'label'\]"):
        labkit.load_data(ROWS, text="review")
    with pytest.raises(DataError, match="label column 'stars'"):
        labkit.load_data(ROWS, label="stars")


def test_label_not_in_given_labels_is_named():
    rows = [*ROWS, {"text": "meh", "label": "neutral"}]
    with pytest.raises(DataError, match=r"'neutral'.*not among labels"):
        labkit.load_data(rows, labels=["negative", "positive"])


def test_missing_labels_and_non_text_are_errors():
    with pytest.raises(DataError, match="no label"):
        labkit.load_data([*ROWS, {"text": "x", "label": None}])
    with pytest.raises(DataError, match="no label"):
        labkit.load_data(pd.DataFrame([*ROWS, {"text": "x", "label": float("nan")}]))
    with pytest.raises(DataError, match="not text"):
        labkit.load_data([*ROWS, {"text": None, "label": "positive"}])


def test_single_class_is_refused():
    rows = [r for r in ROWS if r["label"] == "positive"]
    with pytest.raises(DataError, match="single class"):
        labkit.load_data(rows)


def test_bad_sources():
    with pytest.raises(DataError, match="no data file"):
        labkit.load_data("./missing.csv")
    with pytest.raises(DataError, match="empty"):
        labkit.load_data([])
    with pytest.raises(DataError, match="dicts"):
        labkit.load_data(["just", "strings"])
    with pytest.raises(DataError, match="cannot read"):
        labkit.load_data(42)
    with pytest.raises(InputError, match="validation_size"):
        labkit.load_data(ROWS, validation_size=1.5)


def test_hub_name_offline_says_unreachable(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="unreachable"):
        labkit.load_data("someone/not-a-dataset-xyz")


def test_awkward_texts_survive(tmp_path):
    rows = [
        *ROWS,
        {"text": "", "label": "positive"},
        {"text": "😀 中文 עברית", "label": "negative"},
        {"text": "bad \ud800 surrogate", "label": "negative"},
    ]
    data = labkit.load_data(rows)
    texts = list(data.train["text"]) + list(data.validation["text"])
    assert "bad \ufffd surrogate" in texts and "" in texts


def test_surrogates_in_a_dataframe_survive():
    df = pd.DataFrame([*ROWS, {"text": "x \udfff y", "label": "positive"}], dtype=object)
    data = labkit.load_data(df)
    texts = list(data.train["text"]) + list(data.validation["text"])
    assert "x \ufffd y" in texts
