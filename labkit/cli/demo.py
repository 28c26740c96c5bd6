"""``labkit demo``: the main job on the embedded offline default.

Default model (all-MiniLM-L6-v2, new head) and data (Rotten Tomatoes snippets): evaluate on the
test split, finetune with LoRA (a few minutes on 2 CPU cores), evaluate again, print both and
where the checkpoint is. ``--eval-rows N`` evaluates on the first N texts of the validation and
test splits: with ``--max-steps`` a quick look (the evaluations are most of a short run).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from labkit.events import ENDED_WELL

HELP = "run the main job on the offline default model and data (no hub needed)"

EXAMPLES = 5
REPORT_TEXTS = 3  # test texts explained in the report
# Tuned on 2 CPU cores: LoRA on the attention projections + trained head and pooler,
# texts cut at 64 tokens (the snippets are short), two epochs.
DEMO: dict[str, Any] = {
    "lora_r": 8,
    "lr": 2e-3,
    "epochs": 2.0,
    "batch_size": 32,
    "max_length": 64,
    "warmup": 0.06,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--epochs", type=float, default=DEMO["epochs"], help="passes over the data")
    p.add_argument("--max-steps", type=int, default=None, help="steps instead of epochs")
    p.add_argument("--full", action="store_true", help="finetune all weights instead of LoRA")
    p.add_argument(
        "--eval-rows",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on the first N texts of the validation and test splits (default: all)",
    )
    p.add_argument("--output-dir", default=None, help="where checkpoints go")
    p.add_argument(
        "--report",
        default=None,
        help="where to write the HTML report (default: report.html in the run's folder)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no console progress bar",
    )


def main(args: argparse.Namespace) -> int:
    from labkit import demo
    from labkit._errors import ConfigError
    from labkit._utils.optional import require
    from labkit.train.finetune import finetune
    from labkit.train.lora import lora_config

    if args.eval_rows is not None and args.eval_rows < 1:
        raise ConfigError(
            f"--eval-rows must be 1 or more (or left out for all), got {args.eval_rows}."
        )
    # what the demo extra installs, checked before minutes of work rather than after them
    demo.model_path()
    if not args.no_report:
        require("captum.attr", extra="demo", feature="labkit demo's report (--no-report skips it)")
    t0 = time.perf_counter()
    data = demo.data()
    if args.eval_rows is not None:
        for split, rows in list(data.splits.items()):
            if split != "train":
                data.splits[split] = rows.select(range(min(args.eval_rows, len(rows))))
    print(f"data:  {data}")
    model = demo.model(device=args.device)
    print(f"model: {model}")
    before = model.evaluate(data, split="test")
    print(f"\nbefore finetuning (untrained head), test split: {before}")

    lora = False if args.full else lora_config(model.hf, r=DEMO["lora_r"])
    how = "full finetuning" if args.full else f"LoRA r={DEMO['lora_r']}"
    print(f"\nfinetuning ({how}) on {len(data.train):,} texts ...", flush=True)
    run = finetune(
        model,
        data,
        lora=lora,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=None if args.full else DEMO["lr"],
        batch_size=DEMO["batch_size"],
        max_length=DEMO["max_length"],
        warmup=DEMO["warmup"],
        output_dir=args.output_dir,
        progress=args.progress,
    )
    try:
        while not run.wait(0.5).done:
            pass
    except KeyboardInterrupt:
        run.stop()
        run.wait()
    print(f"run: {run.status}" + (f" ({run.error})" if run.error else ""))

    after = model.evaluate(data, split="test")
    print(f"\nbefore finetuning, test split: {before}")
    print(f"after finetuning,  test split: {after}")
    print(after.report)
    test = data.test
    assert test is not None  # demo.data() always has a test split
    sample = test.select(range(min(EXAMPLES, len(test))))
    print("\npredictions on test texts:")
    for p, gold in zip(model.predict(sample["text"]), sample["label"]):
        print(f"  {p.label:>9} {p.score:5.1%} (true: {data.labels[gold]:>8})  {p.text[:80]}")
    print(f"\ncheckpoint: {run.best_checkpoint}")
    if not args.no_report:
        import os

        from labkit.cli.demo_report import demo_report

        path = args.report or os.path.join(run.output_dir, "report.html")
        texts = list(sample["text"][:REPORT_TEXTS])
        wrote = demo_report(
            path,
            model=model,
            data=data,
            before=before,
            after=after,
            run=run,
            texts=texts,
            wall_seconds=time.perf_counter() - t0,
        )
        print(f"report: {wrote}")
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0 if run.status in ENDED_WELL else 1
