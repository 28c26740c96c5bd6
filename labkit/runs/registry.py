"""The runs started on this machine, wherever their folders are.

Each run appends its folder to ``runs.jsonl`` in labkit's state folder (``$LABKIT_STATE_DIR``,
else ``$XDG_STATE_HOME/labkit``, else ``~/.local/state/labkit``), so the JupyterLab sidebar
lists a run started from a terminal in another folder too. Only the user's own processes write
it; readers keep the entries whose folder still holds a record.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from labkit.runs.record import RECORD

__all__ = ["KEEP", "register", "registered", "registry_file", "state_dir"]

KEEP = 200  # the newest entries read back; older ones are dropped when the file is rewritten


def state_dir() -> Path:
    explicit = os.environ.get("LABKIT_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "labkit"


def registry_file() -> Path:
    """The registry itself: ``runs.jsonl`` in :func:`state_dir`."""
    return state_dir() / "runs.jsonl"


def register(folder: str | os.PathLike[str]) -> None:
    """Note that a run writes its record in ``folder`` (never raises: a read-only home only
    means the sidebar finds the run under its root alone)."""
    line = json.dumps({"path": os.path.abspath(folder), "time": time.time()}) + "\n"
    with contextlib.suppress(OSError):
        path = registry_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
        if path.stat().st_size > 256 * KEEP:  # keep the file small: rewrite the newest entries
            _compact(path)


def _compact(path: Path) -> None:
    keep = [json.dumps({"path": p, "time": t}) + "\n" for p, t in _entries(path)[-KEEP:]]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(keep), encoding="utf-8")
    os.replace(tmp, path)


def _entries(path: Path) -> list[tuple[str, float]]:
    seen: dict[str, float] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    for raw in text.splitlines():
        try:
            entry = json.loads(raw)
            seen[str(entry["path"])] = float(entry.get("time") or 0.0)
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(seen.items(), key=lambda pt: pt[1])


def registered() -> list[str]:
    """Folders of the runs started on this machine that still hold a record, newest last."""
    return [
        p for p, _ in _entries(registry_file())[-KEEP:] if os.path.isfile(os.path.join(p, RECORD))
    ]
