"""Causal-LM finetuning: labkit.finetune against plain HF Trainer; the instruction task's
generative accuracy before and after LoRA.

Rows:

1. LoRA throughput: ``labkit.finetune(lm, data, lora=True)`` vs plain ``transformers.Trainer``
   with the same model, adapter (``labkit.train.lora.lora_config``, same seed), tokenized rows
   (``labkit.lm.train.training_parts``), collator (``CausalLMCollator``), random sampler, steps,
   batch, max_length, learning rate, weight decay, clipping, fused AdamW and precision (fp32 on
   a CPU), in one process, the two sides alternating; median of the repeats (goal >= 0.98x).
   Per-step time is taken between the ends of the 2nd and the last step (the first carries
   one-time warm-up), identically on both sides.
2. The instruction task (``labkit.demo.instructions()``: Rotten Tomatoes snippets, "Review: ...
   Is this review positive or negative?" -> "positive"/"negative"): generative accuracy of
   ``labkit.demo.lm()`` on the first ``--test-rows`` test prompts before and after a LoRA run of
   ``--task-steps`` steps (batch 8, lr 1e-3 constant, max_length 96; report: expect a clear
   rise), with the run's wall time.

Run: ``python benchmarks/bench_lm_finetune.py [--quick] [--steps N] [--reps N] [--max-length N]
[--task-steps N] [--test-rows N] [--skip-task] [--device cpu]``, or through
``benchmarks/run_all.py --only lm_finetune [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH = 8
LR = 1e-3
DEVICE = "cpu"  # --device
# (steps, repeats, max_length, task steps, test rows): --quick, then the full size
SIZES = {True: (6, 2, 64, 24, 64), False: (30, 3, 128, 60, 486)}


def _row(figure: str, value: float, baseline: float | None, goal: str, unit: str) -> dict[str, Any]:
    ratio = value / baseline if baseline else None
    return {
        "benchmark": "lm_finetune",
        "figure": figure,
        "value": round(value, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
        "unit": unit,
    }


def unavailable() -> str | None:
    from importlib.util import find_spec

    if find_spec("gguf") is None:
        return "the offline LM needs the gguf package (pip install 'labkit[demo]')"
    return None


def _per_step(times: list[float]) -> float:
    return (times[-1] - times[1]) / (len(times) - 2)


def _fresh_lm():
    import labkit

    return labkit.demo.lm(device=DEVICE)


def _small_validation(data):
    """``data`` with 16 validation rows: the runs' one evaluation at the end stays short."""
    from datasets import DatasetDict

    from labkit.lm.data import LMData

    splits = dict(data.splits)
    splits["validation"] = data.validation.select(range(min(16, len(data.validation))))
    return LMData(splits=DatasetDict(splits), kind=data.kind, source=data.source)


def _labkit(data, steps: int, max_length: int, out: str) -> tuple[float, float]:
    """Seconds per step and the mean training loss."""
    import labkit

    run = labkit.finetune(
        _fresh_lm(),
        data,
        lora=True,
        max_steps=steps,
        batch_size=BATCH,
        lr=LR,
        max_length=max_length,
        group_by_length=False,  # a random sampler, as Trainer's
        eval_every=10**6,  # the one evaluation at the end, after the last timed step
        sample_prompts=(),
        output_dir=out,
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    return _per_step(run.history.column("time")), statistics.mean(run.history.column("loss"))


def _hf(data, steps: int, max_length: int, out: str) -> tuple[float, float]:
    """Plain Trainer over the same adapter, rows and collator; seconds per step and the mean
    training loss."""
    from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

    from labkit.lm.train import training_parts
    from labkit.train.lora import attach_lora

    model = _fresh_lm()
    parts = training_parts(model, data, max_length)
    set_seed(0)  # labkit seeds the adapter's initial weights the same way
    hf = attach_lora(model.hf, True)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if model.device.type == "cuda":  # labkit's per-step loss log syncs too
                import torch

                torch.cuda.synchronize()
            stamps.append(time.time())

    args = TrainingArguments(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        weight_decay=0.01,
        max_grad_norm=1.0,
        optim="adamw_torch_fused" if model.device.type in ("cpu", "cuda") else "adamw_torch",
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        eval_strategy="no",
        use_cpu=model.device.type == "cpu",
        seed=0,
        data_seed=0,
    )
    out_ = Trainer(
        model=hf,
        args=args,
        train_dataset=parts.train,
        processing_class=model.tokenizer,
        data_collator=parts.collator,
        callbacks=[Clock()],
    ).train()
    return _per_step(stamps), float(out_.training_loss)


def _task(data, steps: int, test_rows: int, max_length: int, out: str) -> list[dict[str, Any]]:
    import labkit
    from labkit.lm.instruct import generative_accuracy

    model = _fresh_lm()
    before = generative_accuracy(model, data, limit=test_rows)
    t0 = time.perf_counter()
    run = labkit.finetune(
        model,
        data,
        lora=True,
        max_steps=steps,
        batch_size=BATCH,
        lr=LR,
        schedule="constant",
        max_length=max_length,
        sample_prompts=(),
        output_dir=out,
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    wall = time.perf_counter() - t0
    after = generative_accuracy(model, data, limit=test_rows)
    where = f"{steps} LoRA steps of {BATCH}, {after.n} test prompts"
    return [
        _row(
            f"generative accuracy after vs before ({where})",
            after.accuracy,
            before.accuracy,
            "clear rise",
            "accuracy",
        ),
        _row(
            "  unparseable answers after vs before",
            after.unparseable,
            before.unparseable,
            "fewer",
            "answers",
        ),
        _row(f"  LoRA run wall time ({where})", wall, None, "-", "s"),
    ]


def run(
    quick: bool = True,
    *,
    steps: int | None = None,
    reps: int | None = None,
    max_length: int | None = None,
    task_steps: int | None = None,
    test_rows: int | None = None,
    task: bool = True,
) -> list[dict[str, Any]]:
    import labkit

    d_steps, d_reps, d_len, d_task, d_rows = SIZES[quick]
    steps, reps = steps or d_steps, reps or d_reps
    max_length = max_length or d_len
    data = _small_validation(labkit.demo.instructions())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = [], []
        for rep in range(reps):  # alternating, so a busy spell of the machine hits both
            ours.append(_labkit(data, steps, max_length, f"{tmp}/a{rep}"))
            theirs.append(_hf(data, steps, max_length, f"{tmp}/b{rep}"))
        rows.append(
            _row(
                f"LoRA samples/s: labkit.finetune vs plain HF Trainer, same setup "
                f"({steps} steps, max_length {max_length}, {reps} reps)",
                BATCH / statistics.median(t for t, _ in ours),
                BATCH / statistics.median(t for t, _ in theirs),
                ">= 0.98",
                "samples/s",
            )
        )
        rows.append(  # the same setup computes the same thing
            _row(
                "  mean training loss: labkit vs HF Trainer (same steps, same rows)",
                ours[0][1],
                theirs[0][1],
                "equal",
                "nats",
            )
        )
        if task:
            rows += _task(data, task_steps or d_task, test_rows or d_rows, 96, f"{tmp}/task")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (minutes on 2 cores)")
    p.add_argument("--steps", type=int, default=None, help="steps per throughput run")
    p.add_argument("--reps", type=int, default=None, help="throughput repeats per side")
    p.add_argument("--max-length", type=int, default=None, help="tokens per row (throughput)")
    p.add_argument("--task-steps", type=int, default=None, help="LoRA steps on the task")
    p.add_argument("--test-rows", type=int, default=None, help="test prompts asked")
    p.add_argument("--skip-task", action="store_true", help="leave out the accuracy rows")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
    a = p.parse_args()
    global DEVICE
    DEVICE = a.device
    rows = run(
        a.quick,
        steps=a.steps,
        reps=a.reps,
        max_length=a.max_length,
        task_steps=a.task_steps,
        test_rows=a.test_rows,
        task=not a.skip_task,
    )
    print(f"{'figure':86} {'value':>8} {'baseline':>9} {'ratio':>7} {'goal':>11}  unit")
    for r in rows:
        base = "" if r["baseline"] is None else r["baseline"]
        ratio = "" if r["ratio"] is None else r["ratio"]
        print(
            f"{r['figure']:86} {r['value']!s:>8} {base!s:>9} {ratio!s:>7} {r['goal']!s:>11}  "
            f"{r['unit']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
