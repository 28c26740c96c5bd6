"""One Hugging Face ``Trainer`` trains at a time in a process.

accelerate keeps its state (the device set-up, gradient accumulation) in process-wide singletons,
and building ``TrainingArguments`` resets them: a second run's arguments built while a first run
trains break the first (``AcceleratorState`` loses ``distributed_type`` mid-step). So a run takes
the slot before it builds its trainer and gives it back when it ends. A run started meanwhile
waits for it on its own thread (status ``pending``; ``finetune`` warns that it waits, and for
which run), and a stop while it waits ends it at once, having trained nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["holder", "release", "take", "take_now"]

_slot = threading.Lock()  # released by the run's thread, taken by the caller's: not an RLock
_guard = threading.Lock()
_holder: str | None = None


def take_now(name: str) -> bool:
    """Take the slot for the run ``name`` if it is free; True when taken."""
    global _holder
    if not _slot.acquire(blocking=False):
        return False
    with _guard:
        _holder = name
    return True


def take(name: str, stopped: Callable[[], bool], *, every: float = 0.1) -> bool:
    """Wait for the slot, giving up (False) as soon as ``stopped()`` says so."""
    global _holder
    while not _slot.acquire(timeout=every):
        if stopped():
            return False
    with _guard:
        _holder = name
    return True


def release() -> None:
    """The run holding the slot has ended (or failed before training)."""
    global _holder
    with _guard:
        _holder = None
    _slot.release()


def holder() -> str | None:
    """The name of the run holding the slot, or None."""
    with _guard:
        return _holder
