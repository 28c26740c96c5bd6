"""Silence Hugging Face's own progress bars and notices inside labkit operations.

In a notebook, tqdm bars from ``from_pretrained`` / ``save_pretrained`` become extra widgets
in the cell's output (and from a training thread, in whichever cell runs next); labkit shows
its own progress instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["hf_quiet"]

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, bool] | None = None


@contextmanager
def hf_quiet() -> Iterator[None]:
    """Within the block transformers logs errors only and shows no progress bars (re-entrant,
    thread-safe; the caller's settings come back when the outermost block ends)."""
    global _depth, _saved
    from transformers.utils import logging as hf_logging

    with _lock:
        if _depth == 0:
            _saved = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                verbosity, bars = _saved
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
