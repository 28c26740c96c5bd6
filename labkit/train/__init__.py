"""Training: ``config`` (FinetuneConfig, every field validated), ``finetune`` (the entry:
``labkit.finetune``), ``run`` (Run, what the caller steers, and RunDriver, the engine's side),
``trainer`` (the bridge to Hugging Face ``Trainer``: typed events, stop/pause/save, atomic
checkpoints) and ``lora`` (adapters per model family).

The function ``finetune`` is not re-exported here: it would hide the module of the same name.
"""

from __future__ import annotations

from labkit.train.config import FinetuneConfig
from labkit.train.run import Run, RunDriver

__all__ = ["FinetuneConfig", "Run", "RunDriver"]
