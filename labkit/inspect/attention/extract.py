"""Attention maps of one input: ``labkit.attention(model, text)`` -> :class:`AttentionResult`.

The pass runs with eager attention (the fast sdpa kernel returns no weights) and switches back
in ``finally``; each layer's maps are copied as the layer makes them (``maps``), queries and
keys as the scores used them (``qk``). The result is plain data: tokens, float32 weights
[layers, heads, T, T] as a numpy array, special-token flags, and summaries per head. Jupyter
shows it with labkit's own interactive view (weights sent as fp16 buffers, one layer at a
time); saved notebooks keep a static heatmap per layer. ``to_bertviz`` gives bertviz's views.

Changes between two models on the same text: :func:`attention_diff`. Gradient-based head
importance (Michel et al., 2019): :func:`head_importance`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit._utils.eager import inspection_pass
from labkit.inspect._checks import check_model, dims, indices, one_text
from labkit.inspect.attention import qk as qk_vectors
from labkit.inspect.attention.maps import layer_maps
from labkit.inspect.attention.memory import attention_memory
from labkit.inspect.attention.result import AttentionResult

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["attention"]

# Modules whose outputs are a layer's queries and keys, per architecture family: (regex, fused)
_QK_MODULES = (
    (re.compile(r"\.(\d+)\.attention\.self\.(query|key)$"), False),  # BERT, RoBERTa, MiniLM
    (re.compile(r"\.(\d+)\.attention\.(q_lin|k_lin)$"), False),  # DistilBERT
    (re.compile(r"\.(\d+)\.attn\.(c_attn)$"), True),  # GPT-2: q, k, v in one projection
    # Llama, Mistral, Qwen2, SmolLM2: these outputs are rotated (rotary embeddings) and their
    # key heads shared by several query heads before the scores; qk.finish does both with what
    # _ATTN_MODULE's pre-hook records, and qk.consistent checks the result
    (re.compile(r"\.(\d+)\.self_attn\.(q_proj|k_proj)$"), False),
)
_QUERY_PARTS = ("query", "q_lin", "q_proj")
_ATTN_MODULE = re.compile(r"\.(\d+)\.self_attn$")  # its kwargs carry the rotary cos/sin


def _takes_pairs(model: Model) -> bool:
    """Whether the model was built for two segments (encoders with separators), not decoders."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    cfg = model.base.config
    return getattr(cfg, "model_type", "") in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(
        cfg, "is_decoder", False
    )


def _pruned(model: Model, num_layers: int, num_heads: int) -> list[tuple[int, ...]] | None:
    """The heads each layer still has (original numbers) when ``labkit.prune_heads`` removed
    some, else None."""
    from labkit.compress.heads import kept_heads, pruned_record

    cfg = model.base.config
    if not pruned_record(cfg) or not num_layers or not num_heads:
        return None
    return kept_heads(cfg, num_layers, num_heads)


@contextmanager
def _capture_qk(
    hf: Any, num_heads: int, *, off: bool = False
) -> Iterator[dict[int, dict[str, Any]]]:
    """Record each layer's query and key projections during the block (hooks removed after).
    ``off``: record nothing (a pruned model: its layers' vectors have different widths)."""
    found: dict[int, dict[str, Any]] = {}
    handles: list[Any] = []
    if off:
        yield found
        return

    def hook_for(layer: int, part: str, fused: bool) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output  # [1, T, width]
            if fused:
                q, k, _ = out.chunk(3, dim=-1)
                found.setdefault(layer, {}).update(query=q, key=k)
            else:
                found.setdefault(layer, {})["query" if part in _QUERY_PARTS else "key"] = out

        return hook

    def attn_hook(layer: int) -> Any:
        def hook(module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            found.setdefault(layer, {}).update(
                module=module, position_embeddings=kwargs.get("position_embeddings")
            )

        return hook

    try:
        for name, module in hf.named_modules():
            attn = _ATTN_MODULE.search(name)
            if attn:
                handles.append(
                    module.register_forward_pre_hook(
                        attn_hook(int(attn.group(1))), with_kwargs=True
                    )
                )
                continue
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


def _returned_maps(
    model: Model,
    atts: list[Any],
    layers: Any,
    heads: Any,
    keep: Any,
    kept: list[tuple[int, ...]] | None = None,
) -> tuple[np.ndarray, int, int]:
    """(weights float32 [kept layers, kept heads, T, T], layers, heads) from the maps a model
    returned with ``output_attentions=True``; each entry of ``atts`` is let go (set to None)
    once copied. ``kept``: a pruned model's heads per layer (original numbers), whose maps go
    to their original places; a removed head's map stays all zeros."""
    if not atts or any(a is None or a.dim() != 4 for a in atts):
        raise InputError(
            f"{model.name} ({type(model.base).__name__}) returned no attention weights even with "
            "output_attentions=True and eager attention; this architecture cannot be inspected "
            "with labkit.attention."
        )
    total_layers, total_heads = len(atts), int(atts[0].shape[1])
    if kept is not None:
        total_heads = dims(model.base.config).heads
        for i, present in enumerate(kept):
            full = atts[i].new_zeros((atts[i].shape[0], total_heads, *atts[i].shape[2:]))
            full[:, list(present)] = atts[i]
            atts[i] = full
    keep_layers = indices(layers, total_layers, "layers")
    keep_heads = indices(heads, total_heads, "heads")
    every_head = None if keep_heads == tuple(range(total_heads)) else list(keep_heads)
    t = int(atts[0].shape[-1]) if keep is None else int(keep.sum())
    weights = np.empty((len(keep_layers), len(keep_heads), t, t), dtype=np.float32)
    position = {layer: k for k, layer in enumerate(keep_layers)}
    for i in range(total_layers):
        if i in position:
            att = atts[i][0] if every_head is None else atts[i][0][every_head]
            if keep is not None:
                att = att[:, keep][:, :, keep]
            weights[position[i]] = att.float().cpu().numpy()
            del att
        atts[i] = None
    return weights, total_layers, total_heads


def _no_logits(model: Model) -> dict[str, Any]:
    """A causal LM computes no logits but the last position's (the pass needs none; at 2,048
    tokens SmolLM2's are 400 MB)."""
    import inspect

    if model.task != "causal-lm":
        return {}
    forward = model.base.forward
    return (
        {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(forward).parameters else {}
    )


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


def attention(
    model: Model,
    text: str | Any,
    *,
    pair: str | None = None,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    memory_budget: int | str = "auto",
) -> AttentionResult:
    """Attention weights of every kept layer and head for ``text`` (and ``pair``).

    For an image classifier (``model.task == "image-classification"``) ``text`` is one image
    and the tokens are its patches after the class token: see
    :func:`labkit.vision.attention.image_attention`.

    ``model`` is a :class:`labkit.Model` (encoder or decoder, LoRA adapter or not). ``pair`` is
    a second segment for encoders built for pairs (BERT, RoBERTa, ...). ``layers`` / ``heads``
    keep only those model indices (an int or a list; default all). Text longer than the model's
    limit is truncated with one ``LabkitWarning``. The model runs with eager attention for this
    pass only; its fast kernel is restored afterwards, also when the pass fails.

    A causal LM's ``text`` is read as it is (no chat template), left to right: each token
    attends to itself and the tokens before it, and the weights on later positions are exactly
    0 (``result.causal``). To see the attention over a prompt and what the model generated,
    pass the two as one text::

        g = lm.generate("The capital of France is", max_new_tokens=8)[0]
        labkit.attention(lm, g.prompt + g.text)

    ``memory_budget`` caps the bytes the pass may hold: ``"auto"`` (half the memory available
    now), an int, or a string like ``"512MB"`` / ``"2GiB"``. The pass holds the float32 copy
    of the kept layers and heads and one layer's maps at a time, so it grows with the square
    of the token count T; :func:`attention_memory` gives the estimate, and an input over the
    budget is refused before anything runs, with an :class:`labkit.InputError` naming the
    sizes.
    """
    import torch

    from labkit.inspect.budget import parse_budget, refusal_limit

    if getattr(model, "task", None) == "image-classification":  # an image over patches
        from labkit.vision.attention import image_attention

        if pair is not None:
            raise InputError("an image classifier reads one image: leave pair=None.")
        return image_attention(model, text, layers=layers, heads=heads, memory_budget=memory_budget)
    check_model(model)
    if not isinstance(text, str):
        from labkit.vision.attention import refuse_image

        refuse_image(model, text, "labkit.attention")
    budget = parse_budget(memory_budget)
    text = one_text(text, "text")
    if pair is not None:
        pair = one_text(pair, "pair")
        if not _takes_pairs(model):
            raise InputError(
                f"{model.name} ({model.base.config.model_type}) reads one sequence, so it takes "
                "no pair: join the two texts into one string, or leave pair=None."
            )
    cfg = model.base.config
    size = dims(cfg)
    # refuse bad indices before the pass when the config tells the sizes (else after it)
    if size.layers:
        indices(layers, size.layers, "layers")
    if size.heads:
        indices(heads, size.heads, "heads")
    enc = model.encode([text], pairs=None if pair is None else [pair], stacklevel=4)
    t_in = int(enc["input_ids"].shape[-1])
    need = attention_memory(model, t_in, layers=layers, heads=heads)
    limit = budget if budget is not None else refusal_limit(model.device)
    if need.total > limit:
        raise InputError(need.advice(limit, explicit=budget is not None))
    hf = model.hf
    num_heads = size.heads
    mask = enc["attention_mask"][0].bool()
    keep = None if bool(mask.all()) else mask  # one text: no padding, nothing to drop
    t = int(mask.sum())
    weights = None
    kept = _pruned(model, size.layers, size.heads)
    # each layer's maps copied as it makes them (see .maps); a pruned model's layers have
    # different head counts, so it returns them all and they are spread to their places
    if size.layers and size.heads and kept is None:
        keep_layers = indices(layers, size.layers, "layers")
        keep_heads = indices(heads, size.heads, "heads")
        with (
            inspection_pass(model),
            _capture_qk(hf, num_heads) as qk,
            layer_maps(hf, keep_layers, keep_heads, t_in, keep) as maps,
        ):
            hf(**enc, output_attentions=False, **_no_logits(model))
        if maps.complete(size.layers, size.heads):
            weights, total_layers, total_heads = maps.weights, size.layers, size.heads
        del maps
    if weights is None:  # an architecture whose modules hide their maps: ask the model for all
        with inspection_pass(model), _capture_qk(hf, num_heads, off=kept is not None) as qk:
            out = hf(**enc, output_attentions=True, **_no_logits(model))
        atts: list[Any] = list(getattr(out, "attentions", None) or ())
        del out  # from here on ``atts`` holds the maps alone: each is let go once copied
        weights, total_layers, total_heads = _returned_maps(model, atts, layers, heads, keep, kept)
        keep_layers = indices(layers, total_layers, "layers")
        keep_heads = indices(heads, total_heads, "heads")
    every_head = None if keep_heads == tuple(range(total_heads)) else list(keep_heads)
    ids = enc["input_ids"][0][mask].tolist()
    tok = model.tokenizer
    special_ids = set(tok.all_special_ids)
    special = np.array([i in special_ids for i in ids], dtype=bool)
    # one [T, T] map at a time: np.triu of the whole array would copy all of it
    causal = t > 1 and not any(np.triu(m, 1).any() for m in weights.reshape(-1, t, t))
    scalings = qk_vectors.finish(qk, num_heads or total_heads)
    queries, keys = _stack_qk(
        qk, keep_layers, None if every_head is None else keep_heads, num_heads or total_heads, keep
    )
    if (
        queries is not None
        and keys is not None
        and not qk_vectors.consistent(
            queries[0],
            keys[0],
            weights[0],
            scaling=scalings.get(keep_layers[0]),
            causal=causal,
            tolerance=1e-3 if model.dtype == torch.float32 else 2e-2,
        )
    ):
        queries = keys = None  # they do not give back the weights: none rather than wrong ones
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
        pruned={}
        if kept is None
        else {
            layer: tuple(h for h in range(total_heads) if h not in kept[layer])
            for layer in range(total_layers)
            if len(kept[layer]) < total_heads
        },
    )
