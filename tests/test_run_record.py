"""A run's record, ``events.jsonl``: read back by ``lk.load_run`` as the live run showed it, and
readable whatever happened to the process that wrote it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import labkit as lk
from labkit.runs.record import RECORD, read_chunk
from tests import _tiny

REPO = Path(__file__).resolve().parents[1]
STEP_COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm", "samples_per_s", "time", "elapsed")


@pytest.fixture(scope="module")
def finished(tiny_dirs, tmp_path_factory):
    """A finished run of the tiny classifier: 4 steps, evaluated and saved at steps 2 and 4."""
    model = lk.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
    data = lk.load_data(_tiny.toy_rows(16), labels=["negative", "positive"])
    out = tmp_path_factory.mktemp("record") / "run"
    run = lk.finetune(
        model,
        data,
        max_steps=4,
        batch_size=8,
        eval_every=2,
        save_every=2,
        metric="accuracy",
        output_dir=out,
        name="<img src=x onerror=alert(1)>",
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    return run


def test_a_finished_run_reads_back_as_the_live_run_showed_it(finished):
    live = finished
    loaded = lk.load_run(live.output_dir)
    for name in STEP_COLUMNS:
        assert loaded.history.column(name) == live.history.column(name), name
    assert loaded.history.column("step") == [1, 2, 3, 4]
    assert [(e.step, e.metrics) for e in loaded.history.evals] == [
        (e.step, e.metrics) for e in live.history.evals
    ]
    assert [e.step for e in loaded.history.evals] == [2, 4]
    assert loaded.history.saves == live.history.saves
    assert loaded.history.end == live.history.end
    assert (loaded.status, loaded.error, loaded.step, loaded.total_steps) == (
        "finished",
        None,
        4,
        4,
    )
    assert (live.status, live.step, live.total_steps) == ("finished", 4, 4)
    assert loaded.metrics == live.metrics and "accuracy" in loaded.metrics
    assert loaded.checkpoints == live.checkpoints and len(loaded.checkpoints) == 2
    assert loaded.best_checkpoint == live.best_checkpoint is not None
    assert loaded.name == live.name
    assert loaded.config.metric == "accuracy" and loaded.config["max_steps"] == 4
    assert not loaded.alive and loaded.done
    assert loaded.run_id and len(loaded.run_id) == 32
    # the first line is the header: the config and the labkit version that wrote the record
    first = json.loads((Path(live.output_dir) / RECORD).read_text().splitlines()[0])
    assert first["labkit"] == lk.__version__ and first["config"]["max_steps"] == 4
    assert first["run_id"] == loaded.run_id


def test_a_recorded_run_renders_its_snapshot_with_the_name_as_text(finished):
    html = lk.load_run(finished.output_dir)._repr_html_()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html
    assert "finished" in html


def test_steering_an_ended_run_writes_nothing(finished):
    loaded = lk.load_run(finished.output_dir)
    loaded.stop()
    loaded.pause()
    assert not (Path(finished.output_dir) / "control.json").exists()


def _copy_record(run, folder: Path) -> list[str]:
    folder.mkdir()
    lines = Path(run.record).read_text(encoding="utf-8").splitlines()
    return lines


def test_corrupt_lines_warn_once_and_every_complete_line_loads(finished, tmp_path):
    lines = _copy_record(finished, tmp_path / "run")
    mixed = [lines[0]]
    for i, line in enumerate(lines[1:]):
        mixed.append(line)
        if i % 3 == 0:
            mixed.append('{"kind": "StepEnd", "step": ')  # cut in the middle
            mixed.append('{"kind": "StepEnd", "step": 9}')  # a StepEnd missing its fields
            mixed.append("[1, 2]")  # not an object
            mixed.append('{"kind": "StepEnd", "step": "x", "epoch": 0, "loss": 1, "lr": 0}')
            mixed.append('{"kind": "Thought", "step": 3}')  # a newer labkit's event
    (tmp_path / "run" / RECORD).write_text("\n".join(mixed) + "\n", encoding="utf-8")
    with pytest.warns(lk.LabkitWarning, match=r"skipped \d+ corrupt line") as caught:
        loaded = lk.load_run(tmp_path / "run")
    assert len([w for w in caught if issubclass(w.category, lk.LabkitWarning)]) == 1
    assert loaded.history.column("step") == [1, 2, 3, 4]
    assert loaded.history.column("loss") == finished.history.column("loss")
    assert [e.step for e in loaded.history.evals] == [2, 4]
    assert loaded.status == "finished"
    chunk = read_chunk(tmp_path / "run" / RECORD)
    assert chunk.unknown == sum(1 for x in mixed if '"Thought"' in x)
    assert chunk.bad == 4 * chunk.unknown
    # more corrupt lines later: still the one warning
    with open(tmp_path / "run" / RECORD, "a", encoding="utf-8") as f:
        f.write("not json\n" * 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.refresh()


def test_a_folder_that_is_no_run_is_an_input_error_naming_what_is_there(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "checkpoint-3").mkdir()
    with pytest.raises(lk.InputError, match=r"no events\.jsonl.*checkpoint-3, notes\.txt"):
        lk.load_run(tmp_path)
    with pytest.raises(lk.InputError, match="does not exist"):
        lk.load_run(tmp_path / "missing")
    (tmp_path / RECORD).write_text('{"kind": "StepEnd"}\n')
    with pytest.raises(lk.InputError, match="no run header"), pytest.warns(lk.LabkitWarning):
        lk.load_run(tmp_path)


_TRAIN_FOREVER = """
import sys
import labkit as lk
from tests import _tiny
model = lk.load_model(sys.argv[1], labels=["negative", "positive"], device="cpu")
data = lk.load_data(_tiny.toy_rows(16), labels=["negative", "positive"])
lk.finetune(model, data, max_steps=100000, batch_size=4, output_dir=sys.argv[2],
            progress=False).wait()
"""


def _wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _steps_in(record: Path) -> int:
    if not record.exists():
        return 0
    return sum(1 for x in read_chunk(record).items if isinstance(x, lk.events.StepEnd))


@pytest.mark.slow
def test_a_killed_run_loads_every_complete_line_and_reads_failed(tiny_dirs, tmp_path):
    out = tmp_path / "run"
    record = out / RECORD
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAIN_FOREVER, str(tiny_dirs["bert"]), str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: _steps_in(record) >= 3 or proc.poll() is not None, what="3 steps")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        live = lk.load_run(out)
        assert live.alive and live.status == "running" and live.error is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
    complete = _steps_in(record)
    with open(record, "a", encoding="utf-8") as f:
        f.write('{"kind":"StepEnd","step":99999,"epoch":1.0,"loss":0.5')  # cut by the kill
    loaded = lk.load_run(out)
    assert loaded.history.column("step") == list(range(1, complete + 1))
    assert loaded.status == "failed"
    assert not loaded.alive and loaded.done
    assert "killed or crashed" in (loaded.error or "")
    assert f"pid {proc.pid}" in (loaded.error or "")
    with pytest.raises(lk.TrainingError, match="not running"):
        loaded.stop()
    with pytest.raises(lk.TrainingError, match="not running"):
        loaded.save()
    assert not (out / "control.json").exists()  # nothing written
    # the line is completed later (a slow writer, not a kill): it is read then
    with open(record, "a", encoding="utf-8") as f:
        f.write(',"lr":0.0,"grad_norm":null,"samples_per_s":null,"total_steps":null,"time":0}\n')
    loaded.refresh()
    assert loaded.history.column("step")[-1] == 99999


def test_a_second_run_in_the_same_folder_is_the_one_shown(tiny_dirs, tmp_path):
    data = lk.load_data(_tiny.toy_rows(16), labels=["negative", "positive"])
    out = tmp_path / "run"

    def model():
        return lk.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")

    first = lk.finetune(
        model(), data, max_steps=2, batch_size=8, output_dir=out, name="first", progress=False
    ).wait()
    # a stop left behind for the first run must not stop the second
    (out / "control.json").write_text(json.dumps({"stop": True, "run_id": None}))
    second = lk.finetune(
        model(),
        data,
        max_steps=4,
        batch_size=8,
        output_dir=out,
        resume_from=out,
        name="second",
        progress=False,
    ).wait()
    assert (first.status, second.status) == ("finished", "finished")
    loaded = lk.load_run(out)
    headers = [
        x for x in read_chunk(out / RECORD).items if isinstance(x, dict) and x["kind"] == "Run"
    ]
    assert len(headers) == 2
    assert loaded.run_id == headers[1]["run_id"] != headers[0]["run_id"]
    assert loaded.name == "second"
    assert loaded.history.column("step") == second.history.column("step") == [3, 4]
    assert loaded.history.column("elapsed") == second.history.column("elapsed")
    assert (loaded.status, loaded.step, loaded.total_steps) == ("finished", 4, 4)
    assert loaded.checkpoints == second.checkpoints


def test_a_process_reusing_a_dead_runs_pid_is_not_the_run(tmp_path):
    import socket

    from labkit.runs.status import process_start

    def record(folder: Path, pid_start: int | None) -> Path:
        folder.mkdir()
        header = {"kind": "Run", "run_id": "r", "pid": os.getpid(), "host": socket.gethostname()}
        header["pid_start"] = pid_start
        (folder / RECORD).write_text(json.dumps(header) + "\n", encoding="utf-8")
        return folder

    mine = process_start()
    assert mine is not None
    assert lk.load_run(record(tmp_path / "this", mine)).status == "pending"  # alive, no step
    reused = lk.load_run(record(tmp_path / "reused", mine + 1))
    assert (reused.alive, reused.status) == (False, "failed")
    assert "killed or crashed" in (reused.error or "")
