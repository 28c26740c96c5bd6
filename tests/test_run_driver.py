"""The engine's side of a run (``RunDriver``): how a run's state moves, without a model.

The real engine is covered end to end by test_finetune.py; here each invariant of
``labkit.train.run`` is driven directly and fast.
"""

from __future__ import annotations

import threading
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from labkit.events import ENDED_STATUSES, REQUESTED_STATUSES, Status, StepEnd, TrainEnd
from labkit.train.config import FinetuneConfig
from labkit.train.run import Run, RunDriver


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def on_event(self, event: object, control: object) -> None:
        self.events.append(event)


def _driver(tmp_path: Path, *callbacks: object) -> tuple[RunDriver, threading.Lock]:
    lock = threading.Lock()
    lock.acquire()  # held by labkit.finetune while the run trains
    model = SimpleNamespace(name="m", device="cpu", release_training=lock.release)
    run = Run(model, FinetuneConfig(), str(tmp_path), callbacks)  # type: ignore[arg-type]
    return RunDriver(run), lock


def _steps(driver: RunDriver, n: int, total: int | None) -> None:
    for s in range(1, n + 1):
        driver.emit(StepEnd(step=s, epoch=0.0, loss=1.0, lr=0.1, total_steps=total))


def test_ended_statuses_are_statuses() -> None:
    live = {"pending", "running", "pausing", "paused", "stopping"}
    assert set(typing.get_args(Status)) - ENDED_STATUSES == live
    assert live > REQUESTED_STATUSES


def test_a_run_that_returns_finishes_and_emits_one_train_end(tmp_path: Path) -> None:
    seen = Recorder()
    driver, lock = _driver(tmp_path, seen)
    run = driver.run
    during: list[tuple[str, int, int | None]] = []

    def job(d: RunDriver) -> None:
        d.set_status("running")
        _steps(d, 4, total=4)
        during.append((run.status, run.step, run.total_steps))

    assert run.status == "pending" and not run.done
    driver.start(job)
    run.wait(10)
    assert during == [("running", 4, 4)]  # a StepEnd moves run.step
    assert (run.status, run.error, run.done, lock.locked()) == ("finished", None, True, False)
    ends = [e for e in seen.events if isinstance(e, TrainEnd)]
    assert ends == [run.history.end] and ends[0].status == "finished" and ends[0].step == 4


def test_a_stop_before_the_last_step_is_stopped(tmp_path: Path) -> None:
    driver, _ = _driver(tmp_path)

    def job(d: RunDriver) -> None:
        d.progress(2, 10)
        d.run.control.stop()

    driver.start(job)
    assert driver.run.wait(10).status == "stopped" and driver.run.step == 2


def test_an_engine_end_sticks_and_later_statuses_are_ignored(tmp_path: Path) -> None:
    driver, _ = _driver(tmp_path)

    def job(d: RunDriver) -> None:
        d.end("diverged", "the training loss became nan at step 3")
        d.set_status("running")  # e.g. the bridge's resume after a pause: too late

    driver.start(job)
    run = driver.run.wait(10)
    assert (run.status, run.error) == ("diverged", "the training loss became nan at step 3")
    assert run.history.end is not None and run.history.end.status == "diverged"
    driver.set_status("paused")
    assert run.status == "diverged"


def test_a_job_that_raises_fails_and_wait_reraises(tmp_path: Path) -> None:
    driver, lock = _driver(tmp_path)

    def job(d: RunDriver) -> None:
        raise ValueError("bad batch")

    driver.start(job)
    with pytest.raises(ValueError, match="bad batch"):
        driver.run.wait(10)
    run = driver.run
    assert (run.status, run.error, lock.locked()) == ("failed", "ValueError: bad batch", False)
    assert run.history.end is not None and run.history.end.error == "ValueError: bad batch"
