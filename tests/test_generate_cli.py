"""``labkit generate``: tokens streamed to stdout, JSON out, stop strings, Ctrl+C and errors."""

from __future__ import annotations

import _thread
import json
import re
import signal
import time

import pytest

import labkit
from labkit.cli import main


@pytest.fixture(scope="module")
def lm(tiny_lm_dirs):
    return labkit.load_model(tiny_lm_dirs["gpt2"], device="cpu")


def test_generate_streams_the_continuation_and_sums_up_on_stderr(tiny_lm_dirs, lm, capsys):
    path = str(tiny_lm_dirs["gpt2"])
    assert main(["generate", "--model", path, "--max-new-tokens", "6", "a gorgeous movie"]) == 0
    out, err = capsys.readouterr()
    (want,) = lm.generate("a gorgeous movie", max_new_tokens=6)
    assert out == want.text + "\n"  # the text alone on stdout: it can be piped
    assert err.startswith("[6 tokens, length, ") and "tokens/s]" in err


def test_generate_json_stop_and_sampling_settings_reach_the_model(tiny_lm_dirs, lm, capsys):
    path = str(tiny_lm_dirs["gpt2"])
    args = ["generate", "--model", path, "--json", "--max-new-tokens", "8"]
    sampled = ["--temperature", "0.9", "--top-p", "0.8", "--seed", "3"]
    assert main([*args, *sampled, "one prompt", "another <b>one</b>"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["prompt"] for r in rows] == ["one prompt", "another <b>one</b>"]
    for row in rows:  # each prompt is generated on its own, seeded: the same draw
        (want,) = lm.generate(row["prompt"], max_new_tokens=8, temperature=0.9, top_p=0.8, seed=3)
        assert row["token_ids"] == list(want.token_ids) and row["text"] == want.text
        assert row["logprobs"] == pytest.approx(list(want.logprobs))
    assert {"text", "tokens", "finish_reason", "logprob", "perplexity"} <= set(rows[0])
    full = lm.generate("one prompt", max_new_tokens=8)[0].text
    stop = full[len(full) // 2 :][:2]
    assert main([*args, "--stop", "never", "--stop", stop, "one prompt"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["finish_reason"] == "stop" and row["text"] == full[: full.find(stop)]


def test_ctrl_c_stops_cleanly_prints_what_it_has_and_exits_130(tiny_lm_dirs, monkeypatch, capsys):
    from labkit.cli import generate as cli

    model = labkit.load_model(tiny_lm_dirs["llama"], device="cpu")
    seen: list[str] = []
    real_stream = model.stream

    def stream(prompt, **settings):
        s = real_stream(prompt, **settings)

        def press_ctrl_c(piece: str) -> None:
            seen.append(piece)
            if len(seen) == 3:
                _thread.interrupt_main()  # what Ctrl+C does to the waiting main thread
                # a person presses Ctrl+C mid-generation: hold this token until the main
                # thread has taken it (a tiny model could otherwise finish all 120 tokens
                # before the interrupt is handled: a race on a fast machine)
                time.sleep(1.0)

        s.subscribe(press_ctrl_c)
        return s

    monkeypatch.setattr(model, "stream", stream)
    monkeypatch.setattr(cli, "_load", lambda args: model)
    # Ctrl+C's own handler, whatever an earlier test or library left installed for SIGINT
    # (interrupt_main calls the Python-level handler: another one would swallow it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(["generate", "--max-new-tokens", "120", "--no-chat", "the worst film"])
    finally:
        signal.signal(signal.SIGINT, previous)
    out, err = capsys.readouterr()
    assert code == 130, (previous, seen[:5], err[-300:])
    assert "labkit generate: stopped" in err and "cancelled" in err and "Traceback" not in err
    assert out.endswith("\n") and out.startswith("".join(seen[:3]))
    tokens = int(err.split("[", 1)[1].split(" tokens", 1)[0])
    assert 3 <= tokens < 120  # it stopped within a few tokens of the press


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-new-tokens", "0", "x"], "max_new_tokens must be between 1"),
        (["--top-p", "0", "x"], r"top_p must be in \(0, 1\]"),
        (["--stop", "", "x"], "stop holds an empty string"),
        ([], "no prompt given: labkit generate"),
    ],
)
def test_errors_are_one_line_not_tracebacks(tiny_lm_dirs, capsys, argv, message):
    assert main(["generate", "--model", str(tiny_lm_dirs["gpt2"]), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("labkit generate: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_a_classifier_is_refused_naming_its_task(tiny_dirs, capsys):
    assert main(["generate", "--model", str(tiny_dirs["bert"]), "x"]) == 1
    err = capsys.readouterr().err
    assert "labkit generate: error:" in err and "Traceback" not in err


def test_the_command_is_listed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "generate" in capsys.readouterr().out
