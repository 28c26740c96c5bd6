"""Size on disk and latency: the one definition every compression table and benchmark uses.

``size_on_disk`` counts what the model's weights take once written (an ONNX model: its graph
files; a torch model, int8 copies included: its ``state_dict`` serialized, so packed int8
weights count as the bytes they are). ``latency`` is the median wall time of
``Model.logits`` on ``batch_size`` texts (tokenizing, padding and the forward pass: what a
caller waits for), after a warm-up call; ``interleaved`` times several callables in turn, so a
busy machine slows each side alike.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["batch_of", "interleaved", "latency", "size_on_disk"]


def size_on_disk(model: Model) -> int:
    """Bytes the model's weights take on disk (the tokenizer not counted)."""
    files = getattr(model.hf, "labkit_files", None)  # an ONNX model: the files it runs from
    if files:
        return sum(Path(f).stat().st_size for f in files)
    import torch

    buf = io.BytesIO()
    hf: Any = model.hf
    if model.lora:  # what an export writes: the adapter merged into the base weights
        import copy

        hf = copy.deepcopy(hf).merge_and_unload()
    torch.save(hf.state_dict(), buf)
    return buf.tell()


def _check(batch_size: int, repeats: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be an int >= 1, got {repeats!r}.")


def batch_of(texts: Sequence[str], batch_size: int) -> list[str]:
    """``batch_size`` texts from ``texts``, cycling through them when there are fewer."""
    if not texts:
        raise ConfigError("latency needs at least one text to time the model on.")
    return [texts[i % len(texts)] for i in range(batch_size)]


def latency(model: Model, texts: Sequence[str], *, batch_size: int = 1, repeats: int = 5) -> float:
    """Median seconds for ``model.logits`` on one batch of ``batch_size`` texts."""
    _check(batch_size, repeats)
    batch = batch_of(list(texts), batch_size)
    return interleaved({"m": lambda: model.logits(batch, batch_size=batch_size)}, repeats)["m"]


def interleaved(
    calls: Mapping[str, Callable[[], Any]], repeats: int = 5, *, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each callable, timed in turn ``repeats`` times after ``warmup`` calls."""
    _check(1, repeats)
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
