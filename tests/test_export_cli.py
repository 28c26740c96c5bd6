"""``labkit export SOURCE OUT [--onnx]``: a model folder or a run's best checkpoint, written for
deployment with the parity figure and the size printed; errors are one line and exit 1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

import labkit
from labkit.cli import main

TEXTS = ["great fun", "a gorgeous, witty, seductive movie", "awful mess"]


def test_onnx_round_trip_in_a_terminal(tiny_dirs, tmp_path):
    out = tmp_path / "onnx"
    argv = ["export", str(tiny_dirs["bert"]), str(out), "--onnx", "--labels", "negative,positive"]
    proc = subprocess.run(
        [sys.executable, "-m", "labkit", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"exported: {out}" in proc.stdout
    found = re.search(r"parity: max \|p - p_torch\| = (\S+) on 16 texts", proc.stdout)
    assert found and float(found.group(1)) < 1e-4, proc.stdout
    assert re.search(r"size: [\d.]+ MB", proc.stdout), proc.stdout
    assert proc.stderr.strip() == "", proc.stderr  # no warnings, no progress bars
    model = labkit.load_model(out, device="cpu")
    assert model.backend == "onnxruntime" and model.labels == ("negative", "positive")
    torch_model = labkit.load_model(
        tiny_dirs["bert"], labels=["negative", "positive"], device="cpu"
    )
    assert [p.label for p in model.predict(TEXTS)] == [p.label for p in torch_model.predict(TEXTS)]


def test_a_run_folder_exports_its_best_checkpoint(tiny_dirs, toy_data, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    model = labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
    run = labkit.finetune(
        model, toy_data, max_steps=2, batch_size=8, output_dir=tmp_path / "run", progress=False
    ).wait()
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "st")]) == 0
    printed = capsys.readouterr().out
    assert f"checkpoint: {run.best_checkpoint}" in printed
    assert "parity: max |p - p_torch|" in printed
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "st")  # no labkit needed
    assert hf.config.id2label == {0: "negative", 1: "positive"}
    best = labkit.load_model(run.best_checkpoint, device="cpu")
    exported = labkit.load_model(tmp_path / "st", device="cpu")
    assert torch.allclose(best.logits(TEXTS), exported.logits(TEXTS), atol=1e-5)


def test_errors_are_one_line_and_exit_1(tiny_dirs, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["export", str(tiny_dirs["bert"]), str(tmp_path / "taken"), "--onnx"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("labkit export: error: ") and "already exists" in err
    assert "overwrite" in err
    assert "Traceback" not in err
    assert main(["export", str(tmp_path / "nothing-here"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "labkit export: error: " in err and "does not exist" in err
    assert not (tmp_path / "out").exists()
