"""Each layer's attention maps copied as the layer makes them, then let go.

With ``output_attentions=True`` a model returns the maps of every layer at once: a 2,048-token
SmolLM2 pass holds 30 x 9 x 2048^2 float32 weights (4.2 GB) before a kept copy is even made.
In eager mode every attention module of the families labkit knows returns its weights
``[batch, heads, T, T]`` as the second item of its output whether or not they are asked for;
a forward hook (inside :func:`layer_maps`, removed in ``finally``) copies the kept layers'
kept heads into the result's float32 array as each module returns, and the layer drops its
own. The pass then holds the kept copy and one layer's maps at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["LayerMaps", "layer_maps"]


class LayerMaps:
    """What the hooks saw: ``count`` attention modules, their ``heads``, and ``weights``
    float32 [kept layers, kept heads, T, T] filled for the kept ones."""

    def __init__(
        self, layers: tuple[int, ...], heads: tuple[int, ...], tokens: int, keep: Any
    ) -> None:
        self.position = {layer: k for k, layer in enumerate(layers)}
        self.heads = heads
        self.tokens = tokens
        self.keep = keep
        kept = tokens if keep is None else int(keep.sum())
        self.weights = np.empty((len(layers), len(heads), kept, kept), dtype=np.float32)
        self.count = 0
        self.seen_heads = 0
        self._last: Any = None  # the latest map: a wrapper module passes the same one on

    def take(self, w: Any) -> None:
        if w is self._last:
            return
        self._last = w
        i = self.count
        self.count += 1
        self.seen_heads = int(w.shape[1])
        k = self.position.get(i)
        if k is None or self.seen_heads <= max(self.heads, default=-1):
            return
        att = w[0] if self.heads == tuple(range(self.seen_heads)) else w[0][list(self.heads)]
        if self.keep is not None:
            att = att[:, self.keep][:, :, self.keep]
        self.weights[k] = att.float().cpu().numpy()

    def complete(self, layers: int, heads: int) -> bool:
        """Whether exactly ``layers`` modules with ``heads`` heads each were copied."""
        return self.count == layers and self.seen_heads == heads


@contextmanager
def layer_maps(
    hf: Any, layers: tuple[int, ...], heads: tuple[int, ...], tokens: int, keep: Any
) -> Iterator[LayerMaps]:
    """While open, every module of ``hf`` whose output carries [1, heads, T, T] weights as its
    second item (T = ``tokens``) has them copied in execution order (= layer order)."""
    import torch

    maps = LayerMaps(layers, heads, tokens, keep)

    def hook(_module: Any, _args: Any, output: Any) -> None:
        if not isinstance(output, tuple) or len(output) < 2:
            return
        w = output[1]
        if (
            isinstance(w, torch.Tensor)
            and w.dim() == 4
            and w.shape[0] == 1
            and w.shape[-1] == w.shape[-2] == tokens
        ):
            maps.take(w)

    handles = [m.register_forward_hook(hook) for m in hf.modules()]
    try:
        yield maps
    finally:
        maps._last = None
        for handle in handles:
            handle.remove()
