"""Issue #8 training figures: kill-during-save trials and checkpoints lost, resident memory over
a 2,000-step run with the live panel attached, and its steps/s.

1. SIGKILL trials: a fork server (tests/_hardening.py) trains a tiny GPT-2 classifier saving
   every step (keep 3), each trial resuming the last and killed at a random moment, often
   inside a checkpoint write. Lost = a checkpoint reported Saved that is gone (not rotated
   away) or a ``checkpoint-N`` folder that does not load (goal 0).
2. A 2,000-step run of the same tiny model on one CPU thread with a ``RunPanel`` and a
   kernel-less front end following it: RSS growth from step 200 to the end (goal: flat), and
   steps/s against the same run without a panel (measured one after the other).

Sizes: --quick 12 trials, 2,000 steps with the panel, 1,000 without; full 40 trials and
2,000 steps each. ``python benchmarks/bench_hardening.py [--quick]`` (about 1.5 / 3 minutes
on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "hardening"


def _row(
    figure: str, value: float, unit: str, goal: str, baseline: float | None = None
) -> dict[str, Any]:
    return {
        "benchmark": NAME,
        "figure": figure,
        "value": round(value, 3),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": round(value / baseline, 3) if baseline else None,
        "goal": goal,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tests import _hardening as h
    from tests import _tiny

    trials = 12 if quick else 40
    with tempfile.TemporaryDirectory(prefix="labkit-bench-hardening-") as tmp:
        root = Path(tmp)
        model_dir = _tiny.build("gpt2", root / "tiny" / "gpt2")
        with h.torch_threads(1):
            reports = h.kill_trials(model_dir, root / "kills", trials, seed=1)
        lost = {msg.split(":")[0] for r in reports for msg in r.lost}
        resumed = sum(r.first_step == r.expected_first for r in reports[1:])
        live = h.long_run(model_dir, root / "live", steps=2000, warm=200, panel=True)
        bare = h.long_run(
            model_dir, root / "bare", steps=1000 if quick else 2000, warm=200, panel=False
        )
    complete = live.steps == list(range(1, 2001)) and live.client_steps == live.steps
    return [
        _row("SIGKILL trials (each resumed from the newest checkpoint)", trials, "trials", ""),
        _row(
            "kills that landed inside a checkpoint write",
            sum(r.during_save for r in reports),
            "trials",
            "most",
        ),
        _row("checkpoints lost", len(lost), "checkpoints", "0"),
        _row(
            "resumes that continued at newest checkpoint + 1",
            resumed,
            "trials",
            f"{trials - 1} (all)",
        ),
        _row("RSS growth, step 200 -> 2,000, panel attached", live.growth_mb, "MB", "< 50 (flat)"),
        _row("RSS at step 200 (whole process)", live.rss_mb[200], "MB", "(for scale)"),
        _row(
            "history and panel rows complete after 2,000 steps",
            float(complete),
            "bool",
            "1",
        ),
        _row(
            "steps/s with the panel attached (baseline: no panel)",
            live.steps_per_s,
            "steps/s",
            "ratio >= 0.95",
            baseline=bare.steps_per_s,
        ),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import print_table

    print_table(run(quick="--quick" in sys.argv))
