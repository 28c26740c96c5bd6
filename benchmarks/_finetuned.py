"""The finetuned offline default every compression benchmark starts from, trained once.

``finetuned()`` returns the folder of all-MiniLM-L6-v2 finetuned on ``labkit.demo.data()`` with
``labkit demo``'s recipe (LoRA r=8 merged into the weights, two epochs, texts cut at 64 tokens),
written under ``labkit.demo.cache_dir()/bench-finetuned`` the first time (a few minutes on 2 CPU
cores) and read back after. ``--force`` trains it again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def folder() -> Path:
    from labkit import demo

    return demo.cache_dir() / "bench-finetuned"


def finetuned(*, force: bool = False, quiet: bool = False) -> Path:
    """The finetuned model's folder (``labkit.load_model`` reads it)."""
    import labkit as lk
    from labkit.cli.demo import DEMO
    from labkit.train.lora import lora_config

    out = folder()
    if (out / "config.json").exists() and not force:
        return out
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    data = lk.demo.data()
    model = lk.demo.model(device="cpu")
    run = lk.finetune(
        model,
        data,
        lora=lora_config(model.hf, r=DEMO["lora_r"]),
        epochs=DEMO["epochs"],
        lr=DEMO["lr"],
        batch_size=DEMO["batch_size"],
        max_length=DEMO["max_length"],
        warmup=DEMO["warmup"],
        output_dir=out.with_name("bench-finetuned-run"),
        progress=not quiet,
    )
    run.wait()
    if run.status != "finished":
        sys.exit(f"the benchmark model did not train: {run.status} {run.error}")
    run.export(out)
    acc = lk.load_model(out, device="cpu").evaluate(data, split="test").accuracy
    if not quiet:
        print(f"trained in {time.perf_counter() - t0:.0f} s; test accuracy {acc:.3f}; {out}")
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="train it again")
    print(finetuned(force=p.parse_args().force))
