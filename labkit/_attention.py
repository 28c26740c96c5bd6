"""Attention maps of one input: ``labkit.attention(model, text)`` -> :class:`AttentionResult`.

The pass runs with eager attention (the fast sdpa kernel returns no weights) and switches back
in ``finally``. The result is plain data: tokens, float32 weights [layers, heads, T, T] as a
numpy array, special-token flags, and summaries per head. Jupyter shows it with labkit's own
interactive view (weights sent as fp16 buffers, one layer at a time); saved notebooks keep a
static heatmap per layer. ``to_bertviz`` gives bertviz's views.

Changes between two models on the same text: :func:`attention_diff`. Gradient-based head
importance (Michel et al., 2019): :func:`head_importance`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import _heatmap
from ._attention_diff import AttentionDiff, attention_diff
from ._bertviz import BertvizKind, BertvizView
from ._errors import InputError, LabkitError
from ._heads import HeadSummary, summarize
from ._importance import HeadImportance, head_importance

if TYPE_CHECKING:
    from .model import Model

__all__ = [
    "AttentionDiff",
    "AttentionMemory",
    "AttentionResult",
    "BertvizView",
    "HeadImportance",
    "HeadSummary",
    "attention",
    "attention_diff",
    "attention_memory",
    "head_importance",
]

_MARGIN = 1.25  # resident memory above the tensors' bytes (allocator, small temporaries)
_THUMB = 32  # static heatmaps are pooled to at most this many rows and columns
_SHOWN_TOKENS = 200  # tokens listed in the static HTML

# Modules whose outputs are a layer's queries and keys, per architecture family: (regex, fused)
_QK_MODULES = (
    (re.compile(r"\.(\d+)\.attention\.self\.(query|key)$"), False),  # BERT, RoBERTa, MiniLM
    (re.compile(r"\.(\d+)\.attention\.(q_lin|k_lin)$"), False),  # DistilBERT
    (re.compile(r"\.(\d+)\.attn\.(c_attn)$"), True),  # GPT-2: q, k, v in one projection
)


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
    [layers, heads, T, head_dim] for the models bertviz's neuron view supports, else None.
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
        indices, default all kept) are included, which makes the HTML several times smaller
        than bertviz's own. The neuron view needs query and key vectors, captured for BERT,
        RoBERTa, DistilBERT and GPT-2 models. bertviz loads require.js, d3 and jQuery from
        cdnjs.cloudflare.com: without that CDN (offline, or a strict firewall) these views
        are blank; the result's own view (display the result) needs no network.
        """
        from ._bertviz import build

        return build(self, kind, layers=layers, heads=heads, digits=digits)

    # -- display -----------------------------------------------------------------------------
    def _layer_image(self, li: int) -> str:
        tiles = [
            _heatmap.to_levels(_heatmap.pool(self.weights[li, hi], _THUMB))
            for hi in range(len(self.heads))
        ]
        return _heatmap.data_uri(_heatmap.png(_heatmap.tile(tiles, gap=2)))

    def _repr_html_(self) -> str:
        e = html.escape
        t = len(self.tokens)
        shown = "".join(
            f"<span style='border:1px solid #ddd;margin:1px;padding:0 2px;"
            f"{'color:#888;' if self.special[i] else ''}' title='token {i}'>{e(tok)}</span>"
            for i, tok in enumerate(self.tokens[:_SHOWN_TOKENS])
        )
        more = f" ... ({t - _SHOWN_TOKENS} more)" if t > _SHOWN_TOKENS else ""
        roles = ", ".join(f"{e(k)} {v}" for k, v in sorted(self.summary.count().items()))
        size = min(t, _THUMB)
        height = max(48, min(96, 3 * size))
        rows = []
        for li, layer in enumerate(self.layers):
            rows.append(
                f"<tr><th style='text-align:right;padding-right:6px;font-weight:normal'>"
                f"layer {layer}</th><td><img alt='layer {layer}, heads {e(_span(self.heads))}' "
                f"src='{self._layer_image(li)}' style='height:{height}px;"
                f"image-rendering:pixelated'></td></tr>"
            )
        return (
            f"<div class='labkit-attention' style='font-family:sans-serif;font-size:13px'>"
            f"<div><b>Attention</b> · {e(self.model_name)} · {t} tokens · "
            f"{len(self.layers)} layers x {len(self.heads)} heads "
            f"(heads {e(_span(self.heads))}, left to right; row = query, column = key"
            f"{', pooled' if t > _THUMB else ''})</div>"
            f"<div style='margin:4px 0;line-height:1.6'>{shown}{e(more)}</div>"
            f"<div style='color:#555'>head roles: {roles}</div>"
            f"<table style='border-collapse:collapse'>{''.join(rows)}</table></div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from ._display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def _span(ids: Sequence[int]) -> str:
    ids = list(ids)
    if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(str(i) for i in ids)


# -- extraction ----------------------------------------------------------------------------------
def _check_model(model: Any) -> None:
    from .model import Model

    if not isinstance(model, Model):
        raise InputError(
            f"attention needs a labkit.Model, got {type(model).__name__}. Load one with "
            "labkit.load_model(...) or wrap a transformers model with "
            "labkit.Model.wrap(hf_model, tokenizer)."
        )


def _one_text(text: Any, what: str) -> str:
    from ._text import clean_text

    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__} ({text!r:.60}).")
    if not text.strip():
        raise InputError(f"{what} is empty: pass the sentence whose attention you want to see.")
    return clean_text(text)


def _indices(wanted: Any, total: int, what: str) -> tuple[int, ...]:
    """Sorted unique model indices from None (all), an int or a sequence; negatives count back."""
    if wanted is None:
        return tuple(range(total))
    items = [wanted] if isinstance(wanted, int) else wanted
    try:
        values = [int(x) for x in items]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be an int or a list of ints, got {wanted!r}.") from None
    bad = [x for x in values if not -total <= x < total]
    if not values or bad:
        raise InputError(
            f"{what}={wanted!r}: the model has {total} {what} "
            f"(0..{total - 1}); got {bad or 'none'}."
        )
    return tuple(sorted({x % total for x in values}))


def _takes_pairs(model: Model) -> bool:
    """Whether the model was built for two segments (encoders with separators), not decoders."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    cfg = model.base.config
    return getattr(cfg, "model_type", "") in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(
        cfg, "is_decoder", False
    )


@contextmanager
def _capture_qk(hf: Any, num_heads: int) -> Iterator[dict[int, dict[str, Any]]]:
    """Record each layer's query and key projections during the block (hooks removed after)."""
    found: dict[int, dict[str, Any]] = {}
    handles = []

    def hook_for(layer: int, part: str, fused: bool) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output  # [1, T, width]
            if fused:
                q, k, _ = out.chunk(3, dim=-1)
                found.setdefault(layer, {}).update(query=q, key=k)
            else:
                found.setdefault(layer, {})["query" if part in ("query", "q_lin") else "key"] = out

        return hook

    try:
        for name, module in hf.named_modules():
            for pattern, fused in _QK_MODULES:
                match = pattern.search(name)
                if match:
                    layer, part = int(match.group(1)), match.group(2)
                    handles.append(module.register_forward_hook(hook_for(layer, part, fused)))
                    break
        yield found
    finally:
        for handle in handles:
            handle.remove()


def _stack_qk(
    found: dict[int, dict[str, Any]],
    layers: tuple[int, ...],
    heads: tuple[int, ...] | None,
    num_heads: int,
    keep: Any,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if not found or any(set(found.get(x, {})) != {"query", "key"} for x in layers):
        return None, None
    out = []
    for part in ("query", "key"):
        per_layer = []
        for layer in layers:
            t = found[layer][part][0]  # [T, width]
            if keep is not None:
                t = t[keep]
            t = t.reshape(t.shape[0], num_heads, -1).transpose(0, 1)  # [heads, T, head_dim]
            per_layer.append(t if heads is None else t[list(heads)])
        out.append(np.stack([p.float().cpu().numpy() for p in per_layer]))
    return out[0], out[1]


def _segments(
    model: Model, text: str, pair: str, ids: list[int], special: np.ndarray
) -> np.ndarray | None:
    tok = model.tokenizer
    if not getattr(tok, "is_fast", False):
        return None
    enc = tok(text, pair, truncation=True, max_length=model.max_length)
    if list(enc["input_ids"]) != ids:
        return None
    seq = enc.sequence_ids()
    return np.array(
        [-1 if s is None or special[i] else s for i, s in enumerate(seq)], dtype=np.int8
    )


class _Dims(NamedTuple):
    layers: int
    heads: int
    hidden: int
    ffn: int


def _dims(cfg: Any) -> _Dims:
    """(layers, heads, hidden, feed-forward width) from a config; 0 where it has no such field."""

    def first(*names: str) -> int:
        for name in names:
            value = getattr(cfg, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0

    hidden = first("hidden_size", "n_embd", "dim", "d_model")
    return _Dims(
        layers=first("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
        heads=first("num_attention_heads", "n_head", "n_heads"),
        hidden=hidden,
        ffn=first("intermediate_size", "n_inner", "hidden_dim", "ffn_dim") or 4 * hidden,
    )


@dataclass(frozen=True)
class AttentionMemory:
    """Bytes one :func:`attention` pass holds at its peak, by part (estimated from the config).

    ``maps``: every layer's [heads, T, T] weights, which the model returns all at once (model
    dtype); ``transient``: one layer's scores, masked scores and softmax; ``kept``: the
    float32 copy of the kept layers and heads (the result's ``weights``); ``vectors``: queries,
    keys and activations. ``total`` is their sum plus 25% for the allocator (resident memory
    measured on MiniLM at 512 tokens was up to 12% above the sum).
    """

    tokens: int
    layers: int
    heads: int
    kept_layers: int
    kept_heads: int
    maps: int
    transient: int
    kept: int
    vectors: int

    @property
    def total(self) -> int:
        return int(_MARGIN * (self.maps + self.transient + self.kept + self.vectors))

    def advice(self, budget: int, *, explicit: bool) -> str:
        """Why a pass of this size is refused under ``budget`` bytes, and what to do."""
        from ._budget import format_bytes as f

        whose = (
            "memory_budget" if explicit else "the automatic memory budget (half the free memory)"
        )
        fit = _tokens_within(self, budget)
        shorter = f"shorten the text to about {fit} tokens" if fit >= 2 else "shorten the text"
        kept = ""
        if self.kept_layers == self.layers and self.kept_heads == self.heads:
            kept = (
                ", keep fewer layers/heads (layers=[...], heads=[...]) to shrink the kept copy "
                f"({f(self.kept)} of it)"
            )
        return (
            f"attention maps of {self.tokens} tokens would need about {f(self.total)} "
            f"({self.layers} layers x {self.heads} heads x {self.tokens}^2 weights held by the "
            f"pass: {f(self.maps + self.transient)}, kept copy of {self.kept_layers} layers x "
            f"{self.kept_heads} heads: {f(self.kept)}), over {whose} of {f(budget)}. "
            f"To fit: {shorter}{kept}, or raise the budget with memory_budget='{_suggest(self)}' "
            "if the machine has that much free memory."
        )


def _suggest(need: AttentionMemory) -> str:
    from ._budget import suggest_budget

    return suggest_budget(need.total)


def _tokens_within(need: AttentionMemory, budget: int) -> int:
    """The most tokens whose pass fits ``budget`` (the T^2 parts dominate)."""
    t = need.tokens
    quad = (need.maps + need.transient + need.kept) / max(t * t, 1)
    lin = need.vectors / max(t, 1)
    if quad <= 0:
        return t
    # _MARGIN * (quad * x^2 + lin * x) <= budget
    room = budget / _MARGIN
    x = (-lin + (lin * lin + 4 * quad * room) ** 0.5) / (2 * quad)
    return max(0, int(x))


def attention_memory(
    model: Model,
    tokens: int,
    *,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
) -> AttentionMemory:
    """Estimated peak bytes of :func:`attention` on an input of ``tokens`` tokens (special
    tokens included), keeping ``layers`` / ``heads`` (as :func:`attention` takes them)."""
    _check_model(model)
    dims = _dims(model.base.config)
    n_layers, n_heads = dims.layers or 12, dims.heads or 12
    kl = len(_indices(layers, n_layers, "layers"))
    kh = len(_indices(heads, n_heads, "heads"))
    width = int(getattr(model.dtype, "itemsize", 4))
    t2 = tokens * tokens
    hidden = dims.hidden or 64 * n_heads
    kept_vectors = 2 * kl * tokens * (hidden * kh // n_heads) * 4
    return AttentionMemory(
        tokens=tokens,
        layers=n_layers,
        heads=n_heads,
        kept_layers=kl,
        kept_heads=kh,
        maps=n_layers * n_heads * t2 * width,
        # scores, masked scores and softmax of one layer; measured peaks (MiniLM at 512 tokens)
        # are within 10% of maps + 2 maps of one layer + kept, so one map more is the margin
        transient=3 * n_heads * t2 * width,
        # torch.stack in the model dtype, then float32 unless it already is
        kept=kl * kh * t2 * (4 if width == 4 else width + 4),
        vectors=(2 * n_layers * hidden + 4 * hidden + dims.ffn) * tokens * width + kept_vectors,
    )


def attention(
    model: Model,
    text: str,
    *,
    pair: str | None = None,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    memory_budget: int | str = "auto",
) -> AttentionResult:
    """Attention weights of every kept layer and head for ``text`` (and ``pair``).

    ``model`` is a :class:`labkit.Model` (encoder or decoder, LoRA adapter or not). ``pair`` is
    a second segment for encoders built for pairs (BERT, RoBERTa, ...). ``layers`` / ``heads``
    keep only those model indices (an int or a list; default all). Text longer than the model's
    limit is truncated with one ``LabkitWarning``. The model runs with eager attention for this
    pass only; its fast kernel is restored afterwards, also when the pass fails.

    ``memory_budget`` caps the bytes the pass may hold: ``"auto"`` (half the memory available
    now), an int, or a string like ``"512MB"`` / ``"2GiB"``. The pass holds every layer's
    [heads, T, T] maps plus the kept copy, so it grows with the square of the token count T;
    :func:`attention_memory` gives the estimate, and an input over the budget is refused
    before anything runs, with an :class:`labkit.InputError` naming the sizes.
    """
    import torch

    from ._budget import auto_budget, parse_budget
    from ._eager import eager_attention

    _check_model(model)
    budget = parse_budget(memory_budget)
    text = _one_text(text, "text")
    if pair is not None:
        pair = _one_text(pair, "pair")
        if not _takes_pairs(model):
            raise InputError(
                f"{model.name} ({model.base.config.model_type}) reads one sequence, so it takes "
                "no pair: join the two texts into one string, or leave pair=None."
            )
    cfg = model.base.config
    dims = _dims(cfg)
    # refuse bad indices before the pass when the config tells the sizes (else after it)
    if dims.layers:
        _indices(layers, dims.layers, "layers")
    if dims.heads:
        _indices(heads, dims.heads, "heads")
    enc = model.encode([text], pairs=None if pair is None else [pair], stacklevel=4)
    t_in = int(enc["input_ids"].shape[-1])
    need = attention_memory(model, t_in, layers=layers, heads=heads)
    limit = budget if budget is not None else auto_budget(model.device)
    if need.total > limit:
        raise InputError(need.advice(limit, explicit=budget is not None))
    hf = model.hf
    num_heads = dims.heads
    was_training = hf.training
    hf.eval()
    try:
        with eager_attention(hf), _capture_qk(hf, num_heads) as qk, torch.inference_mode():
            out = hf(**enc, output_attentions=True)
    except LabkitError:
        raise
    except (TypeError, ValueError, NotImplementedError, AttributeError, RuntimeError) as exc:
        raise InputError(
            f"{model.name} could not run with output_attentions=True and eager attention "
            f"({type(exc).__name__}: {exc}). Attention maps need a model whose layers can "
            "return their weights."
        ) from None
    finally:
        hf.train(was_training)
    atts = getattr(out, "attentions", None)
    if not atts or any(a is None or a.dim() != 4 for a in atts):
        raise InputError(
            f"{model.name} ({type(model.base).__name__}) returned no attention weights even with "
            "output_attentions=True and eager attention; this architecture cannot be inspected "
            "with labkit.attention."
        )
    total_layers, total_heads = len(atts), int(atts[0].shape[1])
    keep_layers = _indices(layers, total_layers, "layers")
    keep_heads = _indices(heads, total_heads, "heads")
    mask = enc["attention_mask"][0].bool()
    keep = None if bool(mask.all()) else mask  # one text: no padding, nothing to drop
    every_head = None if keep_heads == tuple(range(total_heads)) else list(keep_heads)
    per_layer = []
    for i in keep_layers:
        att = atts[i][0] if every_head is None else atts[i][0][every_head]
        if keep is not None:
            att = att[:, keep][:, :, keep]
        per_layer.append(att)
    weights = torch.stack(per_layer).float().cpu().numpy()
    del out, atts, per_layer  # every layer's maps: free them before the copies below
    ids = enc["input_ids"][0][mask].tolist()
    tok = model.tokenizer
    special_ids = set(tok.all_special_ids)
    special = np.array([i in special_ids for i in ids], dtype=bool)
    t = len(ids)
    # one [T, T] map at a time: np.triu of the whole array would copy all of it
    causal = t > 1 and not any(np.triu(m, 1).any() for m in weights.reshape(-1, t, t))
    queries, keys = _stack_qk(
        qk, keep_layers, None if every_head is None else keep_heads, num_heads or total_heads, keep
    )
    return AttentionResult(
        tokens=tuple(tok.convert_ids_to_tokens(ids)),
        weights=weights,
        special=special,
        model_name=model.name,
        layers=keep_layers,
        heads=keep_heads,
        text=text,
        pair=pair,
        segments=None if pair is None else _segments(model, text, pair, ids, special),
        causal=causal,
        model_type=str(getattr(cfg, "model_type", "")),
        num_layers=total_layers,
        num_heads=total_heads,
        queries=queries,
        keys=keys,
    )
