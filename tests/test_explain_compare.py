"""compare_explanations: two methods' top tokens and their agreement, labelled and rounded.

``print(ex.top(5))`` showed 17-digit tuples and ``ex.agreement(ex2)`` a bare 0.75; the
comparison displays both with names, ranks, a few significant digits and words.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from labkit import InputError
from labkit.inspect.attribution.api import explain
from labkit.inspect.attribution.compare import ExplanationComparison, compare_explanations
from labkit.inspect.attribution.result import AttributionResult

TEXT = "a gorgeous, witty, seductive movie"


def _result(scores, method, tokens=None):
    tokens = tokens or ["[CLS]", "a", "gorgeous", "<img src=x onerror=alert(1)>", "movie", "[SEP]"]
    return AttributionResult(
        text="a gorgeous <img src=x onerror=alert(1)> movie",
        tokens=tuple(tokens),
        scores=np.asarray(scores, dtype=np.float32),
        target="positive",
        probs={"negative": 0.1, "positive": 0.9},
        method=method,
        delta=None,
        options={},
        special=(True, False, False, False, False, True),
    )


def test_comparison_lists_each_methods_top_tokens_and_the_agreement_in_words():
    a = _result([0.0, 0.01234567, 0.4567891, 0.23456789, -0.1, 0.0], "integrated_gradients")
    b = _result([0.0, 0.02, 0.3, 0.1, 0.05, 0.0], "occlusion")
    cmp = compare_explanations(a, b, k=3)
    assert isinstance(cmp, ExplanationComparison)
    assert cmp.top_a == a.top(3) and cmp.top_b == b.top(3)  # data: full precision
    assert cmp.agreement == pytest.approx(a.agreement(b))
    assert cmp.shared == ["gorgeous", "<img src=x onerror=alert(1)>"]
    rows = cmp.rows()
    assert rows[0]["rank"] == 1 and rows[0]["token_a"] == "gorgeous"
    assert rows[0]["score_a"] == pytest.approx(0.4567891) and rows[2]["token_b"] == "movie"
    html = cmp._repr_html_()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "integrated gradients" in html and "occlusion" in html
    assert "Spearman rank agreement <b>0.80</b>" in html and cmp.verdict() in html
    assert "0.457" in html and "4567891" not in html  # 3 significant digits, not 17
    numbers = re.findall(r"(?<![\w.#])\d+\.\d+", re.sub(r"rgba\([^)]*\)", "", html))
    assert all(len(n.replace(".", "").lstrip("0")) <= 3 for n in numbers), numbers
    assert html.count("<tr>") == 2 + 3  # two header rows, one per rank
    assert "'integrated_gradients' vs 'occlusion'" in repr(cmp)


@pytest.mark.parametrize(
    ("scores", "words"),
    [
        ([0.0, 1, 2, 3, 4, 0.0], "largely agree"),
        ([0.0, 4, 3, 2, 1, 0.0], "opposite orders"),
    ],
)
def test_verdict_follows_the_correlation(scores, words):
    a = _result([0.0, 1, 2, 3, 4, 0.0], "saliency")
    assert words in compare_explanations(a, _result(scores, "occlusion")).verdict()


def test_comparison_refuses_other_texts_and_bad_k():
    a = _result([0.0, 1, 2, 3, 4, 0.0], "saliency")
    other = dataclasses.replace(a, tokens=("[CLS]", "b", "c", "d", "e", "[SEP]"))
    with pytest.raises(InputError, match="different texts"):
        compare_explanations(a, other)
    with pytest.raises(InputError, match="k must be a positive"):
        compare_explanations(a, a, k=0)
    with pytest.raises(InputError, match="AttributionResult"):
        compare_explanations(a, [0.1, 0.2])


def test_two_real_methods_on_a_tiny_model(tiny_model):
    ig = explain(tiny_model, TEXT)
    occ = explain(tiny_model, TEXT, method="occlusion")
    cmp = compare_explanations(ig, occ)
    assert len(cmp.rows()) == 5
    assert -1.0 <= cmp.agreement <= 1.0
    assert "integrated gradients" in cmp._repr_html_()


def test_a_token_twice_in_a_top_list_is_shared_once():
    tokens = ["[CLS]", ",", "witty", ",", "movie", "[SEP]"]
    a = _result([0.0, 0.3, 0.5, 0.2, 0.1, 0.0], "saliency", tokens)
    b = _result([0.0, 0.1, 0.2, 0.3, 0.5, 0.0], "occlusion", tokens)
    cmp = compare_explanations(a, b, k=4)
    assert cmp.shared == ["witty", ",", "movie"]
    assert "in both lists (3)" in cmp._repr_html_() and "shared 3" in repr(cmp)
