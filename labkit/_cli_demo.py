"""``labkit demo``: the main job on the embedded offline default."""

from __future__ import annotations

import argparse
import time

HELP = "run the main job on the offline default model and data (no hub needed)"

EXAMPLES = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")


def main(args: argparse.Namespace) -> int:
    from . import demo

    t0 = time.perf_counter()
    data = demo.data()
    print(f"data:  {data}")
    model = demo.model(device=args.device)
    print(f"model: {model}")
    before = model.evaluate(data, split="test")
    print(f"\nuntrained head, test split: {before}")
    print(before.report)
    sample = data.test.select(range(EXAMPLES))
    print("\npredictions on test texts:")
    for p, gold in zip(model.predict(sample["text"]), sample["label"]):
        print(f"  {p.label:>9} {p.score:5.1%} (true: {data.labels[gold]:>8})  {p.text[:80]}")
    print(f"\ndone in {time.perf_counter() - t0:.1f}s")
    return 0
