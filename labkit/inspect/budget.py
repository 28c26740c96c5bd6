"""Memory budgets of inspection passes: parse ``memory_budget=`` and size the default.

Attention maps grow with the square of the input: a long-context model at 4,096 tokens keeps
layers x heads x 16.8M weights per pass. Inspection code estimates the bytes a pass will hold
before running it and refuses, with advice, when the estimate is over the budget.
"""

from __future__ import annotations

import os
import re
from typing import Any

from labkit._errors import ConfigError

__all__ = ["batch_budget", "format_bytes", "parse_budget", "refusal_limit", "suggest_budget"]

_GIB = 2**30
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_budget(value: Any, what: str = "memory_budget") -> int | None:
    """Bytes from ``"auto"`` (None: decide later), a positive int, or ``"512MB"``/``"2GiB"``."""
    if value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-z]+)\s*", value.lower())
        if m and m.group(2) in _UNITS and float(m.group(1)) > 0:
            return int(float(m.group(1)) * _UNITS[m.group(2)])
    raise ConfigError(
        f"{what} must be 'auto', a positive number of bytes or a string like '512MB' / '2GiB'; "
        f"got {value!r}."
    )


def available_ram() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None


def refusal_limit(device: Any = None) -> int:
    """The most bytes one inspection pass may hold before it is refused (``memory_budget="auto"``):
    half the memory available now — free RAM, and on CUDA also free GPU memory (results land in
    RAM whatever the device, so the smaller half counts). Without a way to read free memory,
    1 GiB.
    """
    ram = available_ram()
    budget = int(ram * 0.5) if ram is not None else _GIB
    if getattr(device, "type", None) == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        budget = min(budget, int(free * 0.5))
    return max(budget, 1)


def batch_budget(device: Any) -> int:
    """Bytes the automatic batching of attribution passes aims at (smaller than the refusal
    limit: it only sizes batches, and one row over it still runs): half the free GPU memory on
    CUDA, else a quarter of free RAM between 256 MiB and 4 GiB — beyond that CPU passes gain
    nothing (measured on MiniLM).
    """
    if getattr(device, "type", None) == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    available = available_ram()
    if available is None:
        return _GIB
    return int(min(max(available * 0.25, _GIB / 4), 4 * _GIB))


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; binary units, three significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GiB"  # pragma: no cover - the loop returns at GiB


def suggest_budget(need: float) -> str:
    """A ``memory_budget=`` string 25% above ``need`` bytes: '1.3GiB' or '340MiB'."""
    gib = need * 1.25 / _GIB
    return f"{gib:.1f}GiB" if gib >= 1 else f"{max(1, round(gib * 1024))}MiB"
