"""Finetuning throughput: labkit.finetune against plain HF Trainer and the seed recipe; labkit demo.

Rows (ratios measured within one run, the two sides interleaved):

1. bridge overhead: ``labkit.finetune`` vs plain ``transformers.Trainer`` with the same model,
   tokenized data, collator, random sampler, batch and precision (goal >= 0.98). ``Trainer``
   runs on the main thread and labkit on its own, after the main thread has trained (as in a
   notebook, where the kernel's thread has loaded and evaluated the model): that is what made
   labkit's steps 15% slower until the caller's idle OpenMP pool was freed (labkit/_utils/threads.py).
   Median of interleaved repeats.
2. defaults: ``labkit.finetune`` defaults (length-grouped batches, dynamic padding, fused AdamW,
   sdpa) vs ``Trainer`` defaults (tokenize with truncation, default collator, random batches)
   on the demo data; samples/s and test accuracy after the same steps (goal >= 1.2x).
3. seed recipe: every text padded to the model's max_length, fp32, a plain AdamW loop
   (goal >= 5x samples/s). Its accuracy is not trained to convergence here (minutes per step
   on 2 cores); padding with an attention mask does not change the computed function.
4. ``labkit demo`` as a subprocess: wall time (goal < 300 s), test accuracy (goal >= 0.80) and
   peak RSS.

Per-step time is taken between the ends of the 2nd and the last step (the first step carries
one-time warm-up), identically for every side. Run: ``python benchmarks/bench_finetune.py
[--quick] [--skip-demo] [--device auto]``. The device is the CPU unless ``--device`` names
another (``auto``: what labkit picks). On a GPU both sides of row 1 use the precision labkit
picks (bf16 autocast on Ampere and later); row 2's HF defaults are HF's own (fp32).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH = 16
DEVICE = "cpu"  # --device


def _row(
    benchmark: str, figure: str, value: float, baseline: float | None, goal: str, unit: str
) -> dict[str, Any]:
    ratio = value / baseline if baseline else None
    return {
        "benchmark": benchmark,
        "figure": figure,
        "value": round(value, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
        "unit": unit,
    }


def _per_step(times: list[float]) -> float:
    return (times[-1] - times[1]) / (len(times) - 2)


def _fresh_model(seed: int = 0):
    from transformers import set_seed

    import labkit

    set_seed(seed)  # the new head starts the same on every side
    return labkit.demo.model(device=DEVICE)


def _hf_trainer(
    model, data, steps: int, *, labkit_prep: bool, out: str, seed: int = 0
) -> tuple[float, Any]:
    """Plain Trainer; returns (seconds per step, trainer)."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    from labkit.train.finetune import FinetuneConfig, _precision, _tokenize

    tok = model.tokenizer
    # "same setup" includes labkit's precision; HF's defaults are fp32 everywhere
    precision = _precision(FinetuneConfig(), model.device) if labkit_prep else "fp32"
    if labkit_prep:  # the very dataset labkit builds
        train, _ = _tokenize(model, data.train, data.labels, model.max_length)
    else:  # the tutorial recipe: tokenize with truncation, let the default collator pad
        train = data.train.map(lambda b: tok(b["text"], truncation=True), batched=True)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if model.device.type == "cuda":  # labkit's per-step loss log syncs too
                import torch

                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    args = TrainingArguments(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=5e-5,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        use_cpu=model.device.type == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        seed=seed,
        **({"weight_decay": 0.01} if labkit_prep else {}),
    )
    trainer = Trainer(
        model=model.hf,
        args=args,
        train_dataset=train,
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok) if labkit_prep else None,
        callbacks=[Clock()],
    )
    trainer.train()
    return _per_step(stamps), trainer


def _labkit(model, data, steps: int, out: str, **kw: Any) -> tuple[float, Any]:
    import labkit

    run = labkit.finetune(
        model,
        data,
        max_steps=steps,
        batch_size=BATCH,
        output_dir=out,
        progress=False,
        save_every=None,
        **kw,
    ).wait()
    assert run.status == "finished", run.error
    return _per_step(run.history.column("time")), run


def _seed_recipe(model, data, steps: int) -> float:
    """Every text padded to max_length, fp32, torch AdamW, a plain loop."""
    import torch

    tok, hf = model.tokenizer, model.hf
    opt = torch.optim.AdamW(hf.parameters(), lr=5e-5)
    texts, labels = data.train["text"], data.train["label"]
    hf.train()
    stamps = []
    for i in range(steps):
        batch = slice(i * BATCH, (i + 1) * BATCH)
        enc = tok(
            texts[batch],
            padding="max_length",
            truncation=True,
            max_length=model.max_length,
            return_tensors="pt",
        )
        enc = {k: v.to(model.device) for k, v in enc.items()}
        out = hf(**enc, labels=torch.tensor(labels[batch], device=model.device))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        if model.device.type == "cuda":
            torch.cuda.synchronize()  # the step is done when the GPU is, not when it is queued
        stamps.append(time.perf_counter())
    hf.eval()
    return _per_step(stamps)


# The child reports its own high-water mark (VmHWM) as it exits. Neither RUSAGE_CHILDREN (the
# largest child ever reaped) nor wait4's ru_maxrss will do: Linux carries the RSS peak across
# fork and exec, so a child started by a benchmark that has trained models reports the
# benchmark's own peak (7 GB here for a demo that peaks near 1 GB).
_DEMO = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    try:\n"
    "        line = next(x for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
    "        print('LABKIT_VMHWM_KB', line.split()[1], file=sys.stderr)\n"
    "    except OSError:\n"
    "        pass\n"
    "atexit.register(hwm)\n"
    "from labkit.cli import main\n"
    "sys.argv = ['labkit', 'demo', '--no-progress', '--device', sys.argv[1]]\n"
    "main()\n"
)


def _demo() -> tuple[float, float, float]:
    """Run ``labkit demo`` in a subprocess: wall time, test accuracy, its own peak RSS (MB)."""
    import os
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _DEMO, "auto" if DEVICE == "auto" else DEVICE],
            stdout=out,
            stderr=err,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(stderr[-2000:])
    found = re.search(r"after finetuning,\s+test split: accuracy=([0-9.]+)", stdout)
    accuracy = float(found.group(1)) if found else float("nan")
    hwm = re.search(r"LABKIT_VMHWM_KB (\d+)", stderr)
    return wall, accuracy, (int(hwm.group(1)) if hwm else usage.ru_maxrss) / 1024


def run(quick: bool = True, demo: bool = True) -> list[dict[str, Any]]:
    import labkit

    data = labkit.demo.data()
    steps, reps = (20, 3) if quick else (40, 5)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # 1. bridge overhead: same everything, interleaved
        ours, theirs = [], []
        for rep in range(reps):
            ours.append(
                _labkit(
                    _fresh_model(),
                    data,
                    steps,
                    f"{tmp}/a{rep}",
                    group_by_length=False,
                    weight_decay=0.01,
                )[0]
            )
            theirs.append(
                _hf_trainer(_fresh_model(), data, steps, labkit_prep=True, out=f"{tmp}/b{rep}")[0]
            )
        sps, base = BATCH / statistics.median(ours), BATCH / statistics.median(theirs)
        rows.append(
            _row(
                "finetune",
                "labkit.finetune vs plain HF Trainer, same setup",
                sps,
                base,
                ">= 0.98",
                "samples/s",
            )
        )

        # 2. defaults on the demo data (same steps), with test accuracy; seeds vary the head's
        # initialisation and the data order alike on both sides
        d_steps = 60 if quick else 243  # 243 steps of 16 = one epoch
        seeds = (0,) if quick else (0, 1, 2)
        t_ours, t_hf, acc_ours, acc_hf = [], [], [], []
        for seed in seeds:
            t, run_ = _labkit(_fresh_model(seed), data, d_steps, f"{tmp}/c{seed}", seed=seed)
            t_ours.append(t)
            acc_ours.append(run_.model.evaluate(data, split="test").accuracy)
            hf_model = _fresh_model(seed)
            t_hf.append(
                _hf_trainer(
                    hf_model, data, d_steps, labkit_prep=False, out=f"{tmp}/d{seed}", seed=seed
                )[0]
            )
            acc_hf.append(hf_model.evaluate(data, split="test").accuracy)
        n = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
        rows.append(
            _row(
                "finetune",
                f"labkit defaults vs HF Trainer defaults ({d_steps} steps, {n})",
                BATCH / statistics.mean(t_ours),
                BATCH / statistics.mean(t_hf),
                ">= 1.2",
                "samples/s",
            )
        )
        spread = (
            f", sd {statistics.stdev(acc_ours):.3f} / {statistics.stdev(acc_hf):.3f}"
            if len(seeds) > 1
            else ""
        )
        rows.append(
            _row(
                "finetune",
                f"  mean test accuracy after those steps: labkit vs HF{spread}",
                statistics.mean(acc_ours),
                statistics.mean(acc_hf),
                "equal",
                "accuracy",
            )
        )

        # 3. seed recipe: pad to max_length, fp32, plain AdamW loop
        t_seed = _seed_recipe(_fresh_model(), data, 4 if quick else 8)
        rows.append(
            _row(
                "finetune",
                "labkit defaults vs seed recipe (pad to 512, plain loop)",
                BATCH / statistics.mean(t_ours),
                BATCH / t_seed,
                ">= 5",
                "samples/s",
            )
        )

    if demo:
        wall, accuracy, rss = _demo()
        rows.append(_row("finetune", "labkit demo wall time", wall, None, "< 300", "s"))
        rows.append(
            _row("finetune", "labkit demo test accuracy", accuracy, None, ">= 0.80", "accuracy")
        )
        rows.append(_row("finetune", "labkit demo peak RSS", rss, None, "-", "MB"))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps (a few minutes on 2 cores)")
    p.add_argument("--skip-demo", action="store_true", help="leave out the labkit demo rows")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
    a = p.parse_args()
    global DEVICE
    DEVICE = a.device
    print_rows(run(quick=a.quick, demo=not a.skip_demo))


def print_rows(rows: list[dict[str, Any]], width: int = 62) -> None:
    """One line per row: figure, value, baseline, ratio, goal, unit."""
    print(f"{'figure':{width}} {'value':>10} {'baseline':>10} {'ratio':>7} {'goal':>14}  unit")
    for r in rows:
        base = "" if r["baseline"] is None else r["baseline"]
        ratio = "" if r["ratio"] is None else r["ratio"]
        print(
            f"{r['figure']:{width}} {r['value']!s:>10} {base!s:>10} {ratio!s:>7} "
            f"{r['goal']!s:>14}  {r['unit']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
