"""Checkpoint folders written atomically: everything goes to a staging folder, then one rename.

A crash (or a kill) while saving leaves at worst a stale staging folder, never a half-written
``checkpoint-N``: the previous checkpoint stays complete and loadable. Only folders named
``checkpoint-<step>`` count as checkpoints.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit._errors import ConfigError

__all__ = [
    "STAGING",
    "clean_staging",
    "commit",
    "discard",
    "find",
    "latest",
    "resolve",
    "step_of",
]

STAGING = ".staging"
_OLD = f"{STAGING}-old-"  # a checkpoint being replaced by a new copy of the same step
_NAME = re.compile(r"^checkpoint-(\d+)$")


LABELS_FILE = "labkit.json"


def write_labels(
    folder: str | os.PathLike[str], labels: Sequence[str], *, task: str | None = None
) -> None:
    """Record the label names next to a checkpoint (a LoRA adapter's files hold only label
    ids) and, for a task its config cannot tell (a masked LM saved as ``BertForMaskedLM`` loads
    as a classifier unless asked), the task ``labkit.load_model`` should load it as."""
    import json

    meta: dict[str, Any] = {"labels": [str(x) for x in labels]}
    if task is not None:
        meta["task"] = task
    Path(folder, LABELS_FILE).write_text(json.dumps(meta))


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """What labkit recorded in ``folder``'s ``labkit.json`` (``labels``; ``format`` for an ONNX
    export, with what made it); empty when there is none or it is unreadable."""
    import json

    try:
        meta = json.loads(Path(folder, LABELS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def read_labels(folder: str | os.PathLike[str]) -> list[str] | None:
    """The label names :func:`write_labels` recorded, or None (missing or unreadable)."""
    labels = read_meta(folder).get("labels")
    if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
        return labels
    return None


def step_of(path: str | os.PathLike[str]) -> int | None:
    """The step number of a ``checkpoint-N`` folder, else None."""
    m = _NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def find(output_dir: str | os.PathLike[str]) -> list[str]:
    """Complete checkpoints under ``output_dir``, oldest step first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(step_of(p), str(p)) for p in root.iterdir() if p.is_dir() and step_of(p) is not None]
    return [p for _, p in sorted(found)]


def latest(output_dir: str | os.PathLike[str]) -> str | None:
    done = find(output_dir)
    return done[-1] if done else None


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def commit(staged: str | os.PathLike[str], final: str | os.PathLike[str]) -> str:
    """Move the fully written folder ``staged`` to ``final`` in one rename; returns ``final``.

    An existing ``final`` (the same step saved twice) is moved aside first and removed after,
    so there is no moment without a complete copy.
    """
    staged, final = Path(staged), Path(final)
    _fsync_tree(staged)
    old = None
    if final.exists():
        old = final.with_name(f"{_OLD}{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staged, final)
    try:  # make the rename itself durable
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # some filesystems (and Windows) cannot fsync a folder
        pass
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return str(final)


def discard(checkpoint: str | os.PathLike[str]) -> None:
    """Delete a checkpoint folder: renamed out of ``checkpoint-N`` first, so a kill during the
    removal never leaves a half-deleted folder that still looks like a complete checkpoint."""
    path = Path(checkpoint)
    doomed = path.with_name(f"{STAGING}-del-{path.name}")
    shutil.rmtree(doomed, ignore_errors=True)
    try:
        os.replace(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def clean_staging(output_dir: str | os.PathLike[str]) -> None:
    """Remove what an interrupted save left behind.

    A copy that ``commit`` moved aside and whose replacement never arrived (a kill between its
    two renames) is the only copy of that checkpoint: it is put back, not removed.
    """
    root = Path(output_dir)
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(_OLD) and not (root / p.name[len(_OLD) :]).exists():
                os.replace(p, root / p.name[len(_OLD) :])
            elif p.name.startswith(STAGING):
                shutil.rmtree(p, ignore_errors=True)


def resolve(resume_from: str | os.PathLike[str]) -> str:
    """A checkpoint folder from ``resume_from``: the folder itself, or a run's latest checkpoint."""
    path = Path(os.path.expanduser(os.fspath(resume_from)))
    if not path.is_dir():
        raise ConfigError(
            f"resume_from={os.fspath(resume_from)!r} does not exist; pass a "
            "checkpoint-N folder or the output_dir of an earlier run."
        )
    if (path / "trainer_state.json").exists():
        return str(path)
    last = latest(path)
    if last is None:
        raise ConfigError(
            f"resume_from={str(path)!r} holds no complete checkpoint (no "
            "checkpoint-N folder with trainer_state.json)."
        )
    return last
