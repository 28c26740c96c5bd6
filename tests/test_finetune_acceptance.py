"""Acceptance: the real offline default model and data, finetuned briefly, beat the baseline."""

from __future__ import annotations

import pytest

import labkit


@pytest.mark.slow
def test_lora_finetune_of_the_default_beats_the_untrained_baseline(demo_data, finetuned_default):
    # the session's one LoRA finetune of the default (tests/conftest.py)
    before, run, model = finetuned_default.before, finetuned_default.run, finetuned_default.model
    assert run.status == "finished", run.error
    after = model.evaluate(demo_data, split="test")
    assert after.accuracy >= before.accuracy + 0.1, (before, after)
    assert run.metrics["accuracy"] > 0.6  # the validation split agrees
    # the checkpoint holds the adapter; its base model gets the same label names
    reloaded = labkit.load_model(run.best_checkpoint, labels=list(demo_data.labels), device="cpu")
    assert reloaded.evaluate(demo_data, split="test").accuracy == pytest.approx(after.accuracy)
    # the merged export predicts as the adapter does
    merged = finetuned_default.merged.evaluate(demo_data, split="test")
    assert merged.accuracy == pytest.approx(after.accuracy, abs=0.005)
