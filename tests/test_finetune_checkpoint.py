"""Checkpoints are atomic: a process killed while saving leaves the previous one loadable."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labkit
from labkit._utils import checkpoint as _checkpoint
from labkit.events import EvalEnd, Saved, StepEnd, TrainEnd
from labkit.render.console import ConsoleProgress

REPO = Path(__file__).resolve().parents[1]

# Trains a tiny model, saving every 2 steps; the second save is killed (SIGKILL) after the
# weights were written and before the checkpoint was complete.
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    import labkit
    from transformers import Trainer
    from tests import _tiny

    saves = []
    real = Trainer._save_rng_state

    def dying(self, output_dir):
        saves.append(output_dir)
        if len(saves) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, output_dir)

    Trainer._save_rng_state = dying
    data = labkit.load_data(_tiny.toy_rows(32), labels=["negative", "positive"])
    model = labkit.load_model({model!r}, labels=["negative", "positive"], device="cpu")
    labkit.finetune(model, data, max_steps=6, save_every=2, batch_size=8,
                    output_dir={out!r}, progress=False).wait()
""")


@pytest.mark.slow
def test_a_kill_while_saving_leaves_the_previous_checkpoint_loadable(tiny_dirs, toy_data, tmp_path):
    out = tmp_path / "run"
    script = SCRIPT.format(repo=str(REPO), model=str(tiny_dirs["bert"]), out=str(out))
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [Path(p).name for p in _checkpoint.find(out)] == ["checkpoint-2"]
    assert not (out / "checkpoint-4").exists()
    staged = out / _checkpoint.STAGING / "checkpoint-4"
    assert (staged / "model.safetensors").exists()  # the kill really hit mid-save
    reloaded = labkit.load_model(out / "checkpoint-2", device="cpu")
    assert reloaded.predict(["a great film"])[0].label in ("negative", "positive")

    model = labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
    run = labkit.finetune(
        model,
        toy_data,
        max_steps=6,
        save_every=2,
        batch_size=8,
        output_dir=out,
        resume_from=out,
        progress=False,
    ).wait()
    assert run.status == "finished"
    assert run.history.column("step") == [3, 4, 5, 6]
    assert [Path(p).name for p in run.checkpoints] == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
    ]
    assert not (out / _checkpoint.STAGING).exists()


def test_commit_replaces_a_folder_in_one_rename(tmp_path):
    final = tmp_path / "checkpoint-3"
    for payload in ("first", "second"):
        staged = tmp_path / _checkpoint.STAGING / "checkpoint-3"
        staged.mkdir(parents=True)
        (staged / "weights").write_text(payload)
        _checkpoint.commit(staged, final)
    assert (final / "weights").read_text() == "second"
    assert _checkpoint.find(tmp_path) == [str(final)]
    assert _checkpoint.step_of(final) == 3


def test_console_progress_writes_a_short_log_when_not_a_terminal():
    out = io.StringIO()
    bar = ConsoleProgress(out)
    for step in range(1, 101):
        bar(
            StepEnd(
                step=step,
                epoch=step / 100,
                loss=1 / step,
                lr=1e-3,
                samples_per_s=10.0,
                total_steps=100,
            )
        )
    bar(EvalEnd(step=100, metrics={"accuracy": 0.75}))
    bar(Saved(step=100, path="run/checkpoint-100"))
    bar(TrainEnd(status="finished", step=100))
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 15
    assert lines[0].startswith("step 1/100") and "samples/s" in lines[0]
    assert "step 100/100" in lines[-4] and "100%" in lines[-4]
    assert lines[-3] == "eval at step 100: accuracy 0.7500"
    assert lines[-2] == "saved checkpoint run/checkpoint-100"
    assert lines[-1].startswith("run finished at step 100")


def test_console_progress_redraws_one_line_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ConsoleProgress(out, min_interval=3600)  # throttled: only the first and last draws
    for step in range(1, 101):
        bar(
            StepEnd(
                step=step,
                epoch=step / 100,
                loss=1 / step,
                lr=1e-3,
                total_steps=100,
                time=1000.0 + 0.5 * step,
            )
        )
        if step == 50:
            bar(EvalEnd(step=50, metrics={"accuracy": 0.5}))
    bar(TrainEnd(status="stopped", step=100, error="stop requested"))
    text = out.getvalue()
    lines = text.split("\n")
    assert "eval at step 50: accuracy 0.5000" in [line.split("\r")[-1] for line in lines]
    drawn = [d.strip() for line in lines for d in line.split("\r") if d.strip()]
    steps = [d for d in drawn if d.startswith("step ")]
    assert steps[0].startswith("step 1/100") and "%" in steps[0]
    assert len(steps) <= 6  # not one draw per step
    assert "step 100/100 [########################] 100%" in steps[-1]
    assert steps[-1].endswith("eta 00:00")
    assert lines[-2] == "run stopped at step 100 in 00:00: stop requested"
