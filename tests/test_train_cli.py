"""``labkit train``: flags, config files, export, and two CPU processes under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import cli
from tests import _tiny

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _tiny.toy_rows(32)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def no_dropout_bert(tiny_dirs, tmp_path_factory) -> Path:
    """The tiny BERT without dropout: two processes then compute exactly one process's loss."""
    folder = tmp_path_factory.mktemp("nodrop") / "bert"
    shutil.copytree(tiny_dirs["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _train(*argv: str) -> int:
    return cli.main(["train", *argv])


def test_train_with_flags_writes_checkpoint_summary_and_export(
    tiny_dirs, toy_file, tmp_path, capsys
):
    out, summary, export = tmp_path / "run", tmp_path / "s.json", tmp_path / "exported"
    code = _train(
        "--model",
        str(tiny_dirs["bert"]),
        "--data",
        str(toy_file),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--lora",
        "--output-dir",
        str(out),
        "--summary",
        str(summary),
        "--export",
        str(export),
        "--no-progress",
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "status: finished" in printed and f"checkpoint: {out / 'checkpoint-3'}" in printed
    record = json.loads(summary.read_text())
    assert record["steps"] == [1, 2, 3] and record["status"] == "finished"
    assert (export / "model.safetensors").exists()
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(export)
    assert hf.config.id2label == {0: "negative", 1: "positive"}


@pytest.mark.parametrize("kind", ["json", "toml"])
def test_config_file_with_flags_winning(tiny_dirs, toy_file, tmp_path, kind):
    options = {
        "model": str(tiny_dirs["bert"]),
        "data": str(toy_file),
        "max_steps": 5,
        "batch_size": 8,
        "lr": 1e-3,
        "progress": False,
        "schedule": "cosine",
        "output_dir": str(tmp_path / "run"),
        "summary": str(tmp_path / "s.json"),
        "trainer_args": {"adam_beta2": 0.99},
    }
    config = tmp_path / f"train.{kind}"
    if kind == "json":
        config.write_text(json.dumps(options))
    else:
        lines = [f"{k} = {json.dumps(v)}" for k, v in options.items() if k != "trainer_args"]
        lines += ["[trainer_args]", "adam_beta2 = 0.99"]
        config.write_text("\n".join(lines))
    assert _train("--config", str(config), "--max-steps", "2") == 0
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["steps"] == [1, 2]  # the flag beat the file's max_steps=5


def test_bad_options_fail_with_a_message_naming_them(tiny_dirs, toy_file, tmp_path, capsys):
    base = [
        "--model",
        str(tiny_dirs["bert"]),
        "--data",
        str(toy_file),
        "--output-dir",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    assert _train(*base, "--lr", "0") == 1
    assert "lr must be" in capsys.readouterr().err
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"epochz": 3}))
    assert _train(*base, "--config", str(config)) == 1
    assert "epochz" in capsys.readouterr().err
    assert _train(*base, "--set", "warmup_stepz=3") == 1
    assert "warmup_stepz" in capsys.readouterr().err
    # an export folder that exists is refused before any training, not after it
    (tmp_path / "taken").mkdir()
    assert _train(*base, "--export", str(tmp_path / "taken")) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_two_cpu_processes_train_one_model_with_the_single_process_loss(
    no_dropout_bert, toy_file, tmp_path
):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun comes with torch"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # 3 steps of 16 texts: each full batch is split 8 + 8 across the two ranks
    common = [
        "--model",
        str(no_dropout_bert),
        "--data",
        str(toy_file),
        "--max-steps",
        "3",
        "--lr",
        "1e-3",
        "--no-group-by-length",
        "--no-progress",
    ]
    single = tmp_path / "single.json"
    two = tmp_path / "two.json"
    assert (
        _train(
            *common,
            "--batch-size",
            "16",
            "--output-dir",
            str(tmp_path / "one"),
            "--summary",
            str(single),
        )
        == 0
    )
    proc = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "labkit.cli",
            "train",
            *common,
            "--batch-size",
            "8",
            "--output-dir",
            str(tmp_path / "two"),
            "--summary",
            str(two),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("status: finished") == 1  # only the first process prints
    rank0 = json.loads(two.read_text())
    rank1 = json.loads(Path(f"{two}.rank1").read_text())
    one = json.loads(single.read_text())
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["steps"] == rank1["steps"] == one["steps"] == [1, 2, 3]
    assert rank0["weights_digest"] == rank1["weights_digest"]  # one model, not two
    assert rank0["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert rank1["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert [Path(p).name for p in rank0["checkpoints"]] == ["checkpoint-3"]
