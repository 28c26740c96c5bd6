"""The result of ``labkit.attention``: :class:`AttentionResult`, plain data with shapes.

A leaf module: extraction (``extract``), head comparisons (``diff``) and importance
(``importance``) import it; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from labkit._errors import InputError
from labkit.inspect.attention.heads import HeadSummary, summarize
from labkit.render.bertviz import BertvizKind, BertvizView

__all__ = ["AttentionResult"]


@dataclass(frozen=True, eq=False)
class AttentionResult:
    """Attention weights of one input under one model.

    ``weights`` is a numpy float32 array [layers, heads, T, T]: ``weights[l, h, i, j]`` is how
    much token ``i`` (the query) attends to token ``j`` in the ``l``-th kept layer and ``h``-th
    kept head; each row sums to 1 over the positions the token may see (decoders: 0..i).
    ``layers`` / ``heads`` are the model's indices of the kept layers and heads. ``tokens`` are
    the tokenizer's tokens (``Ġ``/``▁`` markers included), ``special`` bool [T] marks special
    tokens ([CLS], [SEP], <s>, ...), ``segments`` int8 [T] is 0 for the text, 1 for the pair and
    -1 for special tokens when a pair was given (else None). ``queries`` / ``keys`` are float32
    [layers, heads, T, head_dim] as the scores used them (Llama-style models: rotated by
    position, key heads repeated to the query heads), checked to give back ``weights``; None
    for an architecture whose vectors labkit cannot capture that way (and for a pruned model).
    ``pruned`` maps each layer that ``labkit.prune_heads`` cut to its removed heads (original
    numbers): their maps are all zeros (empty when nothing was pruned).
    """

    tokens: tuple[str, ...]
    weights: np.ndarray
    special: np.ndarray
    model_name: str
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    text: str
    pair: str | None = None
    segments: np.ndarray | None = None
    causal: bool = False
    model_type: str = ""
    num_layers: int = 0
    num_heads: int = 0
    queries: np.ndarray | None = field(default=None, repr=False)
    keys: np.ndarray | None = field(default=None, repr=False)
    pruned: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def __repr__(self) -> str:
        shape = "x".join(str(n) for n in self.weights.shape)
        return (
            f"AttentionResult(model={self.model_name!r}, tokens={len(self.tokens)}, "
            f"layers={len(self.layers)}, heads={len(self.heads)}, weights float32 [{shape}])"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(kept layers, kept heads, tokens)."""
        return (len(self.layers), len(self.heads), len(self.tokens))

    def layer(self, layer: int) -> np.ndarray:
        """Weights float32 [heads, T, T] of the model's layer ``layer`` (a kept one)."""
        if layer not in self.layers:
            raise InputError(
                f"layer {layer} was not kept; this result has layers {list(self.layers)}."
            )
        return self.weights[self.layers.index(layer)]

    @cached_property
    def summary(self) -> HeadSummary:
        """Per-head entropy, attention distance, special/previous/next/self shares and roles."""
        return summarize(
            self.weights, self.special, layers=self.layers, heads=self.heads, causal=self.causal
        )

    def to_bertviz(
        self,
        kind: BertvizKind = "head",
        *,
        layers: int | Sequence[int] | None = None,
        heads: int | Sequence[int] | None = None,
        digits: int = 3,
    ) -> BertvizView:
        """bertviz's ``"head"``, ``"model"`` or ``"neuron"`` view of this result.

        The weights are rounded to ``digits`` decimals and only ``layers`` / ``heads`` (model
        indices, default all kept) are included, which makes bertviz's payload several times
        smaller than its own. The neuron view needs query and key vectors, captured for BERT,
        RoBERTa, DistilBERT, GPT-2 and Llama-style (Llama, Mistral, Qwen2, SmolLM2) models.
        The libraries bertviz loads from a CDN (require.js, d3, jQuery) are inlined from copies
        shipped with labkit, so the views render offline; they add about 400 KB to each view.
        """
        from labkit.render.bertviz import build

        return build(self, kind, layers=layers, heads=heads, digits=digits)

    def _repr_html_(self) -> str:
        from labkit.render.attention import attention_html

        return attention_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
