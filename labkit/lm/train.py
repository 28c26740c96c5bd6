"""The causal-LM pieces of finetuning: ``LMData`` into token ids and labels, the collator that
pads them, and the per-token loss that evaluation adds up.

``labkit.finetune`` dispatches here for a model whose ``task`` is ``"causal-lm"``; the run, its
trainer, events and checkpoints are the ones classifiers use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

    from labkit.lm.data import LMData
    from labkit.model import Model

__all__ = [
    "IGNORE_INDEX",
    "CausalLMCollator",
    "LMTrainingParts",
    "instruction_row",
    "summed_token_loss",
    "token_rows",
    "training_parts",
]

# the label of a token the loss skips (prompt and padding): PyTorch's cross_entropy default
IGNORE_INDEX = -100


def _eos_id(model: Model) -> int:
    eos = model.tokenizer.eos_token_id
    if isinstance(eos, int):
        return eos
    from labkit._utils.text import _filler_id

    return _filler_id(model.tokenizer)


def instruction_row(
    prompt: list[int], response: list[int], max_length: int
) -> dict[str, list[int]]:
    """``input_ids`` = prompt + response and ``labels`` = -100 on the prompt, the response ids
    on the response: the loss is on the response tokens only.

    Longer than ``max_length``: the prompt loses its first tokens (as generation cuts a prompt
    that does not fit), down to one; only a response longer than the rest is cut at its end.
    """
    keep = max(1, max_length - len(response))
    prompt = prompt[-keep:]
    response = response[: max_length - len(prompt)]
    return {
        "input_ids": prompt + response,
        "labels": [IGNORE_INDEX] * len(prompt) + response,
    }


def token_rows(model: Model, kind: str, ds: Dataset, max_length: int) -> list[dict[str, list[int]]]:
    """One ``{"input_ids", "labels"}`` row per example of ``ds`` (an LMData split of ``kind``),
    at most ``max_length`` tokens each.

    Text: the text's tokens then the end-of-sequence token (each text is a document that
    ends), labels = the ids (every token is learned; a text cut at ``max_length`` keeps its
    start). Instruction: the prompt as :meth:`labkit.Model.generate` shows it to the model (in
    the chat template when the tokenizer has one), then the response's tokens and the
    end-of-sequence token; the loss is on the response and its end only
    (:func:`instruction_row`).
    """
    from labkit.lm.generate import prompt_ids

    tok = model.tokenizer
    eos = _eos_id(model)
    if kind == "text":
        enc = tok(list(ds["text"]), truncation=True, max_length=max(1, max_length - 1))
        rows = []
        for ids in enc["input_ids"]:
            ids = list(ids) if ids and ids[-1] == eos else [*ids, eos]
            rows.append({"input_ids": ids, "labels": list(ids)})
        return rows
    chat = bool(getattr(tok, "chat_template", None))
    responses = tok(list(ds["response"]), add_special_tokens=False)["input_ids"]
    return [
        instruction_row(prompt_ids(model, p, chat=chat), [*r, eos], max_length)
        for p, r in zip(ds["prompt"], responses)
    ]


def _as_dataset(rows: list[dict[str, list[int]]]) -> Dataset:
    from datasets import Dataset

    return Dataset.from_dict(
        {"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]}
    )


class CausalLMCollator:
    """Pads rows of ``input_ids``/``labels`` on the right: ids with ``pad_id``, labels with -100
    (padding is never learned), an ``attention_mask`` of 1 on the real tokens. Widths are
    rounded up to ``pad_to_multiple_of`` when given (tensor cores like multiples of 8)."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = int(pad_id)
        self.multiple = pad_to_multiple_of

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.as_tensor(r["labels"], dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def summed_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row, the summed negative log-likelihood (nats) of its learned tokens and their count:
    float32 [B, 2]. ``logits`` [B, T, V] at position t predict ``labels[:, t + 1]`` (labels of
    -100 are skipped). Computed row by row in float32: one row's log-softmax at a time, never a
    second copy of the whole batch's logits."""
    import torch
    import torch.nn.functional as F

    out = torch.zeros((logits.shape[0], 2), dtype=torch.float32, device=logits.device)
    target = labels[:, 1:].to(logits.device)
    for i in range(logits.shape[0]):
        row = target[i]
        out[i, 0] = F.cross_entropy(
            logits[i, :-1].float(), row, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        out[i, 1] = (row != IGNORE_INDEX).sum()
    return out


@dataclass
class LMTrainingParts:
    """What ``labkit.finetune`` hands the trainer for a causal LM: tokenized ``train`` and
    ``evalset``, the train rows' token ``lengths`` (for length-grouped batches), the
    ``collator``, and ``preprocess`` (the trainer's ``preprocess_logits_for_metrics``: the
    evaluation keeps [B, 2] loss sums per batch, not [B, T, V] logits)."""

    train: Dataset
    lengths: list[int]
    evalset: Dataset
    collator: CausalLMCollator

    @staticmethod
    def preprocess(logits: Any, labels: Any) -> Any:
        if isinstance(logits, tuple):  # (logits, ...) when the model returns more
            logits = logits[0]
        return summed_token_loss(logits, labels)


def training_parts(
    model: Model, data: LMData, max_length: int, *, pad_to_multiple_of: int | None = None
) -> LMTrainingParts:
    """Tokenize ``data``'s train and validation splits for ``model`` (see :func:`token_rows`)."""
    train = token_rows(model, data.kind, data.train, max_length)
    evalset = token_rows(model, data.kind, data.validation, max_length)
    pad = model.tokenizer.pad_token_id
    return LMTrainingParts(
        train=_as_dataset(train),
        lengths=[len(r["input_ids"]) for r in train],
        evalset=_as_dataset(evalset),
        collator=CausalLMCollator(_eos_id(model) if pad is None else pad, pad_to_multiple_of),
    )
