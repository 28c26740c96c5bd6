"""``lk.load_run(path)``: any run read back from its folder, live or finished, from any process.

A :class:`RecordedRun` has what a live :class:`labkit.train.run.Run` shows — ``history``,
``status``, ``step`` / ``total_steps``, ``metrics``, ``checkpoints``, the panel and the static
snapshot — read from the run's ``events.jsonl``; ``refresh()`` reads what was appended since
(only the new bytes). It holds no model: steering goes through the run's control file
(``labkit.runs.control``), so ``stop()`` works on a run in a terminal, another kernel or on
several GPUs.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from labkit._errors import InputError, LabkitWarning, TrainingError
from labkit._utils import checkpoint as _checkpoint
from labkit.events import Status
from labkit.history import MetricHistory
from labkit.runs import control as _control
from labkit.runs.record import HEADER_KIND, STATUS_KIND, find_record, read_chunk
from labkit.runs.status import error_of, header_alive, process_alive, status_of

__all__ = ["RecordedConfig", "RecordedRun", "load_run", "process_alive"]  # process_alive: status


def load_run(path: str | os.PathLike[str]) -> RecordedRun:
    """The run recorded in folder ``path`` (its ``output_dir``), read-only: history, status,
    checkpoints, panel and snapshot, and ``stop()`` / ``pause()`` / ``resume()`` / ``save()``
    through the run's folder. A live run's record grows: ``refresh()`` reads the new events,
    and the panel (displaying the run) follows it by itself."""
    return RecordedRun(path)


class RecordedConfig(Mapping[str, Any]):
    """A recorded run's configuration: a read-only mapping whose keys also read as attributes
    (``config.lr`` like a ``FinetuneConfig``'s)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = dict(fields)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"the recorded config has no field {name!r}") from None

    def __repr__(self) -> str:
        return f"RecordedConfig({self._fields!r})"


class RecordedRun:
    """A run read from its record (see :func:`load_run`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._record = find_record(path)
        self._folder = self._record.parent
        self._lock = threading.RLock()
        self._offset = 0
        self._header: dict[str, Any] = {}
        self._status_line: dict[str, Any] = {}
        self._warned = False
        self._follower: threading.Thread | None = None
        self.history = MetricHistory()
        self.refresh()
        if not self._header:
            raise InputError(
                f"{os.fspath(self._record)!r} holds no run header (its first line, "
                '{"kind": "Run", ...}); it is not a labkit run record, or its first line was '
                "cut. Give a run's output folder."
            )

    # -- reading ------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Read the lines appended since the last read; returns how many were taken in. Corrupt
        lines are skipped with one warning (per run), unknown kinds silently."""
        taken = 0
        with self._lock:
            while True:
                try:
                    chunk = read_chunk(self._record, self._offset)
                except FileNotFoundError:
                    break
                if chunk.offset == self._offset:
                    break
                self._offset = chunk.offset
                for item in chunk.items:
                    taken += 1
                    if isinstance(item, dict):
                        if item.get("kind") == HEADER_KIND:
                            self._begin(item)
                        elif item.get("kind") == STATUS_KIND:
                            self._status_line = item
                            started = item.get("started")
                            if isinstance(started, int | float) and not isinstance(started, bool):
                                self.history.mark_start(float(started))
                    else:
                        self.history.record(item)
                if chunk.bad and not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"{os.fspath(self._record)}: skipped {chunk.bad} corrupt line(s) (first: "
                        f"{chunk.first_bad}); every complete line was read.",
                        LabkitWarning,
                        stacklevel=2,
                    )
        return taken

    def _begin(self, header: dict[str, Any]) -> None:
        """A header: the record's run starts (again, when the folder was used by a run before:
        the latest run is the one shown)."""
        if self._header:
            self.history = MetricHistory()
            self._status_line = {}
        self._header = header
        started = header.get("started")
        if isinstance(started, int | float):
            self.history.mark_start(float(started))

    def follow(self, interval: float = 0.5) -> RecordedRun:
        """Keep reading the record on a background thread until the run is over (a finished
        run, or a process that died). The panel calls it; idempotent."""
        with self._lock:
            if self._follower is not None or self.done:
                return self

            def loop() -> None:
                while True:
                    time.sleep(interval)
                    self.refresh()
                    if self.done:
                        break
                self._follower = None

            self._follower = threading.Thread(target=loop, name="labkit-follow", daemon=True)
            self._follower.start()
        return self

    # -- facts -----------------------------------------------------------------------------------
    @property
    def header(self) -> dict[str, Any]:
        """The record's first line: labkit version, run id, name, model, task, pid, host, start
        time and config."""
        return dict(self._header)

    @property
    def name(self) -> str:
        return str(self._header.get("name") or self._folder.name)

    @property
    def model_name(self) -> str:
        return str(self._header.get("model") or "")

    @property
    def task(self) -> str:
        return str(self._header.get("task") or "")

    @property
    def labels(self) -> list[str]:
        return [str(x) for x in self._header.get("labels") or []]

    @property
    def device(self) -> str:
        return str(self._header.get("device") or "")

    @property
    def run_id(self) -> str | None:
        value = self._header.get("run_id")
        return str(value) if value else None

    @property
    def config(self) -> RecordedConfig:
        config = self._header.get("config")
        return RecordedConfig(config if isinstance(config, dict) else {})

    @property
    def output_dir(self) -> str:
        return os.fspath(self._folder)

    @property
    def record(self) -> str:
        """The path of the run's ``events.jsonl``."""
        return os.fspath(self._record)

    @property
    def model(self) -> None:
        """A recorded run holds no model: load a checkpoint with ``labkit.load_model``."""
        return None

    @property
    def alive(self) -> bool:
        """Whether the process training this run still runs (True for one on another machine,
        which cannot be checked from here, and while its end is not recorded)."""
        return self.history.end is None and header_alive(self._header)

    @property
    def done(self) -> bool:
        """The run has ended: its end is recorded, or its process is gone."""
        return self.history.end is not None or not self.alive

    @property
    def status(self) -> Status:
        """As a live run's, read from the record: the recorded end, else a request on its way
        (``stopping``, ``pausing``), else the last status the run wrote. A run whose process
        died without recording its end reads ``failed`` (``error`` says so). The rules are
        ``labkit.runs.status.status_of``, the sidebar's too."""
        return status_of(
            self.history.end,
            str(self._status_line.get("status") or ""),
            _control.read_requests(self._folder),
            self.alive,
            len(self.history),
            run_id=self.run_id,
        )

    @property
    def error(self) -> str | None:
        last = self.history.last_step
        return error_of(
            self.history.end, self.alive, self._header, int(last["step"]) if last else None
        )

    @property
    def step(self) -> int:
        last = self.history.last_step
        steps = int(last["step"]) if last else 0
        end = self.history.end
        return max(steps, int(end.step)) if end is not None else steps

    @property
    def total_steps(self) -> int | None:
        return self.history.total_steps

    @property
    def metrics(self) -> dict[str, float]:
        last = self.history.last_eval
        return dict(last.metrics) if last else {}

    @property
    def evaluation(self) -> None:
        """The full evaluation (confusion matrix) is not recorded; ``metrics`` has its
        numbers."""
        return None

    @property
    def early_stopped(self) -> bool:
        return False

    @property
    def checkpoints(self) -> list[str]:
        """Complete checkpoint folders, oldest first."""
        return _checkpoint.find(self._folder)

    @property
    def best_checkpoint(self) -> str | None:
        from labkit.train.run import best_of

        return best_of(self.checkpoints, self.history, str(self.config.get("metric") or "loss"))

    # -- steering (through the run's folder) -------------------------------------------------------
    def _ask(self, action: str) -> None:
        if self.history.end is not None:
            return  # as a live run: nothing to steer once it has ended
        self.refresh()
        if self.history.end is not None:
            return
        if not self.alive:
            raise TrainingError(
                f"the run {self.name!r} is not running: {self.error} Nothing was written."
            )
        _control.request(self._folder, action, run_id=self.run_id)

    def stop(self) -> None:
        """Ask the run to save a checkpoint and end at its next step boundary (from any
        process). A run that has ended is left as it is; one whose process died raises
        ``TrainingError`` (nothing is written)."""
        self._ask("stop")

    def pause(self) -> None:
        self._ask("pause")

    def resume(self) -> None:
        self._ask("resume")

    def save(self) -> None:
        self._ask("save")

    def wait(self, timeout: float | None = None, *, interval: float = 0.2) -> RecordedRun:
        """Block until the run has ended (or ``timeout`` seconds pass), reading its record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(interval)
            self.refresh()
        self.refresh()
        return self

    # -- display ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        total = f"/{self.total_steps}" if self.total_steps else ""
        return (
            f"RecordedRun({self.name!r}, {self.status}, step {self.step}{total}, "
            f"output_dir={self.output_dir!r})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.run import run_html

        self.refresh()
        return run_html(self)

    def _ipython_display_(self) -> None:
        from labkit.render.display import ipython_display

        self.refresh()
        if not self.done:
            self.follow()  # the final static output waits for the record's end
        ipython_display(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
