"""The App's Compress tab without a browser: each button adds a row to the trade-off table on a
worker thread, the first row is the model as it is, errors are the red status line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import labkit


def _titles(app) -> list[str]:
    return [app.tabs.get_title(i) for i in range(len(app.tabs.children))]


@pytest.fixture
def app(tiny_model, toy_data, tmp_path):
    from labkit.ui.app import App

    app = App(model=tiny_model, data=toy_data, output_dir=str(tmp_path / "runs"))
    tab = app.compress
    tab.examples.value, tab.repeats.value = 8, 1  # small and fast: 8 texts, one timing
    return app


def _click(app, button) -> None:
    button.click()
    app.wait()
    assert app.status.kind == "ok", app.status.message


def test_a_classifier_has_the_compress_tab_and_a_causal_lm_has_not(app, tiny_lm):
    from labkit.ui.app import App

    assert _titles(app)[-1] == "Compress"
    assert app.tabs.children[-1] is app.compress.page
    assert "No models measured yet" in app.compress.view.heading.value
    assert "Compress" not in _titles(App(model=tiny_lm))


def test_measure_makes_the_model_the_first_row(app):
    tab = app.compress
    _click(app, tab.measure_go)
    assert tab.comparison is not None and tab.comparison.names == ["loaded"]
    assert tab.comparison.rows[0].examples == 6  # toy_data has no test split: validation
    assert "1 model compared" in tab.view.heading.value
    assert "<svg" in tab.view.plot.value and "loaded" in tab.view.table.value
    assert "Measured 'loaded'" in app.status.message
    assert "Compress" in app.snapshot_html() and "1 model compared" in app.snapshot_html()


def test_prune_adds_a_row_after_the_model_itself(app):
    tab = app.compress
    tab.fraction.value = 0.25
    _click(app, tab.prune_go)
    rows = tab.comparison.rows
    assert [r.name for r in rows] == ["loaded", "pruned 25%"]
    assert rows[1].parameters < rows[0].parameters
    assert "Added 'pruned 25%'" in app.status.message and "accuracy" in app.status.message
    # a second prune joins the same table under a name of its own
    _click(app, tab.prune_go)
    assert tab.comparison.names == ["loaded", "pruned 25%", "pruned 25% (2)"]
    assert "3 models compared" in tab.view.heading.value
    assert app.model.num_parameters == rows[0].parameters  # the App's model is untouched


def test_quantize_adds_an_int8_row(app):
    tab = app.compress
    _click(app, tab.quantize_go)
    loaded, int8 = tab.comparison.rows
    assert int8.name == "int8" and int8.backend == "torch-int8"
    assert int8.size_bytes < loaded.size_bytes


def test_distill_shows_its_run_and_adds_the_student(app):
    tab = app.compress
    tab.layers.value, tab.steps.value = 1, 2
    _click(app, tab.distill_go)
    assert tab.run is not None and tab.run.status == "finished"
    # in a folder of its own under the App's output_dir: the Train tab's run is not touched
    assert Path(tab.run.output_dir).parent == Path(app.output_dir)
    assert Path(tab.run.output_dir).name.startswith("distill-1-layers-")
    assert type(tab.run_box.children[0]).__name__ == "RunPanel"
    loaded, student = tab.comparison.rows
    assert student.name == "distilled 1 layers" and student.parameters < loaded.parameters


def test_export_onnx_adds_the_onnxruntime_row(app, tmp_path):
    tab = app.compress
    tab.folder.value = str(tmp_path / "onnx")
    _click(app, tab.export_go)
    _loaded, onnx = tab.comparison.rows
    assert onnx.name == "onnx" and onnx.backend == "onnxruntime"
    assert onnx.agreement == 1.0 and "worst probability difference" in app.status.message
    # the folder exists now: a second export is refused unless "replace it" is ticked
    tab.export_go.click()
    app.wait()
    assert app.status.kind == "error" and "tick 'replace it'" in app.status.message
    tab.overwrite.value = True  # ticked: the earlier export is replaced, a row is added
    _click(app, tab.export_go)
    assert [r.name for r in tab.comparison.rows] == ["loaded", "onnx", "onnx (2)"]


def test_errors_are_the_status_line(app, tmp_path):
    from labkit.ui.app import App

    tab = app.compress
    tab.folder.value = ""
    tab.export_go.click()
    app.wait()
    assert app.status.kind == "error" and "Folder field" in app.status.message
    bare = App(model=app.model, output_dir=str(tmp_path))
    bare.compress.quantize_go.click()
    bare.wait()
    assert bare.status.kind == "error" and "No data loaded" in bare.status.message
    assert app.model._training.acquire(blocking=False)  # as a training run holds it
    try:
        tab.prune_go.click()
        app.wait()
        assert app.status.kind == "error" and "training this model" in app.status.message
    finally:
        app.model._training.release()
    assert tab.comparison is None  # nothing was measured


def test_a_new_model_starts_a_new_table(app, tiny_dirs):
    tab = app.compress
    _click(app, tab.measure_go)
    first = tab.comparison
    app.model = labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
    _click(app, tab.measure_go)
    assert tab.comparison is not first and tab.comparison.names == ["loaded"]
    assert tab.view.comparison is tab.comparison


def test_the_view_follows_rows_added_on_another_thread(tiny_model, toy_data):
    import threading

    from labkit.compress.compare import compare_models
    from labkit.ui.compress_view import CompressView, view_for_model_comparison

    evil = "<img src=x onerror=alert(1)>"
    comparison = compare_models(
        {"first": tiny_model}, toy_data, batch_sizes=(1,), repeats=1, split="validation"
    )
    view = view_for_model_comparison(comparison)
    assert view_for_model_comparison(comparison) is view and isinstance(view, CompressView)
    assert "1 model compared" in view.heading.value
    worker = threading.Thread(target=comparison.add, args=(evil, copy.deepcopy(tiny_model)))
    worker.start()
    worker.join()
    assert "2 models compared" in view.heading.value
    for part in (view.table.value, view.plot.value):
        assert "<img" not in part and "&lt;img src=x onerror=alert(1)&gt;" in part
    assert view.plot.value.count("<circle") == 2
    drawn = view.redraws
    view.close()
    comparison.add("after close", copy.deepcopy(tiny_model))
    assert view.redraws == drawn  # a closed view no longer follows the comparison


def test_the_saved_view_says_what_was_added(app):
    """A notebook saved after Quantize reopens with the table and the status line saying the
    row was added (not the last progress message)."""
    shown: list[dict] = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(bundle)

    app._displays.append(Handle())
    _click(app, app.compress.quantize_go)
    saved = shown[-1]["text/html"]
    assert "Added &#x27;int8&#x27;" in saved or "Added 'int8'" in saved, saved[:400]
    assert "latency at batch" not in saved.split("Compress")[0]
