"""Issue #8, items 4 and 5: nothing lost when training is killed mid-save or steered in rapid
alternation, and a long run with the live panel keeps its memory flat and its history complete.

Figures are printed (``pytest -s``) and written to ``artifacts/hardening_training.json``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

import labkit
from labkit._utils import checkpoint as _checkpoint
from tests import _hardening as h

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _record(name: str, figures: dict[str, object]) -> None:
    """Print ``figures`` and merge them into artifacts/hardening_training.json."""
    print(f"\n[hardening] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "hardening_training.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    saved[name] = figures
    path.write_text(json.dumps(saved, indent=2))


# -- 4a. SIGKILL during checkpoint writes, many times -------------------------------------------

KILL_TRIALS = 24


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill harness forks training children")
def test_sigkill_at_random_points_of_checkpoint_writes_loses_nothing(tiny_dirs, tmp_path):
    with h.torch_threads(1):  # the checks load checkpoints here; one thread is fastest on 2 cores
        reports = h.kill_trials(tiny_dirs["gpt2"], tmp_path, KILL_TRIALS, seed=8)
    lost = [msg for r in reports for msg in r.lost]  # one line per lost checkpoint per trial
    during_save = sum(r.during_save for r in reports)
    _record(
        "kill_during_save",
        {
            "trials": len(reports),
            "kills_during_a_save": during_save,
            "kills_in_save_mode": sum(r.mode == "save" for r in reports),
            "checkpoints_lost": len({msg.split(":")[0] for msg in lost}),
            "resumes_verified": sum(r.first_step == r.expected_first for r in reports[1:]),
            "steps_reached": max(r.last_step for r in reports),
            "phases": dict(Counter(r.phase for r in reports).most_common()),
        },
    )
    assert lost == []
    # every trial after the first resumed from the newest complete checkpoint, exactly
    for i, r in enumerate(reports):
        assert r.first_step == r.expected_first, f"trial {i + 1}: {r}"
    # the run made progress across kills, and many kills really hit a checkpoint write
    assert reports[-1].checkpoints[-1] > max(reports[0].checkpoints, default=0)
    assert during_save >= KILL_TRIALS // 3


def test_a_kill_while_rotating_old_checkpoints_leaves_no_half_deleted_one(tmp_path, monkeypatch):
    for step in (1, 2):
        staged = tmp_path / _checkpoint.STAGING / f"checkpoint-{step}"
        staged.mkdir(parents=True)
        for name in h.CHECKPOINT_FILES:
            (staged / name).write_text("x")
        _checkpoint.commit(staged, tmp_path / f"checkpoint-{step}")

    def dies_halfway(path, ignore_errors=False):  # removes one file, then the process "dies"
        if not Path(path).exists():
            return
        next(Path(path).iterdir()).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(_checkpoint.shutil, "rmtree", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        _checkpoint.discard(tmp_path / "checkpoint-1")
    monkeypatch.undo()
    # what is still named checkpoint-N is complete; the half-deleted one is staging debris
    assert [Path(p).name for p in _checkpoint.find(tmp_path)] == ["checkpoint-2"]
    _checkpoint.clean_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_a_kill_between_the_two_renames_of_a_resave_keeps_the_old_copy(tmp_path, monkeypatch):
    final = tmp_path / "checkpoint-5"
    final.mkdir()
    (final / "model.safetensors").write_text("first")
    staged = tmp_path / _checkpoint.STAGING / "checkpoint-5"
    staged.mkdir(parents=True)
    (staged / "model.safetensors").write_text("second")
    real_replace = os.replace

    def dies_at_second_rename(src, dst):
        if Path(src) == staged:
            raise KeyboardInterrupt  # killed after the old copy moved aside
        real_replace(src, dst)

    monkeypatch.setattr(_checkpoint.os, "replace", dies_at_second_rename)
    with pytest.raises(KeyboardInterrupt):
        _checkpoint.commit(staged, final)
    monkeypatch.undo()
    assert not final.exists()
    _checkpoint.clean_staging(tmp_path)  # what the next run does first
    assert (final / "model.safetensors").read_text() == "first"
    assert _checkpoint.find(tmp_path) == [str(final)]


# -- 4b. stop / pause / resume / save in rapid alternation from another thread -----------------

SEGMENTS, ACTIONS = 4, 50  # 200 random actions, a stop and a resume_from between segments


@pytest.mark.slow
def test_rapid_stop_pause_resume_save_never_deadlocks_skips_or_repeats(
    tiny_dirs, toy_data, tmp_path
):
    rng = random.Random(4)
    out = tmp_path / "run"
    expected = 1  # the next step the run must take
    paused_seen = saves = 0
    with h.torch_threads(1):
        for segment in range(SEGMENTS):
            model = labkit.load_model(tiny_dirs["gpt2"], labels=h.LABELS, device="cpu")
            run = labkit.finetune(
                model,
                toy_data,
                max_steps=100_000,
                eval_every=100_000,
                batch_size=8,
                lr=1e-3,
                output_dir=out,
                resume_from=_checkpoint.latest(out),
                progress=False,
            )
            for _ in range(ACTIONS):
                getattr(run, rng.choice(("pause", "resume", "save", "pause", "resume")))()
                time.sleep(rng.uniform(0.0, 0.01))  # a random gap between presses
                paused_seen += run.status == "paused"
            run.stop()  # maybe while paused: the stop must wake it
            run.wait(timeout=120)
            assert run.done, f"segment {segment}: deadlocked in status {run.status}"
            assert run.status == "stopped", run.error
            steps = run.history.column("step")
            assert steps, f"segment {segment} took no step"
            assert steps == list(range(expected, expected + len(steps))), (
                f"segment {segment}: steps skipped or repeated: {steps}"
            )
            saved = [s.step for s in run.history.saves]
            assert saved == sorted(set(saved)) and saved[-1] == steps[-1]  # stop saved the end
            assert all(expected <= s <= steps[-1] for s in saved)
            saves += len(saved)
            expected = steps[-1] + 1
    done = _checkpoint.find(out)
    assert [_checkpoint.step_of(p) for p in done][-1] == expected - 1
    ends = (0, len(done) - 1)
    problems = [p for i, c in enumerate(done) if (p := h.checkpoint_problem(c, full=i in ends))]
    assert problems == []
    assert paused_seen > 0  # the presses did hold the run at times
    _record(
        "rapid_steering",
        {
            "actions": SEGMENTS * ACTIONS,
            "stops_and_resumes": SEGMENTS,
            "steps": expected - 1,
            "checkpoints": len(done),
            "saves_reported": saves,
            "paused_observations": paused_seen,
        },
    )


# -- 5. a long run with the panel attached ------------------------------------------------------

LONG_STEPS = 2000


@pytest.mark.slow
def test_a_2000_step_run_with_the_panel_keeps_memory_flat_and_history_complete(tiny_dirs, tmp_path):
    result = h.long_run(tiny_dirs["gpt2"], tmp_path / "run", steps=LONG_STEPS, warm=200)
    _record(
        "long_run",
        {
            "steps": len(result.steps),
            "rss_warm_mb": round(result.rss_mb[result.warm_step], 1),
            "rss_end_mb": round(result.rss_mb[max(result.rss_mb)], 1),
            "rss_growth_mb": round(result.growth_mb, 1),
            "rss_peak_growth_mb": round(result.peak_growth_mb, 1),
            "steps_per_s_with_panel": round(result.steps_per_s, 1),
        },
    )
    assert result.status == "finished"
    assert result.steps == list(range(1, LONG_STEPS + 1))
    assert result.client_steps == [float(s) for s in result.steps]  # the panel lost no point
    assert sorted(result.rss_mb) == list(range(200, LONG_STEPS + 1, 200))
    assert result.growth_mb < 150, result.rss_mb
