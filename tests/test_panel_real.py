"""The panel on a real ``labkit.finetune`` run of a tiny model (no browser)."""

from __future__ import annotations

import pathlib

import pytest

import labkit
from labkit.ui.panel import view_for_run
from tests._jupyter import WireTap
from tests.test_panel import Client, wait_for

pytestmark = pytest.mark.slow


def test_panel_follows_a_real_run_to_its_end(tiny_model, toy_data, tmp_path: pathlib.Path) -> None:
    run = labkit.finetune(tiny_model, toy_data, epochs=2, batch_size=8, output_dir=tmp_path)
    panel = view_for_run(run)
    tap = WireTap(panel)
    client = Client(tap)
    client.sync()
    run.wait()
    wait_for(lambda: panel._thread is None, timeout=30, what="the panel to see the end")
    client.pump()
    assert client.steps == [float(s) for s in run.history.column("step")]
    assert len(client.evals) == len(run.history.evals) >= 1
    assert (panel.status, panel.step, panel.total_steps) == ("finished", run.step, run.step)
    assert panel.metrics == pytest.approx(run.metrics)
    assert panel.checkpoints == run.checkpoints and panel.checkpoints
    assert "data:image/svg+xml" in run._repr_html_() and "finished" in run._repr_html_()


def test_stop_from_the_panel_saves_and_stops(tiny_model, toy_data, tmp_path: pathlib.Path) -> None:
    run = labkit.finetune(
        tiny_model, toy_data, max_steps=100_000, batch_size=8, output_dir=tmp_path
    )
    panel = view_for_run(run)
    tap = WireTap(panel)
    wait_for(lambda: panel.rows >= 3, timeout=60, what="a few steps")
    tap.from_front_end({"type": "control", "action": "pause"})
    wait_for(lambda: panel.status == "paused", timeout=30, what="the run to pause")
    tap.from_front_end({"type": "control", "action": "save"})  # save while paused
    wait_for(lambda: len(run.checkpoints) >= 1, timeout=30, what="a checkpoint while paused")
    tap.from_front_end({"type": "control", "action": "stop"})
    tap.from_front_end({"type": "control", "action": "stop"})  # twice
    run.wait(timeout=60)
    wait_for(lambda: panel.status == "stopped", timeout=30, what="the panel to show stopped")
    tap.from_front_end({"type": "control", "action": "pause"})  # after the end
    assert "already ended" in panel.notice
    assert run.status == "stopped" and run.checkpoints
    assert panel.checkpoints == run.checkpoints


def test_a_panel_on_a_loaded_record_follows_it_and_its_stop_ends_the_run(
    tiny_model, toy_data, tmp_path: pathlib.Path
) -> None:
    """``view_for_run(load_run(folder))``: the panel of a run read from its record grows with
    the record, and its Stop goes through the folder's control file to the training."""
    run = labkit.finetune(
        tiny_model, toy_data, max_steps=100_000, batch_size=8, output_dir=tmp_path
    )
    try:
        wait_for(lambda: run.step >= 1, timeout=60, what="the first step")
        loaded = labkit.load_run(tmp_path)
        panel = view_for_run(loaded)
        tap = WireTap(panel)
        client = Client(tap)
        client.sync()
        first = panel.rows
        wait_for(lambda: panel.rows >= first + 3, timeout=60, what="the panel to grow")
        tap.from_front_end({"type": "control", "action": "stop"})
        run.wait(timeout=60)
    finally:
        run.stop()
    assert run.status == "stopped" and run.checkpoints
    wait_for(lambda: panel.status == "stopped", timeout=30, what="the panel to show stopped")
    wait_for(lambda: panel._thread is None, timeout=30, what="the panel to see the end")
    client.pump()
    assert client.steps == [float(s) for s in run.history.column("step")]
    assert panel.checkpoints == run.checkpoints == loaded.checkpoints
