"""Evaluation of a causal LM: mean loss per learned token and perplexity (``LMMetrics``).

The same tokens are learned as in finetuning (``labkit.lm.train.token_rows``: every token of a
text, the response of an instruction) and the same per-token sum is used
(``summed_token_loss``), so ``Model.evaluate`` and the evaluations inside a run agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, DataError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["LMMetrics", "evaluate_lm", "lm_metrics"]

# at most this many logits (float32: 256 MiB) in one evaluation forward pass; a batch with
# longer rows holds fewer of them
_LOGITS_PER_PASS = 2**26


@dataclass(frozen=True)
class LMMetrics:
    """A causal LM's evaluation on one split.

    ``loss`` is the mean negative log-likelihood per learned token (nats; a text's every token,
    an instruction's response tokens), ``perplexity`` is exp(loss), ``tokens`` the number of
    tokens scored, ``split`` the split they came from.
    """

    loss: float
    perplexity: float
    tokens: int
    split: str = "validation"

    def as_dict(self) -> dict[str, float]:
        """Flat scalar metrics (for logging, early stopping and tables)."""
        return {"loss": self.loss, "perplexity": self.perplexity}

    def __str__(self) -> str:
        return (
            f"loss={self.loss:.4f} perplexity={self.perplexity:.4g} "
            f"(n={self.tokens:,} tokens, {self.split})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.summary import _rows, sig

        rows = _rows(
            [
                ("loss", sig(self.loss, 4)),
                ("perplexity", sig(self.perplexity, 4)),
                ("tokens", f"{self.tokens:,}"),
                ("split", self.split),
            ]
        )
        return f"<table class='labkit-lm-metrics'>{rows}</table>"


def lm_metrics(sums: Any, split: str = "validation") -> LMMetrics:
    """:class:`LMMetrics` from rows of ``labkit.lm.train.summed_token_loss`` (shape [N, 2] or
    [2]: summed negative log-likelihood, tokens)."""
    import numpy as np

    nll, tokens = np.asarray(sums, dtype=np.float64).reshape(-1, 2).sum(0).tolist()
    tokens = round(tokens)
    loss = nll / tokens if tokens else math.nan
    try:
        ppl = math.exp(loss)
    except OverflowError:  # a diverged model: the loss is finite, its exponential is not
        ppl = math.inf
    return LMMetrics(loss=loss, perplexity=ppl, tokens=int(tokens), split=split)


def _split_of(data: Any, split: str | None) -> tuple[str, Any, str]:
    """(kind, dataset, split name) from LMData or a ``datasets.Dataset`` of LMData columns."""
    from labkit.lm.data import KINDS, LMData, columns_of, lm_kind, lm_split

    if isinstance(data, LMData):
        if split is None:
            split = "test" if data.test is not None else "validation"
        if split not in data.splits:
            raise DataError(f"this LMData has no split {split!r}; it has {', '.join(data.splits)}.")
        return data.kind, data.splits[split], split
    cols = getattr(data, "column_names", None)
    kind = lm_kind(columns_of(data)) if cols is not None else None
    if kind is None:
        raise DataError(
            "evaluating a causal LM needs LMData (labkit.load_data(source, task='causal-lm')) "
            "or a datasets.Dataset with a 'text' column or 'prompt' and 'response' columns; got "
            f"{type(data).__name__}{f' with columns {cols}' if cols is not None else ''}."
        )
    name = split or "data"
    return kind, lm_split(kind, {c: data[c] for c in KINDS[kind]}, name), name


def evaluate_lm(
    model: Model, data: Any, *, split: str | None = None, batch_size: int = 64
) -> LMMetrics:
    """Loss and perplexity of a causal LM on a split of ``data``.

    ``data`` is :class:`labkit.lm.LMData` (its ``test`` split, else ``validation``; or
    ``split=``) or a ``datasets.Dataset`` with a ``text`` column or ``prompt`` and ``response``
    columns (all of its rows). Rows are tokenized as in finetuning, cut to the model's context,
    sorted by length and scored in batches of up to ``batch_size`` rows (fewer when long rows
    would hold more than 2**26 logits at once).
    """
    import torch

    from labkit.lm.train import CausalLMCollator, summed_token_loss, token_rows

    model.require_task("causal-lm", "evaluate_lm")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    kind, ds, name = _split_of(data, split)
    rows = token_rows(model, kind, ds, model.max_length)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    pad = model.tokenizer.pad_token_id
    collate = CausalLMCollator(pad if pad is not None else 0)
    vocab = int(model.base.get_output_embeddings().weight.shape[0])
    total = torch.zeros(2, dtype=torch.float64)
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode():
            start = 0
            while start < len(order):
                take = 1
                # sorted by length: the row about to join a batch is its widest
                while (
                    take < batch_size
                    and start + take < len(order)
                    and (take + 1) * len(rows[order[start + take]]["input_ids"]) * vocab
                    <= _LOGITS_PER_PASS
                ):
                    take += 1
                batch = collate([rows[i] for i in order[start : start + take]])
                logits = model.hf(
                    input_ids=batch["input_ids"].to(model.device),
                    attention_mask=batch["attention_mask"].to(model.device),
                ).logits
                total += summed_token_loss(logits, batch["labels"]).sum(0).double().cpu()
                start += take
    finally:
        model.hf.train(was_training)
    return lm_metrics(total.numpy(), name)
