"""Masking for masked-LM training and evaluation: texts into token ids, fresh masks per
training batch, fixed masks for evaluation, and the per-text sums evaluation adds up.

Training texts are masked afresh at every batch (BERT's recipe: ``mask_probability`` of the
tokens chosen, of those 80% become the mask token, 10% a random token, 10% stay), from the
run's seed. Evaluation texts are masked once, the same way every time (:func:`masked_rows`:
every chosen token becomes the mask token, at least one per text, positions fixed by
:data:`EVAL_SEED`), so evaluations compare across a run, across runs and before/after. The loss
is on the chosen tokens only (labels are -100 everywhere else).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = [
    "EVAL_SEED",
    "IGNORE_INDEX",
    "MLMCollator",
    "masked_rows",
    "masked_stats",
    "only_masked_logits",
    "picked_stats",
    "token_ids",
]

# the label of a position the loss skips (not masked, padding): PyTorch's cross_entropy default
IGNORE_INDEX = -100
# the seed of the evaluation masks: the same positions for every run and every seed
EVAL_SEED = 0


def token_ids(model: Model, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Each text's token ids with the tokenizer's special tokens (``[CLS] ... [SEP]``), cut to
    ``max_length``."""
    enc = model.tokenizer(list(texts), truncation=True, max_length=max_length)
    return [list(ids) for ids in enc["input_ids"]]


def masked_rows(
    model: Model, ids: Sequence[Sequence[int]], probability: float, seed: int = EVAL_SEED
) -> list[dict[str, list[int]]]:
    """Fixed masks: per text, each ordinary token (not ``[CLS]``/``[SEP]``/padding) is chosen
    with ``probability`` (at least one per text that has any) and replaced by the mask token;
    ``labels`` hold the original id there and -100 elsewhere. The choice depends only on
    ``seed``, the text's index and its tokens, never on a global random state."""
    import numpy as np

    tok = model.tokenizer
    special = set(tok.all_special_ids)
    mask_id = int(tok.mask_token_id)
    rows = []
    for i, row in enumerate(ids):
        row = list(row)
        free = np.array([j for j, t in enumerate(row) if t not in special], dtype=np.int64)
        labels = [IGNORE_INDEX] * len(row)
        if len(free):
            rng = np.random.default_rng([seed, i])
            chosen = free[rng.random(len(free)) < probability]
            if not len(chosen):
                chosen = free[[int(rng.integers(len(free)))]]
            for j in chosen.tolist():
                labels[j] = row[j]
                row[j] = mask_id
        rows.append({"input_ids": row, "attention_mask": [1] * len(row), "labels": labels})
    return rows


class MLMCollator:
    """Batches for a masked LM: rows without ``labels`` (training) are masked afresh by
    ``transformers.DataCollatorForLanguageModeling`` (``probability``, 80/10/10, its own
    generator from ``seed``; a batch where chance chose no token gets one masked token, since
    a loss over none is NaN); rows with ``labels`` (evaluation, already masked by
    :func:`masked_rows`) are only padded, labels with -100."""

    def __init__(
        self,
        tokenizer: Any,
        probability: float,
        *,
        seed: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        from transformers import DataCollatorForLanguageModeling

        from labkit.lm.train import CausalLMCollator

        self.pad_id = int(tokenizer.pad_token_id)
        self.mask_id = int(tokenizer.mask_token_id)
        self.special = sorted(set(tokenizer.all_special_ids))
        # rows whose masks are fixed (the evaluation's) carry their labels: only padded, as a
        # causal LM's rows are
        self.fixed = CausalLMCollator(self.pad_id, pad_to_multiple_of)
        self.train = DataCollatorForLanguageModeling(
            tokenizer,
            mlm=True,
            mlm_probability=probability,
            pad_to_multiple_of=pad_to_multiple_of,
            seed=seed,
        )

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "labels" not in rows[0]:
            batch = dict(self.train([{"input_ids": r["input_ids"]} for r in rows]))
            if not (batch["labels"] != IGNORE_INDEX).any():
                self._mask_one(batch)
            return batch
        return self.fixed(rows)

    def _mask_one(self, batch: dict[str, Any]) -> None:
        """Mask one ordinary token of a batch in which chance masked none: a loss over zero
        tokens is NaN, which would end the run as diverged (short texts, small batches)."""
        import torch

        ids = batch["input_ids"]
        special = torch.tensor(self.special, dtype=ids.dtype)
        free = (~torch.isin(ids, special)).nonzero()
        if not len(free):
            return
        g = torch.Generator().manual_seed(int(ids.sum()))  # the batch decides, not global RNG
        i, j = free[int(torch.randint(len(free), (1,), generator=g))].tolist()
        batch["labels"][i, j] = ids[i, j]
        ids[i, j] = self.mask_id


def masked_stats(logits: Any, labels: Any) -> torch.Tensor:
    """Per text, over its masked positions (labels != -100): summed negative log-likelihood
    (nats) of the original tokens, their count, and how many the top prediction got right:
    float32 [B, 3]. ``logits`` is [B, T, V] (or a tuple whose first item is); only the masked
    positions' rows are taken, so no second [B, T, V] copy is made. Used as the trainer's
    ``preprocess_logits_for_metrics``: an evaluation keeps [N, 3], never [N, T, V]."""
    if isinstance(logits, tuple):  # (logits, ...) when the model returns more
        logits = logits[0]
    labels = labels.to(logits.device)
    where = labels != IGNORE_INDEX
    if logits.dim() == 2:  # already only the masked positions' rows (see only_masked_logits)
        return picked_stats(logits, labels, where)
    return picked_stats(logits[where], labels, where)


def picked_stats(picked: Any, labels: Any, where: Any) -> torch.Tensor:
    """:func:`masked_stats` from the masked positions' logits alone: ``picked`` [M, V], the rows
    of ``labels`` [B, T] where ``where`` (labels != -100) holds, in row-major order."""
    import torch
    import torch.nn.functional as F

    rows = where.nonzero()[:, 0]
    target = labels[where]
    out = torch.zeros((labels.shape[0], 3), dtype=torch.float32, device=picked.device)
    if len(target):
        picked = picked.float()
        nll = F.cross_entropy(picked, target, reduction="none")
        right = (picked.argmax(-1) == target).float()
        out[:, 0].index_add_(0, rows, nll)
        out[:, 1].index_add_(0, rows, torch.ones_like(nll))
        out[:, 2].index_add_(0, rows, right)
    return out


@contextmanager
def only_masked_logits(model: Model, where: Any) -> Iterator[None]:
    """While open, the model's output layer scores only the positions where ``where`` [B, T]
    holds: its logits are [M, V] instead of [B, T, V] (a masked LM's vocabulary projection is
    most of an evaluation's compute; most positions are not masked). Call the model without
    labels inside. A model whose output layer is not a module call returns full logits."""
    head = model.base.get_output_embeddings()

    def select(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        if x.dim() == 3 and x.shape[:2] == where.shape:
            return (x[where.to(x.device)], *args[1:])
        return args

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()
