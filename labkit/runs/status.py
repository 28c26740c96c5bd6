"""What state a recorded run is in, from its record alone: one set of rules for
``lk.load_run`` (``labkit.runs.loaded``) and the sidebar's summaries (``labkit.runs.tail``).

A run's process is checked by the record header's ``pid``, ``host`` and ``pid_start`` (so a
later process that reuses the pid is not taken for the run); its status comes from the recorded
end, else the control file's requests, else the last ``Status`` line it wrote.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.events import Status, TrainEnd

__all__ = ["error_of", "header_alive", "process_alive", "process_start", "status_of"]


def proc_start(fields: list[str]) -> int | None:
    """The start time in the fields of ``/proc/<pid>/stat`` after the command's ``)``."""
    # field 22 (starttime, clock ticks since boot); fields[0] is field 3
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_start(pid: int | None = None) -> int | None:
    """When process ``pid`` (default: this one) started, in clock ticks since boot (Linux);
    None where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid or 'self'}/stat").read_text()
    except OSError:
        return None
    return proc_start(stat.rpartition(")")[2].split())


def process_alive(pid: int, host: str, started: int | None = None) -> bool | None:
    """Whether process ``pid`` on ``host`` runs: None when ``host`` is another machine.
    ``started`` (the record header's ``pid_start``, ``process_start``) tells a process
    that reuses a dead run's pid from the run's own."""
    if host and host != socket.gethostname():
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: /proc still says whether it is the run's
    except OSError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: it runs no more
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True  # no /proc (macOS): the signal said it exists
    if not fields or fields[0] == "Z":
        return False
    return started is None or proc_start(fields) in (None, started)


def header_alive(header: Mapping[str, Any]) -> bool:
    """Whether the process a record header names still runs (a process on another machine
    cannot be checked from here and counts as alive)."""
    pid, started = header.get("pid"), header.get("pid_start")
    found = process_alive(
        pid if isinstance(pid, int) and not isinstance(pid, bool) else -1,
        str(header.get("host") or ""),
        started if isinstance(started, int) and not isinstance(started, bool) else None,
    )
    return found is not False


def status_of(
    end: TrainEnd | None,
    status_line: str,
    requests: Mapping[str, Any],
    alive: bool,
    n_steps: int,
    *,
    run_id: str | None = None,
) -> Status:
    """A recorded run's status: the recorded ``end``, else ``failed`` when its process is gone
    (``alive`` False), else a request on its way (``stopping``, ``pausing``: ``requests`` is
    the control file's content, ignored when written for another ``run_id``), else the last
    ``Status`` line the run wrote (``status_line``), else ``running`` once it has ``n_steps``
    steps and ``pending`` before."""
    if end is not None:
        return end.status
    if not alive:
        return "failed"
    wish: Mapping[str, Any] = requests
    if wish.get("run_id") not in (None, run_id):
        wish = {}
    line = status_line
    if line == "stopping" or wish.get("stop"):
        return "stopping"
    if wish.get("pause") and line != "paused":
        return "pausing"
    if line == "paused" and not wish.get("pause") and wish:
        return "running"  # resumed: the run says so at its next step
    if line in ("running", "paused", "pausing"):
        return line  # type: ignore[return-value]
    return "running" if n_steps else "pending"


def error_of(
    end: TrainEnd | None, alive: bool, header: Mapping[str, Any], last_step: int | None
) -> str | None:
    """A recorded run's error: the recorded end's, else (its process gone without recording an
    end) what happened and what to do; None while it runs or when it ended well."""
    if end is not None:
        return end.error
    if alive:
        return None
    at = f" at step {last_step}" if last_step is not None else " before its first step"
    return (
        f"the process that trained this run (pid {header.get('pid')} on {header.get('host')}) "
        f"ended{at} without recording an end: it was killed or crashed. Its checkpoints are "
        "kept; resume with finetune(..., resume_from=<this folder>)."
    )
