"""Length-grouped batches: little padding, random batch order, reproducible per epoch."""

from __future__ import annotations

import random

import numpy as np

from labkit.train.trainer import LengthGroupedEpochSampler

BATCH = 16


def _lengths(n: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(4, 80) for _ in range(n)]


def _batches(sampler: LengthGroupedEpochSampler) -> list[list[int]]:
    order = list(sampler)
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def test_every_text_once_per_epoch_and_batches_padded_little() -> None:
    lengths = _lengths()
    sampler = LengthGroupedEpochSampler(lengths, BATCH, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))
    batches = _batches(sampler)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # random batches of 16 pad to about 1.7x here
    shuffled = random.Random(1).sample(range(len(lengths)), len(lengths))
    random_padded = sum(
        len(b) * max(lengths[i] for i in b)
        for b in (shuffled[i : i + BATCH] for i in range(0, len(shuffled), BATCH))
    )
    assert random_padded > 1.4 * sum(lengths)


def test_the_longest_batch_comes_first_and_a_partial_batch_last() -> None:
    lengths = _lengths(1000)  # 62 full batches and one of 8
    batches = _batches(LengthGroupedEpochSampler(lengths, BATCH, seed=3))
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    assert [len(b) for b in batches[:-1]] == [BATCH] * 62 and len(batches[-1]) == 8


def test_batch_order_is_random_not_longest_to_shortest() -> None:
    lengths = _lengths()
    batches = _batches(LengthGroupedEpochSampler(lengths, BATCH, seed=0))[1:-1]
    widths = [max(lengths[i] for i in b) for b in batches]
    # transformers' order runs longest -> shortest within every ~50 batches (rho near -1 there)
    rho = np.corrcoef(np.argsort(np.argsort(widths[:50])), np.arange(50))[0, 1]
    assert abs(rho) < 0.4


def test_order_is_a_function_of_seed_and_epoch() -> None:
    lengths = _lengths()
    a, b = (
        LengthGroupedEpochSampler(lengths, BATCH, seed=5),
        LengthGroupedEpochSampler(lengths, BATCH, seed=5),
    )
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(LengthGroupedEpochSampler(lengths, BATCH, seed=6)) != list(b)


def test_tiny_datasets_still_yield_everything() -> None:
    for n in (1, 5, 17, 33):
        order = list(LengthGroupedEpochSampler(_lengths(n), BATCH, seed=0))
        assert sorted(order) == list(range(n))
