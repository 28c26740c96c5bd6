"""lk.compare_models: the trade-off table (parameters, size, latency, accuracy, agreement)."""

from __future__ import annotations

import base64
import copy
import re

import pytest

import labkit
from labkit.compress.compare import ModelComparison, compare_models
from tests import _tiny

SMALL = {"batch_sizes": (1, 4), "repeats": 1, "split": "validation"}


@pytest.fixture(scope="module")
def two_layer(tiny_dirs):
    return labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")


@pytest.fixture(scope="module")
def one_layer(tmp_path_factory):
    folder = _tiny.build("bert", tmp_path_factory.mktemp("one") / "bert1", layers=1, seed=3)
    return labkit.load_model(folder, labels=["negative", "positive"], device="cpu")


def test_a_copy_agrees_with_its_original_and_scores_what_evaluate_scores(two_layer, toy_data):
    comparison = compare_models(
        {"original": two_layer, "copy": copy.deepcopy(two_layer)}, toy_data, **SMALL
    )
    assert isinstance(comparison, ModelComparison)
    assert comparison.names == ["original", "copy"]
    first, second = comparison.rows
    metrics = two_layer.evaluate(toy_data, split="validation")
    for row in comparison.rows:
        assert row.accuracy == pytest.approx(metrics.accuracy)
        assert row.f1 == pytest.approx(metrics.f1)
        assert row.examples == len(toy_data.validation)
        assert row.parameters == two_layer.num_parameters
        assert row.backend == "torch" and row.device == "cpu"
        assert set(row.latency) == {1, 4} and all(v > 0 for v in row.latency.values())
    assert second.agreement == 1.0
    assert first.speedup == {1: 1.0, 4: 1.0}
    assert all(v > 0 for v in second.speedup.values())
    assert first.size_bytes == second.size_bytes > 0


def test_a_smaller_model_has_fewer_parameters_and_its_own_agreement(two_layer, one_layer, toy_data):
    comparison = compare_models(
        {"two layers": two_layer, "one layer": one_layer},
        toy_data,
        max_examples=20,
        batch_sizes=(1,),
        repeats=1,
        split="train",
    )
    big, small = comparison.rows
    assert small.parameters < big.parameters and small.size_bytes < big.size_bytes
    texts = list(toy_data.train["text"][:20])
    same = [
        a.label == b.label
        for a, b in zip(two_layer.predict(texts), one_layer.predict(texts), strict=True)
    ]
    assert small.examples == 20
    assert small.agreement == pytest.approx(sum(same) / len(same))


def test_rows_arrive_one_at_a_time(two_layer, one_layer, toy_data):
    seen = []
    comparison = compare_models(
        {"first": two_layer}, toy_data, on_row=lambda r: seen.append(r.name), **SMALL
    )
    assert seen == ["first"]
    told: list[str] = []
    row = comparison.add("second", one_layer, progress=told.append)
    assert seen == ["first", "second"] and comparison.rows[-1] is row
    assert any("latency at batch 4" in t for t in told)
    frame = comparison.to_pandas()
    assert list(frame["model"]) == ["first", "second"]
    assert {"size_mb", "latency_ms_b1", "latency_ms_b4", "speedup_b4", "accuracy", "f1"} <= set(
        frame.columns
    )
    with pytest.raises(labkit.ConfigError, match="already in this comparison"):
        comparison.add("second", one_layer)


def test_names_are_escaped_in_the_table_and_the_plot(two_layer, toy_data, tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    comparison = compare_models({evil: two_layer}, toy_data, **SMALL)
    page = comparison._repr_html_()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    svg = base64.b64decode(re.search(r"base64,([^']+)'", page)[1]).decode()
    assert "<img" not in svg and "&lt;img src=x" in svg
    assert "accuracy (%)" in svg and svg.count("<circle") == 1
    written = comparison.to_html(tmp_path / "c.html").read_text()
    assert "&lt;img src=x" in written and "<img src=x" not in written
    assert "1 model compared" in page and evil in repr(comparison)


def test_bad_input_says_what_was_wrong(two_layer, tiny_dirs, toy_data):
    with pytest.raises(labkit.ConfigError, match="models is empty"):
        compare_models({}, toy_data)
    with pytest.raises(labkit.ConfigError, match=r"not a labkit\.Model"):
        compare_models({"a": two_layer, "b": two_layer.hf}, toy_data)
    three = labkit.load_model(tiny_dirs["bert"], labels=["bad", "good", "meh"], device="cpu")
    with pytest.raises(labkit.ConfigError, match="share one label set"):
        compare_models({"a": two_layer, "b": three}, toy_data)
    with pytest.raises(labkit.DataError, match="no split 'test'"):
        compare_models({"a": two_layer}, toy_data, split="test")
    import datasets

    unlabelled = datasets.Dataset.from_dict({"text": ["a fine film", "a dull film"]})
    with pytest.raises(labkit.DataError, match="'label'"):
        compare_models({"a": two_layer}, unlabelled)
    with pytest.raises(labkit.ConfigError, match="batch_sizes"):
        compare_models({"a": two_layer}, toy_data, batch_sizes=(0,))
    with pytest.raises(labkit.ConfigError, match="max_examples"):
        compare_models({"a": two_layer}, toy_data, max_examples=0)


@pytest.mark.slow
def test_the_trade_off_table_of_the_default_on_the_demo_test_split(
    demo_data, finetuned_default, tmp_path
):
    """Acceptance: the finetuned default against its int8, pruned, ONNX and distilled copies on
    the demo test split."""
    # the session's one LoRA finetune of the default (tests/conftest.py), merged by the export;
    # every copy below is a new model, so the shared one is left as it was
    model = finetuned_default.merged
    importance = labkit.head_importance(model, demo_data, split="validation")
    export = labkit.export_onnx(model, tmp_path / "onnx")
    # a short distillation (benchmarks/bench_distill.py runs the full 420 steps: 0.78 or more)
    student = labkit.shrink(model, layers=2)
    distilled = labkit.distill(
        model,
        student,
        demo_data,
        max_steps=40,
        lr=2e-4,
        batch_size=32,
        max_length=64,
        output_dir=tmp_path / "distill",
        progress=False,
    ).wait()
    assert distilled.status == "finished", distilled.error
    models = {
        "finetuned": model,
        "int8": labkit.quantize(model),
        "pruned 30%": labkit.prune_heads(model, fraction=0.3, importance=importance),
        "onnx": labkit.load_model(export.path),
        "distilled 2 layers": student,
    }
    comparison = compare_models(models, demo_data, batch_sizes=(1, 32), repeats=2)
    print(comparison.to_pandas().round(4).to_string())
    tuned, int8, pruned, onnx, small = comparison.rows
    assert comparison.split == "test" and tuned.examples == len(demo_data.test)
    assert tuned.accuracy > 0.7  # a finetuned model, not an untrained head
    assert int8.backend == "torch-int8" and int8.size_bytes < tuned.size_bytes
    assert int8.parameters == tuned.parameters
    # int8 costs under a point on this model (benchmarks/bench_quantize.py: -0.6 on the full
    # recipe); a larger loss means the quantization broke something
    assert abs(int8.accuracy - tuned.accuracy) < 0.025 and int8.agreement > 0.95
    assert pruned.parameters < tuned.parameters and pruned.size_bytes < tuned.size_bytes
    assert onnx.backend == "onnxruntime" and onnx.agreement > 0.99
    assert onnx.accuracy == pytest.approx(tuned.accuracy, abs=0.005)
    # two of six layers: a third of the encoder's weights, about 2.5x faster, still a classifier
    assert small.parameters < 0.8 * tuned.parameters and small.size_bytes < tuned.size_bytes
    assert small.speedup[32] > 1.8 and small.accuracy > 0.65
    assert distilled.history.column("soft_loss") and distilled.history.column("hard_loss")
    page = comparison._repr_html_()
    assert all(name in page for name in models)
