"""``labkit train``: headless finetuning with the options of ``labkit.finetune``.

Options come as flags or from a ``--config`` file (JSON or TOML, keys named like the flags with
underscores: ``{"lora": true, "epochs": 2, "lr": 1e-3}``); flags given on the command line win.
The command runs unchanged under ``accelerate launch`` and ``torchrun``: every process trains
its share, only the first prints, saves and exports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from labkit.events import ENDED_WELL

HELP = (
    "finetune a classifier, a causal or masked LM, or an image classifier (full or LoRA) "
    "headless; runs under accelerate launch and torchrun"
)
TASKS = ("auto", "classification", "causal-lm", "masked-lm", "image-classification")

# (flag, FinetuneConfig field, type, help); defaults live in FinetuneConfig, not here
_CONFIG_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--epochs", "epochs", float, "passes over the training split"),
    ("--max-steps", "max_steps", int, "optimizer steps instead of epochs"),
    ("--lr", "lr", float, "peak learning rate (default 5e-5 full, 1e-3 LoRA)"),
    ("--batch-size", "batch_size", int, "texts per device per step"),
    ("--eval-every", "eval_every", int, "evaluate every N steps (default: every epoch)"),
    ("--early-stopping", "early_stopping", int, "stop after N evaluations without improvement"),
    ("--metric", "metric", str, "loss, accuracy, precision, recall or f1 (best checkpoint)"),
    ("--seed", "seed", int, "seed for new weights, dropout and data order"),
    ("--output-dir", "output_dir", str, "where checkpoints go"),
    ("--resume-from", "resume_from", str, "a checkpoint-N folder or an earlier run's folder"),
    ("--warmup", "warmup", float, "warmup: fraction of steps (<1) or a step count"),
    ("--schedule", "schedule", str, "linear, cosine, constant, ..."),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay"),
    ("--max-grad-norm", "max_grad_norm", float, "gradient clipping norm (0: none)"),
    ("--grad-accum", "grad_accum", int, "micro-batches per optimizer step"),
    ("--max-length", "max_length", int, "truncate texts to N tokens"),
    ("--precision", "precision", str, "auto, fp32, bf16 or fp16"),
    ("--save-every", "save_every", int, "also save every N steps"),
    ("--keep-checkpoints", "keep_checkpoints", int, "keep only the N newest checkpoints"),
    ("--name", "name", str, "the run's title (default: the model and the method)"),
    ("--sample-tokens", "sample_tokens", int, "causal LM: tokens per sample generation"),
    ("--mask-probability", "mask_probability", float, "masked LM: share of tokens masked"),
)
_RUN_KEYS = {
    "task",
    "model",
    "data",
    "labels",
    "text_column",
    "label_column",
    "device",
    "export",
    "overwrite",
    "summary",
    "lora",
    "group_by_length",
    "progress",
    "trainer_args",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="JSON or TOML file with any of these options")
    p.add_argument(
        "--task",
        default=None,
        choices=TASKS,
        help="classification, causal-lm, masked-lm or image-classification (default auto: "
        "what --model is; with neither --model nor --task, the offline classifier)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="hub name or local folder (default: offline MiniLM; with --task causal-lm the "
        "offline SmolLM2-135M-Instruct, masked-lm MiniLM as a masked LM, image-classification "
        "a ViT from config for 28x28 digits)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="hub dataset, .csv/.json/.jsonl/.parquet file, or a folder of class subfolders of "
        "images (default: offline reviews; for a causal LM: the reviews as instructions; a "
        "masked LM: the 13,905-snippet review corpus; images: 5,000 MNIST digits); a causal "
        "LM takes a text column, or prompt and response columns",
    )
    p.add_argument("--labels", default=None, help="comma-separated label names")
    p.add_argument("--text-column", default=None, help="column holding the text (default: text)")
    p.add_argument("--label-column", default=None, help="column holding the label (default: label)")
    p.add_argument("--device", default=None, help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument(
        "--lora",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train a LoRA adapter instead of all weights",
    )
    p.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch texts of similar length together (default: on)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="console progress bar (default: on)",
    )
    for flag, field, kind, text in _CONFIG_FLAGS:
        p.add_argument(flag, dest=field, type=kind, default=None, help=text)
    p.add_argument(
        "--sample-prompt",
        dest="sample_prompts",
        action="append",
        default=None,
        metavar="PROMPT",
        help="causal LM: a prompt whose generation is shown at each evaluation (repeatable)",
    )
    p.add_argument(
        "--set",
        dest="trainer_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a transformers.TrainingArguments field (value parsed as JSON if it can be)",
    )
    p.add_argument(
        "--report-to",
        dest="report_to",
        action="append",
        default=None,
        metavar="TRACKER",
        help="also log to tensorboard, wandb, ... (repeatable or a comma list; default: none)",
    )
    p.add_argument("--export", default=None, help="write the trained model here (safetensors)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="let --export replace a folder that exists (refused otherwise, before training)",
    )
    p.add_argument(
        "--summary",
        default=None,
        help="write a JSON summary here (each extra process writes PATH.rankN)",
    )


def _read_config(path: str) -> dict[str, Any]:
    from labkit._errors import ConfigError

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {path!r} does not exist.")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() == ".toml":
            return dict(_toml().loads(text))
        return dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"--config {path!r} is not valid {file.suffix[1:] or 'JSON'}: {exc}"
        ) from exc


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Config file values overridden by the flags that were given."""
    from labkit._errors import ConfigError

    opts: dict[str, Any] = _read_config(args.config) if args.config else {}
    opts = {k.replace("-", "_"): v for k, v in opts.items()}
    for key, value in vars(args).items():
        if key in ("config", "command", "trainer_set") or value is None:
            continue
        opts[key] = value
    extra = dict(opts.pop("trainer_args", {}) or {})
    for item in args.trainer_set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} must look like KEY=VALUE.")
        try:
            extra[key.strip()] = json.loads(raw)
        except ValueError:
            extra[key.strip()] = raw
    opts["trainer_args"] = extra
    return opts


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _digest(model: Any) -> str:
    """A short hash of the trainable weights: equal on every process that trained one model."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.hf.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _load(opts: dict[str, Any]) -> tuple[Any, Any]:
    from labkit import demo
    from labkit._errors import ConfigError

    task = opts.pop("task", None) or "auto"
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}.")
    device = opts.pop("device", None) or "auto"
    local = os.environ.get("LOCAL_RANK")
    if device == "auto" and local is not None:
        import torch

        if torch.cuda.is_available():  # one GPU per process under a launcher
            device = f"cuda:{int(local)}"
    labels = opts.pop("labels", None)
    labels = labels.split(",") if isinstance(labels, str) else labels
    source = opts.pop("data", None)
    text_col, label_col = opts.pop("text_column", None), opts.pop("label_column", None)
    name = opts.pop("model", None)
    if task == "auto" and name is not None and labels is None:
        task = _task_of(name)
    if task == "causal-lm":
        from labkit.model import load_model

        if labels is not None:
            raise ConfigError("--labels names a classifier's classes; a causal LM has none.")
        model = (
            demo.lm(device=device)
            if name is None
            else load_model(name, task="causal-lm", device=device)
        )
        return model, _lm_data(source, text_col)
    if task == "masked-lm":
        from labkit.data import load_data
        from labkit.model import load_model

        if labels is not None:
            raise ConfigError("--labels names a classifier's classes; a masked LM has none.")
        model = (
            demo.mlm(device=device)
            if name is None
            else load_model(name, task="masked-lm", device=device)
        )
        text = (
            demo.corpus()
            if source is None
            else load_data(source, text=text_col or "text", task="masked-lm")
        )
        return model, text
    if task == "image-classification" or (
        task == "auto" and name is None and source is not None and _is_images(source)
    ):
        return _image_task(name, source, labels, label_col, device)
    if source is None:
        data = demo.data()
    else:
        from labkit.data import load_data

        data = load_data(
            source,
            text=text_col or "text",
            label=label_col or "label",
            labels=labels,
            task="classification",
        )
    if name is None:
        model = demo.model(device=device)
    else:
        from labkit.model import load_model

        model = load_model(name, labels=labels or list(data.labels), device=device)
    return model, data


def _is_images(source: str) -> bool:
    from labkit.vision.data import is_image_source

    return is_image_source(source)


def _image_task(
    name: str | None, source: str | None, labels: Any, label_col: str | None, device: str
) -> tuple[Any, Any]:
    """An image classifier and its images: the demo ViT on the MNIST digits by default."""
    from labkit import demo
    from labkit.data import load_data
    from labkit.model import load_model

    if source is None:
        images = demo.images()
    else:
        images = load_data(
            source, label=label_col or "label", labels=labels, task="image-classification"
        )
    if name is None:
        if source is not None:
            from labkit._errors import ConfigError

            raise ConfigError(
                "the offline ViT (no --model) is sized for the 28x28 MNIST digits: give "
                "--model for your images (a hub name such as google/vit-base-patch16-224, or a "
                "folder), or leave --data out."
            )
        return demo.vit(device=device), images
    model = load_model(name, task="image-classification", labels=list(images.labels), device=device)
    return model, images


def _task_of(name: str) -> str:
    """What ``load_model(name)`` would load, read from its config alone (no weights)."""
    from transformers import AutoConfig

    from labkit.model import resolve_task

    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(name))
    except (OSError, ValueError):
        return "classification"  # load_model says what is wrong with it
    return resolve_task("auto", config, None)


def _lm_data(source: str | None, text_col: str | None) -> Any:
    """A causal LM's data: the reviews as instructions by default, else a text column or
    prompt + response columns."""
    from labkit import demo

    if source is None:
        return demo.instructions()
    from labkit.data import load_data

    return load_data(source, text=text_col or "text", task="causal-lm")


def main(args: argparse.Namespace) -> int:
    from labkit._errors import ConfigError
    from labkit.train.finetune import FinetuneConfig, finetune

    opts = _options(args)
    export, summary = opts.pop("export", None), opts.pop("summary", None)
    overwrite = bool(opts.pop("overwrite", None))
    if export and not overwrite and os.path.exists(os.path.expanduser(export)):
        # said now, not after the training
        raise ConfigError(
            f"--export {export} already exists; pass --overwrite to replace it (replaced once "
            "the new export has passed its check), or give another folder."
        )
    unknown = sorted(
        set(opts)
        - _RUN_KEYS
        - {f for _, f, _, _ in _CONFIG_FLAGS}
        - set(FinetuneConfig.__dataclass_fields__)
    )
    if unknown:
        raise ConfigError(f"unknown option(s) in the config: {', '.join(unknown)}.")
    rank, world = _rank()
    say = print if rank == 0 else (lambda *a, **k: None)
    model, data = _load(opts)
    say(f"model: {model}\ndata:  {data}", flush=True)
    trainer_args = opts.pop("trainer_args")
    run = finetune(model, data, **opts, **trainer_args)
    try:
        while not run.wait(0.5).done:
            pass
    except KeyboardInterrupt:
        say(
            "labkit train: stopping after the current step (checkpoint first)...",
            file=sys.stderr,
            flush=True,
        )
        run.stop()
        run.wait()
        return 130
    say(f"status: {run.status}" + (f" ({run.error})" if run.error else ""))
    if run.evaluation is not None:
        say(f"validation: {run.evaluation}")
    say(f"checkpoint: {run.best_checkpoint}")
    if export and rank == 0 and run.status in ENDED_WELL:
        say(f"exported: {run.export(export, overwrite=overwrite)}")
    if summary:
        target = summary if rank == 0 else f"{summary}.rank{rank}"
        record = {
            "status": run.status,
            "error": run.error,
            "step": run.step,
            "total_steps": run.total_steps,
            "rank": rank,
            "world_size": world,
            "steps": run.history.column("step"),
            "loss": run.history.column("loss"),
            "metrics": run.metrics,
            "output_dir": run.output_dir,
            "checkpoints": run.checkpoints,
            "weights_digest": _digest(model),
        }
        Path(target).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 0 if run.status in ENDED_WELL else 1


def _toml() -> Any:
    """The TOML reader: the standard library's from Python 3.11, tomli before."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    from labkit._errors import ConfigError

    try:
        import tomli
    except ImportError:
        raise ConfigError(
            "reading a TOML --config on Python 3.10 needs tomli: pip install tomli "
            "(or pass the config as JSON)."
        ) from None
    return tomli
