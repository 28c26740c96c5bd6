"""The automatic precision of a training run: measured, not assumed.

bf16 autocast only pays when a step's matrix products are large enough to hide its casts and
extra kernels: on an H100, labkit's bf16 default made a MiniLM step (batch 16 x 64 tokens)
slower than plain fp32 and the run 0.75x HF Trainer's defaults. So on a GPU ``precision="auto"``
times a few forward + backward passes of one real batch in each candidate precision before the
run starts and keeps the faster one. The probe leaves no trace: gradients are cleared, the
weights are never stepped, and the random state (dropout) is restored. On a CPU the answer is
fp32 without a probe (autocast there is emulated and slower).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["PrecisionChoice", "candidates", "probe_precision"]

# per candidate: warm-up passes (kernel selection, allocator), then timed passes (median)
_WARMUP = 2
_TIMED = 3


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``precision="auto"`` chose, and why: ``seconds`` is the median time of one forward
    + backward pass per candidate (empty when no probe ran), ``reason`` says it in words."""

    precision: str
    seconds: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""


def candidates(device: torch.device) -> tuple[str, ...]:
    """Precisions worth probing on ``device``: fp32 always, bf16 where the tensor cores have
    it (else fp16 on a GPU); only fp32 on a CPU or MPS."""
    from labkit._utils.device import native_bf16

    if device.type != "cuda":
        return ("fp32",)
    return ("fp32", "bf16") if native_bf16(device) else ("fp32", "fp16")


def probe_precision(
    hf: Any,
    batch: Mapping[str, torch.Tensor],
    device: torch.device,
    *,
    options: Sequence[str] | None = None,
) -> PrecisionChoice:
    """Time forward + backward of ``batch`` under each of ``options`` (default
    :func:`candidates`) and return the fastest; ties go to fp32, which is exact.

    ``hf`` is the model as it will train (LoRA attached); ``batch`` a collated training batch
    with ``labels``. Out of memory in one candidate drops that candidate.
    """
    import torch

    from labkit._utils.device import is_out_of_memory

    opts = tuple(options) if options is not None else candidates(device)
    if len(opts) == 1:
        return PrecisionChoice(opts[0], {}, f"{opts[0]}: the only choice on {device.type}")
    inputs = {k: v.to(device) for k, v in batch.items()}
    was_training = hf.training
    cuda = [device.index or 0] if device.type == "cuda" else []
    seconds: dict[str, float] = {}
    hf.train()
    try:
        with torch.random.fork_rng(devices=cuda):
            for name in opts:
                try:
                    seconds[name] = _time_passes(hf, inputs, name, device)
                except (RuntimeError, MemoryError) as exc:
                    if not is_out_of_memory(exc):
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                finally:
                    hf.zero_grad(set_to_none=True)
    finally:
        hf.train(was_training)
    if not seconds:
        return PrecisionChoice("fp32", {}, "fp32: no candidate fitted in memory")
    # fp32 unless another precision is clearly (>5%) faster: below that, noise decides
    best = min(seconds, key=seconds.__getitem__)
    if "fp32" in seconds and seconds[best] > 0.95 * seconds["fp32"]:
        best = "fp32"
    shown = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in seconds.items())
    return PrecisionChoice(best, seconds, f"{best}: fastest forward+backward ({shown})")


def _time_passes(hf: Any, inputs: Mapping[str, Any], precision: str, device: Any) -> float:
    import contextlib

    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    ctx = (
        torch.autocast(device_type=device.type, dtype=dtype)
        if dtype is not None
        else contextlib.nullcontext()
    )
    times = []
    for i in range(_WARMUP + _TIMED):
        _sync(device)
        start = time.perf_counter()
        with ctx:
            loss = hf(**inputs).loss
        loss.backward()
        _sync(device)
        if i >= _WARMUP:
            times.append(time.perf_counter() - start)
        hf.zero_grad(set_to_none=True)
    times.sort()
    return times[len(times) // 2]


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
