"""``finetune``: full or LoRA finetuning of a labkit ``Model`` in the background: a classifier on
``TextData``, a causal LM on ``LMData`` (its pieces live in ``labkit.lm.train``).

The engine is Hugging Face ``Trainer`` (accelerate underneath, so ``accelerate launch`` and
``torchrun`` work unchanged), bridged to labkit's typed events by ``labkit.train.trainer``. What labkit
adds is fast defaults (dynamic padding, length-grouped batches, sdpa attention, fused AdamW,
bf16/fp16 autocast on GPUs), a validated config, and a ``Run`` you can stop, pause and save.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from labkit._errors import ConfigError, DataError, TrainingError
from labkit.train.config import FinetuneConfig

if TYPE_CHECKING:
    from labkit.data import TextData
    from labkit.events import Status
    from labkit.lm.data import LMData
    from labkit.model import Model
    from labkit.train.parts import TaskParts
    from labkit.train.run import Run, RunDriver
    from labkit.train.trainer import TrainingLoss

__all__ = ["FinetuneConfig", "finetune"]

_Config = TypeVar("_Config", bound=FinetuneConfig)


def finetune(
    model: Model,
    data: TextData | LMData | Any,
    *,
    lora: Any = False,
    epochs: float = 3.0,
    max_steps: int | None = None,
    lr: float | None = None,
    batch_size: int = 16,
    eval_every: int | None = None,
    early_stopping: int | None = None,
    seed: int = 0,
    output_dir: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    name: str | None = None,
    report_to: str | Sequence[str] | None = None,
    callbacks: Sequence[Any] = (),
    **trainer_args: Any,
) -> Run:
    """Start finetuning ``model`` on ``data`` and return the :class:`~labkit.Run` at once.

    Training runs on a background thread; ``run.wait()`` blocks until it ends. ``data`` is a
    :class:`labkit.TextData` for a classifier, :class:`labkit.lm.LMData` for a causal LM
    (anything ``labkit.load_data`` reads is accepted too, loaded for the model's task): its
    train split trains, its validation split evaluates. A causal LM learns every token of a
    text, and only the response of an instruction (its prompt in the chat template when the
    tokenizer has one); its evaluations report loss and perplexity, and at each one the
    model's greedy answers to ``sample_prompts`` are recorded in ``run.history`` and shown in
    the panel. Further keywords are
    :class:`FinetuneConfig` fields (``warmup=0.1``, ``schedule="cosine"``, ``metric="f1"``, ...)
    or ``transformers.TrainingArguments`` fields, passed through. ``name`` titles the run's
    panel (default: the model and the method, ``run.name``). ``callbacks`` are objects with
    ``on_event(event, control)``; an exception in one ends the run as failed.

    Every run writes its record, ``<output_dir>/events.jsonl`` (``labkit.load_run(output_dir)``
    reads it and steers the run from any process). ``report_to`` adds the usual trackers
    through ``Trainer``'s integrations: ``"tensorboard"`` (event files in
    ``<output_dir>/tensorboard``), ``"wandb"`` (files in ``<output_dir>/wandb``, offline unless
    WANDB_MODE is set or wandb has credentials, named ``run.name``), any other transformers
    integration by name, or a list of them; None or ``"none"``: the record alone.

    Raises ``ConfigError`` (naming the field) before anything starts when a value is invalid,
    ``DataError`` when the data is not for the model's task (labelled text for a causal LM,
    LMData for a classifier), ``TrainingError`` when ``model`` is already training in
    another run, and ``MissingDependencyError`` (naming the extra, e.g. ``pip install
    "labkit[tensorboard]"``) when a tracker in ``report_to`` is not installed.
    """
    if _is_plain_module(model):  # a torch.nn.Module built by hand (e.g. an MLP on the digits)
        from labkit.scratch.module import as_model

        model, data = as_model(cast(Any, model), data)
    check_trainable(model)
    config = make_config(
        FinetuneConfig,
        lora=lora,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        eval_every=eval_every,
        early_stopping=early_stopping,
        seed=seed,
        output_dir=output_dir,
        resume_from=resume_from,
        name=name,
        report_to=report_to,
        **trainer_args,
    )
    return launch(model, data, config, callbacks)


def _is_plain_module(model: Any) -> bool:
    """A ``torch.nn.Module`` that is not a labkit ``Model`` (nor a transformers model, which
    ``labkit.Model.wrap`` makes one of)."""
    import sys

    torch = sys.modules.get("torch")  # a module built by hand means torch is imported already
    if torch is None or not isinstance(model, torch.nn.Module):
        return False
    return not hasattr(model, "config")


def check_trainable(model: Any) -> None:
    """``model`` is a labkit ``Model`` with float torch weights (``ConfigError``,
    ``InputError`` otherwise)."""
    from labkit.model import Model

    if not isinstance(model, Model):
        raise ConfigError(
            f"model must be a labkit Model (labkit.load_model(...) or "
            f"Model.wrap(hf_model, tokenizer)), got {type(model).__name__}."
        )
    model.require_backend("finetune", gradients=True)


def make_config(cls: type[_Config], **options: Any) -> _Config:
    """A ``cls`` (``FinetuneConfig`` or a subclass) from ``finetune``'s keywords: the fields of
    ``cls`` as they are, every other keyword a ``transformers.TrainingArguments`` field."""
    names = {f.name for f in dataclasses.fields(cls)} - {"trainer_args"}
    fields = {k: v for k, v in options.items() if k in names}
    for path in ("output_dir", "resume_from"):
        if fields.get(path) is not None:
            fields[path] = os.fspath(fields[path])
    return cls(**fields, trainer_args={k: v for k, v in options.items() if k not in names})


def launch(
    model: Model,
    data: TextData | LMData | Any,
    config: FinetuneConfig,
    callbacks: Sequence[Any] = (),
    *,
    loss: TrainingLoss | None = None,
    on_end: Callable[[], None] | None = None,
) -> Run:
    """Start the run ``config`` describes on ``model`` (checked by :func:`check_trainable`).

    ``loss`` replaces the model's own training loss (:class:`labkit.train.trainer.TrainingLoss`,
    its parts logged per step); ``on_end`` is called once when the run has ended, or when it
    fails to start (``labkit.distill`` gives its teacher back there).
    """
    from labkit.train.run import Run, RunDriver

    def end() -> None:
        if on_end is not None:
            on_end()

    try:
        for i, cb in enumerate(callbacks):
            if not callable(getattr(cb, "on_event", None)):
                raise ConfigError(
                    f"callbacks[{i}] ({type(cb).__name__}) has no on_event(event, control) method."
                )
        data = _data_for(model, data)
        _check_task(model, data, config)
        if config.resume_from is not None:
            from labkit._utils import checkpoint as _checkpoint

            config.resume_from = _checkpoint.resolve(config.resume_from)
        out = config.output_dir or _default_output_dir(model, config)
        if not model.claim_for_training():  # waits for an explain call holding float32 copies
            raise TrainingError(
                f"{model.name!r} is already training in another run. Stop that run "
                "(run.stop()) or wait for it (run.wait()) before starting another."
            )
    except BaseException:
        end()
        raise
    driver = RunDriver(Run(model, config, out, callbacks))
    try:
        job = _prepare(driver, data, loss=loss, on_end=end)  # tokenize, attach LoRA, build the
        # trainer: bad input fails here
    except BaseException:
        model.release_training()
        end()
        raise
    try:
        driver.start(job)
    except BaseException:
        job.abandon()
        model.release_training()
        end()
        raise
    return driver.run


# the data each task trains on: the class load_data returns for it (by name: the classes live in
# their tasks' modules, imported only when needed)
_TASK_DATA = {
    "classification": "TextData",
    "causal-lm": "LMData",
    "masked-lm": "LMData",
    "image-classification": "ImageData",
}
_TASK_NAMES = {
    "classification": "classification model",
    "causal-lm": "causal language model",
    "masked-lm": "masked language model",
    "image-classification": "image classifier",
}
_DATA_ADVICE = {
    "classification": "labelled text with labkit.load_data(source, task='classification')",
    "causal-lm": "text or instructions with labkit.load_data(source, task='causal-lm') (or "
    "turn each label into an answer with labkit.lm.instructions(data))",
    "masked-lm": "plain text with labkit.load_data(source, task='masked-lm')",
    "image-classification": "labelled images with labkit.load_data(source, "
    "task='image-classification')",
}


def _data_for(model: Model, data: Any) -> Any:
    """``data`` as the model's task trains on it: loaded through ``load_data`` unless it is
    already one of labkit's data classes (a mismatch is left for :func:`_check_task`)."""
    from labkit.data import TextData, load_data
    from labkit.lm.data import LMData

    if isinstance(data, TextData | LMData) or type(data).__name__ == "ImageData":
        return data
    if model.task == "causal-lm":
        # labelled text stays TextData, which _check_task refuses with advice, rather than
        # training on its texts silently
        return load_data(data, task="auto")
    return load_data(data, task=model.task)


def _check_task(model: Model, data: Any, config: FinetuneConfig) -> None:
    """The data, the metric and the sample prompts fit the model's task."""
    from labkit.metrics import TASK_METRICS

    want = _TASK_DATA.get(model.task, "TextData")
    found = type(data).__name__
    kind = getattr(data, "kind", None)
    if found != want or (model.task == "masked-lm" and kind != "text"):
        what = {
            "TextData": f"labelled text for a classifier (TextData, labels {list(getattr(data, 'labels', ()))})",
            "LMData": f"{kind} data for a language model (LMData)",
            "ImageData": "labelled images (ImageData)",
        }.get(found, found)
        other = (
            " Or load a causal language model for it with labkit.load_model(name, "
            "task='causal-lm') (labkit.demo.lm() is the offline one)."
            if found == "LMData" and kind == "instruction" and model.task != "causal-lm"
            else ""
        )
        raise DataError(
            f"{model.name!r} is a {_TASK_NAMES.get(model.task, model.task + ' model')}, but "
            f"the data is {what}. Give it {_DATA_ADVICE.get(model.task, 'data for its task')}."
            f"{other}"
        )
    allowed = TASK_METRICS.get(model.task, ("loss",))
    if config.metric not in allowed:
        raise ConfigError(
            f"metric={config.metric!r} is not reported by a {model.task} model's evaluation; "
            f"pass one of {', '.join(allowed)}."
        )
    if config.sample_prompts and model.task != "causal-lm":
        raise ConfigError(
            f"sample_prompts are continued by a causal language model, but {model.name!r} is a "
            f"{model.task} model: drop sample_prompts=."
        )


def _default_output_dir(model: Model, config: FinetuneConfig) -> str:
    from labkit.train.run import model_label

    if config.resume_from is not None:  # continue in the run's own folder
        return os.path.dirname(config.resume_from)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("labkit-runs", f"{model_label(model)}-{stamp}")


def _precision(config: FinetuneConfig, device: Any) -> str:
    from labkit._utils.device import native_bf16

    if config.precision != "auto":
        return config.precision
    if device.type == "cuda":
        return "bf16" if native_bf16(device) else "fp16"
    return "fp32"


def _probe(model: Model, parts: Any, config: FinetuneConfig) -> Any:
    """``precision="auto"`` on a GPU: time one real training batch in each candidate
    (:mod:`labkit.train.precision`) and keep the faster."""
    import torch

    from labkit.train.precision import probe_precision

    g = torch.Generator().manual_seed(config.seed)
    n = len(parts.train)
    rows = torch.randperm(n, generator=g)[: min(config.batch_size, n)].tolist()
    batch = parts.collator([parts.train[i] for i in rows])
    return probe_precision(model.hf, batch, model.device)


def _check_precision(precision: str, model: Model) -> None:
    """fp16 autocast needs float32 weights: its loss scaler refuses float16 gradients."""
    import torch

    if precision == "fp16" and model.dtype == torch.float16:
        raise ConfigError(
            "precision='fp16' trains float32 weights under fp16 autocast with a loss scaler, "
            "but this model's weights are float16. Load it with dtype='float32' (the default "
            "of labkit.load_model), or pass precision='fp32'."
        )


def _tokenize(
    model: Model, ds: Any, names: Sequence[str], max_length: int
) -> tuple[Any, list[int]]:
    """A ``datasets.Dataset`` of model inputs + ``labels`` (unpadded), and the token lengths."""
    import inspect

    from datasets import Dataset

    from labkit._utils.text import _filler_id
    from labkit.data import label_ids

    labels = label_ids(model.labels, names, ds["label"])
    enc = model.tokenizer(list(ds["text"]), truncation=True, max_length=max_length)
    accepted = inspect.signature(model.base.forward).parameters
    cols = {k: list(enc[k]) for k in enc if k in accepted}
    filler = _filler_id(model.tokenizer)
    for i, row in enumerate(cols["input_ids"]):
        if not row:  # decoder tokenizers give an empty text zero tokens; the model needs one
            for k in cols:
                cols[k][i] = [filler] if k == "input_ids" else [1 if k == "attention_mask" else 0]
    cols["labels"] = labels
    return Dataset.from_dict(cols), [len(r) for r in cols["input_ids"]]


def _training_arguments(
    config: FinetuneConfig,
    model: Model,
    out: str,
    precision: str | None = None,
    run_name: str | None = None,
) -> Any:
    from transformers import TrainingArguments

    from labkit.train.trackers import TENSORBOARD_DIR

    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    precision = precision or _precision(config, model.device)
    kw: dict[str, Any] = {
        "output_dir": out,
        "num_train_epochs": float(config.epochs),
        "max_steps": config.max_steps or -1,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.eval_batch_size or 2 * config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "weight_decay": float(config.weight_decay),
        "max_grad_norm": float(config.max_grad_norm or 0.0),
        "lr_scheduler_type": config.schedule,
        "warmup_steps": config.warmup,
        "eval_strategy": "steps" if config.eval_every else "epoch",
        "eval_steps": config.eval_every,
        "save_strategy": "steps" if config.save_every else "no",
        "save_steps": config.save_every or 500,
        # one log per step: the bridge turns each into a StepEnd (and checks it for NaN)
        "logging_strategy": "steps",
        "logging_steps": 1,
        "logging_nan_inf_filter": False,
        # the trackers' own callbacks (labkit.train.trackers points them at the run's folder)
        "report_to": list(config.report_to) or "none",
        # transformers 4.x's TensorBoard callback reads this (5.x has no such field, and
        # labkit.train.trackers points its callback at the same folder)
        "logging_dir": os.path.join(out, TENSORBOARD_DIR),
        "run_name": run_name,
        "disable_tqdm": True,
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": model.device.type == "cpu",
        "optim": "adamw_torch_fused" if model.device.type in ("cpu", "cuda") else "adamw_torch",
        "dataloader_pin_memory": model.device.type == "cuda",
        # classifiers ignore num_items_in_batch: averaging tokens across ranks would double the
        # logged loss under DDP; a causal LM's loss is a mean over tokens, which it needs
        "average_tokens_across_devices": model.task == "causal-lm",
    }
    if "eval_strategy" not in known:  # transformers < 4.41
        kw["evaluation_strategy"] = kw.pop("eval_strategy")
    kw.update(config.trainer_args)
    try:
        return TrainingArguments(**{k: v for k, v in kw.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"transformers rejected the training arguments: {exc}") from exc


def _use_sdpa(hf: Any) -> None:
    """Train with the fused attention kernel where the model has one."""
    from labkit._utils.eager import attn_implementation

    if attn_implementation(hf) in (None, "sdpa", "flash_attention_2"):
        return
    base = hf.get_base_model() if hasattr(hf, "get_base_model") else hf
    import contextlib

    with contextlib.suppress(ValueError, AttributeError, ImportError):  # no sdpa kernel there
        base.set_attn_implementation("sdpa")


def _task_parts(
    model: Model, data: TextData | LMData, max_length: int, config: FinetuneConfig
) -> TaskParts:
    from labkit.lm.data import LMData
    from labkit.train.parts import TaskParts

    pad8 = 8 if model.device.type == "cuda" else None
    if model.task == "masked-lm":
        from labkit.mlm.train import training_parts as mlm_parts

        assert isinstance(data, LMData)  # _check_task matched data and model
        return mlm_parts(model, data, max_length, config, pad_to_multiple_of=pad8)
    if model.task == "image-classification":
        from labkit.vision.data import ImageData
        from labkit.vision.train import training_parts as image_parts

        assert isinstance(data, ImageData)  # _check_task matched data and model
        return image_parts(model, data, config)
    if isinstance(data, LMData):  # a causal LM's (_check_task has matched data and model)
        from labkit.lm.evaluate import lm_metrics
        from labkit.lm.train import training_parts

        lm = training_parts(model, data, max_length, pad_to_multiple_of=pad8)
        return TaskParts(
            lm.train,
            lm.lengths,
            lm.evalset,
            lm.collator,
            # predictions are summed_token_loss's [N, 2] rows: a mean over tokens, not batches
            metrics=lambda pred: lm_metrics(pred.predictions, "validation"),
            preprocess=lm.preprocess,
        )
    from transformers import DataCollatorWithPadding

    from labkit.metrics import compute_metrics

    def metrics(pred: Any) -> Any:
        p = pred.predictions
        logits = p[0] if isinstance(p, tuple) else p
        return compute_metrics(pred.label_ids, logits.argmax(-1), model.labels)

    train, lengths = _tokenize(model, data.train, data.labels, max_length)
    evalset, _ = _tokenize(model, data.validation, data.labels, max_length)
    collator = DataCollatorWithPadding(model.tokenizer, pad_to_multiple_of=pad8)
    return TaskParts(train, lengths, evalset, collator, metrics=metrics)


def _prepare(
    driver: RunDriver,
    data: TextData | LMData,
    *,
    loss: TrainingLoss | None = None,
    on_end: Callable[[], None] | None = None,
) -> Any:
    """Everything that can fail on bad input, done now; returns the job for the run's thread.

    The bridge moves the run through ``driver`` (events, status, progress, a diverged end).
    ``loss`` and ``on_end`` are :func:`launch`'s; the job calls ``on_end`` as it ends.
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from labkit._utils import checkpoint as _checkpoint
    from labkit.events import EvalEnd
    from labkit.metrics import Metrics
    from labkit.render import console as _progress
    from labkit.train import slot as _slot
    from labkit.train.lora import attach_lora
    from labkit.train.trainer import AdaLoraSchedule, Bridge, LabkitTrainer, uses_adalora

    run = driver.run
    config, model = run.config, run.model
    if model.device.type == "cpu":
        from labkit._utils.malloc import tune_cpu_allocator

        tune_cpu_allocator()
    max_length = min(config.max_length or model.max_length, model.max_length)
    parts = _task_parts(model, data, max_length, config)
    samples = _sample_prompts(model, data, config)
    from labkit.train import trackers

    trackers.check_available(config.report_to)  # before any weight moves
    _check_precision(_precision(config, model.device), model)
    if config.lora is not False:
        from transformers import set_seed

        set_seed(config.seed)  # the adapter's initial weights come from the seed, not by chance
        model.hf = attach_lora(model.hf, config.lora)
    _use_sdpa(model.hf)

    def metrics_fn(pred: Any) -> dict[str, float]:
        full = parts.metrics(pred)
        driver.evaluated(full)
        # a causal LM's "loss" (per token) replaces the trainer's eval_loss (a mean of batch
        # means); a classifier's Metrics carry none here and take the trainer's in emit
        return dict(full.as_dict())

    def emit(event: Any) -> None:
        if isinstance(event, EvalEnd) and isinstance(run.evaluation, Metrics):
            driver.evaluated(dataclasses.replace(run.evaluation, loss=event.metrics.get("loss")))
        driver.emit(event)

    def on_status(status: Status) -> None:
        driver.progress(bridge.step, bridge.total_steps)
        driver.set_status(status)

    def on_diverged(step: int, loss: float) -> None:
        good = run.checkpoints
        if good and _restore(bridge.trainer, good[-1]):
            keep = f" The model was reset to the last good checkpoint, {good[-1]}."
        elif good:
            keep = (
                f" The last good checkpoint is {good[-1]}; the model in memory holds the "
                "diverged weights (load the checkpoint with labkit.load_model)."
            )
        else:
            keep = (
                " No checkpoint was written before it, so the model's weights are not usable "
                "now: load the model again (save_every= keeps checkpoints along the way)."
            )
        driver.end(
            "diverged",
            f"the training loss became {loss} at step {step}: training "
            f"diverged. Use a lower learning rate (lr={config.learning_rate:g} now; try "
            f"{config.learning_rate / 10:g}).{keep}",
        )

    bridge = Bridge(
        run.control,
        emit,
        on_status=on_status,
        on_diverged=on_diverged,
        metric=config.metric,
        patience=config.early_stopping,
        loss_parts=loss.parts if loss is not None else (),
    )
    callbacks: list[Any] = [bridge]
    if uses_adalora(model.hf):
        callbacks.append(AdaLoraSchedule())
    if samples:  # after the bridge: an evaluation's EvalEnd first, then its answers
        from labkit.lm.samples import SampleGenerations

        # its settings are checked here: a bad sample_tokens fails now, not at an evaluation
        callbacks.append(
            SampleGenerations(
                model, samples, emit, max_new_tokens=config.sample_tokens, control=run.control
            )
        )

    def build() -> Any:
        """The training arguments and the trainer: only while this run holds the slot
        (labkit.train.slot: building them resets accelerate's process-wide state)."""
        args = _training_arguments(config, model, run.output_dir, run_name=run.name)
        if config.precision == "auto" and model.device.type == "cuda":
            # measured, not assumed: bf16 autocast costs more than it saves on small steps
            run.precision = _probe(model, parts, config)
            _check_precision(run.precision.precision, model)
            args = _training_arguments(
                config, model, run.output_dir, run.precision.precision, run_name=run.name
            )
        trainer = LabkitTrainer(
            model=model.hf,
            args=args,
            train_dataset=parts.train,
            eval_dataset=parts.evalset,
            processing_class=parts.processing_class or model.tokenizer,
            data_collator=parts.collator,
            compute_metrics=metrics_fn,
            preprocess_logits_for_metrics=parts.preprocess,
            callbacks=callbacks,
            train_lengths=parts.lengths if config.group_by_length else None,
            keep_checkpoints=config.keep_checkpoints,
            labels=model.labels,
            task=model.task,
            loss=loss,
        )
        for noisy in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(noisy)
        trackers.install(trainer, config.report_to, output_dir=run.output_dir, run_name=run.name)
        show = config.progress if config.progress is not None else _progress.wanted()
        if show and args.process_index == 0:
            run.history.subscribe(_progress.ConsoleProgress(history=run.history, name=run.name))
        return trainer

    # built now when no other run of this process trains (bad arguments fail here); else the
    # run's thread waits for that run, then builds them
    trainer: Any = None
    who = f"{run.name!r} (in {run.output_dir})"
    holds = _slot.take_now(who)
    if holds:
        try:
            trainer = build()
        except BaseException:
            _slot.release()
            raise
    else:
        import warnings

        from labkit._errors import LabkitWarning

        warnings.warn(
            f"{who} waits for {_slot.holder() or 'another run'} to end before it trains: "
            "one run trains at a time in a process (accelerate's device state is "
            "shared by the whole process). run.stop() cancels it meanwhile.",
            LabkitWarning,
            stacklevel=4,
        )

    def job(driver: RunDriver) -> None:
        nonlocal trainer, holds
        try:
            if not holds:
                holds = _slot.take(who, lambda: run.control.stop_requested)
                if not holds:
                    return  # stopped while it waited: nothing trained, nothing to save
                trainer = build()
            driver.mark_start()  # elapsed counts from here, not from the first step's end
            driver.set_status("running")
            _checkpoint.clean_staging(run.output_dir)
            try:
                bridge.trainer = trainer
                trainer.train(resume_from_checkpoint=config.resume_from)
                if bridge.early_stopped:
                    driver.stopped_early()
            finally:
                bridge.trainer = None
                trackers.close(trainer)  # a failed run's tracker runs end too
                _drop_autocast_forward(model.hf)
                model.hf.eval()
                model.device = next(model.hf.parameters()).device
                _release_memory(trainer, model)
        finally:
            abandon()
            if on_end is not None:
                on_end()

    def abandon() -> None:
        """Give the slot back: the run has ended, or its thread never started."""
        nonlocal holds
        if holds:
            holds = False
            _slot.release()

    job.abandon = abandon  # type: ignore[attr-defined]
    return job


def _sample_prompts(model: Model, data: TextData | LMData, config: FinetuneConfig) -> list[str]:
    """The prompts a causal LM's run continues at each evaluation (none for a classifier)."""
    if model.task != "causal-lm":
        return []
    if config.sample_prompts is not None:
        return list(config.sample_prompts)
    from labkit.lm.samples import default_sample_prompts

    return default_sample_prompts(data)


def _restore(trainer: Any, checkpoint: str) -> bool:
    """Load ``checkpoint``'s weights (full or adapter) back into the trainer's model."""
    if trainer is None:
        return False
    from labkit._utils.quiet import hf_quiet

    try:
        with hf_quiet():
            trainer._load_from_checkpoint(checkpoint)
    except Exception:  # noqa: BLE001 - the run still ends as diverged; the message says so
        return False
    return True


def _drop_autocast_forward(hf: Any) -> None:
    """Give the model back its own ``forward`` after a mixed-precision run.

    accelerate wraps ``forward`` in an autocast context for bf16/fp16 training and leaves the
    wrapper on the model: every later prediction, evaluation and attribution would run in
    bf16, unlike the float32 weights it saved (logits off by ~4e-3, completeness errors at
    bf16's resolution).
    """
    original = hf.__dict__.pop("_original_forward", None)
    if original is None:
        return
    # accelerate skips a model it has marked as prepared: a later run would then train
    # without autocast, in fp32, silently
    hf.__dict__.pop("_is_accelerate_prepared", None)
    if getattr(original, "__func__", None) is type(hf).forward:
        hf.__dict__.pop("forward", None)  # the class's own method again
    else:
        hf.forward = original


def _release_memory(trainer: Any, model: Model) -> None:
    """Drop optimizer state and cached GPU blocks so the model stays usable (e.g. after OOM)."""
    import gc

    import torch

    trainer.optimizer = None
    trainer.lr_scheduler = None
    model.hf.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    from labkit._utils.malloc import return_freed_memory

    return_freed_memory()
