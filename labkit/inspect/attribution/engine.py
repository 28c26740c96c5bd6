"""Shared engine of ``explain`` and ``explain_dataset``: encode, batch by length, attribute.

One text and a thousand go through the same code: texts are sorted by length and grouped so
that one captum call holds as many examples as the memory budget allows (for integrated
gradients: examples x n_steps rows). Batching only adds padding, which the attention mask
hides, so a batched score equals the one-by-one score up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit.inspect.attribution.batching import (
    Batch,
    capped_rows,
    check_fits,
    length_groups,
    pad,
    rows_per_pass,
)
from labkit.inspect.attribution.faithfulness import aopc
from labkit.inspect.attribution.methods import attribute, probabilities
from labkit.inspect.attribution.result import AttributionResult
from labkit.inspect.budget import batch_budget

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["Encoded", "check_memory", "encode", "examples_per_call", "run"]

_GRADIENT = {"integrated_gradients", "gradient_x_input", "saliency", "gradient_shap"}
_MAX_EXAMPLES = 64


@dataclass
class Encoded:
    """One tokenized text: ids [T], which are special, display tokens, whitespace before each."""

    text: str
    ids: list[int]
    special: list[bool]
    tokens: list[str]
    spaces: list[bool]


def encode(model: Model, texts: Sequence[str], *, stacklevel: int) -> list[Encoded]:
    """Tokenize with truncation (one warning naming the limit for the whole call)."""
    from labkit._utils.text import clean_text
    from labkit._utils.text import encode as encode_texts

    tok = model.tokenizer
    texts = [clean_text(t) for t in texts]  # lone surrogates: no tokenizer can encode them
    enc = encode_texts(
        tok,
        texts,
        max_length=model.max_length,
        padding=False,
        return_tensors=None,
        stacklevel=stacklevel + 1,
    )
    offsets: list[Any] = [None] * len(texts)
    if getattr(tok, "is_fast", False):
        offsets = tok(
            list(texts), truncation=True, max_length=model.max_length, return_offsets_mapping=True
        )["offset_mapping"]
    out = []
    for text, ids, spans in zip(texts, enc["input_ids"], offsets):
        special = [
            bool(x) for x in tok.get_special_tokens_mask(ids, already_has_special_tokens=True)
        ]
        tokens, spaces = _display(tok, text, ids, spans, special)
        out.append(Encoded(text, list(ids), special, tokens, spaces))
    return out


def _display(
    tok: Any, text: str, ids: list[int], spans: Any, special: list[bool]
) -> tuple[list[str], list[bool]]:
    """Readable tokens: the slice of the text each covers (no '##', 'Ġ' or '▁' markers)."""
    raw = tok.convert_ids_to_tokens(ids)
    if spans is None:
        return [str(t) for t in raw], [True] * len(raw)
    tokens, spaces, end = [], [], 0
    for i, (start, stop) in enumerate(spans):
        if special[i] or stop <= start or start < end:
            # special tokens, and byte pieces of one character split over several tokens
            tokens.append(str(raw[i]))
            spaces.append(bool(special[i]))
            continue
        piece = text[start:stop]
        before = start > 0 and text[start - 1].isspace()
        tokens.append(piece.strip() or "␣")
        spaces.append(before or piece[:1].isspace())
        end = stop
    return tokens, spaces


def examples_per_call(method: str, opts: dict[str, Any], rows: int) -> int:
    """How many examples one captum call takes when a pass may hold ``rows`` sequences."""
    if method == "integrated_gradients":
        return max(1, min(_MAX_EXAMPLES, rows // int(opts["n_steps"])))
    if method == "occlusion":
        return max(1, min(_MAX_EXAMPLES, rows // 8))
    return max(1, min(_MAX_EXAMPLES, rows))


def _target_id(model: Model, target: str | int | None, probs: np.ndarray) -> int:
    if target is None:
        return int(np.argmax(probs))
    if isinstance(target, int) and not isinstance(target, bool):
        if 0 <= target < len(model.labels):
            return target
        raise InputError(
            f"target {target} is out of range: the model has {len(model.labels)} "
            f"labels ({', '.join(model.labels)})."
        )
    if isinstance(target, str) and target in model.labels:
        return model.labels.index(target)
    import difflib

    close = difflib.get_close_matches(str(target), model.labels, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"unknown target label {target!r}.{hint} The model's labels are "
        f"{', '.join(repr(x) for x in model.labels)}."
    )


def check_memory(model: Model, encoded: list[Encoded], method: str, opts: dict[str, Any]) -> None:
    """Refuse, before any pass, texts whose smallest pass cannot fit the memory limit (the
    callers run it before their first pass, the prediction included)."""
    budget = opts["memory_budget"]
    check_fits(
        model,
        method,
        max(len(e.ids) for e in encoded),
        None if budget == "auto" else budget,
        backward=method in _GRADIENT,
        attentions=method == "attention_rollout",
        # integrated gradients runs at least two points of a path per pass
        min_rows=2 if method == "integrated_gradients" else 1,
    )


def run(
    model: Model,
    encoded: list[Encoded],
    targets: Sequence[str | int | None],
    method: str,
    opts: dict[str, Any],
    *,
    probs: np.ndarray | None = None,
) -> tuple[list[AttributionResult], list[float]]:
    """Explain every encoded text; returns results in input order and the completeness errors
    of texts that stayed above the tolerance at the step cap."""
    budget = opts["memory_budget"]
    longest = max(len(e.ids) for e in encoded)
    if budget == "auto":
        budget = batch_budget(model.device)
    forward_rows = rows_per_pass(model, longest, budget, backward=False)
    if probs is None:
        probs = probabilities(model, [e.ids for e in encoded], max_rows=forward_rows).numpy()
    target_ids = [_target_id(model, t, p) for t, p in zip(targets, probs)]

    scores: list[np.ndarray] = [np.zeros(0, np.float32)] * len(encoded)
    deltas: list[float | None] = [None] * len(encoded)
    steps: list[int | None] = [None] * len(encoded)
    rollout = method == "attention_rollout"
    grads = method in _GRADIENT

    def rows_for(width: int) -> int:
        return capped_rows(
            model, rows_per_pass(model, width, budget, backward=grads, attentions=rollout), width
        )

    def fits(n: int, width: int) -> bool:
        return n <= examples_per_call(method, opts, rows_for(width))

    for idx in length_groups([len(e.ids) for e in encoded], fits):
        longest = max(len(encoded[i].ids) for i in idx)
        batch = _batch(model, [encoded[i] for i in idx], [target_ids[i] for i in idx])
        outcome = attribute(model, batch, method, opts, rows=rows_for(longest))
        for j, i in enumerate(idx):
            scores[i] = outcome.scores[j, : len(encoded[i].ids)].numpy().astype(np.float32)
            if outcome.delta is not None:
                deltas[i] = float(outcome.delta[j])
            if outcome.n_steps is not None:
                steps[i] = outcome.n_steps[j]

    comp: list[float | None] = [None] * len(encoded)
    suff: list[float | None] = [None] * len(encoded)
    if opts["faithfulness"]:
        comp_l, suff_l = aopc(
            model,
            [e.ids for e in encoded],
            [e.special for e in encoded],
            scores,
            target_ids,
            [float(p[t]) for p, t in zip(probs, target_ids)],
            max_rows=forward_rows,
        )
        comp, suff = list(comp_l), list(suff_l)

    unconverged: list[float] = []
    tol = opts.get("tolerance")
    results = []
    for i, e in enumerate(encoded):
        used = dict(opts)
        if steps[i] is not None:
            used["n_steps"] = steps[i]
            delta = deltas[i]
            if tol is not None and delta is not None and delta > tol:
                unconverged.append(delta)
        results.append(
            AttributionResult(
                text=e.text,
                tokens=tuple(e.tokens),
                scores=scores[i],
                target=model.labels[target_ids[i]],
                probs={name: float(p) for name, p in zip(model.labels, probs[i])},
                method=method,
                delta=deltas[i],
                options=used,
                comprehensiveness=comp[i],
                sufficiency=suff[i],
                special=tuple(e.special),
                spaces=tuple(e.spaces),
                token_ids=tuple(e.ids),
                model=model,
            )
        )
    return results, unconverged


def _batch(model: Model, items: list[Encoded], targets: list[int]) -> Any:
    import torch

    ids, mask = pad(model, [e.ids for e in items])
    special = torch.zeros_like(ids, dtype=torch.bool)
    for i, e in enumerate(items):
        special[i, : len(e.special)] = torch.tensor(e.special, dtype=torch.bool)
    return Batch(
        ids=ids,
        mask=mask,
        special=special,
        targets=torch.tensor(targets, dtype=torch.long, device=model.device),
    )
