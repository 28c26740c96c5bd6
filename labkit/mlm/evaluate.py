"""Evaluation of a masked LM on fixed masks: loss and perplexity over the masked tokens, and
masked-token accuracy (``MLMMetrics``).

The masks come from ``labkit.mlm.masking.masked_rows`` with a fixed seed, and the per-text sums
from ``masked_stats``, as in a run's evaluations: ``Model.evaluate`` before training, every
evaluation during it and ``Model.evaluate`` after it score the same positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, DataError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["MLMMetrics", "evaluate_mlm", "mlm_metrics"]

# at most this many logits (float32: 256 MiB) in one forward pass; batches of long texts hold
# fewer texts
_LOGITS_PER_PASS = 2**26


@dataclass(frozen=True)
class MLMMetrics:
    """A masked LM's evaluation on one split's masked tokens.

    ``loss`` is the mean negative log-likelihood of the original token at a masked position
    (nats), ``perplexity`` exp(loss), ``masked_accuracy`` the share of masked positions whose
    most likely token is the original (0..1), ``masked_tokens`` how many positions were
    scored, ``split`` where they came from.
    """

    loss: float
    perplexity: float
    masked_accuracy: float
    masked_tokens: int
    split: str = "validation"

    def as_dict(self) -> dict[str, float]:
        """Flat scalar metrics (for logging, early stopping and tables)."""
        return {
            "loss": self.loss,
            "perplexity": self.perplexity,
            "masked_accuracy": self.masked_accuracy,
        }

    def __str__(self) -> str:
        return (
            f"loss={self.loss:.4f} perplexity={self.perplexity:.4g} "
            f"masked_accuracy={self.masked_accuracy:.4f} "
            f"(n={self.masked_tokens:,} masked tokens, {self.split})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.summary import _rows, sig

        rows = _rows(
            [
                ("masked-token accuracy", sig(self.masked_accuracy, 3)),
                ("loss", sig(self.loss, 4)),
                ("perplexity", sig(self.perplexity, 4)),
                ("masked tokens", f"{self.masked_tokens:,}"),
                ("split", self.split),
            ]
        )
        return f"<table class='labkit-mlm-metrics'>{rows}</table>"


def mlm_metrics(stats: Any, split: str = "validation") -> MLMMetrics:
    """:class:`MLMMetrics` from rows of ``labkit.mlm.masking.masked_stats`` ([N, 3] or [3]:
    summed negative log-likelihood, masked tokens, correct top predictions)."""
    import numpy as np

    nll, count, right = np.asarray(stats, dtype=np.float64).reshape(-1, 3).sum(0).tolist()
    n = round(count)
    loss = nll / n if n else math.nan
    try:
        ppl = math.exp(loss)
    except OverflowError:  # a diverged model: the loss is finite, its exponential is not
        ppl = math.inf
    return MLMMetrics(
        loss=loss,
        perplexity=ppl,
        masked_accuracy=right / n if n else math.nan,
        masked_tokens=int(n),
        split=split,
    )


def _texts_of(data: Any, split: str | None) -> tuple[list[str], str]:
    """The texts to score and their split's name."""
    from labkit.lm.data import LMData

    if isinstance(data, list | tuple) and all(isinstance(t, str) for t in data):
        if not data:
            raise DataError("no texts to evaluate: pass at least one string.")
        return [t for t in data if t.strip()] or list(data), split or "texts"
    if not isinstance(data, LMData):
        cols = getattr(data, "column_names", None)
        if cols is not None and "text" in cols and not hasattr(data, "keys"):
            return [t for t in data["text"] if isinstance(t, str) and t.strip()], split or "data"
        from labkit.data import load_data

        data = load_data(data, task="masked-lm")  # its errors name what is missing
    if not isinstance(data, LMData):
        raise DataError(f"masked-LM data must be plain text, got {type(data).__name__}.")
    if data.kind != "text":
        raise DataError(
            f"a masked LM learns plain text, but this LMData is {data.kind!r} data; load text "
            "with labkit.load_data(source, task='masked-lm')."
        )
    if split is None:
        split = "test" if data.test is not None else "validation"
    if split not in data.splits:
        raise DataError(f"this LMData has no split {split!r}; it has {', '.join(data.splits)}.")
    return list(data.splits[split]["text"]), split


def evaluate_mlm(
    model: Model,
    data: Any,
    *,
    split: str | None = None,
    batch_size: int = 64,
    mask_probability: float = 0.15,
    seed: int = 0,
    max_length: int | None = None,
) -> MLMMetrics:
    """Masked-token accuracy, loss and perplexity of a masked LM on one split of ``data``.

    ``data`` is :class:`labkit.lm.LMData` of kind text (its ``test`` split, else
    ``validation``; or ``split=``), a list of strings, a ``datasets.Dataset`` with a ``text``
    column, or anything ``labkit.load_data(..., task="masked-lm")`` reads. In each text,
    ``mask_probability`` of the ordinary tokens (at least one) become the mask token at
    positions fixed by ``seed``: calls before and after training score the same positions,
    and with the defaults they are the positions a run's evaluations score (texts cut to
    ``max_length`` tokens, default the model's limit; a run cuts them to its own). Texts are
    scored in batches of up to ``batch_size``, fewer when long texts would hold more than
    2**26 logits at once.
    """
    import torch

    from labkit.mlm.masking import (
        IGNORE_INDEX,
        MLMCollator,
        masked_rows,
        masked_stats,
        only_masked_logits,
        token_ids,
    )

    model.require_task("masked-lm", "evaluate_mlm")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    if isinstance(mask_probability, bool) or not 0 < float(mask_probability) < 1:
        raise ConfigError(
            f"mask_probability must be a fraction between 0 and 1, got {mask_probability!r}."
        )
    texts, name = _texts_of(data, split)
    if not texts:
        raise DataError(f"split {name!r} holds no text to evaluate.")
    limit = min(max_length or model.max_length, model.max_length)
    rows = masked_rows(model, token_ids(model, texts, limit), float(mask_probability), seed)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    collate = MLMCollator(model.tokenizer, float(mask_probability))
    vocab = int(model.base.get_output_embeddings().weight.shape[0])
    total = torch.zeros(3, dtype=torch.float64)
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
                labels = batch["labels"].to(model.device)
                with only_masked_logits(model, labels != IGNORE_INDEX):
                    logits = model.hf(
                        input_ids=batch["input_ids"].to(model.device),
                        attention_mask=batch["attention_mask"].to(model.device),
                    ).logits
                total += masked_stats(logits, labels).sum(0).double().cpu()
                start += take
    finally:
        model.hf.train(was_training)
    return mlm_metrics(total.numpy(), name)
