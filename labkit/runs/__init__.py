"""Runs as records on disk: every run writes ``events.jsonl`` in its folder and reads a control
file there, so it can be watched and steered from any process (``lk.load_run``), compared
(``lk.compare_runs``) and listed by the JupyterLab sidebar (``labkit.jupyter``).

``record`` (the file format and its reader), ``control`` (requests across processes and ranks),
``registry`` (the runs started on this machine), ``loaded`` (``load_run``, ``RecordedRun``),
``tail`` (the small incremental summary the sidebar sends), ``compare`` (``compare_runs``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "load_run": "labkit.runs.loaded",
    "RecordedRun": "labkit.runs.loaded",
    "compare_runs": "labkit.runs.compare",
    "RunComparison": "labkit.runs.compare",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labkit.runs' has no attribute {name!r}")


if TYPE_CHECKING:
    from labkit.runs.compare import RunComparison, compare_runs
    from labkit.runs.loaded import RecordedRun, load_run
