"""Device and dtype choice: cuda > mps > cpu; float32 weights, bf16 compute where the GPU has it.

Weights stay float32 by default on every device, as mixed-precision training wants them: the
optimizer updates float32 master weights while autocast runs the matrix products in bf16 (or fp16
with a loss scaler). Updates of ``lr * grad`` are far below bf16's resolution (2**-8 of a weight),
so bf16 weights trained directly lose most of them, and fp16 weights cannot be trained with a loss
scaler at all. Attributions also need float32: a completeness error of 0.01 is about bf16's
resolution. Pass ``dtype="bfloat16"`` to halve the memory of a large model (LoRA, inference).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from labkit._errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["float32_weights", "is_out_of_memory", "native_bf16", "pick_device", "pick_dtype"]

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Return the device to use. ``"auto"`` picks cuda, then mps, then cpu."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device != "auto":
        try:
            chosen = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(
                f"device={device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda', "
                "'cuda:0' or 'mps'."
            ) from exc
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"device={device!r} was asked for but torch sees no CUDA GPU here; "
                "use device='auto' to fall back to the CPU."
            )
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """True on a CUDA GPU whose tensor cores do bf16 (compute capability 8.0 and later).

    ``torch.cuda.is_bf16_supported()`` also says True on older GPUs (a T4 on Colab) where bf16
    is emulated and slower than fp32; there fp16 autocast is the fast choice. The capability
    is read for ``device`` itself, not the current GPU.
    """
    import torch

    if device.type != "cuda":
        return False
    if torch.version.hip:  # ROCm: torch knows which of its GPUs do bf16
        return bool(torch.cuda.is_bf16_supported())
    return torch.cuda.get_device_capability(device)[0] >= 8


def pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Return the weight dtype. ``"auto"`` is float32 on every device (see the module's note)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.float32
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ConfigError(
            f"dtype={dtype!r} is not supported; use 'auto', 'float32', 'bfloat16' or 'float16'."
        )
    return getattr(torch, name)


def _upcast(t: torch.Tensor) -> torch.Tensor:
    return t.float()


@contextmanager
def float32_weights(
    module: nn.Module, *, allowed: bool = True, stacklevel: int = 4
) -> Iterator[bool]:
    """Hold ``module``'s bf16/fp16 parameters and buffers in float32 for the block; yields
    whether it did.

    Attributions are sums of many gradients: in bf16 their completeness error alone is about
    0.01. The original half tensors are kept and put back in ``finally``, so nothing is
    rounded and a LoRA adapter kept in float32 over a bf16 base stays as it was. For the block
    the weights take three times their half-precision memory; where that does not fit, the
    block runs in the model's own dtype, with one warning. ``allowed=False`` (a training run
    owns the weights) leaves them alone. ``stacklevel`` places the warning (4: the caller of
    the function that entered the block).
    """
    import torch

    from labkit._errors import LabkitWarning

    half = (torch.float16, torch.bfloat16)
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.dtype in half]
    if not allowed or not tensors:
        yield False
        return
    saved = [t.data for t in tensors]
    try:
        fits = _upcast_all(tensors)
        if not fits:
            for t, data in zip(tensors, saved):
                t.data = data
            warnings.warn(
                f"a float32 copy of this {saved[0].dtype} model does not fit in memory, so "
                "the attributions are computed in its own dtype: expect completeness errors "
                "near 0.01 (free memory, or load the model with dtype='float32').",
                LabkitWarning,
                stacklevel=stacklevel,
            )
        yield fits
    finally:
        for t, data in zip(tensors, saved):
            t.data = data


def _upcast_all(tensors: list[torch.Tensor]) -> bool:
    """Swap each tensor's data for a float32 copy; False when memory ran out on the way."""
    try:
        for t in tensors:
            t.data = _upcast(t.data)
    except (RuntimeError, MemoryError) as exc:
        if is_out_of_memory(exc):
            return False
        raise
    return True


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's CUDA out-of-memory error, Python's MemoryError and the CPU allocator's
    "can't allocate memory" RuntimeError."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError  # torch < 2.5
    text = str(exc)
    return (
        isinstance(exc, oom | MemoryError)
        or "out of memory" in text
        or "can't allocate memory" in text
    )
