"""``MetricHistory``: records every training event as plain columns, for views to read.

Record, then render: the live chart, the console bar and the HTML report all read from here.
Step records are stored column-wise (lists of floats), so a view can ask for "everything after
index i" and the cost of that read depends on how much is new, not on the length of the run.

Two clocks: ``time`` is the wall clock of each step (``time.time()``, seconds since 1970), what
the ETA is paced by; ``elapsed`` is the seconds since the run began, what "how long did it
take" reads.
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections.abc import Callable
from typing import Any

from labkit.events import Control, EvalEnd, Event, Samples, Saved, StepEnd, TrainEnd

__all__ = ["MetricHistory"]

_STEP_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "lr",
    "grad_norm",
    "samples_per_s",
    "time",
    "elapsed",
)


def _num(x: float | None) -> float | None:
    """None for missing or non-finite values, so the record stays JSON-safe."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class MetricHistory:
    """Thread-safe record of one run's events (it is itself a ``Callback``).

    ``steps`` holds one row per optimizer step in columns (``history.column("loss")``);
    ``evals`` the validation evaluations as ``EvalEnd``; ``samples`` the sample generations of a
    causal LM made at each evaluation, as ``Samples`` (empty for a classifier); ``saves`` the
    checkpoints as ``Saved``; ``end`` the final ``TrainEnd`` (None while the run goes on).
    Non-finite losses are recorded as ``None`` (JSON has no NaN) and flagged by the run's
    status, not hidden.

    Step columns: ``step``, ``epoch``, ``loss`` (nats), ``lr``, ``grad_norm``,
    ``samples_per_s``, ``time`` (the step's wall clock, ``StepEnd.time``: seconds since 1970)
    and ``elapsed`` (seconds from ``start_time`` to that step, pauses included; None for a step
    that carries no time). A run whose steps report the parts of their loss
    (``StepEnd.losses``, e.g. ``labkit.distill``'s ``soft_loss`` and ``hard_loss``) has a column
    for each part too, None at the steps that did not report it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cols: dict[str, list[Any]] = {name: [] for name in _STEP_COLUMNS}
        self.evals: list[EvalEnd] = []
        self.samples: list[Samples] = []
        self.saves: list[Saved] = []
        self.end: TrainEnd | None = None
        self.total_steps: int | None = None
        self._start: float | None = None
        self._listeners: list[Callable[[Event], None]] = []

    # -- recording -------------------------------------------------------------------------
    def on_event(self, event: Event, control: Control | None = None) -> None:
        self.record(event)

    def mark_start(self, at: float | None = None) -> None:
        """Note the wall clock (``time.time()``, default now) at which training began: the zero
        of ``elapsed``. Call it before the first event; a run's thread does as it starts. Without
        it, ``elapsed`` counts from the first recorded event (so its first step reads 0)."""
        with self._lock:
            self._start = float(_time.time() if at is None else at)

    @property
    def start_time(self) -> float | None:
        """The wall clock ``elapsed`` counts from (``mark_start``, else the first recorded event
        that carries a time); None before that."""
        return self._start

    def record(self, event: Event) -> None:
        at = float(event.time)  # 0.0: the event carries no time
        with self._lock:
            if self._start is None and at:
                self._start = at
            start = self._start
            if isinstance(event, StepEnd):
                c = self._cols
                c["step"].append(int(event.step))
                c["epoch"].append(float(event.epoch))
                c["loss"].append(_num(event.loss))
                c["lr"].append(_num(event.lr))
                c["grad_norm"].append(_num(event.grad_norm))
                c["samples_per_s"].append(_num(event.samples_per_s))
                c["time"].append(at)
                c["elapsed"].append(at - start if at and start is not None else None)
                self._record_parts(event.losses)
                if event.total_steps:
                    self.total_steps = int(event.total_steps)
            elif isinstance(event, EvalEnd):
                self.evals.append(event)
            elif isinstance(event, Samples):
                self.samples.append(event)
            elif isinstance(event, Saved):
                self.saves.append(event)
            elif isinstance(event, TrainEnd):
                self.end = event
            listeners = list(self._listeners)
        for fn in listeners:
            fn(event)

    def _record_parts(self, losses: dict[str, float]) -> None:
        """One row of the loss-part columns (the step's own columns are appended already): a
        part seen first now gets a column, None at the rows before. Called with the lock held."""
        c = self._cols
        rows = len(c["step"])
        for name in losses:
            if name not in c:
                c[name] = [None] * (rows - 1)
        for name in self.loss_parts:
            c[name].append(_num(losses.get(name)))

    @property
    def loss_parts(self) -> list[str]:
        """The columns of the parts a composite loss is made of (``StepEnd.losses``:
        ``soft_loss`` and ``hard_loss`` in a distillation); empty for a plain finetune."""
        return [name for name in self._cols if name not in _STEP_COLUMNS]

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn(event)`` after each recorded event; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return unsubscribe

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cols["step"])

    def column(self, name: str) -> list[Any]:
        """A copy of one step column: step, epoch, loss, lr, grad_norm, samples_per_s, time
        (wall clock), elapsed (seconds since ``start_time``), or a part of the loss the steps
        reported (``StepEnd.losses``: ``soft_loss``, ``hard_loss`` in a distillation)."""
        with self._lock:
            if name not in self._cols:
                raise KeyError(f"no column {name!r}; columns are {', '.join(self._cols)}")
            return list(self._cols[name])

    def steps_since(self, start: int, stop: int | None = None) -> dict[str, list[Any]]:
        """Step rows ``start:stop`` as columns (cost proportional to the rows returned)."""
        with self._lock:
            return {name: col[start:stop] for name, col in self._cols.items()}

    @property
    def last_step(self) -> dict[str, Any] | None:
        with self._lock:
            if not self._cols["step"]:
                return None
            return {name: col[-1] for name, col in self._cols.items()}

    def eta(self, total_steps: int | None = None, *, window: int = 32) -> float | None:
        """Seconds left until step ``total_steps`` (default: the total the steps reported), at
        the pace of the last ``window`` recorded steps (their ``StepEnd.time``, wall clock).

        None while unknown: no total, fewer than two steps, or no time between them. The live
        panel and the console bar both show this value. Constant cost, whatever the length of
        the run.
        """
        total = total_steps or self.total_steps
        with self._lock:
            steps, times = self._cols["step"][-window:], self._cols["time"][-window:]
        if not total or len(steps) < 2:
            return None
        ds, dt = steps[-1] - steps[0], times[-1] - times[0]
        if ds <= 0 or dt <= 0:
            return None
        return max(0.0, (total - steps[-1]) * dt / ds)

    @property
    def last_eval(self) -> EvalEnd | None:
        with self._lock:
            return self.evals[-1] if self.evals else None

    @property
    def last_samples(self) -> Samples | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def samples_since(self, start: int, stop: int | None = None) -> list[Samples]:
        """``Samples`` events ``start:stop``, in the order they were made."""
        with self._lock:
            return self.samples[start:stop]

    def answers(self, prompt: str | None = None) -> list[tuple[int, str]]:
        """How the model's answer to ``prompt`` changed: ``(step, text)`` for each evaluation
        whose samples include it, in order. Default: the first prompt of the first samples;
        ``[]`` when there are none (a classifier's run)."""
        with self._lock:
            recorded = list(self.samples)
        if prompt is None:
            if not recorded or not recorded[0].prompts:
                return []
            prompt = recorded[0].prompts[0]
        return [(s.step, s.texts[s.prompts.index(prompt)]) for s in recorded if prompt in s.prompts]

    def to_dict(self) -> dict[str, Any]:
        """The whole history as JSON-ready data: ``steps`` (the step columns, loss parts
        included; ``time`` is the wall clock, ``elapsed`` the seconds since ``start_time``),
        ``evals``, ``samples``,
        ``saves``, ``end``, ``total_steps`` and ``start_time``."""
        from labkit.events import event_to_dict

        with self._lock:
            return {
                "steps": {name: list(col) for name, col in self._cols.items()},
                "evals": [event_to_dict(e) for e in self.evals],
                "samples": [event_to_dict(s) for s in self.samples],
                "saves": [event_to_dict(s) for s in self.saves],
                "end": event_to_dict(self.end) if self.end else None,
                "total_steps": self.total_steps,
                "start_time": self._start,
            }

    def __repr__(self) -> str:
        end = self.end.status if self.end else "running"
        return f"MetricHistory({len(self)} steps, {len(self.evals)} evals, {end})"
