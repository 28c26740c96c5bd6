"""The small, incremental view of a run record that the JupyterLab sidebar polls.

:class:`RecordTail` follows one run folder: each :meth:`RecordTail.refresh` costs a ``stat`` of
``events.jsonl`` while it has not grown (plus, for a run that has not ended, a ``stat`` of its
control file and a process check), and reads only the bytes appended since. It keeps the run's
summary (status, step, last loss, last metrics, a sparkline of the training loss over the whole
run) in memory that does not grow with the number of steps: the sparkline is a
:class:`Spark`, at most 64 bucket means that merge pairwise when full.

:func:`read_since` is the other half: the record's lines from a byte offset, as columns, for
the sidebar's full chart (``GET labkit/run``), at most a few MB a call.

The status rules are ``labkit.runs.status``'s, shared with ``labkit.runs.loaded.RecordedRun``.
Pure Python: no tornado, no Jupyter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit._utils import checkpoint as _checkpoint
from labkit.events import (
    EvalEnd,
    Samples,
    Saved,
    Status,
    StepEnd,
    TrainEnd,
    event_to_dict,
)
from labkit.runs import control as _control
from labkit.runs.record import CONTROL, HEADER_KIND, RECORD, STATUS_KIND, read_chunk
from labkit.runs.status import error_of, header_alive, status_of

__all__ = [
    "READ_LIMIT",
    "SPARK_POINTS",
    "RecordTail",
    "Spark",
    "read_since",
]

SPARK_POINTS = 64  # the most points of a summary's sparkline
READ_LIMIT = 4 << 20  # the most bytes one ``read_since`` call takes


def _num(x: Any) -> float | None:
    """A finite float, else None (JSON has no NaN; ``json.loads`` accepts ``NaN`` literals)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    return {str(k): _num(v) for k, v in metrics.items()}


# -- the sparkline ----------------------------------------------------------------------------


class Spark:
    """A series of any length kept as at most ``size`` bucket means (``size`` even).

    Bucket ``i`` covers points ``[i * width, (i + 1) * width)``; when every bucket is full and
    another point arrives, neighbouring pairs merge (``width`` doubles), so memory and the
    output stay ``O(size)`` however long the run. Missing values (None) take their place in the
    series but not in the means; a bucket holding only missing values reads None.
    """

    def __init__(self, size: int = SPARK_POINTS) -> None:
        if size < 2 or size % 2:
            raise ValueError(f"a Spark needs an even size >= 2, got {size}")
        self.size = size
        self.width = 1
        self._sums: list[float] = []
        self._counts: list[int] = []  # the finite values in each bucket
        self._last_fill = 0  # points in the last bucket (finite or not)
        self.points = 0

    def add(self, value: float | None) -> None:
        if not self._sums or self._last_fill == self.width:
            if len(self._sums) == self.size:
                self._merge()
            self._sums.append(0.0)
            self._counts.append(0)
            self._last_fill = 0
        self._last_fill += 1
        self.points += 1
        if value is not None:
            self._sums[-1] += value
            self._counts[-1] += 1

    def _merge(self) -> None:
        sums, counts = self._sums, self._counts
        self._sums = [sums[i] + sums[i + 1] for i in range(0, len(sums), 2)]
        self._counts = [counts[i] + counts[i + 1] for i in range(0, len(counts), 2)]
        self.width *= 2
        self._last_fill = self.width  # every merged bucket was full

    def values(self) -> list[float | None]:
        """The bucket means, oldest first (at most ``size``)."""
        return [_num(s / n) if n else None for s, n in zip(self._sums, self._counts)]


# -- one run folder ---------------------------------------------------------------------------


class RecordTail:
    """The summary of the run in ``folder``, kept up to date by reading only new bytes.

    ``refresh()`` returns whether the summary may have changed; ``summary()`` gives it as the
    server's contract has it (without the ``id``, ``path``, ``where`` and ``version`` the index
    adds). ``gone`` turns True when the record has disappeared. A record that was truncated or
    replaced (another inode) is read again from its start; a new header in the same file (a
    run resumed in its folder) starts the summary afresh, as ``RecordedRun`` shows the latest
    run.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.record = self.folder / RECORD
        self.gone = False
        self.bad = 0  # corrupt lines skipped so far
        self._offset = 0
        self._key: tuple[int, int, int] | None = None  # (inode, size, mtime) last read
        self._control_key: tuple[int, int, int] | None = None
        self._requests: dict[str, Any] = {}
        self._alive = True
        self._start()

    def _start(self) -> None:
        self.header: dict[str, Any] = {}
        self._status_line = ""
        self._end: TrainEnd | None = None
        self._n_steps = 0
        self._last_step: int | None = None
        self._end_step = 0
        self._loss: float | None = None
        self._total: int | None = None
        self._metrics: dict[str, float | None] = {}
        self._updated: float | None = None
        self._checkpoints = 0
        self._spark = Spark()

    @property
    def ended(self) -> bool:
        """The run's end is recorded, or its process is gone."""
        return self._end is not None or not self._alive

    @property
    def run_id(self) -> str | None:
        value = self.header.get("run_id")
        return str(value) if value else None

    @property
    def alive(self) -> bool:
        return self._end is None and self._alive

    def refresh(self) -> bool:
        """Read what was appended since the last call; True when something changed."""
        try:
            st = os.stat(self.record)
        except OSError:
            changed = not self.gone
            self.gone = True
            return changed
        self.gone = False
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        changed = False
        if key != self._key:
            if self._key is not None and (st.st_ino != self._key[0] or st.st_size < self._offset):
                self._offset = 0  # truncated or replaced: read it again
                self._start()
            self._key = key
            changed = self._read()
        if self._end is None:
            changed |= self._watch()
        return changed

    def _read(self) -> bool:
        taken = False
        while True:
            try:
                chunk = read_chunk(self.record, self._offset)
            except OSError:
                break
            if chunk.offset == self._offset:
                break
            self._offset = chunk.offset
            self.bad += chunk.bad
            for item in chunk.items:
                taken = True
                try:
                    self._take(item)
                except (
                    TypeError,
                    ValueError,
                    OverflowError,
                ):  # a well-formed line of ill-typed values
                    self.bad += 1
        if taken:
            self._checkpoints = len(_checkpoint.find(self.folder))
        return taken

    def _take(self, item: Any) -> None:
        if isinstance(item, dict):
            if item.get("kind") == HEADER_KIND:
                self._start()
                self.header = item
                self._alive = True
                self._control_key = None  # read the requests again, for this run's id
                self._updated = _num(item.get("started"))
            elif item.get("kind") == STATUS_KIND:
                self._status_line = str(item.get("status") or "")
                self._updated = _num(item.get("time")) or self._updated
            return
        self._updated = _num(item.time) or self._updated
        if isinstance(item, StepEnd):
            self._n_steps += 1
            self._last_step = int(item.step)
            self._loss = _num(item.loss)
            self._spark.add(self._loss)
            if item.total_steps:
                self._total = int(item.total_steps)
        elif isinstance(item, EvalEnd):
            self._metrics = _metrics(item.metrics)
        elif isinstance(item, TrainEnd):
            self._end = item
            self._end_step = int(item.step)

    def _watch(self) -> bool:
        """The control file and the process: what changes the status without a new line."""
        changed = False
        try:
            st = os.stat(self.folder / CONTROL)
            # a request is a new file renamed into place: its inode tells two of one size apart
            control_key: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            control_key = None
        if control_key != self._control_key:
            self._control_key = control_key
            requests = _control.read_requests(self.folder) if control_key else {}
            changed |= requests != self._requests
            self._requests = requests
        # a process found gone stays gone: its pid may be reused by another process later
        alive = header_alive(self.header) if self.header and self._alive else self._alive
        changed |= alive != self._alive
        self._alive = alive
        return changed

    @property
    def status(self) -> Status:
        return status_of(
            self._end,
            self._status_line,
            self._requests,
            self._alive,
            self._n_steps,
            run_id=self.run_id,
        )

    @property
    def step(self) -> int:
        return max(self._last_step or 0, self._end_step)

    def summary(self) -> dict[str, Any]:
        """The run as the sidebar lists it: ``name``, ``model``, ``task``, ``status``, ``step``,
        ``total_steps``, ``loss`` (the last training loss, nats), ``metrics`` (the last
        evaluation), ``started`` and ``updated`` (seconds since 1970: the header's start and the
        time of the last line), ``error``, ``spark`` (<= 64 means of the training loss over the
        whole run) and ``checkpoints`` (complete checkpoint folders on disk)."""
        header = self.header
        return {
            "name": str(header.get("name") or self.folder.name),
            "model": str(header.get("model") or ""),
            "task": str(header.get("task") or ""),
            "status": self.status,
            "step": self.step,
            "total_steps": self._total,
            "loss": self._loss,
            "metrics": dict(self._metrics),
            "started": _num(header.get("started")),
            "updated": self._updated,
            "error": error_of(self._end, self._alive, header, self._last_step),
            "spark": self._spark.values(),
            "checkpoints": self._checkpoints,
        }


# -- the columns of a record, from an offset --------------------------------------------------


def _clean(value: Any) -> Any:
    """``value`` with every non-finite float as None, so it dumps as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _at_line_start(record: Path, offset: int) -> bool:
    """Whether byte ``offset`` starts a line (the byte before it is a newline)."""
    with open(record, "rb") as f:
        f.seek(offset - 1)
        return f.read(1) == b"\n"


def read_since(
    record: str | os.PathLike[str], offset: int = 0, *, limit: int = READ_LIMIT
) -> dict[str, Any]:
    """The record's complete lines from byte ``offset`` (at most ``limit`` bytes, at least one
    line), as the sidebar's chart takes them::

        {"offset": next offset, "reset": bool, "header": {...} | None,
         "steps": {"step": [...], "epoch": [...], "loss": [...], "lr": [...], "time": [...]},
         "evals": [[step, {metric: value}], ...], "samples": [[step, prompts, texts], ...],
         "saves": [[step, path], ...], "end": TrainEnd dict | None, "more": bool, "bad": int}

    ``reset`` tells the reader to drop what it holds: ``offset`` 0, an offset past the file's
    end or in the middle of a line (the file was replaced or truncated: it is read from its
    start), or a new header among the lines read (a run resumed in the same folder: only what
    follows the latest header is returned). ``header`` comes with every reset. ``more``: bytes
    remain after ``offset``. Non-finite numbers are None.
    """
    path = Path(record)
    size = os.stat(path).st_size
    reset = offset <= 0 or offset > size or not _at_line_start(path, offset)
    if reset:
        offset = 0
    chunk = read_chunk(path, offset, limit=limit)
    out = _empty(chunk.offset, reset)
    out["bad"] = chunk.bad
    for item in chunk.items:
        if isinstance(item, dict):
            if item.get("kind") == HEADER_KIND:
                out = _empty(chunk.offset, True)
                out["bad"] = chunk.bad
                out["header"] = _clean(item)
            continue
        try:
            _add_event(out, item)
        except (TypeError, ValueError, OverflowError):  # a well-formed line of ill-typed values
            out["bad"] += 1
    out["more"] = chunk.offset < size
    return out


def _add_event(out: dict[str, Any], item: Any) -> None:
    if isinstance(item, StepEnd):
        row = (int(item.step), _num(item.epoch), _num(item.loss), _num(item.lr), _num(item.time))
        for name, value in zip(("step", "epoch", "loss", "lr", "time"), row):
            out["steps"][name].append(value)
    elif isinstance(item, EvalEnd):
        out["evals"].append([int(item.step), _metrics(item.metrics)])
    elif isinstance(item, Samples):
        out["samples"].append(
            [int(item.step), _clean(list(item.prompts)), _clean(list(item.texts))]
        )
    elif isinstance(item, Saved):
        out["saves"].append([int(item.step), str(item.path)])
    elif isinstance(item, TrainEnd):
        out["end"] = _clean(event_to_dict(item))


def _empty(offset: int, reset: bool) -> dict[str, Any]:
    return {
        "offset": offset,
        "reset": reset,
        "header": None,
        "steps": {"step": [], "epoch": [], "loss": [], "lr": [], "time": []},
        "evals": [],
        "samples": [],
        "saves": [],
        "end": None,
        "more": False,
    }
