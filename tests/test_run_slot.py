"""Two runs started in one process: the second waits for the first, and neither breaks.

accelerate's device state is process-wide and building a run's TrainingArguments resets it; two
runs training at once in one kernel used to fail the first with "AcceleratorState object has no
attribute distributed_type" (labkit.train.slot).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import labkit as lk
from labkit._errors import LabkitWarning


def _wait(pred, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _model(tiny_dirs):
    return lk.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")


def test_a_second_run_waits_for_the_first_and_both_finish(tiny_dirs, toy_data, tmp_path: Path):
    first = lk.finetune(
        _model(tiny_dirs), toy_data, max_steps=40, eval_every=20, output_dir=tmp_path / "a"
    )
    _wait(lambda: first.step >= 2)
    with pytest.warns(LabkitWarning, match="waits for .* to end before it trains"):
        second = lk.finetune(
            _model(tiny_dirs), toy_data, max_steps=10, eval_every=5, output_dir=tmp_path / "b"
        )
    assert first.status == "running" and second.status == "pending" and second.step == 0
    first.wait()
    second.wait()
    assert first.status == second.status == "finished", (first.error, second.error)
    assert len(first.history) == 40 and len(second.history) == 10
    assert first.evaluation is not None and second.evaluation is not None
    # the second's record starts when it trained, after the first's end
    assert lk.load_run(second.output_dir).status == "finished"


def test_a_waiting_run_stops_at_once_and_frees_its_model(tiny_dirs, toy_data, tmp_path: Path):
    first = lk.finetune(
        _model(tiny_dirs),
        toy_data,
        max_steps=100_000,
        eval_every=100_000,
        output_dir=tmp_path / "a",
    )
    try:
        _wait(lambda: first.step >= 1)
        waiting_model = _model(tiny_dirs)
        with pytest.warns(LabkitWarning):
            second = lk.finetune(waiting_model, toy_data, max_steps=10, output_dir=tmp_path / "b")
        second.stop()
        second.wait(timeout=10)
        assert second.status == "stopped" and second.step == 0 and not second.checkpoints
        assert first.status == "running"
    finally:
        first.stop()
        first.wait()
    assert first.status == "stopped"
    # the slot and the model are free again: the next run trains without waiting
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", LabkitWarning)
        third = lk.finetune(waiting_model, toy_data, max_steps=3, output_dir=tmp_path / "c")
    assert third.wait().status == "finished"


def test_a_run_whose_arguments_fail_gives_the_slot_back(tiny_dirs, toy_data, tmp_path: Path):
    with pytest.raises(lk.LabkitError, match="training arguments"):
        lk.finetune(
            _model(tiny_dirs),
            toy_data,
            max_steps=3,
            output_dir=tmp_path / "bad",
            lr_scheduler_type="bogus",
        )
    run = lk.finetune(_model(tiny_dirs), toy_data, max_steps=3, output_dir=tmp_path / "ok")
    assert run.wait().status == "finished"
