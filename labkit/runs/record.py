"""A run's record on disk: ``events.jsonl`` in its output folder, one JSON object a line.

The first line describes the run (``{"kind": "Run", "labkit": version, "run_id", "name",
"model", "task", "labels", "device", "pid", "pid_start", "host", "world_size", "started",
"output_dir", "config": {...}}``); every training event follows as
it happens (``labkit.events.event_to_dict``: ``StepEnd``, ``EvalEnd``, ``Samples``, ``Saved``,
``TrainEnd``), and ``{"kind": "Status", "status", "step", "time"}`` lines note what the events
do not say (paused, running again, stopping; the first ``running`` also carries ``started``,
the zero of the history's ``elapsed``). Each line is written with one ``write`` and
flushed, so a reader in another process sees it at once and a run killed mid-write leaves every
complete line readable: readers take complete lines only (one ending in a newline).

Non-finite numbers are written as ``null`` (JSON has no NaN; a diverged loss still shows as
missing and the ``TrainEnd`` says why).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit._errors import InputError, LabkitWarning
from labkit.events import Event, event_from_dict, event_to_dict

__all__ = [
    "CONTROL",
    "HEADER_KIND",
    "RECORD",
    "STATUS_KIND",
    "Chunk",
    "RecordWriter",
    "config_dict",
    "find_record",
    "jsonable",
    "read_chunk",
]

RECORD = "events.jsonl"
CONTROL = "control.json"  # labkit.runs.control: requests to the run, from any process
HEADER_KIND = "Run"
STATUS_KIND = "Status"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numbers (non-finite -> None), strings, lists and dicts with
    string keys; a peft config by its ``to_dict()``, a path by its text, anything else by
    ``repr``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return jsonable(to_dict())
        except Exception:  # noqa: BLE001 - a config that cannot say itself is shown by repr
            pass
    if hasattr(value, "item") and callable(value.item):  # a numpy / torch scalar
        try:
            return jsonable(value.item())
        except Exception:  # noqa: BLE001
            pass
    return repr(value)


def config_dict(config: Any) -> dict[str, Any]:
    """A run's configuration as a flat JSON dict: a ``FinetuneConfig`` field by field, a dict
    (a recorded run's) as it is."""
    import dataclasses

    if isinstance(config, dict):
        return {str(k): jsonable(v) for k, v in config.items()}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}
    return {}


def header_for(run: Any) -> dict[str, Any]:
    """The first line of ``run``'s record (a live :class:`labkit.train.run.Run`)."""
    from labkit._version import __version__
    from labkit.runs.status import process_start

    model = run.model
    return {
        "kind": HEADER_KIND,
        "labkit": __version__,
        "run_id": uuid.uuid4().hex,
        "name": run.name,
        "model": str(getattr(model, "name", "") or ""),
        "task": str(getattr(model, "task", "") or ""),
        "labels": [str(x) for x in getattr(model, "labels", ()) or ()],
        "device": str(getattr(model, "device", "") or ""),
        "pid": os.getpid(),
        "pid_start": process_start(),  # with pid: a later process reusing the pid is not this
        "host": socket.gethostname(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1") or 1),
        "started": time.time(),
        "output_dir": os.path.abspath(run.output_dir),
        "config": config_dict(run.config),
    }


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(jsonable(obj), separators=(",", ":"), allow_nan=False)


class RecordWriter:
    """Appends one run's lines to ``<folder>/events.jsonl``; safe to call from any thread.

    A new run truncates nothing: a resumed run in the same folder appends a new header, and a
    reader shows the latest run (its header starts afresh). Writing never raises into training:
    a full disk is reported once as a warning and the run goes on without its record.
    """

    def __init__(self, folder: str | os.PathLike[str], header: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RECORD
        self.header = header
        self._lock = threading.Lock()
        self._failed = False
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file: Any = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        if _cut_short(self.path):  # an earlier run killed mid-line: its fragment ends here
            self._file.write("\n")
        self._write_line(_dumps(header))
        self._status: str | None = None

    def _write_line(self, line: str) -> None:
        with self._lock:
            if self._file is None or self._failed:
                return
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                self._failed = True
                warnings.warn(
                    f"labkit could not write the run record {self.path} ({exc}); training "
                    "goes on, but other processes and the sidebar no longer see its progress.",
                    LabkitWarning,
                    stacklevel=3,
                )

    def event(self, event: Event) -> None:
        self._write_line(_dumps(event_to_dict(event)))

    def status(self, status: str, step: int, *, started: float | None = None) -> None:
        """A status the events do not carry (paused, running again, stopping); repeats of the
        last one written are dropped. ``started``: the wall clock training began at (the zero
        of the history's ``elapsed``), on the first ``running``."""
        if status == self._status and started is None:
            return
        self._status = status
        line: dict[str, Any] = {
            "kind": STATUS_KIND,
            "status": status,
            "step": int(step),
            "time": time.time() if started is None else started,
        }
        if started is not None:
            line["started"] = started
        self._write_line(_dumps(line))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None


def _cut_short(path: Path) -> bool:
    """Whether ``path`` is non-empty and does not end in a newline."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


@dataclass
class Chunk:
    """What :func:`read_chunk` read: the complete lines from ``start`` up to ``offset``.

    ``items`` holds, in file order, the record's own lines as dicts (``{"kind": "Run", ...}``
    headers and ``{"kind": "Status", ...}``) and the events as ``labkit.events`` objects;
    ``bad`` counts corrupt lines skipped; ``unknown`` lines of kinds this labkit does not know.
    """

    start: int
    offset: int
    items: list[Any] = field(default_factory=list)
    bad: int = 0
    unknown: int = 0
    first_bad: str = ""

    def events(self) -> Iterator[Event]:
        return (x for x in self.items if not isinstance(x, dict))


# the most bytes one read takes: a reader that is far behind catches up in steps
_MAX_READ = 8 << 20


def read_chunk(path: str | os.PathLike[str], offset: int = 0, *, limit: int = _MAX_READ) -> Chunk:
    """Read the complete lines of ``path`` from byte ``offset`` (at most ``limit`` bytes, at
    least one whole line); ``Chunk.offset`` is where the next read starts. A last line without
    its newline (being written, or cut by a kill) is left for later. Corrupt lines are counted
    in ``Chunk.bad`` and skipped; unknown kinds in ``Chunk.unknown``."""
    chunk = Chunk(start=offset, offset=offset)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(limit)
        while data and b"\n" not in data:  # one line longer than the limit: read it whole
            more = f.read(limit)
            if not more:
                break
            data += more
    end = data.rfind(b"\n")
    if end < 0:
        return chunk
    chunk.offset = offset + end + 1
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            kind = obj.get("kind")
            if kind in (HEADER_KIND, STATUS_KIND):
                chunk.items.append(obj)
                continue
            event = event_from_dict(obj)
        except (ValueError, TypeError) as exc:
            if not chunk.bad:
                chunk.first_bad = f"{raw[:80]!r}: {exc}"
            chunk.bad += 1
            continue
        if event is None:
            chunk.unknown += 1
        else:
            chunk.items.append(event)
    return chunk


def find_record(path: str | os.PathLike[str]) -> Path:
    """The ``events.jsonl`` of a run folder (or the file itself), or a clear error."""
    p = Path(path).expanduser()
    if p.is_file() and p.name == RECORD:
        return p
    if not p.exists():
        raise InputError(f"{os.fspath(path)!r} does not exist; give the folder of a labkit run.")
    record = p / RECORD
    if not record.is_file():
        found = sorted(x.name for x in p.iterdir())[:8] if p.is_dir() else []
        raise InputError(
            f"{os.fspath(path)!r} is not a labkit run: it has no {RECORD} "
            f"(found {', '.join(found) or 'nothing'}). Give a run's output folder (run.output_dir, "
            "e.g. labkit-runs/<name>); runs made before labkit recorded them have no record."
        )
    return record
