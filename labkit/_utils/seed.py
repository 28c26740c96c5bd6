"""Seeded blocks that leave the caller's random state as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int | None, *, devices: list[int] | None = None) -> Iterator[None]:
    """Run the block with torch's RNG seeded, restoring the caller's RNG state afterwards.

    ``None`` runs the block unseeded. ``devices`` are the CUDA devices whose RNG is forked too
    (none by default: CPU only).
    """
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=devices or []):
        torch.manual_seed(seed)
        yield
