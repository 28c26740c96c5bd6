"""Queries and keys as the attention used them, for bertviz's neuron view.

``extract`` hooks each layer's query and key projections. BERT-style encoders, DistilBERT and
GPT-2 use those outputs as they are. Llama-style decoders (Llama, Mistral, Qwen2, SmolLM2:
``self_attn.q_proj`` / ``k_proj``) do two more things before the scores: they rotate queries
and keys by position (rotary embeddings) and share each key head among several query heads
(grouped-query attention, 3 key heads for SmolLM2's 9). :func:`finish` applies the model's own
``apply_rotary_pos_emb`` with the cos/sin the layer received and repeats the key heads, so a
query-key dot product is the score the layer computed. :func:`consistent` checks that against
the weights the pass returned; when they disagree (a family that transforms queries and keys
some other way) the caller drops the vectors: none are better than wrong ones.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["consistent", "finish"]

_ROWS_CHECKED = 32  # query rows compared in the check (the last ones: they see every key)


def finish(found: dict[int, dict[str, Any]], num_heads: int) -> dict[int, float]:
    """Rotate and repeat, in place, the queries/keys of layers whose attention module was seen
    (``found[layer]["module"]``, ``["position_embeddings"]``); each becomes [1, T, heads x dim].
    A layer that cannot be finished loses its entries (no vectors rather than wrong ones).
    Returns the score scaling of each finished layer (the module's own)."""
    scalings: dict[int, float] = {}
    for layer, parts in list(found.items()):
        module = parts.pop("module", None)
        cos_sin = parts.pop("position_embeddings", None)
        if module is None or {"query", "key"} - set(parts):
            continue
        q, k = parts["query"], parts["key"]
        dim = int(getattr(module, "head_dim", 0) or q.shape[-1] // num_heads)
        b, t = q.shape[0], q.shape[1]
        q = q.reshape(b, t, -1, dim).transpose(1, 2)  # [1, heads, T, dim]
        k = k.reshape(b, t, -1, dim).transpose(1, 2)  # [1, key heads, T, dim]
        if cos_sin is not None:
            rotate = getattr(sys.modules.get(type(module).__module__), "apply_rotary_pos_emb", None)
            if rotate is None:
                del found[layer]
                continue
            cos, sin = cos_sin
            q, k = rotate(q, k, cos, sin)
        if q.shape[1] % k.shape[1]:
            del found[layer]
            continue
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # as transformers' repeat_kv
        parts["query"] = q.transpose(1, 2).reshape(b, t, -1)
        parts["key"] = k.transpose(1, 2).reshape(b, t, -1)
        scalings[layer] = float(getattr(module, "scaling", dim**-0.5))
    return scalings


def consistent(
    queries: np.ndarray,
    keys: np.ndarray,
    weights: np.ndarray,
    *,
    scaling: float | None,
    causal: bool,
    tolerance: float,
) -> bool:
    """Whether softmax(q . k x scaling) (causal mask when ``causal``) gives back ``weights``,
    for one layer: ``queries``/``keys`` float32 [heads, T, dim], ``weights`` [heads, T, T].
    ``scaling`` None: 1/sqrt(dim). The last rows are compared (they see every key), each
    weight within ``tolerance``."""
    t = weights.shape[-1]
    if queries.shape[:2] != weights.shape[:2] or queries.shape[1] != t:
        return False
    rows = np.arange(max(0, t - _ROWS_CHECKED), t)
    scale = queries.shape[-1] ** -0.5 if scaling is None else scaling
    scores = np.einsum("hrd,htd->hrt", queries[:, rows].astype(np.float64), keys) * scale
    if causal:
        scores = np.where(np.arange(t)[None, None, :] > rows[None, :, None], -np.inf, scores)
    scores -= scores.max(-1, keepdims=True)
    expected = np.exp(scores)
    expected /= expected.sum(-1, keepdims=True)
    return bool(np.abs(expected - weights[:, rows]).max() <= tolerance)
