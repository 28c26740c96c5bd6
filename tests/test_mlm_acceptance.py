"""Acceptance on the real offline default: all-MiniLM-L6-v2 as a masked LM gets better at
filling masks in review snippets after a short continued pretraining on the corpus (measured on
held-out snippets' fixed masks, not by a hard-coded answer)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import labkit as lk

pytestmark = pytest.mark.slow


def test_fill_mask_improves_with_continued_pretraining(tmp_path: Path) -> None:
    from datasets import DatasetDict

    from labkit.mlm.load import output_tied

    model = lk.demo.mlm()
    assert model.task == "masked-lm" and model.name == "all-MiniLM-L6-v2 (masked LM)"
    assert output_tied(model.hf)  # the pretrained decoder is the word embeddings
    corpus = lk.demo.corpus()
    held = list(corpus.test["text"][:120])
    # the classifier's held-out snippets are not masked-LM training text (no leakage)
    scored = set(lk.demo.data().test["text"])
    assert not scored & set(corpus.train["text"])
    small = dataclasses.replace(
        corpus,
        splits=DatasetDict(
            {
                "train": corpus.train.select(range(2000)),
                "validation": corpus.validation.select(range(48)),
            }
        ),
    )
    probe = "the acting was [MASK] and the plot was predictable."
    top_before = model.fill_mask(probe, top_k=1)[0].probability
    before = lk.mlm.evaluate_mlm(model, held, max_length=64)
    run = lk.finetune(
        model,
        small,
        max_steps=30,
        batch_size=16,
        max_length=64,
        lr=2e-4,
        progress=False,
        output_dir=tmp_path / "run",
    ).wait()
    assert run.status == "finished"
    assert "masked_accuracy" in run.metrics
    after = lk.mlm.evaluate_mlm(model, held, max_length=64)
    assert after.masked_tokens == before.masked_tokens  # the same fixed masks
    assert after.loss < before.loss - 2.0
    assert after.masked_accuracy > before.masked_accuracy + 0.02
    # fill-mask is no longer a near-uniform guess over 30,522 tokens
    assert model.fill_mask(probe, top_k=1)[0].probability > 3 * top_before
