"""Device and dtype choice: cuda > mps > cpu, bf16 where the GPU supports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["pick_device", "pick_dtype"]

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


def pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Return the weight dtype. ``"auto"`` is bf16 on a CUDA GPU that supports it, else fp32."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ConfigError(
            f"dtype={dtype!r} is not supported; use 'auto', 'float32', 'bfloat16' or 'float16'."
        )
    return getattr(torch, name)
