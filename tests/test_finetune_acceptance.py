"""Acceptance: the real offline default model and data, finetuned briefly, beat the baseline."""

from __future__ import annotations

import pytest

import labkit


@pytest.mark.slow
def test_lora_finetune_of_the_default_beats_the_untrained_baseline(demo_data, tmp_path):
    model = labkit.demo.model(device="cpu")  # its own copy: training changes it
    before = model.evaluate(demo_data, split="test")
    run = labkit.finetune(
        model,
        demo_data,
        lora=True,
        max_steps=100,
        batch_size=16,
        lr=2e-3,
        max_length=64,
        warmup=0.06,
        output_dir=tmp_path,
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    after = model.evaluate(demo_data, split="test")
    assert after.accuracy >= before.accuracy + 0.1, (before, after)
    assert run.metrics["accuracy"] > 0.6  # the validation split agrees
    # the checkpoint holds the adapter; its base model gets the same label names
    reloaded = labkit.load_model(run.best_checkpoint, labels=list(demo_data.labels), device="cpu")
    assert reloaded.evaluate(demo_data, split="test").accuracy == pytest.approx(after.accuracy)
