"""``lk.compare_runs([...])``: several runs side by side — one chart, a table of final metrics and
the configuration fields that differ.

A :class:`RunComparison` holds the runs (live ``Run``\\ s, ``RecordedRun``\\ s, or folders read
with ``lk.load_run``) and computes plain data from their histories: each run's training loss
(raw and smoothed as the panel smooths it), its evaluations, the final-metrics table and the
configuration differences. The static snapshot (``labkit.render.compare``) and the live widget
(``labkit.ui.compare_view``) both draw from that data.

Curves are downsampled to at most ``limit`` points (default :data:`MAX_POINTS`) by keeping the
lowest and the highest raw loss of each bucket of steps, so a spike stays visible and what a
view receives does not grow with the length of a run: ten runs of 10,000 steps send ten curves
of at most ~1,000 points.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from labkit._errors import ConfigError, InputError
from labkit.render.run import duration

if TYPE_CHECKING:
    from labkit.runs.loaded import RecordedRun
    from labkit.train.run import Run

__all__ = ["MAX_POINTS", "SMOOTHING", "Curve", "RunComparison", "Table", "compare_runs"]

MAX_POINTS = 1000  # points per run's curve sent to a view (min and max of each bucket)
SMOOTHING = 0.6  # the EMA of the training loss, as the live panel's default
XAxis = Literal["step", "time"]
X_AXES: tuple[str, ...] = ("step", "time")


def compare_runs(
    runs: Sequence[Run | RecordedRun | str | os.PathLike[str]] | Run | RecordedRun | str,
    *,
    metric: str | None = None,
    x: XAxis = "step",
) -> RunComparison:
    """Several runs side by side: their training and validation loss on one chart, ``metric``
    in a second panel, a table of final metrics and the configuration fields that differ.

    ``runs``: live ``Run``\\ s, ``RecordedRun``\\ s (``lk.load_run``) or run folders (read with
    ``lk.load_run``), at least one. ``metric``: the validation metric of the second panel;
    default the runs' ``config.metric`` when it is not the loss, else accuracy when recorded,
    else none. ``x``: ``"step"`` aligns the runs by optimizer step, ``"time"`` by seconds since
    each run began (``MetricHistory`` ``elapsed``).

    Displayed in a notebook, live runs update the chart about once a second.
    """
    return RunComparison(runs, metric=metric, x=x)


@dataclass(frozen=True)
class Curve:
    """One run's curves, downsampled (all lists aligned, one entry per kept step).

    ``step`` (optimizer steps), ``elapsed`` (seconds since the run began; None where a step
    carries no time), ``loss`` (raw training loss, nats; None for a missing or non-finite value)
    and ``smooth`` (its EMA with :data:`SMOOTHING`, computed over every step before thinning).
    ``evals``: ``(step, elapsed, metrics)`` of each evaluation. ``steps``: how many steps the
    run has recorded (before thinning).
    """

    label: str
    step: list[int]
    elapsed: list[float | None]
    loss: list[float | None]
    smooth: list[float | None]
    evals: list[tuple[int, float | None, dict[str, float | None]]]
    steps: int

    def x(self, axis: str) -> list[float | None]:
        """The x of each point for ``axis`` ("step" or "time")."""
        return [float(s) for s in self.step] if axis == "step" else list(self.elapsed)

    def eval_x(self, axis: str) -> list[float | None]:
        return [float(s) if axis == "step" else t for s, t, _ in self.evals]


EMPTY = Curve(label="", step=[], elapsed=[], loss=[], smooth=[], evals=[], steps=0)


@dataclass(frozen=True)
class Table:
    """A table as text: ``columns`` (headings) and ``rows`` (one list of cells per row, each
    cell already formatted); ``note`` says what an empty table means."""

    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class _Cached:
    """A run's last curve, and its EMA so far (extended as the run grows, not recomputed)."""

    key: tuple[Any, ...]
    curve: Curve
    smooth: list[float | None] = field(default_factory=list)
    acc: float = 0.0
    weight: float = 0.0

    def extend(self, loss: Sequence[float | None]) -> list[float | None]:
        """The EMA (``svgchart.ema`` with :data:`SMOOTHING`) of ``loss``, whose first entries
        are those seen before."""
        s = SMOOTHING
        for v in loss[len(self.smooth) :]:
            if v is None:
                self.smooth.append(None)
                continue
            self.acc = s * self.acc + (1.0 - s) * v
            self.weight = s * self.weight + (1.0 - s)
            self.smooth.append(self.acc / self.weight)
        return self.smooth


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def keep_indices(values: Sequence[float | None], limit: int) -> list[int]:
    """Indices of at most ~``limit`` of ``values``, in order: per bucket of consecutive indices,
    the lowest and the highest finite value (a spike stays), plus the first and the last
    index. All indices when there are no more than ``limit`` values."""
    n = len(values)
    if n <= limit:
        return list(range(n))
    buckets = max(1, (limit - 2) // 2)
    size = n / buckets
    keep = {0, n - 1}
    for b in range(buckets):
        i0, i1 = int(b * size), min(n, int((b + 1) * size))
        lo = hi = -1
        for i in range(i0, i1):
            v = values[i]
            if v is None or not math.isfinite(v):
                continue
            if lo < 0 or v < values[lo]:  # type: ignore[operator]
                lo = i
            if hi < 0 or v > values[hi]:  # type: ignore[operator]
                hi = i
        if lo < 0:
            keep.add(i0)  # a bucket of gaps stays a gap
        else:
            keep.update((lo, hi))
    return sorted(keep)


def _as_run(item: Any, index: int) -> Any:
    """A run with a ``history``: a live Run / RecordedRun as it is, a folder through load_run."""
    if hasattr(item, "history") and hasattr(item, "status"):
        return item
    if isinstance(item, str | os.PathLike):
        from labkit.runs.loaded import load_run

        return load_run(item)
    raise InputError(
        f"compare_runs: item {index} is a {type(item).__name__} ({item!r:.60}); give runs "
        "(lk.finetune's Run, lk.load_run's RecordedRun) or run folders (run.output_dir)."
    )


def _labels(runs: Sequence[Any]) -> list[str]:
    """Each run's name; runs that share a name get their folder's name, or #n when that is
    shared too."""
    names = [str(getattr(r, "name", "") or "run") for r in runs]
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) < 2:
            continue
        folders = [os.path.basename(os.path.normpath(str(runs[i].output_dir))) for i in same]
        unique = len(set(folders)) == len(folders) and all(folders)
        for k, i in enumerate(same):
            out[i] = f"{name} ({folders[k]})" if unique else f"{name} #{k + 1}"
    return out


def _metric_names(runs: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for r in runs:
        for e in list(r.history.evals):
            for k in e.metrics or {}:
                if k not in names:
                    names.append(str(k))
    return names


def _config_metric(run: Any) -> str:
    config = getattr(run, "config", None)
    if isinstance(config, Mapping):
        return str(config.get("metric") or "")
    return str(getattr(config, "metric", "") or "")


def _config(run: Any) -> dict[str, Any]:
    from labkit.runs.record import config_dict

    config = getattr(run, "config", None)
    return config_dict(dict(config) if isinstance(config, Mapping) else config)


def fmt_value(v: Any) -> str:
    """A config value or metric as shown in a table: numbers short, the rest as JSON."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, default=str)


class RunComparison:
    """Runs compared (see :func:`compare_runs`): ``runs``, their distinguishing ``labels``, the
    chosen ``metric`` ("" for none) and ``x`` axis; ``curves()``, ``finals()`` and
    ``config_diff()`` give what the views draw."""

    def __init__(
        self,
        runs: Any,
        *,
        metric: str | None = None,
        x: str = "step",
    ) -> None:
        if x not in X_AXES:
            raise ConfigError(
                f"compare_runs: x must be 'step' (align by optimizer step) or 'time' (seconds "
                f"since each run began), got {x!r}."
            )
        if isinstance(runs, str | os.PathLike) or hasattr(runs, "history"):
            runs = [runs]
        try:
            items = list(runs)
        except TypeError:
            raise InputError(
                f"compare_runs takes a list of runs or run folders, got a {type(runs).__name__}."
            ) from None
        if not items:
            raise InputError(
                "compare_runs got no runs; give at least one Run, RecordedRun or run folder, "
                "e.g. lk.compare_runs([run_a, 'labkit-runs/b'])."
            )
        self.runs: list[Any] = [_as_run(item, i) for i, item in enumerate(items)]
        self.labels: list[str] = _labels(self.runs)
        self.x: str = x
        self._cache: dict[int, _Cached] = {}
        # a live view's thread and the notebook's display may ask for curves at once
        self._lock = threading.Lock()
        self.metric: str = self._pick_metric(metric)

    # -- choices ---------------------------------------------------------------------------------
    def _pick_metric(self, wanted: str | None) -> str:
        names = _metric_names(self.runs)
        if wanted is not None and wanted != "":
            if wanted in names:
                return wanted
            from labkit.metrics import METRIC_NAMES

            if not names and self.live and wanted in METRIC_NAMES:
                return wanted  # live runs that have not evaluated yet
            have = ", ".join(names) if names else "none: no run has an evaluation yet"
            raise ConfigError(
                f"compare_runs: no run recorded the metric {wanted!r}; the runs have {have}. "
                "Pass one of those as metric=, or metric=None for the default."
            )
        for run in self.runs:
            chosen = _config_metric(run)
            if chosen and chosen != "loss" and chosen in names:
                return chosen
        return "accuracy" if "accuracy" in names else ""

    def metric_names(self) -> list[str]:
        """Every metric some run's evaluations recorded (loss included), first seen first."""
        return _metric_names(self.runs)

    # -- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read what recorded runs appended since (a live ``Run`` records by itself)."""
        for run in self.runs:
            refresh = getattr(run, "refresh", None)
            if callable(refresh):
                refresh()

    @property
    def live(self) -> bool:
        """Whether any run is still going (not ``done``)."""
        return any(not bool(getattr(r, "done", True)) for r in self.runs)

    # -- data ------------------------------------------------------------------------------------
    def curve(self, index: int, *, limit: int = MAX_POINTS) -> Curve:
        """Run ``index``'s curves, at most ~``limit`` points (recomputed only when it grew)."""
        with self._lock:
            return self._curve(index, limit)

    def _curve(self, index: int, limit: int) -> Curve:
        run = self.runs[index]
        history = run.history
        key = (id(history), len(history), len(history.evals), limit)
        cached = self._cache.get(index)
        if cached is not None and cached.key == key:
            return cached.curve
        if cached is None or cached.key[0] != key[0] or len(cached.smooth) > key[1]:
            cached = _Cached(key, EMPTY)  # a first look, or a new run in the same folder
        cols = history.steps_since(0, key[1])
        loss: list[float | None] = cols["loss"]  # MetricHistory keeps non-finite as None
        smooth = cached.extend(loss)
        keep = keep_indices(loss, limit)
        start = history.start_time
        evals = []
        for e in list(history.evals)[: key[2]]:
            at = float(e.time) - start if e.time and start is not None else None
            metrics = {str(k): (float(v) if _finite(v) else None) for k, v in e.metrics.items()}
            evals.append((int(e.step), at, metrics))
        if len(evals) > limit:  # evaluations are few; thinned evenly if a run has very many
            stride = math.ceil(len(evals) / limit)
            evals = evals[::stride] + ([evals[-1]] if (len(evals) - 1) % stride else [])
        curve = Curve(
            label=self.labels[index],
            step=[int(cols["step"][i]) for i in keep],
            elapsed=[cols["elapsed"][i] for i in keep],
            loss=[loss[i] for i in keep],
            smooth=[smooth[i] for i in keep],
            evals=evals,
            steps=key[1],
        )
        cached.key, cached.curve = key, curve
        self._cache[index] = cached
        return curve

    def curves(self, *, limit: int = MAX_POINTS) -> list[Curve]:
        return [self.curve(i, limit=limit) for i in range(len(self.runs))]

    def wall_time(self, index: int) -> float | None:
        """Seconds from the run's start to its last recorded step (or its end)."""
        history = self.runs[index].history
        start = history.start_time
        end = history.end
        if end is not None and end.time and start is not None:
            return float(end.time) - start
        last = history.last_step
        return last["elapsed"] if last else None

    def finals(self) -> Table:
        """One row per run: label, status, step reached (of the total), wall time, then the
        last evaluation's metrics (a dash where a run lacks one)."""
        from labkit.render.run import status_label

        names = self.metric_names()
        rows = []
        for i, run in enumerate(self.runs):
            total = getattr(run, "total_steps", None) or run.history.total_steps
            step = int(getattr(run, "step", 0) or 0)
            last = run.history.last_eval
            metrics = dict(last.metrics) if last else {}
            rows.append(
                [
                    self.labels[i],
                    status_label(str(run.status)),
                    f"{step:,}" + (f" / {int(total):,}" if total else ""),
                    duration(self.wall_time(i)),
                    *(fmt_value(metrics.get(n)) for n in names),
                ]
            )
        return Table(["run", "status", "step", "wall time", *names], rows)

    def config_diff(self) -> Table:
        """The configuration fields whose values differ between the runs (one row per field:
        the field, then each run's value); ``note`` says so when none differ."""
        configs = [_config(r) for r in self.runs]
        fields: list[str] = []
        for c in configs:
            fields.extend(k for k in c if k not in fields)
        missing = object()

        def same(values: list[Any]) -> bool:
            first = json.dumps(values[0], sort_keys=True, default=str)
            return all(json.dumps(v, sort_keys=True, default=str) == first for v in values[1:])

        rows = []
        for name in fields:
            values = [c.get(name, missing) for c in configs]
            if same([None if v is missing else v for v in values]):
                continue
            rows.append([name, *("–" if v is missing else fmt_value(v) for v in values)])
        if len(self.runs) < 2:
            note = "one run: nothing to compare its configuration with"
        elif not rows:
            note = f"the runs' configurations are the same ({len(fields)} fields)"
        else:
            note = f"{len(rows)} of {len(fields)} configuration fields differ"
        return Table(["field", *self.labels], rows, note)

    # -- display ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"RunComparison({self.labels!r}, metric={self.metric!r}, x={self.x!r})"

    def _repr_html_(self) -> str:
        from labkit.render.compare import comparison_html

        self.refresh()
        return comparison_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
