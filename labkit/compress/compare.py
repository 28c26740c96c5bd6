"""``compare_models``: what each compressed copy costs in accuracy and buys in size and speed.

One row per model, measured on the same labelled texts: parameters (``Model.num_parameters``),
size on disk and latency (:mod:`labkit.compress.measure`, one definition for every table),
accuracy and macro-F1 (the metrics ``Model.evaluate`` computes), and agreement with the first
model (the fraction of texts on which both predict the same label).

A comparison grows one model at a time (:meth:`ModelComparison.add`): the App's Compress tab
shows each row as it arrives. Each new model is timed interleaved with the first one, in the
same loop, so a machine that gets busier slows both alike; ``speedup`` is that ratio, the
figure to trust when the machine is shared (``latency`` itself moves with the load).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from labkit.model import Model
    from labkit.runs.compare import Table

__all__ = ["ModelComparison", "ModelRow", "compare_models", "start_comparison"]

EVAL_BATCH = 64  # texts per forward pass when computing accuracy (not a timed figure)


@dataclass(frozen=True)
class ModelRow:
    """One model's figures in a :class:`ModelComparison`.

    ``latency`` maps each batch size to the median seconds of one ``Model.logits`` call on
    that many texts (tokenizing included), on the model's own ``device``; ``speedup`` maps it to
    the first model's latency divided by this one's, both timed interleaved in one loop (1.0
    for the first model). ``size_bytes`` is the weights' size on disk. ``accuracy``, ``f1``
    (macro) and ``agreement`` (fraction of the ``examples`` texts predicted as the first model
    predicts them) are fractions in [0, 1].
    """

    name: str
    backend: str
    device: str
    parameters: int
    size_bytes: int
    latency: dict[int, float]
    speedup: dict[int, float]
    accuracy: float
    f1: float
    agreement: float
    examples: int


@dataclass(eq=False)
class ModelComparison:
    """The trade-off table of several models on one labelled split (``lk.compare_models``).

    ``rows`` holds one :class:`ModelRow` per model, in the order added; the first model is the
    reference every ``agreement`` and ``speedup`` is measured against. Add a model with
    :meth:`add`; show it as a table and a plot of accuracy against latency at the smallest
    batch size (``_repr_html_``, :meth:`to_html`, or the live view in a notebook).
    """

    rows: list[ModelRow]
    split: str
    batch_sizes: tuple[int, ...]
    repeats: int
    _texts: list[str] = field(repr=False)
    _names: tuple[str, ...] | None = field(repr=False)  # the split's label names (None: ids)
    _gold: list[Any] = field(repr=False)
    _models: dict[str, Model] = field(default_factory=dict, repr=False)
    _reference: list[str] = field(default_factory=list, repr=False)  # first model's labels
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # rows, listeners
    # one measurement at a time (rows stay in the order added); not _lock, which a view takes
    # on the kernel's thread to subscribe while a row is being measured
    _adding: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _listeners: list[Callable[[ModelRow], None]] = field(default_factory=list, repr=False)

    # -- growing -------------------------------------------------------------------------------
    def add(
        self, name: str, model: Model, *, progress: Callable[[str], None] | None = None
    ) -> ModelRow:
        """Measure ``model`` on this comparison's texts and append its row (returned).

        ``progress(text)`` is told what is being measured as it goes (the App's status line).
        Thread-safe: rows are added one at a time, and every :meth:`subscribe` callback gets
        the new row once it is in ``rows``.
        """
        from labkit.compress import measure
        from labkit.metrics import compute_metrics

        with self._adding:
            say = progress or (lambda _text: None)
            with self._lock:
                name = self._check(name, model)
            first = self._first()
            labels = list(model.labels)
            say(f"{name}: predicting {len(self._texts):,} texts…")
            ids = self._ids(model)
            predicted = model.logits(self._texts, batch_size=EVAL_BATCH).argmax(-1).tolist()
            metrics = compute_metrics(ids, predicted, model.labels)
            names = [labels[i] for i in predicted]
            reference = self._reference or names
            agree = sum(a == b for a, b in zip(names, reference)) / len(names)
            say(f"{name}: size on disk…")
            size = measure.size_on_disk(model)
            latency: dict[int, float] = {}
            speedup: dict[int, float] = {}
            for b in self.batch_sizes:
                say(f"{name}: latency at batch {b} ({self.repeats} repeats)…")
                batch = measure.batch_of(self._texts, b)
                calls = {"new": _timed(model, batch)}
                if first is not None:
                    calls["first"] = _timed(first, batch)
                times = measure.interleaved(calls, self.repeats)
                latency[b] = times["new"]
                speedup[b] = times["first"] / times["new"] if first is not None else 1.0
            row = ModelRow(
                name=name,
                backend=model.backend,
                device=str(model.device),
                parameters=int(model.num_parameters),
                size_bytes=int(size),
                latency=latency,
                speedup=speedup,
                accuracy=float(metrics.accuracy),
                f1=float(metrics.f1),
                agreement=float(agree),
                examples=len(names),
            )
            with self._lock:
                if first is None:
                    self._reference = names
                self._models[name] = model
                self.rows.append(row)
                listeners = list(self._listeners)
        for fn in listeners:
            fn(row)
        return row

    def subscribe(self, fn: Callable[[ModelRow], None]) -> Callable[[], None]:
        """Call ``fn(row)`` after each row is added (on the adding thread); returns the
        function that stops it."""
        with self._lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return unsubscribe

    def _first(self) -> Model | None:
        return self._models[self.rows[0].name] if self.rows else None

    def _check(self, name: Any, model: Any) -> str:
        from labkit.model import Model

        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"each model needs a non-empty name, got {name!r}.")
        if name in self._models:
            raise ConfigError(
                f"{name!r} is already in this comparison (rows: "
                f"{', '.join(r.name for r in self.rows)}); give the new model another name."
            )
        if not isinstance(model, Model):
            raise ConfigError(
                f"{name!r} is a {type(model).__name__}, not a labkit.Model: load it with "
                "labkit.load_model(...) or wrap it with labkit.Model.wrap(hf_model, tokenizer)."
            )
        model.require_task("classification", "compare_models")
        first = self._first()
        if first is not None:
            self._same_labels(name, model, self.rows[0].name, first)
        return name

    @staticmethod
    def _same_labels(name: str, model: Model, first_name: str, first: Model) -> None:
        if set(first.labels) != set(model.labels):
            raise ConfigError(
                f"{name!r} predicts the labels {list(model.labels)}, but {first_name!r} "
                f"predicts {list(first.labels)}: compare models that share one label set."
            )

    def _ids(self, model: Model) -> list[int]:
        from labkit.data import label_ids

        return label_ids(model.labels, self._names, self._gold)

    # -- reading -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The models' names, in row order."""
        return [r.name for r in self.rows]

    @property
    def plot_batch(self) -> int:
        """The batch size the plot's latency axis shows (the smallest measured: 1 by default)."""
        return min(self.batch_sizes)

    def table(self) -> Table:
        """The rows as formatted text (what the HTML table and the widget show)."""
        from labkit.render.compress import comparison_table

        return comparison_table(self)

    def to_pandas(self) -> pd.DataFrame:
        """One row per model; latency in milliseconds, size in megabytes, fractions as is."""
        import pandas as pd

        records = []
        for r in self.rows:
            rec: dict[str, Any] = {
                "model": r.name,
                "backend": r.backend,
                "device": r.device,
                "parameters": r.parameters,
                "size_mb": r.size_bytes / 1e6,
            }
            for b in self.batch_sizes:
                rec[f"latency_ms_b{b}"] = r.latency[b] * 1000
            for b in self.batch_sizes:
                rec[f"speedup_b{b}"] = r.speedup[b]
            rec.update(accuracy=r.accuracy, f1=r.f1, agreement=r.agreement)
            records.append(rec)
        return pd.DataFrame.from_records(records)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the table and the plot as one self-contained HTML page; returns its path."""
        from labkit.render.report import Report

        n = self.rows[0].examples if self.rows else 0
        report = Report("Model comparison", subtitle=f"{n:,} texts of the {self.split} split")
        report.add_html("Accuracy, size and speed", self._repr_html_())
        return report.write(path)

    def __repr__(self) -> str:
        return (
            f"ModelComparison({len(self.rows)} models on the {self.split} split: "
            f"{', '.join(self.names) or 'none yet'})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.compress import comparison_html

        return comparison_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def _timed(model: Model, batch: list[str]) -> Callable[[], Any]:
    return lambda: model.logits(batch, batch_size=len(batch))


def _batch_sizes(batch_sizes: Any) -> tuple[int, ...]:
    sizes = (batch_sizes,) if isinstance(batch_sizes, int) else tuple(batch_sizes or ())
    if not sizes or not all(
        isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes
    ):
        raise ConfigError(
            f"batch_sizes must be one or more ints >= 1, such as (1, 32); got {batch_sizes!r}."
        )
    return tuple(dict.fromkeys(sizes))


def start_comparison(
    data: Any,
    *,
    split: str | None = None,
    batch_sizes: Sequence[int] = (1, 32),
    repeats: int = 5,
    max_examples: int | None = None,
) -> ModelComparison:
    """An empty comparison on ``data``'s labelled split, ready for :meth:`ModelComparison.add`
    (what :func:`compare_models` and the App's Compress tab start from)."""
    from labkit.data import TextData, labelled_split

    sizes = _batch_sizes(batch_sizes)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError(f"repeats must be an int >= 1, got {repeats!r}.")
    if max_examples is not None and (
        not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1
    ):
        raise ConfigError(f"max_examples must be None or an int >= 1, got {max_examples!r}.")
    dataset, names = labelled_split(data, split)
    chosen = split or ("test" if isinstance(data, TextData) and data.test is not None else "")
    chosen = chosen or ("validation" if isinstance(data, TextData) else "given")
    columns = list(getattr(dataset, "column_names", []) or [])
    if "label" not in columns:
        raise DataError(
            f"the {chosen} split has no 'label' column (columns: {columns}): compare_models "
            "needs labelled texts. Pass split= naming a labelled split."
        )
    n = len(dataset) if max_examples is None else min(len(dataset), max_examples)
    if n == 0:
        raise DataError(
            f"the {chosen} split has no rows: compare_models needs labelled texts to measure on."
        )
    part = dataset.select(range(n)) if n < len(dataset) else dataset
    return ModelComparison(
        rows=[],
        split=chosen,
        batch_sizes=sizes,
        repeats=repeats,
        _texts=[str(t) for t in part["text"]],
        _names=names,
        _gold=list(part["label"]),
    )


def compare_models(
    models: Mapping[str, Model],
    data: Any,
    *,
    split: str | None = None,
    batch_sizes: Sequence[int] = (1, 32),
    repeats: int = 5,
    max_examples: int | None = None,
    on_row: Callable[[ModelRow], None] | None = None,
) -> ModelComparison:
    """Measure each model in ``models`` (name -> :class:`labkit.Model`) on the same texts.

    ``data`` is a :class:`labkit.TextData` (its ``test`` split, else ``validation``; or
    ``split=``) or a ``datasets.Dataset`` with ``text`` and ``label`` columns; the first
    ``max_examples`` rows are used (all by default). Latency is timed at each of
    ``batch_sizes`` (median of ``repeats`` calls after a warm-up, on each model's own device).
    ``on_row(row)`` is called as each model's row is ready. The first model is the reference of
    ``agreement`` and ``speedup``; every model must predict the same labels.
    """
    if not isinstance(models, Mapping):
        raise ConfigError(
            f"models must be a mapping of name -> labkit.Model, such as "
            f"{{'finetuned': model, 'int8': labkit.quantize(model)}}; got {type(models).__name__}."
        )
    if not models:
        raise ConfigError(
            "models is empty: give at least one, such as {'finetuned': model}; the first is the "
            "reference the others are compared with."
        )
    comparison = start_comparison(
        data, split=split, batch_sizes=batch_sizes, repeats=repeats, max_examples=max_examples
    )
    first_name, first = next(iter(models.items()))
    for name, model in models.items():  # every one checked before any is timed
        comparison._check(name, model)
        comparison._same_labels(name, model, first_name, first)
    if on_row is not None:
        comparison.subscribe(on_row)
    for name, model in models.items():
        comparison.add(name, model)
    return comparison
