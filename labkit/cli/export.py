"""``labkit export SOURCE OUT [--onnx]``: write a model folder for deployment, checked on the way.

SOURCE is a model folder (a checkpoint, an export, a hub name) or a run's output folder (its
best checkpoint is taken, else its latest). OUT gets a safetensors folder that transformers
loads as is (LoRA merged), or with ``--onnx`` an ONNX graph folder that onnxruntime runs. Either
way the written folder is loaded back and compared with the model before it counts; the worst
probability difference and the size are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "export a model or a run's best checkpoint (safetensors, or --onnx), checked for parity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="a model folder, a hub name or a run's folder")
    p.add_argument("out", metavar="OUT", help="the folder to write (must not exist)")
    p.add_argument("--onnx", action="store_true", help="write an ONNX graph for onnxruntime")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--labels", default=None, help="comma-separated label names")
    p.add_argument(
        "--device", default="cpu", help="where the model loads for the export (default: cpu)"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest probability difference the check accepts (default 1e-4)",
    )


def source_folder(source: str) -> str:
    """The model to export: a run's best (else latest) checkpoint when ``source`` is a run's
    folder (one with a record, or only checkpoint-N folders), else ``source`` itself."""
    from labkit._errors import InputError
    from labkit._utils import checkpoint as _checkpoint
    from labkit.runs.record import RECORD

    folder = Path(source).expanduser()
    if not (folder / RECORD).is_file():
        model_files = ("config.json", "adapter_config.json")
        if folder.is_dir() and not any((folder / f).exists() for f in model_files):
            return _checkpoint.latest(folder) or source  # a run from before records
        return source
    from labkit.runs.loaded import load_run

    best = load_run(folder).best_checkpoint
    if best is None:
        raise InputError(
            f"{source!r} is a labkit run with no complete checkpoint yet; wait for its first "
            "save (or run.save()), or give a model folder."
        )
    return best


def main(args: argparse.Namespace) -> int:
    from labkit._errors import ConfigError
    from labkit.model import load_model

    if Path(args.out).expanduser().exists() and not args.overwrite:  # before loading anything
        raise ConfigError(f"{args.out} already exists; pass --overwrite to replace it.")
    folder = source_folder(args.source)
    if folder != args.source:
        print(f"checkpoint: {folder}", flush=True)
    labels = args.labels.split(",") if args.labels else None
    model = load_model(folder, labels=labels, device=args.device)
    print(f"model: {model}", flush=True)
    done: Any
    if args.onnx:
        from labkit.compress.onnx import export_onnx

        done = export_onnx(
            model, args.out, overwrite=args.overwrite, opset=args.opset, tolerance=args.tolerance
        )
    else:
        from labkit.train.run import _export

        done = _export(
            model,
            Path(args.out),
            merge_lora=True,
            overwrite=args.overwrite,
            tolerance=args.tolerance,
        )
    print(f"exported: {done}")
    print(
        f"parity: max |p - p_torch| = {done.max_prob_diff:.1e} on {done.texts_checked} texts "
        f"(tolerance {args.tolerance:.0e})"
    )
    print(f"size: {done.size_bytes / 1e6:.1f} MB, {done.seconds:.1f} s")
    return 0
