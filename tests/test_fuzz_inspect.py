"""Fuzzed text through attention, explain and the App's text fields: each input either works or
raises (the App: shows) a LabkitError whose message says what was wrong; nothing else escapes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labkit
from labkit import LabkitError, LabkitWarning
from labkit._utils.text import clean_text
from tests.test_fuzz_core import NASTY, TEXT

EXPLAIN_TEXT = TEXT  # lone surrogates included: explain cleans them like predict does
LONE = "a \ud800 b \udfff"
NAME = st.one_of(NASTY, st.text(max_size=40))

SMALL = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(SMALL, max_examples=8)

OUTCOMES: dict[str, dict[str, int]] = {}


def _tally(name: str, outcome: str) -> None:
    OUTCOMES.setdefault(name, {"worked": 0, "clean error": 0})[outcome] += 1


def _call(name: str, fn, *args, **kwargs):
    """``fn(...)`` or None when it raised a LabkitError with a message; only labkit warnings."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            out = fn(*args, **kwargs)
        except LabkitError as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            _tally(name, "clean error")
            return None
    ours = [w for w in seen if issubclass(w.category, LabkitWarning)]
    assert len(ours) <= 2, [str(w.message) for w in ours]  # truncation, IG not converged
    _tally(name, "worked")
    return out


def _blank(text: str) -> bool:
    return not text.strip()


@SMALL
@given(text=TEXT, pair=st.one_of(st.none(), TEXT), layers=st.sampled_from([None, 0, [1], [-1]]))
def test_attention_on_any_text(tiny_model, text, pair, layers) -> None:
    result = _call("attention", labkit.attention, tiny_model, text, pair=pair, layers=layers)
    if result is None:
        return
    assert not _blank(text)
    t = len(result.tokens)
    assert 2 <= t <= 128 and result.weights.shape[-2:] == (t, t)
    assert np.allclose(result.weights.sum(-1), 1.0, atol=1e-3)
    html = result._repr_html_()  # the static view renders whatever the tokens are
    assert "<script" not in html.lower()


@SMALL
@given(text=TEXT)
def test_attention_on_a_decoder(tiny_dirs, text) -> None:
    model = _decoder(tiny_dirs)
    result = _call("attention (gpt2)", labkit.attention, model, text)
    if result is not None:
        assert result.causal or len(result.tokens) == 1


_DECODER: dict[str, object] = {}


def _decoder(tiny_dirs):
    if "gpt2" not in _DECODER:
        _DECODER["gpt2"] = labkit.load_model(tiny_dirs["gpt2"], labels=["a", "b"], device="cpu")
    return _DECODER["gpt2"]


@SMALL
@given(text=EXPLAIN_TEXT, method=st.sampled_from(["saliency", "gradient_x_input"]))
def test_explain_on_any_text(tiny_model, text, method) -> None:
    result = _call(f"explain ({method})", labkit.explain, tiny_model, text, method=method)
    if result is None:
        return
    assert not _blank(text)
    assert len(result.scores) == len(result.tokens) <= 128
    assert all(math.isfinite(float(s)) for s in result.scores)
    assert "<script" not in result._repr_html_().lower()


@FEW
@given(text=st.one_of(NASTY, st.text(max_size=60)).map(clean_text))
def test_integrated_gradients_on_nasty_text(tiny_model, text) -> None:
    result = _call(
        "explain (integrated_gradients)",
        labkit.explain,
        tiny_model,
        text,
        n_steps=8,
        max_steps=16,
    )
    if result is not None:
        assert result.delta is not None and math.isfinite(result.delta)


def test_explain_takes_lone_surrogates(tiny_model) -> None:
    result = _call("explain (lone surrogates)", labkit.explain, tiny_model, LONE, method="saliency")
    assert result is not None and "\ufffd" in result.text


def test_app_explains_lone_surrogates(app) -> None:
    app.explain_text.value = LONE
    _press(app, "App explain_text (lone surrogates)", app.show_explanation)
    assert app.status.kind == "ok", app.status.message


@SMALL
@given(target=st.one_of(TEXT, st.integers(-3, 5), st.none(), st.floats()))
def test_explain_target_of_any_kind(tiny_model, target) -> None:
    result = _call("explain (target)", labkit.explain, tiny_model, "a fine film", target=target)
    if result is not None:
        assert result.target in tiny_model.labels


# -- the App's text fields -------------------------------------------------------------------
@pytest.fixture
def app(tiny_model, tiny_dirs, toy_data):
    from labkit.ui.app import App

    lab = App(model=tiny_model, data=toy_data)
    lab.base = labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
    lab.explain_method = "saliency"
    return lab


def _press(app, name: str, action) -> None:
    """Set a field, press a button, wait: the status says ok or a message, never raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabkitWarning)  # truncation is shown by the view
        action()
        app.wait(timeout=120)
    kind, message = app.status.kind, app.status.message
    assert kind in ("ok", "error"), (kind, message)
    if kind == "error":
        assert message.strip() and not message.startswith("Unexpected"), message
        _tally(name, "clean error")
    else:
        _tally(name, "worked")


@SMALL
@given(text=TEXT)
def test_app_attention_and_explain_fields(app, text) -> None:
    app.attention_text.value = text
    _press(app, "App attention_text", app.show_attention)
    assert (app.status.kind == "error") == _blank(text)
    text = clean_text(text)  # see test_app_explains_lone_surrogates
    app.explain_text.value = text
    _press(app, "App explain_text", app.show_explanation)
    assert (app.status.kind == "error") == _blank(text)


@settings(SMALL, max_examples=10)
@given(text=TEXT)
def test_app_compare_field(app, text) -> None:
    text = clean_text(text)  # compare runs explain: see test_app_explains_lone_surrogates
    app.compare_text.value = text
    _press(app, "App compare_text", app.compare)
    assert (app.status.kind == "error") == _blank(text)


@settings(SMALL, max_examples=25)
@given(data=st.data())
def test_app_model_name_and_labels(app, tiny_dirs, data) -> None:
    real = str(tiny_dirs["bert"])
    name = data.draw(st.one_of(NAME, st.just(real), st.just(f" {real}\t")))
    labels = data.draw(st.one_of(NASTY, st.text(max_size=20), st.just("<b>a</b>,\u202eb")))
    app.model_preset.value = "other: type a hub name or folder below"
    app.model_name.value = name
    app.model_labels.value = labels
    before = app.model
    _press(app, "App model_name", app.load_model)
    if app.status.kind == "error":
        assert app.model is before  # a failed load keeps the loaded model


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> str:
    import csv

    path = tmp_path_factory.mktemp("fuzz-data") / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, text in enumerate(["<img src=x onerror=alert(1)>", "😀 中文 مرحبا", "fine"] * 4):
            w.writerow([text, "<b>pos</b>" if i % 2 else "neg"])
    return str(path)


@settings(SMALL, max_examples=25)
@given(
    data=st.data(),
    text_col=st.one_of(st.just("text"), NASTY),
    label_col=st.one_of(st.just("label"), st.text(max_size=8)),
)
def test_app_data_source_and_columns(app, csv_file, data, text_col, label_col) -> None:
    source = data.draw(st.one_of(NAME, st.just(csv_file)))
    app.data_preset.value = "other: hub name, file path or upload below"
    app.data_source.value, app.data_text.value, app.data_label.value = source, text_col, label_col
    before = app.data
    _press(app, "App data_source", app.load_data)
    if app.status.kind == "error":
        assert app.data is before


@pytest.mark.parametrize("field", ["model", "data"])
def test_app_names_over_255_bytes(app, field) -> None:
    if field == "model":
        app.model_preset.value = "other: type a hub name or folder below"
        app.model_name.value = "x" * 100_000
        _press(app, "App model_name (100k chars)", app.load_model)
    else:
        app.data_preset.value = "other: hub name, file path or upload below"
        app.data_source.value = "x" * 100_000
        _press(app, "App data_source (100k chars)", app.load_data)
    assert app.status.kind == "error"


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for name, counts in OUTCOMES.items():
        print(f"\nfuzz {name}: {counts['worked']} worked, {counts['clean error']} clean errors")
