"""``FinetuneConfig``: how to finetune, every field keyword-only, documented once and validated
when the config is made (peft's ``LoraConfig`` is the model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from labkit._errors import ConfigError
from labkit.metrics import METRIC_NAMES

__all__ = ["CONFIG_FIELDS", "DEFAULT_LR_FULL", "DEFAULT_LR_LORA", "FinetuneConfig"]

_SCHEDULES = (
    "linear",
    "cosine",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
)
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# TrainingArguments that labkit's bridge relies on; trainer_args may not change them.
_PROTECTED = (
    "output_dir",
    "logging_steps",
    "logging_strategy",
    "logging_nan_inf_filter",
    "disable_tqdm",
    "resume_from_checkpoint",
)
DEFAULT_LR_FULL = 5e-5
DEFAULT_LR_LORA = 1e-3


@dataclass(kw_only=True)
class FinetuneConfig:
    """How to finetune. Every field is keyword-only and checked when the config is made.

    lora: False for full finetuning; True for a LoRA adapter on the family's attention
        projections (a classifier's new head trained fully; a causal LM's output layer left
        as it is); or a ``peft.LoraConfig``/``AdaLoraConfig``.
    epochs: passes over the training split (may be fractional); ignored when max_steps is set.
    max_steps: optimizer steps to take instead of epochs.
    lr: peak learning rate; None means 5e-5 for full finetuning and 1e-3 for LoRA.
    batch_size: texts per device per optimizer micro-step.
    eval_batch_size: texts per evaluation batch (None: twice batch_size).
    eval_every: evaluate on the validation split every this many steps (None: every epoch);
        there is always an evaluation at the end.
    early_stopping: stop after this many evaluations without improving ``metric`` (None: never).
    metric: the validation metric that picks ``Run.best_checkpoint`` and drives early stopping:
        loss (lower is better), and for a classifier accuracy, precision, recall or f1, for a
        causal LM perplexity (lower is better).
    seed: seeds weights of new layers, dropout and data order.
    output_dir: where checkpoints go (None: ``./labkit-runs/<model>-<time>``).
    resume_from: a ``checkpoint-N`` folder (or an earlier run's output_dir) to continue from.
    warmup: linear warmup, as a fraction of total steps (0 <= warmup < 1) or a step count.
    schedule: learning-rate schedule after warmup: linear, cosine, constant, ...
    weight_decay: decoupled AdamW weight decay.
    max_grad_norm: clip the global gradient norm to this (None or 0: no clipping).
    grad_accum: micro-batches per optimizer step (effective batch = batch_size * grad_accum).
    max_length: truncate texts to this many tokens (None: the model's limit); a causal LM's
        instruction keeps its response and loses the prompt's first tokens.
    group_by_length: batch texts of similar length together (less padding, faster).
    precision: autocast of the forward and backward passes over float32 weights: auto (bf16 on
        GPUs whose tensor cores have it, else fp16 on GPUs, fp32 on CPU), fp32, bf16 or fp16.
    save_every: also save a checkpoint every this many steps (None: only at the end, on stop,
        on ``Run.save()`` and at early stopping).
    keep_checkpoints: keep only this many newest checkpoints (None: all).
    progress: console progress bar (None: when no notebook front end is attached).
    name: what to call the run, shown as the panel's title and in its snapshot (None: the
        model and the method, e.g. ``all-MiniLM-L6-v2 · LoRA r=8``).
    sample_prompts: a causal LM's prompts whose greedy continuations are shown (and kept in
        ``run.history``) at each evaluation (None: the first 3 validation prompts of
        instruction data, the first words of 3 validation texts of plain text; (): none).
    sample_tokens: at most this many new tokens per sample generation.
    mask_probability: a masked LM's share of tokens masked per training text (BERT's 0.15;
        of those, 80% become the mask token, 10% a random token, 10% stay); its evaluation masks
        the same share of the validation texts, the same positions at every evaluation.
    report_to: trackers that also log the run, through ``Trainer``'s own integrations: None
        or ``"none"`` (labkit's record alone), a name (``"tensorboard"``, ``"wandb"``, or any
        transformers integration: ``"mlflow"``, ``"comet_ml"``, ...), a comma list or a list of
        names, or ``"all"`` (every one installed). Kept as a tuple of names. TensorBoard writes
        to ``<output_dir>/tensorboard``; wandb to ``<output_dir>/wandb``, offline unless
        WANDB_MODE is set or wandb has credentials, under the run's name. A tracker whose
        package is missing raises ``MissingDependencyError`` before training starts.
    trainer_args: further ``transformers.TrainingArguments`` fields, passed through.
    """

    lora: Any = False
    epochs: float = 3.0
    max_steps: int | None = None
    lr: float | None = None
    batch_size: int = 16
    eval_batch_size: int | None = None
    eval_every: int | None = None
    early_stopping: int | None = None
    metric: str = "loss"
    seed: int = 0
    output_dir: str | None = None
    resume_from: str | None = None
    warmup: float = 0.0
    schedule: str = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    grad_accum: int = 1
    max_length: int | None = None
    group_by_length: bool = True
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    save_every: int | None = None
    keep_checkpoints: int | None = None
    progress: bool | None = None
    name: str | None = None
    sample_prompts: Sequence[str] | None = None
    sample_tokens: int = 32
    mask_probability: float = 0.15
    report_to: Any = None
    trainer_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ConfigError:
            return ConfigError(f"{name} must be {want}, got {getattr(self, name)!r}.")

        def positive_int(name: str, optional: bool = True) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "a positive whole number" + (" or None" if optional else ""))

        if not (self.lora is True or self.lora is False or _is_peft_config(self.lora)):
            raise bad("lora", "True, False or a peft.LoraConfig/AdaLoraConfig")
        if (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int | float)
            or not math.isfinite(self.epochs)
            or self.epochs <= 0
        ):
            raise bad("epochs", "a number > 0")
        positive_int("max_steps")
        if self.lr is not None and (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, int | float)
            or not math.isfinite(self.lr)
            or self.lr <= 0
        ):
            raise bad("lr", "a number > 0 (e.g. 5e-5 for full finetuning, 1e-3 for LoRA) or None")
        positive_int("batch_size", optional=False)
        for name in (
            "eval_batch_size",
            "eval_every",
            "early_stopping",
            "max_length",
            "save_every",
            "keep_checkpoints",
        ):
            positive_int(name)
        positive_int("grad_accum", optional=False)
        if self.metric not in METRIC_NAMES:
            raise ConfigError(
                f"metric must be one of {', '.join(METRIC_NAMES)}, got {self.metric!r}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise bad("seed", "an integer")
        if (
            not isinstance(self.warmup, int | float)
            or self.warmup < 0
            or (not float(self.warmup).is_integer() and self.warmup >= 1)
        ):
            raise bad("warmup", "a fraction in [0, 1) or a whole number of steps")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(
                f"schedule must be one of {', '.join(_SCHEDULES)}, got {self.schedule!r}."
            )
        if not isinstance(self.weight_decay, int | float) or self.weight_decay < 0:
            raise bad("weight_decay", "a number >= 0")
        if self.max_grad_norm is not None and (
            not isinstance(self.max_grad_norm, int | float) or self.max_grad_norm < 0
        ):
            raise bad("max_grad_norm", "a number >= 0 or None")
        if self.precision not in _PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(_PRECISIONS)}, got {self.precision!r}."
            )
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise bad("name", "a non-empty string (the run's title) or None")
        if self.sample_prompts is not None:
            if isinstance(self.sample_prompts, str) or not isinstance(
                self.sample_prompts, Sequence
            ):
                raise bad("sample_prompts", "a list of prompt strings, () for none, or None")
            odd = [p for p in self.sample_prompts if not isinstance(p, str) or not p.strip()]
            if odd:
                raise ConfigError(
                    f"sample_prompts must hold non-empty strings; found {odd[0]!r:.40}."
                )
            self.sample_prompts = tuple(self.sample_prompts)
        positive_int("sample_tokens", optional=False)
        if (
            isinstance(self.mask_probability, bool)
            or not isinstance(self.mask_probability, int | float)
            or not 0 < self.mask_probability < 1
        ):
            raise bad("mask_probability", "a fraction between 0 and 1 (BERT's is 0.15)")
        if not isinstance(self.trainer_args, dict):
            raise bad("trainer_args", "a dict of transformers.TrainingArguments fields")
        if "report_to" in self.trainer_args:  # TrainingArguments' spelling: the same field
            if self.report_to is not None:
                raise ConfigError("report_to is given twice (as a field and in trainer_args).")
            self.trainer_args = dict(self.trainer_args)
            self.report_to = self.trainer_args.pop("report_to")
        from labkit.train.trackers import normalize

        self.report_to = normalize(self.report_to)
        protected = sorted(set(self.trainer_args) & set(_PROTECTED))
        if protected:
            raise ConfigError(
                f"trainer_args may not set {', '.join(protected)}: labkit's run "
                "relies on them (use output_dir= and resume_from= of finetune)."
            )
        if self.trainer_args:
            from transformers import TrainingArguments

            known = {f.name for f in fields(TrainingArguments)}
            unknown = sorted(set(self.trainer_args) - known)
            if unknown:
                raise ConfigError(
                    f"unknown option(s) {', '.join(unknown)}: not a FinetuneConfig "
                    "field nor a transformers.TrainingArguments field."
                )

    @property
    def learning_rate(self) -> float:
        """``lr``, or the default for full finetuning or LoRA."""
        if self.lr is not None:
            return float(self.lr)
        return DEFAULT_LR_FULL if self.lora is False else DEFAULT_LR_LORA


def _is_peft_config(x: Any) -> bool:
    try:
        from peft import PeftConfig
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(x, PeftConfig)


CONFIG_FIELDS = frozenset(f.name for f in fields(FinetuneConfig)) - {"trainer_args"}
