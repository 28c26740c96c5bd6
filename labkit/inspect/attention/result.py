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

    An image classifier's result (``labkit.attention(vit, image)``) has one token per patch
    after the class token: ``tokens`` is ``("[CLS]", "patch (0,0)", "patch (0,1)", ...)`` in
    row-major order, T = patches + 1. ``image`` is then the uint8 [H, W, C] image as the model
    saw it (resized and rounded back from its pixel values), ``grid`` the patch grid (rows,
    cols) and ``patch_size`` a patch's (height, width) in pixels; all three are None for text.
    :meth:`rollout` and :meth:`patch_map` read the maps over patches.
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
    image: np.ndarray | None = field(default=None, repr=False)
    grid: tuple[int, int] | None = None
    patch_size: tuple[int, int] | None = None

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

    def rollout(self) -> np.ndarray:
        """Attention rollout (Abnar & Zuidema 2020), float32 [T, T]: each kept layer's map
        averaged over the kept heads, mixed half and half with the identity (the residual
        stream), rows renormalised, multiplied through the layers from first to last.
        ``rollout()[i, j]`` is how much of token ``i``'s final state flows from input token
        ``j``; every row sums to 1. Over all layers only when all were kept."""
        t = len(self.tokens)
        eye = np.eye(t, dtype=np.float64)
        roll = eye
        for li in range(len(self.layers)):
            a = 0.5 * self.weights[li].astype(np.float64).mean(0) + 0.5 * eye
            a /= np.clip(a.sum(-1, keepdims=True), 1e-12, None)
            roll = a @ roll
        return roll.astype(np.float32)

    def patch_map(
        self,
        query: int | str | tuple[int, int] = "[CLS]",
        *,
        layer: int | str = "rollout",
        head: int | str = "mean",
    ) -> np.ndarray:
        """float32 [rows, cols]: how much ``query`` attends to each patch (an image result).

        ``query`` is ``"[CLS]"`` (the class token), a patch ``(row, col)`` or a token position.
        ``layer`` is a kept layer (the model's index) or ``"rollout"`` (:meth:`rollout`, over
        every kept layer and the mean of the kept heads); ``head`` a kept head or ``"mean"``.
        The weights on special tokens are left out, so the map sums to at most 1.
        """
        rows, cols = self._grid("patch_map")
        i = self.token_index(query)
        if layer == "rollout":
            row = self.rollout()[i]
        else:
            if isinstance(layer, bool) or not isinstance(layer, int):
                raise InputError(f"layer must be a kept layer (int) or 'rollout', got {layer!r}.")
            maps = self.layer(layer)
            if head == "mean":
                row = maps[:, i].mean(0)
            elif isinstance(head, int) and not isinstance(head, bool) and head in self.heads:
                row = maps[self.heads.index(head), i]
            else:
                raise InputError(
                    f"head must be 'mean' or a kept head {list(self.heads)}, got {head!r}."
                )
        first = len(self.tokens) - rows * cols
        return np.asarray(row[first:], dtype=np.float32).reshape(rows, cols)

    def token_index(self, query: int | str | tuple[int, int]) -> int:
        """The token position of ``query``: ``"[CLS]"`` (0), a patch ``(row, col)`` of an image
        result, or a position (negatives count back)."""
        t = len(self.tokens)
        if isinstance(query, str):
            if query in self.tokens:
                return self.tokens.index(query)
            raise InputError(f"no token {query!r}; tokens start {list(self.tokens[:3])}.")
        if isinstance(query, tuple):
            rows, cols = self._grid("a (row, col) query")
            r, c = (int(v) for v in query)
            if not (0 <= r < rows and 0 <= c < cols):
                raise InputError(
                    f"patch {query} is outside the {rows}x{cols} grid (rows 0..{rows - 1}, "
                    f"columns 0..{cols - 1})."
                )
            return t - rows * cols + r * cols + c
        if isinstance(query, bool) or not isinstance(query, int) or not -t <= query < t:
            raise InputError(f"query must be a token position in 0..{t - 1}, got {query!r}.")
        return query % t

    def _grid(self, what: str) -> tuple[int, int]:
        if self.grid is None:
            raise InputError(
                f"{what} needs an image result (labkit.attention(vit, image)); this one is over "
                "text tokens."
            )
        return self.grid

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
        if self.image is not None:
            from labkit.render.image import image_attention_html

            return image_attention_html(self)
        from labkit.render.attention import attention_html

        return attention_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
