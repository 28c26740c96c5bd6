"""``TaskParts``: what differs per task for the training engine.

``labkit.finetune`` asks the model's task for its parts (a classifier's in
``labkit.train.finetune``, a causal LM's in ``labkit.lm.train``, a masked LM's in
``labkit.mlm.train``, an image classifier's in ``labkit.vision.train``); the run, the bridge,
checkpoints and the panel are the same for every task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["TaskParts"]


@dataclasses.dataclass
class TaskParts:
    """Tokenized (or pixel) ``train`` rows with their ``lengths`` (for grouping by length; all
    equal for images), the ``evalset``, the ``collator`` that batches them, ``metrics`` (the
    trainer's ``EvalPrediction`` -> the full evaluation, whose ``as_dict()`` holds the task's
    ``labkit.metrics.TASK_METRICS``) and ``preprocess`` (the trainer's
    ``preprocess_logits_for_metrics``: what of each eval batch's logits to keep, or None for all).
    ``processing_class`` is what the trainer saves beside each checkpoint (the tokenizer or image
    processor; None: the model's own)."""

    train: Any
    lengths: list[int]
    evalset: Any
    collator: Any
    metrics: Callable[[Any], Any]
    preprocess: Callable[[Any, Any], Any] | None = None
    processing_class: Any = None
