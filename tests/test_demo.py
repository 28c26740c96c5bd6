"""The embedded offline default: real model, real reviews (acceptance tier)."""

from __future__ import annotations

import pytest

import labkit

pytestmark = pytest.mark.slow


def test_demo_data_is_the_rotten_tomatoes_snippets(demo_data):
    assert demo_data.labels == ("negative", "positive")
    sizes = {k: len(v) for k, v in demo_data.splits.items()}
    assert sizes == {"train": 3891, "validation": 486, "test": 486}
    texts = [t for split in demo_data.splits.values() for t in split["text"]]
    assert len(texts) == len(set(texts)), "duplicates must be removed across splits"
    assert all(t.strip() for t in texts)
    for split in demo_data.splits.values():
        share = sum(split["label"]) / len(split)
        assert 0.47 < share < 0.53  # stratified: fresh 2455 vs rotten 2411 overall


def test_demo_data_is_cached_and_stable(demo_data):
    again = labkit.demo.data()
    assert list(again.test["text"]) == list(demo_data.test["text"])
    assert labkit.demo.data_path().parent == labkit.demo.cache_dir()


def test_demo_model_is_real_minilm(demo_model_session):
    m = demo_model_session
    cfg = m.hf.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size) == (6, 12, 384)
    assert 22_000_000 < m.num_parameters < 23_500_000
    assert m.labels == ("negative", "positive")
    # pretrained, not random: the encoder's embedding of related words is similar
    import torch

    emb = m.base.get_input_embeddings().weight
    ids = m.tokenizer.convert_tokens_to_ids(["good", "great", "carburetor"])
    sim = torch.nn.functional.cosine_similarity
    assert sim(emb[ids[0]], emb[ids[1]], dim=0) > sim(emb[ids[0]], emb[ids[2]], dim=0) + 0.1


def test_untrained_baseline_is_near_chance(demo_baseline):
    metrics = demo_baseline  # demo_model_session.evaluate(demo_data): its test split
    assert metrics.n == 486
    assert 0.35 < metrics.accuracy < 0.65
    assert len(metrics.confusion) == 2 and sum(map(sum, metrics.confusion)) == 486
