"""Steering a run from another process: ``control.json`` in the run's folder.

A controller (``lk.load_run(path).stop()``, the JupyterLab sidebar, ``labkit runs --stop``)
writes the run's wishes, ``{"stop": bool, "pause": bool, "save": n, "run_id": ...}``, atomically
(a temporary file, then one rename); ``save`` counts the checkpoints asked for. The training
process reads the file at each step boundary (one ``stat`` when it has not changed, so it costs
nothing measurable) and applies it to the run's :class:`labkit.events.Control`, the same one
the panel's buttons and ``Run.stop()`` use.

Under ``torchrun`` or ``accelerate launch`` only rank 0 reads the file; every step, all ranks
take rank 0's requests with one broadcast (:func:`agree`), so every rank stops, pauses or saves
at the same step and one checkpoint is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.events import Control
from labkit.runs.record import CONTROL

__all__ = ["ACTIONS", "ControlFile", "Requests", "agree", "read_requests", "request", "requests"]

ACTIONS = ("stop", "pause", "resume", "save")


def read_requests(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The requests written to ``folder``'s control file (``{}`` when there is none or it
    cannot be read)."""
    try:
        data = json.loads(Path(folder, CONTROL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def request(folder: str | os.PathLike[str], action: str, *, run_id: str | None = None) -> None:
    """Ask the run in ``folder`` to ``stop``, ``pause``, ``resume`` or ``save`` (written
    atomically; the run answers at its next step boundary). ``run_id`` (the record header's)
    keeps a request from reaching a later run started in the same folder."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    folder = Path(folder)
    wish = read_requests(folder)
    if run_id is not None and wish.get("run_id") not in (None, run_id):
        wish = {}  # the requests of an earlier run in this folder
    wish.setdefault("stop", False)
    wish.setdefault("pause", False)
    wish["save"] = int(wish.get("save") or 0)
    if run_id is not None:
        wish["run_id"] = run_id
    if action == "stop":
        wish["stop"], wish["pause"] = True, False
    elif action == "pause":
        wish["pause"] = True
    elif action == "resume":
        wish["pause"] = False
    else:
        wish["save"] += 1
    fd, tmp = tempfile.mkstemp(prefix=".control-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(wish, f)
        os.replace(tmp, folder / CONTROL)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ControlFile:
    """The training side: applies ``control.json`` to a :class:`Control` when it changes.

    Made when the run starts, after :meth:`reset` clears the requests an earlier run in the same
    folder left behind. ``poll()`` costs one ``stat`` while the file is unchanged.
    """

    def __init__(self, folder: str | os.PathLike[str], control: Control, run_id: str) -> None:
        self.path = Path(folder) / CONTROL
        self.control = control
        self.run_id = run_id
        self._seen: tuple[int, int, int] | None = None
        self._saves = 0
        self._paused = False  # what the file asked for last

    def reset(self) -> None:
        """Start with no requests: a stop left by an earlier run must not stop this one."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __call__(self, control: Control) -> None:  # a Control poller (Control.attach)
        self.poll()

    def poll(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        # every request is a new file renamed into place (a new inode): two requests within
        # one tick of the file system's clock, of the same size (save, save), still differ
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._seen:
            return
        try:
            wish = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # read again at the next step (a network file system may show it late)
        self._seen = key
        if not isinstance(wish, dict) or wish.get("run_id") not in (None, self.run_id):
            return
        if wish.get("stop"):
            self.control.stop()
            return
        # a change of the file's wish, not its value: the kernel's own pause and resume
        # (Run.pause, the panel) write it too, so the file never holds a stale pause
        pause = bool(wish.get("pause"))
        if pause != self._paused:
            self._paused = pause
            if pause:
                self.control.pause()
            else:
                self.control.resume()
        saves = int(wish.get("save") or 0)
        if saves > self._saves:
            self._saves = saves
            self.control.save()


def _world() -> tuple[Any, int]:
    """torch.distributed when a process group of several ranks is running, and this rank."""
    import sys

    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None) if torch is not None else None
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None, 0
    if dist.get_world_size() < 2:
        return None, 0
    return dist, dist.get_rank()


@dataclass(frozen=True)
class Requests:
    """What the training loop acts on at one step boundary."""

    stop: bool
    pause: bool
    save: bool


# the requests the ranks last agreed on, per Control (only in a run of several ranks)
_AGREED: weakref.WeakKeyDictionary[Control, Requests] = weakref.WeakKeyDictionary()


def requests(control: Control) -> Requests:
    """The requests the training loop acts on now: those every rank agreed on at the last
    :func:`agree` in a run of several ranks (a ``stop()`` another thread of rank 0 makes
    after the broadcast waits for the next one, or rank 0 would stop a step before the
    others and every rank would hang); ``control``'s own in a single process."""
    agreed = _AGREED.get(control)
    if agreed is not None:
        return agreed
    return Requests(control.stop_requested, control.paused, control.save_pending)


def agree(control: Control) -> None:
    """Make every rank's ``control`` rank 0's: stop, pause and a pending save (one broadcast of
    three numbers; nothing at all in a single process). Every rank must call it equally often,
    and act on :func:`requests` (what was broadcast), not on ``control`` itself."""
    dist, rank = _world()
    if dist is None:
        return
    import torch

    backend = dist.get_backend()
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if backend == "nccl"
        else torch.device("cpu")
    )
    state = torch.zeros(3, dtype=torch.int32, device=device)
    if rank == 0:
        state[0] = int(control.stop_requested)
        state[1] = int(control.paused)
        state[2] = int(control.save_pending)
    dist.broadcast(state, src=0)
    stop, pause, save = (bool(x) for x in state.tolist())
    _AGREED[control] = Requests(stop, pause, save)
    if rank == 0:
        return
    if stop:
        control.stop()
    elif pause:
        control.pause()
    else:
        control.resume()
    if save:
        control.save()
    else:
        control.take_save_request()  # rank 0 has none pending: neither has this rank
