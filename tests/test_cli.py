from __future__ import annotations

import subprocess
import sys

from labkit import __version__
from labkit.cli import main


def test_version_from_a_real_process():
    out = subprocess.run(
        [sys.executable, "-m", "labkit", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"labkit {__version__}"


def test_predict_with_a_local_model(tiny_dirs, capsys):
    code = main(
        [
            "predict",
            "--model",
            str(tiny_dirs["bert"]),
            "--labels",
            "neg,pos",
            "--json",
            "a fine film",
            "a bad one",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and '"text": "a fine film"' in lines[0]


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "missing"), "x"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_labkit_lab_finds_the_notebooks_of_a_checkout(capsys):
    """``labkit lab`` without --dir opens the repository's notebooks (a wheel: its packaged copy)."""
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    assert main(["lab", "--print-only"]) == 0
    assert str(notebooks) in capsys.readouterr().out


def test_explain_with_a_causal_lm_explains_its_answer(tiny_lm_dirs, capsys):
    import json

    import labkit

    prompt = "the movie was"
    code = main(
        [
            "explain",
            "--model",
            str(tiny_lm_dirs["llama"]),
            "--method",
            "gradient_x_input",
            "--device",
            "cpu",
            "--json",
            prompt,
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip())
    lm = labkit.load_model(tiny_lm_dirs["llama"], device="cpu")
    (answer,) = lm.generate(prompt, max_new_tokens=32)
    assert record["generated"] is True and record["target"] == answer.text
    assert len(record["scores"]) == len(record["target_tokens"])
    assert all(len(row) == len(record["tokens"]) for row in record["scores"])
    assert len(record["sequence_scores"]) == len(record["tokens"])
