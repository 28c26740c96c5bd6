"""``labkit runs``: the recorded runs in a terminal, and steering one by its folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from labkit.cli import main
from labkit.events import StepEnd, TrainEnd
from labkit.runs.record import CONTROL, RecordWriter


def _record(folder: Path, name: str, *, pid: int, steps: int, end: str | None) -> Path:
    header = {
        "kind": "Run",
        "run_id": name,
        "name": name,
        "model": "tiny-bert",
        "pid": pid,
        "host": socket.gethostname(),
        "started": 1_796_000_000.0,
    }
    writer = RecordWriter(folder, header)
    for s in range(1, steps + 1):
        writer.event(
            StepEnd(
                step=s,
                epoch=s / 10,
                loss=1.0 / s,
                lr=1e-3,
                total_steps=10,
                time=1_796_000_000.0 + s,
            )
        )
    if end:
        writer.event(TrainEnd(status=end, step=steps, time=1_796_000_100.0))  # type: ignore[arg-type]
    writer.close()
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lists_runs_under_a_folder_with_status_step_and_loss(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path / "state"))  # no other test's runs
    _record(tmp_path / "a" / "done", "done run", pid=os.getpid(), steps=10, end="finished")
    _record(tmp_path / "b" / "lost", "lost run", pid=_dead_pid(), steps=4, end=None)
    _record(tmp_path / "live", "live run", pid=os.getpid(), steps=3, end=None)
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[1:]}
    assert (
        "10/10" in rows["finished"]
        and "0.1000" in rows["finished"]
        and "a/done" in rows["finished"]
    )
    assert "4/10" in rows["failed"] and "lost run" in rows["failed"]  # its process died
    assert "3/10" in rows["running"] and "live run" in rows["running"]


def test_stop_writes_the_request_for_a_live_run_and_refuses_a_dead_one(
    tmp_path: Path, capsys
) -> None:
    live = _record(tmp_path / "live", "live", pid=os.getpid(), steps=2, end=None)
    assert main(["runs", "--stop", str(live)]) == 0
    assert json.loads((live / CONTROL).read_text())["stop"] is True
    dead = _record(tmp_path / "dead", "dead", pid=_dead_pid(), steps=2, end=None)
    assert main(["runs", "--stop", str(dead)]) == 1
    err = capsys.readouterr().err
    assert "not running" in err and "Nothing was written" in err
    assert not (dead / CONTROL).exists()
    done = _record(tmp_path / "done", "done", pid=os.getpid(), steps=2, end="finished")
    assert main(["runs", "--pause", str(done)]) == 0
    assert "already finished" in capsys.readouterr().out
    assert not (done / CONTROL).exists()


def test_an_empty_folder_says_so(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path / "state"))
    assert main(["runs", str(tmp_path)]) == 0
    assert "no labkit runs under" in capsys.readouterr().out
