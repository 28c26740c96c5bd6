"""Steering one run from its kernel and from its folder at once: the two always agree."""

from __future__ import annotations

import time
from pathlib import Path

import labkit as lk
from labkit.runs.record import RECORD, RecordWriter, read_chunk


def _wait(pred, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _steps(run) -> int:
    return len(run.history)


def test_a_pause_from_the_kernel_is_resumed_from_the_folder_and_the_other_way(
    tiny_model, toy_data, tmp_path: Path
) -> None:
    run = lk.finetune(
        tiny_model,
        toy_data,
        max_steps=100_000,
        output_dir=tmp_path / "r",
        progress=False,
        eval_every=100_000,
    )
    try:
        _wait(lambda: run.step >= 2)
        folder = lk.load_run(run.output_dir)
        # paused here, resumed from another process (the sidebar, labkit runs --resume)
        run.pause()
        _wait(lambda: run.status == "paused")
        folder.refresh()
        assert folder.status == "paused"
        held = _steps(run)
        time.sleep(0.5)
        assert _steps(run) == held
        folder.resume()
        _wait(lambda: _steps(run) > held + 2)
        assert run.status == "running" and folder.status == "running"
        # paused from the folder, resumed here: a later request through the folder (a save)
        # must not bring the pause back
        folder.pause()
        _wait(lambda: run.status == "paused")
        run.resume()
        _wait(lambda: run.status == "running")
        folder.save()
        _wait(lambda: bool(run.checkpoints))
        moving = _steps(run)
        _wait(lambda: _steps(run) > moving + 2)
        assert run.status == "running"
        folder.refresh()
        assert folder.status == "running"
    finally:
        run.stop()
        run.wait()
    assert run.status == "stopped"


def test_a_run_after_one_killed_mid_line_has_a_readable_header(tmp_path: Path) -> None:
    first = RecordWriter(tmp_path, {"kind": "Run", "run_id": "first", "name": "first"})
    first.close()
    with open(tmp_path / RECORD, "a", encoding="utf-8") as f:
        f.write('{"kind":"StepEnd","step":3,"epo')  # the kill came in the middle of a line
    RecordWriter(tmp_path, {"kind": "Run", "run_id": "second", "name": "second"}).close()
    chunk = read_chunk(tmp_path / RECORD)
    headers = [x["run_id"] for x in chunk.items if isinstance(x, dict)]
    assert headers == ["first", "second"] and chunk.bad == 1
