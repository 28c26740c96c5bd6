"""Typed training events, the ``Callback`` protocol and the ``Control`` handed to callbacks.

Callbacks receive an event and a :class:`Control`; they never receive the trainer. Events are
frozen dataclasses of plain Python values, so they can be recorded, sent to a browser or
written to disk as they are.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from labkit._errors import InputError

__all__ = [
    "ENDED_STATUSES",
    "ENDED_WELL",
    "REQUESTED_STATUSES",
    "Callback",
    "Control",
    "EvalEnd",
    "Event",
    "Samples",
    "Saved",
    "Status",
    "StepEnd",
    "TrainEnd",
]

Status = Literal[
    "pending",
    "running",
    "pausing",
    "paused",
    "stopping",
    "stopped",
    "finished",
    "diverged",
    "out_of_memory",
    "failed",
]

# The statuses a run ends with: once a run has one, its status never changes again.
ENDED_STATUSES: frozenset[Status] = frozenset(
    {"stopped", "finished", "diverged", "out_of_memory", "failed"}
)
# The statuses of a request on its way: set at once by ``Run.pause()`` / ``Run.stop()``, held until
# the next step boundary answers it (``paused``, or the end after the stop's checkpoint).
REQUESTED_STATUSES: frozenset[Status] = frozenset({"pausing", "stopping"})
# The ended statuses that keep what was trained (a stopped run keeps its last checkpoint); the
# others are failures: a command exits non-zero, the App says so in red.
ENDED_WELL: frozenset[Status] = frozenset({"stopped", "finished"})


@dataclass(frozen=True)
class StepEnd:
    """One optimizer step finished.

    ``loss`` is the training loss of that step (mean over its batch, nats); ``lr`` the learning
    rate used; ``grad_norm`` the global L2 norm before clipping (None when not computed);
    ``samples_per_s`` the training throughput measured over recent steps. ``losses`` names
    the parts a composite ``loss`` is made of, each a mean over the same batch (nats):
    ``labkit.distill`` reports ``soft_loss`` and ``hard_loss``; empty for a plain finetune.
    """

    step: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float | None = None
    samples_per_s: float | None = None
    total_steps: int | None = None
    time: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalEnd:
    """An evaluation on the validation split finished; ``metrics`` maps names to floats
    (a classifier: ``loss``, ``accuracy``, ``precision``, ``recall``, ``f1``; a causal LM:
    ``loss``, the mean over the tokens that carry loss, and ``perplexity``, its exp)."""

    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    time: float = 0.0


@dataclass(frozen=True)
class Samples:
    """Sample generations of a causal LM, made right after an evaluation.

    At optimizer step ``step`` the model being trained continued each of ``prompts`` greedily;
    ``texts[i]`` is what it wrote for ``prompts[i]`` (the generated text only). The prompts are
    the same at every evaluation of a run, so the answers can be compared across steps
    (``MetricHistory.answers``).
    """

    step: int
    prompts: tuple[str, ...]
    texts: tuple[str, ...]
    time: float = 0.0

    def __post_init__(self) -> None:
        # lists are accepted, tuples are kept: the event stays hashable and immutable
        object.__setattr__(self, "prompts", tuple(self.prompts))
        object.__setattr__(self, "texts", tuple(self.texts))
        if len(self.prompts) != len(self.texts):
            raise InputError(
                f"Samples has {len(self.prompts)} prompts but {len(self.texts)} texts; give "
                "one generated text per prompt."
            )


@dataclass(frozen=True)
class Saved:
    """A complete checkpoint was written (atomically) to ``path``."""

    step: int
    path: str
    time: float = 0.0


@dataclass(frozen=True)
class TrainEnd:
    """The run ended with ``status``; ``error`` is a readable message when it did not finish."""

    status: Status
    error: str | None = None
    step: int = 0
    time: float = 0.0


Event = StepEnd | EvalEnd | Samples | Saved | TrainEnd


@runtime_checkable
class Callback(Protocol):
    """Anything with ``on_event(event, control)``; exceptions it raises end the run as failed."""

    def on_event(self, event: Event, control: Control) -> None: ...


class Control:
    """Requests to a running training, safe to call from any thread.

    ``stop()`` ends the run at the next step boundary after saving a checkpoint; ``pause()`` holds
    training at the next step boundary until ``resume()``; ``save()`` writes a checkpoint at the
    next step boundary. Each call is idempotent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._save = threading.Event()
        self._running = threading.Event()  # set = not paused
        self._running.set()
        self._pollers: list[Callable[[Control], None]] = []

    def attach(self, poller: Callable[[Control], None]) -> None:
        """Have ``poller(control)`` run at each :meth:`poll`: a run's control file
        (``labkit.runs.control``), the agreement of several ranks. For the engine."""
        self._pollers.append(poller)

    def poll(self) -> None:
        """Take in requests made outside this process; the training loop calls it at each step
        boundary (and while paused). A poller that fails is ignored: steering from outside
        must never end a training."""
        for poller in self._pollers:
            try:
                poller(self)
            except Exception:  # see above
                import logging

                logging.getLogger("labkit").debug("control poll failed", exc_info=True)

    def stop(self) -> None:
        with self._lock:  # one step with pause(): a pause can never land after a stop
            self._stop.set()
            self._running.set()  # a paused run must wake up to stop

    def pause(self) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def save(self) -> None:
        self._save.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def save_pending(self) -> bool:
        """A checkpoint was asked for and not yet taken (:meth:`take_save_request`)."""
        return self._save.is_set()

    def take_save_request(self) -> bool:
        """True once per ``save()`` call batch; clears the request."""
        with self._lock:
            wanted = self._save.is_set()
            self._save.clear()
            return wanted

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True when running (or stopping), False on timeout."""
        return self._running.wait(timeout)


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a ``kind`` field naming the event class (containers copied: a
    ``metrics`` dict, ``Samples``' tuples as lists). A run writes one a step: kept cheap."""
    out: dict[str, Any] = {}
    for name, _check in _fields_of(type(event)):
        value = getattr(event, name)
        if isinstance(value, dict):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    out["kind"] = type(event).__name__
    return out


_EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (StepEnd, EvalEnd, Samples, Saved, TrainEnd)
}


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """The event :func:`event_to_dict` wrote, or None for a dict of another kind (a newer
    labkit's event, a record's own lines): readers skip what they do not know. Fields this
    labkit does not know are dropped; a known kind with missing or ill-typed fields raises
    ``TypeError`` / ``ValueError``."""
    cls = _EVENT_TYPES.get(str(data.get("kind", "")))
    if cls is None:
        return None
    kwargs: dict[str, Any] = {}
    for name, check in _fields_of(cls):
        if name not in data:
            continue  # a missing field with no default: the constructor's TypeError says so
        value = data[name]
        # a line another program wrote (or a disk mangled) must fail here, with its field
        # named, and not later in MetricHistory's int(step)
        if not check(value):
            kind = next(f.type for f in dataclasses.fields(cls) if f.name == name)
            raise ValueError(f"{cls.__name__}.{name} must be {kind}, got {value!r:.60}")
        kwargs[name] = value
    if cls is TrainEnd and kwargs.get("status") not in ENDED_STATUSES:
        raise ValueError(f"TrainEnd status must be an ended status, got {kwargs.get('status')!r}")
    event: Event = cls(**kwargs)
    return event


def _anything(value: Any) -> bool:
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)


# a field's annotation (a string: annotations are postponed) -> the check of a JSON value;
# null stands for a non-finite number, so every float may be None
_FIELD_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "int | None": lambda v: v is None or _is_int(v),
    "float": lambda v: v is None or _is_number(v),
    "float | None": lambda v: v is None or _is_number(v),
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "Status": lambda v: isinstance(v, str),
    "dict[str, float]": lambda v: (
        isinstance(v, dict)
        and all(isinstance(k, str) and (x is None or _is_number(x)) for k, x in v.items())
    ),
    "tuple[str, ...]": _is_strings,
}


_FIELDS: dict[type, tuple[tuple[str, Callable[[Any], bool]], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, Callable[[Any], bool]], ...]:
    """``(name, check of a JSON value)`` of each field of event class ``cls``, computed once
    (``dataclasses.fields`` on every line was most of the time a record took to read)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = tuple(
            (f.name, _FIELD_CHECKS.get(str(f.type), _anything)) for f in dataclasses.fields(cls)
        )
        _FIELDS[cls] = found
    return found
