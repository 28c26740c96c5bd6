"""On a CUDA GPU: placement, mixed precision, GPU memory, and the finetune/explain benchmarks.

    python benchmarks/bench_gpu.py                    # every part
    python benchmarks/bench_gpu.py --only precision   # or finetune, explain
    python benchmarks/bench_gpu.py --quick

Rows of its own (the offline default, all-MiniLM-L6-v2, on the demo data; one epoch = 243
steps of 16):

1. placement: ``labkit.demo.model()`` lands on cuda with float32 weights.
2. precision: ``labkit.finetune`` defaults (float32 weights, bf16 autocast where the tensor cores
   have it) vs ``precision="fp32"``: samples/s and test accuracy after one epoch, 3 seeds.
3. pure bf16 weights (``dtype="bfloat16"``, what ``dtype="auto"`` gave before) vs the
   default float32 master weights: test accuracy after one epoch, same seeds. This is why
   weights stay float32: AdamW updates of ``lr * grad`` fall below bf16's resolution.
4. peak GPU memory (``torch.cuda.max_memory_allocated`` over the run) of one epoch: full
   finetune, LoRA, LoRA over a bf16 base.
5. ``--only autocast``: milliseconds per training step of a plain torch loop (fused AdamW,
   random weights and ids) in fp32, fp32 with TF32 matmuls, and bf16 autocast, for the
   MiniLM and BERT-base shapes at three batch sizes. Where autocast pays: the demo's steps
   (16 texts of ~30 tokens on MiniLM) are too small for it, and launch-bound.

``--only finetune`` runs ``bench_finetune.py`` on the GPU; ``--only explain`` runs
``bench_explain.py`` (it uses the device labkit picks).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_explain, bench_finetune
from benchmarks.bench_finetune import BATCH, _labkit, _row

EPOCH = 243  # steps of 16 over the demo's train split
PARTS = ("precision", "autocast", "explain", "finetune")


def _environment() -> str:
    import importlib.metadata as md

    import torch

    versions = []
    for name in ("torch", "transformers", "peft", "captum", "accelerate"):
        try:
            versions.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            versions.append(f"{name} missing")
    props = torch.cuda.get_device_properties(0)
    return (
        f"{torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB, "
        f"sm_{props.major}{props.minor}); " + ", ".join(versions)
    )


def precision_rows(quick: bool) -> list[dict[str, Any]]:
    import torch

    import labkit
    from labkit._utils.device import native_bf16

    model = labkit.demo.model()
    assert model.device.type == "cuda", model.device
    rows = [
        _row(
            "gpu",
            f"placement: labkit.demo.model() -> {model.device}, {str(model.dtype)[6:]} weights",
            1.0 if model.dtype == torch.float32 else 0.0,
            None,
            "cuda, float32",
            "ok",
        )
    ]
    auto = "bf16" if native_bf16(model.device) else "fp16"
    del model
    steps = 60 if quick else EPOCH
    seeds = (0,) if quick else (0, 1, 2)
    sides = {
        f"auto ({auto} autocast)": {},
        "fp32": {"precision": "fp32"},
        "bf16 weights": {"dtype": "bfloat16"},
        "LoRA": {"lora": True},
        "LoRA, bf16 base": {"lora": True, "dtype": "bfloat16"},
    }
    got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for k, (name, kw) in enumerate(sides.items()):
                got[name].append(_epoch(seed, steps, f"{tmp}/{seed}-{k}", **dict(kw)))

    def mean(name: str, i: int) -> float:
        return statistics.mean(x[i] for x in got[name])

    def spread(name: str) -> str:
        accs = [x[1] for x in got[name]]
        return f"sd {statistics.stdev(accs):.3f}" if len(accs) > 1 else "1 seed"

    a, f, b = f"auto ({auto} autocast)", "fp32", "bf16 weights"
    n = f"{steps} steps, {len(seeds)} seed(s)"
    rows += [
        _row(
            "gpu",
            f"finetune samples/s: {a} vs fp32 ({n})",
            BATCH / mean(a, 0),
            BATCH / mean(f, 0),
            "(reported)",
            "samples/s",
        ),
        _row(
            "gpu",
            f"  test accuracy: {a} vs fp32 ({spread(a)} / {spread(f)})",
            mean(a, 1),
            mean(f, 1),
            "equal",
            "accuracy",
        ),
        _row(
            "gpu",
            f"  test accuracy: float32 master weights ({a}) vs bf16 weights ({spread(b)})",
            mean(a, 1),
            mean(b, 1),
            ">= 1",
            "accuracy",
        ),
    ]
    for name in sides:
        rows.append(
            _row(
                "gpu",
                f"peak GPU memory of finetune, {name} (test accuracy {mean(name, 1):.3f})",
                mean(name, 2) / 2**20,
                None,
                "-",
                "MiB",
            )
        )
    return rows


def _epoch(seed: int, steps: int, out: str, **kw: Any) -> tuple[float, float, int]:
    """(seconds per step, test accuracy, peak GPU bytes) of one labkit.finetune run."""
    import torch
    from transformers import set_seed

    import labkit

    set_seed(seed)
    dtype = kw.pop("dtype", "auto")
    model = labkit.demo.model(device="cuda", dtype=dtype, seed=seed)
    data = labkit.demo.data()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    per_step, run = _labkit(model, data, steps, out, seed=seed, **kw)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    accuracy = model.evaluate(data, split="test").accuracy
    del model, run
    torch.cuda.empty_cache()
    return per_step, accuracy, peak


def _step_ms(config: Any, batch: int, seq: int, mode: str, steps: int = 30) -> float:
    """Milliseconds per training step (fp32, tf32 or bf16 autocast), after 5 warm-up steps."""
    import time

    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(config).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(1000, config.vocab_size, (batch, seq), device="cuda")
    labels = torch.randint(0, 2, (batch,), device="cuda")
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    stamps = []
    try:
        for _ in range(steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "bf16"):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            loss.item()  # the step is over when the GPU is done
            stamps.append(time.perf_counter())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return (stamps[-1] - stamps[4]) / (steps - 5) * 1000


def autocast_rows() -> list[dict[str, Any]]:
    from transformers import BertConfig

    shapes = {
        "MiniLM": BertConfig(
            hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
        ),
        "BERT-base": BertConfig(),
    }
    rows = []
    for name, config in shapes.items():
        for batch, seq in ((16, 32), (32, 128), (64, 256)):
            ms = {mode: _step_ms(config, batch, seq, mode) for mode in ("fp32", "tf32", "bf16")}
            rows.append(
                _row(
                    "gpu",
                    f"train step, {name} shape, {batch} x {seq} tokens: bf16 autocast vs fp32 "
                    f"(tf32 {ms['tf32']:.1f} ms)",
                    ms["bf16"],
                    ms["fp32"],
                    "(reported)",
                    "ms",
                )
            )
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    bench_finetune.print_rows(rows, width=78)


def unavailable() -> str | None:
    """Why this benchmark cannot run here (run_all.py asks), or None."""
    import torch

    return None if torch.cuda.is_available() else "torch sees no CUDA device here"


def run(
    quick: bool = False, parts: tuple[str, ...] = ("precision", "autocast", "finetune")
) -> list[dict[str, Any]]:
    """The rows of ``parts``. run_all.py leaves out "explain": bench_explain.py runs there
    already, on the device labkit picks."""
    warnings.simplefilter("ignore")
    rows: list[dict[str, Any]] = []
    for part in parts:
        if part == "precision":
            rows += precision_rows(quick)
        elif part == "autocast":
            rows += autocast_rows()
        elif part == "explain":
            rows += bench_explain.run(quick=quick)
        else:
            bench_finetune.DEVICE = "cuda"
            rows += bench_finetune.run(quick=quick, demo=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=PARTS, default=None)
    a = p.parse_args()
    why = unavailable()
    if why:
        sys.exit(f"bench_gpu needs a CUDA device: {why}.")
    print(_environment(), flush=True)
    for part in [a.only] if a.only else PARTS:
        _print(run(a.quick, (part,)))  # each part's table as soon as it is done


if __name__ == "__main__":
    main()
