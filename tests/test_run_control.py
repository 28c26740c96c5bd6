"""Steering a ``labkit train`` process from Python through its folder: ``lk.load_run(path)``'s
stop / pause / save / resume, in one process and across two ranks under torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import labkit as lk
from labkit.runs.record import RECORD, read_chunk
from tests import _tiny

REPO = Path(__file__).resolve().parents[1]
# CPU processes: two ranks on a machine with one GPU would both ask for it
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def toy_csv(tmp_path_factory) -> Path:
    import csv

    path = tmp_path_factory.mktemp("data") / "toy.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(_tiny.toy_rows(16))
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return _tiny.build("bert", tmp_path_factory.mktemp("tiny") / "bert")


def _args(bert: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        str(bert),
        "--data",
        str(data),
        "--max-steps",
        "100000",  # only a stop ends it
        "--batch-size",
        "4",
        "--eval-every",
        "100000",
        "--no-progress",
        "--output-dir",
        str(out),
        *extra,
    ]


def _wait_for(predicate, proc, timeout: float = 180.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"the process ended ({proc.returncode}) waiting for {what}: {err[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _record_exists(out: Path):
    def ready() -> bool:
        try:
            lk.load_run(out)
        except lk.InputError:
            return False
        return True

    return ready


def _ckpt(out: Path, step: int) -> Path:
    return out / f"checkpoint-{step}"


@pytest.mark.slow
def test_a_cli_run_is_paused_saved_resumed_and_stopped_from_python(bert, toy_csv, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", *_args(bert, toy_csv, out)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(_record_exists(out), proc, what="the record")
        run = lk.load_run(out)
        _wait_for(lambda: run.refresh() >= 0 and run.step >= 2, proc, what="2 steps")
        assert run.status == "running" and run.alive

        run.pause()
        _wait_for(lambda: run.refresh() >= 0 and run.status == "paused", proc, what="paused")
        held = run.step
        time.sleep(1.0)  # a few dozen steps' time on this model: none is taken while paused
        run.refresh()
        assert run.step == held and run.status == "paused"

        run.save()  # a checkpoint while paused, at the step it is held at
        # what a user watches is the record: the run writes its Saved line only after the
        # checkpoint folder is complete (so the folder alone can appear first)
        _wait_for(
            lambda: run.refresh() >= 0 and bool(run.history.saves),
            proc,
            what=f"the save at step {held} in the record",
        )
        assert [s.step for s in run.history.saves] == [held]
        assert run.checkpoints == [os.fspath(_ckpt(out, held))]
        assert (_ckpt(out, held) / "trainer_state.json").is_file()  # complete, loadable
        assert run.step == held and run.status == "paused"

        run.resume()
        _wait_for(lambda: run.refresh() >= 0 and run.step >= held + 3, proc, what="resumed")
        assert run.status == "running"

        run.stop()
        assert run.status == "stopping"
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert "status: stopped" in stdout
    run.refresh()
    end = run.history.end
    assert end is not None and end.status == "stopped" and run.status == "stopped"
    assert run.checkpoints[-1] == os.fspath(_ckpt(out, end.step))
    assert [Path(p).name for p in run.checkpoints] == [
        f"checkpoint-{held}",
        f"checkpoint-{end.step}",
    ]
    assert run.step == end.step > held
    # the run's statuses, as recorded
    statuses = [
        x["status"]
        for x in read_chunk(out / RECORD).items
        if isinstance(x, dict) and x["kind"] == "Status"
    ]
    assert statuses[0] == "running" and "paused" in statuses and statuses[-1] == "stopping"
    run.stop()  # the run has ended: nothing to do, nothing raised


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# two CPU processes on this machine, as each launcher spells it
LAUNCHERS = {
    "torchrun": ["torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                 "--master_addr", "127.0.0.1", "--master_port", "{port}"],
    # accelerate's --cpu runs one process (several need mpirun); --multi_gpu with no GPU visible
    # (ENV hides them) starts the two ranks of torch's launcher, on the CPU
    "accelerate": ["accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--main_process_ip", "127.0.0.1",
                   "--main_process_port", "{port}", "--mixed_precision", "no",
                   "--dynamo_backend", "no"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_ranks_stop_at_the_same_step_with_one_checkpoint(bert, toy_csv, tmp_path, launcher):
    """``torchrun`` and ``accelerate launch`` alike: Stop from another process ends both ranks
    at one step, with one checkpoint and one record."""
    out, summary = tmp_path / "run", tmp_path / "summary.json"
    port = str(_free_port())
    cmd = [
        sys.executable,
        "-m",
        *(a.replace("{port}", port) for a in LAUNCHERS[launcher]),
        "-m",
        "labkit.cli",
        *_args(bert, toy_csv, out, "--summary", str(summary)),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(_record_exists(out), proc, what="the record")
        run = lk.load_run(out)
        assert run.header["world_size"] == 2
        _wait_for(lambda: run.refresh() >= 0 and run.step >= 3, proc, what="3 steps")
        run.stop()
        stdout, stderr = proc.communicate(timeout=180)  # a rank left behind would hang here
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("status: stopped") == 1  # only rank 0 prints
    rank0 = json.loads(summary.read_text())
    rank1 = json.loads(Path(f"{summary}.rank1").read_text())
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["status"] == rank1["status"] == "stopped"
    # every rank took its last step at the same step, with the same weights
    assert rank0["step"] == rank1["step"] == rank0["steps"][-1] == rank1["steps"][-1]
    assert rank0["weights_digest"] == rank1["weights_digest"]
    run.refresh()
    end = run.history.end
    assert end is not None and end.status == "stopped" and end.step == rank0["step"]
    assert [Path(p).name for p in run.checkpoints] == [f"checkpoint-{end.step}"]
    assert [s.step for s in run.history.saves] == [end.step]
    # one record, written by rank 0 alone: one header, each step once
    items = read_chunk(out / RECORD).items
    assert sum(1 for x in items if isinstance(x, dict) and x["kind"] == "Run") == 1
    assert run.history.column("step") == list(range(1, end.step + 1))
    assert sorted(p.name for p in out.rglob(RECORD)) == [RECORD]
