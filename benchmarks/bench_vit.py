"""A Vision Transformer from scratch on the 5,000 offline MNIST digits, and an MLP beside it.

Rows:

1. ``lk.finetune(lk.demo.vit(), lk.demo.images(), **VIT_TRAINING)``: test accuracy (goal
   >= 0.90) and wall time from the call to the run's end (goal <= 300 s on 2 CPU cores).
2. a two-layer MLP (784 -> 256 -> 10, a plain ``torch.nn.Module``) through the same
   ``lk.finetune`` (same Run machinery, data and splits): test accuracy and wall time.
3. the 1-minute load average before each run: these machines are shared, and a busy one
   stretches the wall time (not the accuracy, which depends only on the steps).

Run: ``python benchmarks/bench_vit.py [--quick]`` (``--quick``: 2 epochs each, for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _row(figure: str, value: float, goal: str, unit: str) -> dict[str, Any]:
    return {
        "benchmark": "vit",
        "figure": figure,
        "value": round(value, 3),
        "baseline": None,
        "ratio": None,
        "goal": goal,
        "unit": unit,
    }


def _mlp() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )


def _train(model: Any, data: Any, out: str, **settings: Any) -> tuple[float, float, Any]:
    """(wall seconds from the call to the end, test accuracy, the run)."""
    import labkit as lk

    start = time.perf_counter()
    run = lk.finetune(model, data, output_dir=out, progress=False, **settings).wait()
    wall = time.perf_counter() - start
    if run.status != "finished":
        raise RuntimeError(f"the run ended {run.status}: {run.error}")
    return wall, run.model.evaluate(data).accuracy, run


def run(quick: bool = False) -> list[dict[str, Any]]:
    import labkit as lk
    from labkit.vision.demo import VIT_TRAINING

    data = lk.demo.images()
    settings = dict(VIT_TRAINING)
    if quick:
        settings["epochs"] = 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        wall, acc, vit_run = _train(lk.demo.vit(), data, os.path.join(tmp, "vit"), **settings)
        steps = vit_run.step
        rows += [
            _row("load average (1 min) before the ViT run", load, "-", "processes"),
            _row(f"ViT from scratch test accuracy ({steps} steps)", acc, ">= 0.90", "accuracy"),
            _row("ViT from scratch wall time (build to end)", wall, "<= 300", "s"),
        ]
        mlp_settings = {**settings, "lr": 1e-3}
        load = os.getloadavg()[0]
        wall, acc, _ = _train(_mlp(), data, os.path.join(tmp, "mlp"), **mlp_settings)
        rows += [
            _row("load average (1 min) before the MLP run", load, "-", "processes"),
            _row("two-layer MLP test accuracy (same epochs)", acc, "-", "accuracy"),
            _row("two-layer MLP wall time", wall, "-", "s"),
        ]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 epochs each (a smoke run)")
    a = p.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rows = run(quick=a.quick)
    width = 52
    print(f"{'figure':{width}} {'value':>10} {'goal':>10}  unit")
    for r in rows:
        print(f"{r['figure']:{width}} {r['value']!s:>10} {r['goal']!s:>10}  {r['unit']}")


if __name__ == "__main__":
    main()
