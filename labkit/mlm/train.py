"""The masked-LM pieces of finetuning (continued pretraining): the training texts, masked afresh
per batch, and the validation texts, masked once (see :mod:`labkit.mlm.masking`).

``labkit.finetune`` dispatches here for a model whose ``task`` is ``"masked-lm"``; the run, its
trainer, events and checkpoints are the ones classifiers use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.lm.data import LMData
    from labkit.model import Model
    from labkit.train.config import FinetuneConfig
    from labkit.train.parts import TaskParts

__all__ = ["training_parts"]


def training_parts(
    model: Model,
    data: LMData,
    max_length: int,
    config: FinetuneConfig,
    *,
    pad_to_multiple_of: int | None = None,
) -> TaskParts:
    """Tokenize ``data``'s train split (masked per batch) and its validation split (masked once,
    :func:`masked_rows`) for ``model``; the metrics are :class:`labkit.mlm.MLMMetrics`."""
    from datasets import Dataset

    from labkit.mlm.evaluate import mlm_metrics
    from labkit.mlm.masking import MLMCollator, masked_rows, masked_stats, token_ids
    from labkit.train.parts import TaskParts

    train = token_ids(model, data.train["text"], max_length)
    evalrows = masked_rows(
        model, token_ids(model, data.validation["text"], max_length), config.mask_probability
    )
    evalset = Dataset.from_dict({k: [r[k] for r in evalrows] for k in evalrows[0]})
    return TaskParts(
        train=Dataset.from_dict({"input_ids": train}),
        lengths=[len(r) for r in train],
        evalset=evalset,
        collator=MLMCollator(
            model.tokenizer,
            config.mask_probability,
            seed=config.seed,
            pad_to_multiple_of=pad_to_multiple_of,
        ),
        metrics=lambda pred: mlm_metrics(pred.predictions, "validation"),
        preprocess=masked_stats,
    )
