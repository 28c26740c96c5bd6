"""Explanations over a dataset: choose the examples, explain them in batches, aggregate tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import DataError, InputError
from labkit.inspect.attribution.batching import rows_per_pass
from labkit.inspect.attribution.engine import check_memory, encode, run
from labkit.inspect.attribution.methods import probabilities
from labkit.inspect.attribution.result import DatasetAttribution
from labkit.inspect.budget import batch_budget

if TYPE_CHECKING:
    import pandas as pd

    from labkit.inspect.attribution.result import AttributionResult
    from labkit.model import Model

__all__ = ["explain_many"]


def _rows(dataset: Any, split: str | None) -> tuple[list[str], list[Any] | None, Any]:
    """(texts, label values or None, label names or None) from any supported container."""
    from labkit.data import TextData

    if isinstance(dataset, str):
        return [dataset], None, None
    if isinstance(dataset, list | tuple) and all(isinstance(t, str) for t in dataset):
        return list(dataset), None, None
    if isinstance(dataset, TextData) or hasattr(dataset, "column_names"):
        from labkit.data import labelled_split

        cols = getattr(dataset, "column_names", None)
        if cols is not None and not isinstance(dataset, TextData) and "label" not in cols:
            if "text" not in cols:
                raise DataError(f"the dataset has no 'text' column (columns: {cols}).")
            return list(dataset["text"]), None, None
        ds, names = labelled_split(dataset, split)
        return list(ds["text"]), list(ds["label"]), names
    columns = getattr(dataset, "columns", None)
    if columns is not None:  # a pandas DataFrame
        if "text" not in columns:
            raise DataError(f"the DataFrame has no 'text' column (columns: {list(columns)}).")
        labels = list(dataset["label"]) if "label" in columns else None
        return [str(t) for t in dataset["text"]], labels, None
    raise DataError(
        f"explain_dataset takes a TextData, a datasets.Dataset, a DataFrame or a list "
        f"of strings; got {type(dataset).__name__}."
    )


def _label_ids(model: Model, values: list[Any], names: Any) -> list[int]:
    from labkit.data import label_ids

    if names is None and values and isinstance(values[0], str):
        unknown = sorted({v for v in values if v not in model.labels})
        if unknown:
            raise DataError(
                f"labels {unknown[:5]} are not the model's labels {list(model.labels)}."
            )
        return [model.labels.index(v) for v in values]
    return label_ids(model.labels, names, values)


def explain_many(
    model: Model,
    dataset: Any,
    *,
    subset: str | int,
    target: str,
    method: str,
    opts: dict[str, Any],
    split: str | None,
) -> tuple[DatasetAttribution, list[float]]:
    texts, values, names = _rows(dataset, split)
    truth = _label_ids(model, values, names) if values is not None else None
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"row {i} of the dataset is empty ({t!r}); drop empty texts first.")
    if subset not in ("misclassified", "all") and not (
        isinstance(subset, int) and not isinstance(subset, bool) and subset > 0
    ):
        raise InputError(
            f"subset must be 'misclassified', 'all' or a positive number of rows; got {subset!r}."
        )
    needs_labels = subset == "misclassified" or target == "true"
    if needs_labels and truth is None and target not in model.labels:
        raise InputError(
            f"subset={subset!r}, target={target!r} need true labels, and this data "
            "has none; pass subset='all' or a number, and target='predicted'."
        )

    picked = list(range(len(texts)))
    if isinstance(subset, int):
        picked = picked[:subset]
    encoded_all = encode(model, [texts[i] for i in picked], stacklevel=4)
    check_memory(model, encoded_all, method, opts)  # before the prediction pass, too
    budget = opts["memory_budget"]
    budget = batch_budget(model.device) if budget == "auto" else budget
    longest = max(len(e.ids) for e in encoded_all)
    probs = probabilities(
        model,
        [e.ids for e in encoded_all],
        max_rows=rows_per_pass(model, longest, budget, backward=False),
    ).numpy()
    keep = list(range(len(picked)))
    if subset == "misclassified":
        assert truth is not None
        keep = [j for j in keep if int(np.argmax(probs[j])) != truth[picked[j]]]
    rows = [picked[j] for j in keep]
    encoded = [encoded_all[j] for j in keep]

    if target in model.labels:
        targets: list[str | int | None] = [target] * len(rows)
    elif target == "predicted":
        targets = [None] * len(rows)
    elif target == "true":
        assert truth is not None
        targets = [truth[r] for r in rows]
    else:
        raise InputError(
            f"target must be 'predicted', 'true' or one of the model's labels "
            f"{list(model.labels)}; got {target!r}."
        )
    results, unconverged = (
        run(model, encoded, targets, method, opts, probs=probs[keep]) if rows else ([], [])
    )
    table = _table(model, rows, results, truth)
    return DatasetAttribution(
        table=table,
        influence=_influence(results),
        results=tuple(results),
        method=method,
        options=dict(opts),
    ), unconverged


def _table(
    model: Model, rows: list[int], results: list[AttributionResult], truth: list[int] | None
) -> pd.DataFrame:
    import pandas as pd

    records = []
    for r, res in zip(rows, results):
        label = model.labels[truth[r]] if truth is not None else None
        records.append(
            {
                "row": r,
                "text": res.text,
                "label": label,
                "predicted": res.predicted,
                "target": res.target,
                "prob": res.probs[res.target],
                "correct": None if label is None else label == res.predicted,
                "n_tokens": len(res.tokens),
                "top": [t for t, _ in res.top(5)],
                "delta": res.delta,
                "n_steps": res.options.get("n_steps"),
                "comprehensiveness": res.comprehensiveness,
                "sufficiency": res.sufficiency,
            }
        )
    columns = [
        "row",
        "text",
        "label",
        "predicted",
        "target",
        "prob",
        "correct",
        "n_tokens",
        "top",
        "delta",
        "n_steps",
        "comprehensiveness",
        "sufficiency",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _influence(results: list[AttributionResult]) -> pd.DataFrame:
    """Per (explained label, lower-cased token): in how many texts, total and mean score."""
    import pandas as pd

    sums: dict[tuple[str, str], list[float]] = {}
    for res in results:
        seen: dict[str, float] = {}
        for token, score, special in zip(res.tokens, res.scores.tolist(), res.special):
            if special:
                continue
            key = token.lower()
            seen[key] = seen.get(key, 0.0) + score
        for key, score in seen.items():
            entry = sums.setdefault((res.target, key), [0.0, 0.0])
            entry[0] += 1
            entry[1] += score
    frame = pd.DataFrame(
        [(label, token, int(c), total, total / c) for (label, token), (c, total) in sums.items()],
        columns=["label", "token", "count", "total", "mean"],
    )
    return frame.sort_values(
        ["label", "total"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)
