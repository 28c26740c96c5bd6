"""Fuzzed inputs through load_data and predict: each works or raises a LabkitError."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labkit
from labkit import LabkitError
from labkit._utils.text import clean_text

# Every code point, lone surrogates, NUL and control characters included.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "\x00",
        "\ud800",
        "\udfff",
        "😀" * 50,
        "中文" * 30,
        "مرحبا بالعالم",
        "\u202eevil",
        "<img src=x onerror=alert(1)>",
        "</script><script>alert(1)</script>",
        "javascript:alert(1)",
        "x" * 100_000,
    ]
)
TEXT = st.one_of(st.text(ANY_CHAR, max_size=200), NASTY)
LABEL = st.one_of(
    st.sampled_from(["neg", "pos"]),
    st.integers(0, 1),
    st.none(),
    st.just(float("nan")),
    st.text(max_size=5),
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OUTCOMES: dict[str, dict[str, int]] = {}


def _tally(name: str, outcome: str) -> None:
    OUTCOMES.setdefault(name, {"worked": 0, "clean error": 0})[outcome] += 1


@SETTINGS
@given(texts=st.lists(TEXT, min_size=1, max_size=6))
def test_predict_works_on_any_text(tiny_model, texts):
    preds = tiny_model.predict(texts)
    assert len(preds) == len(texts)
    for p in preds:
        assert math.isclose(sum(p.probs.values()), 1.0, abs_tol=1e-4)
    _tally("predict", "worked")


@SETTINGS
@given(
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.binary(max_size=5),
        st.lists(st.one_of(st.integers(), st.none(), TEXT), max_size=4),
    )
)
def test_predict_rejects_non_text_cleanly(tiny_model, value):
    try:
        tiny_model.predict(value)
        _tally("predict (odd types)", "worked")
    except LabkitError as exc:
        assert str(exc)
        _tally("predict (odd types)", "clean error")


@SETTINGS
@given(
    rows=st.lists(
        st.fixed_dictionaries({"text": st.one_of(TEXT, st.none()), "label": LABEL}),
        min_size=0,
        max_size=30,
    ),
    dupes=st.integers(0, 3),
)
def test_load_data_works_or_explains(rows, dupes):
    rows = rows + rows[:dupes]
    try:
        data = labkit.load_data(rows)
    except LabkitError as exc:
        assert str(exc)
        _tally("load_data", "clean error")
        return
    assert len(data.labels) >= 2
    total = sum(len(s) for s in data.splits.values())
    assert total == len(rows)
    _tally("load_data", "worked")


@SETTINGS
@given(
    rows=st.lists(
        st.fixed_dictionaries({"text": TEXT, "label": st.sampled_from(["neg", "pos", 0, 1])}),
        min_size=4,
        max_size=30,
    )
)
def test_load_data_keeps_any_text_with_valid_labels(rows):
    try:
        data = labkit.load_data(rows)
    except LabkitError as exc:  # e.g. a single class, or too few rows to carve validation
        assert "single class" in str(exc) or "at least" in str(exc)
        _tally("load_data (valid labels)", "clean error")
        return
    kept = [t for s in data.splits.values() for t in s["text"]]
    assert sorted(kept) == sorted(clean_text(r["text"]) for r in rows)
    _tally("load_data (valid labels)", "worked")


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for name, counts in OUTCOMES.items():
        print(f"\nfuzz {name}: {counts['worked']} worked, {counts['clean error']} clean errors")
