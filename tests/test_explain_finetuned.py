"""Acceptance on the real offline default (all-MiniLM-L6-v2), finetuned briefly on the demo data.

Slow: the session's one short finetune of the default (shared with the other acceptance tests),
then a handful of explanations of real sentences.
"""

from __future__ import annotations

import numpy as np
import pytest

from labkit.inspect.attribution.api import explain, explain_dataset

pytestmark = pytest.mark.slow

# clearly polar sentences (not in the training data), their true label and their polar words
POLAR = [
    (
        "a wonderful, moving and beautifully acted film",
        "positive",
        {"wonderful", "moving", "beautifully"},
    ),
    ("a dull, tedious and badly written mess", "negative", {"dull", "ted", "badly", "mess"}),
    ("the best movie i have seen this year", "positive", {"best"}),
    ("an awful, boring waste of time", "negative", {"awful", "boring", "waste"}),
    ("a brilliant and delightful comedy", "positive", {"brilliant", "delightful"}),
    ("the plot is stupid and the acting is terrible", "negative", {"stupid", "terrible"}),
]


@pytest.fixture(scope="module")
def finetuned(finetuned_default):
    """The session's briefly finetuned default (tests/conftest.py: LoRA, merged into a plain
    model; ~0.8 validation accuracy), explained read-only."""
    accuracy = finetuned_default.run.metrics["accuracy"]  # the run's last validation score
    assert accuracy >= 0.7, f"the short finetune reached only {accuracy:.2f}"
    return finetuned_default.merged


def test_polar_words_are_on_top_for_the_true_label(finetuned):
    for text, label, polar in POLAR:
        r = explain(finetuned, text, target=label)
        assert r.target == label
        top = [t.lower() for t, _ in r.top(2)]
        assert top[0] in polar, (text, r.top(4))
        assert r.scores[[t.lower() in polar for t in r.tokens]].sum() > 0


def test_completeness_holds_on_held_back_sentences(finetuned, demo_data):
    held_back = demo_data.test.select(range(16))
    result = explain_dataset(finetuned, held_back, subset="all", tolerance=0.01, faithfulness=True)
    assert len(result) == 16
    assert (result.table["delta"] <= 0.01).all(), result.table[["text", "delta", "n_steps"]]
    for r in result.results:  # the completeness error is what it says it is
        assert r.delta is not None and r.delta <= 0.01

    # faithfulness: integrated gradients ranks tokens the model needs, better than chance
    from labkit.inspect.attribution.faithfulness import aopc

    rng = np.random.default_rng(0)
    results = result.results
    args = ([list(r.token_ids) for r in results], [list(r.special) for r in results])
    targets = [finetuned.labels.index(r.target) for r in results]
    probs = [r.probs[r.target] for r in results]
    shuffled = [rng.permutation(r.scores) for r in results]
    random_comp, _ = aopc(finetuned, *args, shuffled, targets, probs, max_rows=64)
    assert result.table["comprehensiveness"].mean() > np.mean(random_comp)


def test_batched_equals_one_by_one_on_the_real_model(finetuned, demo_data):
    texts = list(demo_data.test["text"][16:21])
    batched = explain_dataset(finetuned, texts, subset="all", faithfulness=False)
    for r in batched.results:
        single = explain(finetuned, r.text)
        assert single.options["n_steps"] == r.options["n_steps"]
        np.testing.assert_allclose(r.scores, single.scores, rtol=1e-3, atol=1e-5)
