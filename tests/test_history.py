"""``MetricHistory``'s two clocks: ``time`` is the wall clock (the ETA's pace), ``elapsed`` the
seconds since the run began (what a results table reads)."""

from __future__ import annotations

import json

import pytest

from labkit.events import EvalEnd, StepEnd, TrainEnd
from labkit.history import MetricHistory

T0 = 1_796_000_000.0  # a wall clock as time.time() gives it (2026)


def _step(step: int, at: float) -> StepEnd:
    return StepEnd(step=step, epoch=step / 10, loss=1.0, lr=1e-3, total_steps=10, time=at)


def test_elapsed_counts_from_the_marked_start_and_time_stays_the_wall_clock() -> None:
    h = MetricHistory()
    h.mark_start(T0)
    for s in (1, 2, 3):
        h.record(_step(s, T0 + 2.5 * s))
    assert h.start_time == T0
    assert h.column("time") == [T0 + 2.5, T0 + 5.0, T0 + 7.5]  # unchanged: the ETA's clock
    assert h.column("elapsed") == pytest.approx([2.5, 5.0, 7.5])  # the first step took 2.5 s
    assert h.last_step is not None and h.last_step["elapsed"] == pytest.approx(7.5)
    assert h.eta() == pytest.approx(7 * 2.5)


def test_without_a_start_elapsed_counts_from_the_first_event() -> None:
    h = MetricHistory()
    h.record(EvalEnd(step=0, metrics={"loss": 0.7}, time=T0))  # an evaluation before training
    h.record(_step(1, T0 + 1.0))
    h.record(_step(2, T0 + 3.0))
    assert h.start_time == T0
    assert h.column("elapsed") == pytest.approx([1.0, 3.0])


def test_steps_without_a_time_have_no_elapsed_time() -> None:
    h = MetricHistory()
    h.record(_step(1, 0.0))  # StepEnd's default: no time given
    h.record(_step(2, 0.0))
    assert h.start_time is None
    assert h.column("elapsed") == [None, None]


def test_to_dict_tells_the_wall_clock_from_the_elapsed_seconds() -> None:
    h = MetricHistory()
    h.mark_start(T0)
    h.record(_step(1, T0 + 0.25))
    h.record(TrainEnd(status="finished", step=1, time=T0 + 1.0))
    data = json.loads(json.dumps(h.to_dict()))  # JSON-ready
    assert data["start_time"] == T0
    assert data["steps"]["time"] == [T0 + 0.25]
    assert data["steps"]["elapsed"] == [0.25]


def test_the_console_names_the_run_and_times_it_from_its_start() -> None:
    import io

    from labkit.render.console import ConsoleProgress

    h, out = MetricHistory(), io.StringIO()
    h.subscribe(ConsoleProgress(out, history=h, name="tiny · LoRA r=8"))
    h.mark_start(T0)
    h.record(_step(1, T0 + 30.0))
    h.record(_step(2, T0 + 60.0))
    h.record(TrainEnd(status="stopped", step=2, time=T0 + 65.0))
    assert out.getvalue().splitlines()[-1] == "run tiny · LoRA r=8: stopped at step 2 in 01:05"


def test_the_console_prints_each_sample_generation_on_one_line() -> None:
    import io

    from labkit.events import Samples
    from labkit.render.console import ConsoleProgress

    out = io.StringIO()
    ConsoleProgress(out)(
        Samples(
            step=20,
            prompts=("Review: a fine film\nIs this review positive or negative?", "Hello"),
            texts=("positive\n", "line one\nline two"),
        )
    )
    lines = out.getvalue().splitlines()
    assert lines == [
        "  'Review: a fine film Is this review positive or negative?' -> 'positive'",
        "  'Hello' -> 'line one line two'",
    ]
