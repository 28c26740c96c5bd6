"""``report_to``: TensorBoard and wandb log a run through Trainer's integrations, in its folder."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

import labkit as lk
from labkit import cli
from labkit.train import trackers
from tests import _tiny


def _losses(record: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "StepEnd"}


def test_tensorboard_event_files_in_the_run_folder_hold_every_step_loss(
    tiny_model, toy_data, tmp_path
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    run = lk.finetune(
        tiny_model,
        toy_data,
        max_steps=4,
        batch_size=8,
        output_dir=out,
        report_to="tensorboard",
        progress=False,
    ).wait()
    assert run.status == "finished"
    assert run.config.report_to == ("tensorboard",)
    logs = out / trackers.TENSORBOARD_DIR
    assert list(logs.glob("events.out.tfevents.*")), sorted(p.name for p in out.iterdir())
    acc = EventAccumulator(str(logs))
    acc.Reload()
    scalars = {e.step: e.value for e in acc.Scalars("train/loss")}
    recorded = _losses(out / "events.jsonl")  # labkit's own record keeps working alongside
    assert sorted(scalars) == sorted(recorded) == [1, 2, 3, 4]
    for step, loss in recorded.items():
        assert scalars[step] == pytest.approx(loss, rel=1e-6)
    assert lk.load_run(out).status == "finished"


def _wandb_records(path: Path) -> list:
    """The protobuf records of a ``.wandb`` file (a LevelDB log with a 7-byte W&B header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pieces, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        piece = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):  # FULL, FIRST
            pieces = piece
        elif kind in (3, 4):  # MIDDLE, LAST
            pieces += piece
        else:
            continue
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pieces)
            out.append(record)
    return out


def test_wandb_writes_an_offline_run_in_the_run_folder_with_the_loss(
    tiny_model, toy_data, tmp_path, monkeypatch
):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no credentials: offline
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    run = lk.finetune(
        tiny_model,
        toy_data,
        max_steps=3,
        batch_size=8,
        output_dir=out,
        report_to=["wandb"],
        name="wandb <run>",
        progress=False,
    ).wait()
    assert run.status == "finished"
    files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, sorted(p.name for p in (out / "wandb").iterdir())
    records = _wandb_records(files[0])
    names = [r.run.display_name for r in records if r.WhichOneof("record_type") == "run"]
    assert "wandb <run>" in names
    logged = {}
    for r in records:
        if r.WhichOneof("record_type") != "history":
            continue
        items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        if "train/loss" in items:
            logged[int(items["train/global_step"])] = items["train/loss"]
    recorded = _losses(out / "events.jsonl")
    assert sorted(logged) == sorted(recorded) == [1, 2, 3]
    for step, loss in recorded.items():
        assert logged[step] == pytest.approx(loss, rel=1e-6)


def test_wandb_mode_is_offline_without_credentials_only(tmp_path, monkeypatch):
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert trackers.wandb_mode() == "offline"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    netrc.chmod(0o600)
    assert trackers.wandb_mode() is None  # logged in: wandb's own choice
    netrc.unlink()
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert trackers.wandb_mode() == "disabled"  # the user's mode wins


@pytest.mark.parametrize(("name", "extra"), [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_a_missing_tracker_fails_before_training_naming_the_extra(
    tiny_model, toy_data, tmp_path, monkeypatch, name, extra
):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    out = tmp_path / "run"
    with pytest.raises(lk.MissingDependencyError, match=rf'pip install "labkit\[{extra}\]"') as e:
        lk.finetune(tiny_model, toy_data, max_steps=2, output_dir=out, report_to=name)
    assert e.value.name == name
    assert not (out / "events.jsonl").exists()  # nothing started
    assert tiny_model.claim_for_training()  # the model is free for the next run
    tiny_model.release_training()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("tensorbord", "unknown tracker 'tensorbord'"),
        (["wandb", 3], "found 3"),
        (42, "report_to must be None"),
    ],
)
def test_bad_report_to_is_a_config_error(value, words):
    with pytest.raises(lk.ConfigError, match=words):
        lk.FinetuneConfig(report_to=value)


def test_report_to_spellings():
    assert lk.FinetuneConfig().report_to == ()
    assert lk.FinetuneConfig(report_to="none").report_to == ()
    assert lk.FinetuneConfig(report_to="TensorBoard, wandb").report_to == ("tensorboard", "wandb")
    assert lk.FinetuneConfig(report_to=["wandb", "wandb"]).report_to == ("wandb",)
    # TrainingArguments' spelling in trainer_args is the same field
    config = lk.FinetuneConfig(trainer_args={"report_to": "tensorboard"})
    assert config.report_to == ("tensorboard",)
    assert "report_to" not in config.trainer_args
    with pytest.raises(lk.ConfigError, match="twice"):
        lk.FinetuneConfig(report_to="wandb", trainer_args={"report_to": "tensorboard"})


def test_cli_report_to_is_repeatable_and_takes_comma_lists(tiny_dirs, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "disabled")  # wandb in the list, nothing written for it
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _tiny.toy_rows(8)), encoding="utf-8")
    out = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--model",
            str(tiny_dirs["bert"]),
            "--data",
            str(data),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--no-progress",
            "--output-dir",
            str(out),
            "--report-to",
            "tensorboard,wandb",
            "--report-to",
            "tensorboard",
        ]
    )
    assert code == 0
    assert lk.load_run(out).config.report_to == ["tensorboard", "wandb"]
    acc = EventAccumulator(str(out / trackers.TENSORBOARD_DIR))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
