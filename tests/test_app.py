"""labkit.App without a browser: forms call the library, errors become messages."""

from __future__ import annotations

import copy
import datetime
import threading
import time

import pandas as pd
import pytest

import labkit
from tests._tiny import toy_rows


@pytest.fixture
def app(tiny_model, toy_data, tmp_path):
    from labkit.ui.app import App

    return App(model=tiny_model, data=toy_data, output_dir=str(tmp_path / "runs"))


def _titles(tab) -> list[str]:
    return [tab.get_title(i) for i in range(len(tab.children))]


def test_tabs_and_initial_state(app):
    assert _titles(app.tabs) == [
        "Model",
        "Data",
        "Train",
        "Attention",
        "Explain",
        "Compare",
        "Compress",
    ]
    assert "negative" in app.model_info.value
    assert app.status.kind in ("info", "ok") and app.status.message


def _until(check, timeout: float = 60.0, what: str = "") -> None:
    """Poll ``check()`` until it is true (a state another thread reaches), or fail."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.01)


def test_top_level_name_is_the_app():
    from labkit.ui.app import App

    assert labkit.App is App


def test_load_model_from_a_folder(tiny_dirs):
    from labkit.ui.app import App

    app = App()
    assert app.model is None
    app.model_preset.value = "other: type a hub name or folder below"
    app.model_name.value = str(tiny_dirs["distilbert"])
    app.model_labels.value = "bad,good,meh"
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.model.labels == ("bad", "good", "meh")
    assert "distilbert" in app.status.message


def test_errors_are_messages_not_exceptions(tmp_path):
    from labkit.ui.app import App

    app = App()
    app.model_preset.value = "other: type a hub name or folder below"
    app.model_name.value = str(tmp_path / "missing")
    app.load_model()
    app.wait()
    assert app.status.kind == "error"
    assert "does not exist" in app.status.message
    app.show_attention()
    app.wait()
    assert app.status.kind == "error" and "No model loaded" in app.status.message
    app.start_training()
    assert app.status.kind == "error" and "No model loaded" in app.status.message


def test_upload_csv_with_column_mapping(app):
    rows = pd.DataFrame(toy_rows(12)).rename(columns={"text": "review", "label": "stars"})
    payload = rows.to_csv(index=False).encode()
    app.data_upload.value = (
        {
            "name": "reviews.csv",
            "type": "text/csv",
            "size": len(payload),
            "content": memoryview(payload),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    app.data_text.value, app.data_label.value = "review", "stars"
    app.load_data()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.data.labels == ("negative", "positive")
    # a wrong column name lists the columns found
    app.data_text.value = "body"
    app.load_data()
    app.wait()
    assert app.status.kind == "error" and "'review'" in app.status.message


def test_preview_escapes_text(app):
    evil = [
        {"text": f"<img src=x onerror=alert({i})>", "label": r["label"]}
        for i, r in enumerate(toy_rows(8))
    ]
    app.data = labkit.load_data(evil)
    app._show_data()
    assert "<img" not in app.data_info.value
    assert "&lt;img src=x onerror=alert(" in app.data_info.value


def test_attention_and_explain_show_views(app):
    app.attention_text.value = "a wonderful film"
    app.show_attention()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert type(app.attention_box.children[0]).__name__ == "AttentionView"
    app.show_explanation()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert type(app.explain_box.children[0]).__name__ == "AttributionView"
    assert app.explain_view.target in app.status.message


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def test_the_explain_tab_has_one_set_of_controls(app):
    """Label and method are picked in the view (live); the form has only the text and Explain.
    The view's recompute runs off the kernel thread, says so in the status line, and the
    method picked there is the one the next Explain uses."""
    import ipywidgets as W

    explain_tab = app.tabs.children[4]
    assert not [w for w in _descendants(explain_tab) if isinstance(w, W.Dropdown)]
    app.explain_text.value = "a wonderful film"
    app.show_explanation()
    app.wait()
    view = app.explain_view
    assert view.method == "integrated_gradients" and view.interactive
    other = "negative" if view.target == "positive" else "positive"
    view.target = other  # the view's own picker: returns at once, the result follows
    assert app.status.kind == "busy"
    view.wait(60)
    assert app.status.kind == "ok" and other in app.status.message, app.status.message
    view.method = "occlusion"
    view.wait(60)
    assert view.result.method == "occlusion" and app.explain_method == "occlusion"
    app.show_explanation()  # same text: the picked label and method carry over
    app.wait()
    assert app.explain_view is not view
    assert (app.explain_view.method, app.explain_view.target) == ("occlusion", other)
    app.explain_text.value = "a dull film"  # a new text explains its predicted label
    app.show_explanation()
    app.wait()
    r = app.explain_view.result
    assert r.method == "occlusion" and r.target == r.predicted


def test_only_one_request_at_a_time(app):
    gate = threading.Event()
    app._work("slow", lambda: gate.wait(10), lambda _: "done")
    app.show_attention()
    assert app.status.kind == "error" and "Still working" in app.status.message
    gate.set()
    app.wait()
    assert app.status.message == "done"


def _probs(prediction) -> list[float]:
    return list(prediction.probs.values())


def test_train_then_compare(app):
    """Full finetuning keeps one copy of the weights (not of the tokenizer) for Compare."""
    app.compare()
    app.wait()
    assert app.status.kind == "error" and "train the model" in app.status.message
    text = "a dull and boring film"
    pretrained = app.model.predict([text])[0]
    app.train_mode.value = "full"
    assert "keeps one copy of the weights" in app.train_note.value
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.start_training()
    assert type(app.train_box.children[0]).__name__ == "RunPanel"
    app.run.wait(60)
    assert app.run.status == "finished"
    assert app.base is not None and app.base.hf is not app.model.hf
    assert app.base.tokenizer is app.model.tokenizer  # only the weights are copied
    app.compare_text.value = text
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    kinds = [type(c).__name__ for c in app.compare_box.children]
    assert "AttentionDiffView" in kinds and "HBox" in kinds
    assert "before" in app.compare_box.children[0].value
    assert "copy of the weights" in app.compare_box.children[0].value
    assert _probs(app.comparison.before) == pytest.approx(_probs(pretrained), abs=1e-6)


def test_lora_compare_needs_no_copy_and_before_is_the_pretrained_model(app, monkeypatch):
    """LoRA's "before" is the model with its adapter off (peft's disable_adapter): the same
    predictions as before training, and no copy of the model is ever made."""
    import transformers

    from labkit.model import Model

    texts = ["a dull and boring film", "a wonderful film"]
    pretrained = app.model.predict(texts)
    copied: list[str] = []
    real = copy.deepcopy

    def spy(obj, *args, **kwargs):
        if isinstance(obj, Model | transformers.PreTrainedModel):
            copied.append(type(obj).__name__)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(copy, "deepcopy", spy)
    app.train_mode.value = "LoRA"
    assert "no copy of the weights" in app.train_note.value
    app.train_steps.value = 6
    app.train_batch.value = 8
    app.train_lr.value = 5e-2  # a visible change in 6 steps
    app.start_training()
    app.run.wait(60)
    assert app.run.status == "finished" and app.model.lora
    assert app.base is None and copied == []
    for text, before in zip(texts, pretrained):
        app.compare_text.value = text
        app.compare()
        app.wait()
        assert app.status.kind == "ok", app.status.message
        c = app.comparison
        assert _probs(c.before) == pytest.approx(_probs(before), abs=1e-6)
        assert "adapter turned off" in c.how and "adapter turned off" in (
            app.compare_box.children[0].value
        )
    # the adapter is on again after Compare, and it did change the model
    after = app.model.predict(texts)
    assert _probs(after[0]) != pytest.approx(_probs(pretrained[0]), abs=1e-4)
    assert _probs(app.comparison.after) == pytest.approx(_probs(after[1]), abs=1e-6)
    assert copied == []


def test_compare_draws_before_and_after_on_one_scale(app):
    from labkit.inspect.attribution import shared_scale
    from labkit.ui.attribution_view import AttributionView

    app.train_mode.value = "full"
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.train_lr.value = 1e-3
    app.start_training()
    app.run.wait(60)
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    c = app.comparison
    b, a = c.explained_before, c.explained_after
    assert b.scale == a.scale == c.scale == shared_scale(b, a)
    views = [w for w in _descendants(app.compare_box) if isinstance(w, AttributionView)]
    assert [v.scale for v in views] == [c.scale, c.scale]
    assert not any(v.interactive for v in views)  # one side alone would leave the shared scale
    assert "shared scale" in b._repr_html_() and "one colour scale" in str(
        [getattr(w, "value", "") for w in app.compare_box.children]
    )


def test_learning_rate_zero_shows_the_default_it_will_use(app):
    from labkit.train.config import DEFAULT_LR_FULL, DEFAULT_LR_LORA
    from labkit.ui.app import _lr_text

    assert app.train_lr.value == 0
    assert app.train_lr_auto.value == f"auto ({_lr_text(DEFAULT_LR_LORA)} for LoRA)"
    assert _lr_text(1e-3) == "1e-3" and _lr_text(5e-5) == "5e-5" and _lr_text(2.5e-4) == "2.5e-4"
    app.train_mode.value = "full"
    assert app.train_lr_auto.value == f"auto ({_lr_text(DEFAULT_LR_FULL)} for full finetuning)"
    assert app.train_rank.disabled  # the rank means nothing for full finetuning
    app.train_lr.value = 3e-4
    assert app.train_lr_auto.value.startswith("(0 = auto")
    app.train_mode.value = "LoRA"
    app.train_lr.value = 0
    assert "for LoRA" in app.train_lr_auto.value and not app.train_rank.disabled


def test_status_line_follows_the_run_state():
    """The status line says the run's status in the badge's words (… until a request is
    answered), with what to do next."""
    from labkit.ui.app import _run_message, _run_state

    class FakeRun:
        def __init__(self, status):
            self.status, self.step, self.error = status, 7, None

    assert _run_state(FakeRun("pending")) == "pending"
    assert _run_message(FakeRun("pending"))[0] == "Training starting…"
    assert _run_state(FakeRun("running")) == "running"
    assert _run_state(FakeRun("pausing")) == "pausing…"
    assert _run_state(FakeRun("paused")) == "paused"
    assert _run_state(FakeRun("stopping")) == "stopping…"
    assert _run_state(FakeRun("finished")) == "finished"
    assert _run_state(FakeRun("out_of_memory")) == "out of memory"
    assert _run_message(FakeRun("paused"))[0].startswith("Training paused at step 7")
    assert _run_message(FakeRun("stopping"))[0].startswith("Training stopping…")
    failed = FakeRun("diverged")
    failed.error = "the training loss became nan"
    assert _run_message(failed) == ("Training diverged: the training loss became nan", "error")


def test_status_line_agrees_with_the_run_through_pause_resume_stop(app):
    """After Pause the status line says pausing… then paused (not "Training started"), after
    Resume running, after Stop stopping… then stopped. The training thread is held at a step
    boundary (a history listener runs on it) so each requested state is seen for sure."""
    app.train_mode.value = "full"
    app.train_steps.value = 400
    app.train_batch.value = 8
    app.start_training()
    run = app.run
    hold, held = threading.Event(), threading.Event()
    hold.set()

    def at_step(event) -> None:
        if type(event).__name__ == "StepEnd" and not hold.is_set():
            held.set()
            hold.wait(60)

    run.history.subscribe(at_step)

    def request(action: str, waiting: str) -> None:
        held.clear()
        hold.clear()
        assert held.wait(60), "the run did not reach a step"
        getattr(run, action)()  # what the panel's button does
        _until(lambda: app.status.message.startswith(f"Training {waiting}"), 5, waiting)
        assert app.status.kind == "busy"
        hold.set()

    try:
        _until(lambda: run.status == "running", what="running")
        request("pause", "pausing…")
        _until(lambda: run.status == "paused", what="paused")
        _until(lambda: app.status.message.startswith("Training paused at step"), 5, "paused")
        assert app.status.kind == "info"
        run.resume()
        _until(lambda: app.status.message.startswith("Training running"), 5, "running")
        request("stop", "stopping…")
    finally:
        hold.set()
        run.stop()
    run.wait(60)
    assert run.status == "stopped"
    _until(lambda: app.status.message.startswith("Training stopped"), 5, "stopped")
    assert app.status.kind == "ok"


def test_start_is_disabled_while_a_run_is_live(app):
    """A second Start during a run could only fail: it is disabled until the run ends, and the
    status line then says how the run ended (no stale message left over)."""
    from labkit.events import TrainEnd

    app.train_mode.value = "full"
    app.train_steps.value = 200
    app.train_batch.value = 8
    ended = threading.Event()
    app.start_training()
    app.run.history.subscribe(lambda e: ended.set() if isinstance(e, TrainEnd) else None)
    assert app.train_start.disabled
    assert app.status.kind == "busy"
    app.run.stop()
    assert ended.wait(60)
    assert app.run.status == "stopped"
    assert not app.train_start.disabled
    _until(lambda: app.status.message.startswith("Training stopped"), 5)
    assert app.status.kind == "ok"


def test_lora_rank_reaches_the_adapter(app):
    app.train_mode.value = "LoRA"
    app.train_rank.value = 4
    app.train_steps.value = 2
    app.start_training()
    app.run.wait(60)
    assert app.run.status == "finished"
    assert app.model.lora
    assert app.model.hf.peft_config["default"].r == 4


def test_the_model_dropdown_never_names_another_model_than_load_will_load():
    from labkit.ui.app import DEFAULT_MODEL, OTHER_MODEL, App

    app = App()
    assert app.model_preset.value == DEFAULT_MODEL
    app.model_name.value = "my-org/my-model"  # typed over the offline default
    assert app.model_preset.value == OTHER_MODEL
    assert app.model_name.value == "my-org/my-model"  # the typed name is kept
    app.model_preset.value = "roberta-base (hub)"
    assert app.model_name.value == "roberta-base"
    app.model_name.value = "roberta-large"
    assert app.model_preset.value == OTHER_MODEL
    app.model_preset.value = DEFAULT_MODEL
    assert app.model_name.value == "" and app.model_preset.value == DEFAULT_MODEL


def test_compare_is_refused_while_a_run_trains_the_model(app):
    """Compare would read weights a run is changing (and turn a LoRA adapter off under it):
    while the run trains it says so; after the run it compares."""
    hold, held = threading.Event(), threading.Event()
    app.train_steps.value = 40
    app.train_batch.value = 8
    app.start_training()
    run = app.run

    def at_step(event) -> None:
        if type(event).__name__ == "StepEnd" and event.step == 2:
            held.set()
            hold.wait(60)

    run.history.subscribe(at_step)
    assert held.wait(60)
    app.compare()
    app.wait(60)
    message = app.status.message
    hold.set()
    run.stop()
    run.wait(60)
    assert "A run is training this model" in message
    app.compare()
    app.wait(120)
    assert app.status.kind == "ok", app.status.message
    assert app.comparison is not None


def test_the_app_snapshot_follows_the_app_and_escapes(app):
    """What a saved notebook shows of the App: its status, model, data, and the last run."""
    html = app.snapshot_html()
    assert "labkit App" in html and "tiny" in html.lower() and "Training" not in html
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.start_training()
    app.run.wait(60)
    html = app.snapshot_html()
    assert "Training" in html and "labkit-run" in html and "finished" in html
    app.status.message = "<img src=x onerror=alert(1)>"
    assert "<img src=x" not in app.snapshot_html()
    bundle = app._repr_mimebundle_()
    assert {"text/html", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert "application/vnd.labkit.view+json" in bundle


def test_the_saved_view_ends_on_how_a_request_ended_not_on_its_busy_message(app):
    """A notebook saved after a click shows the request's outcome: the snapshot is refreshed
    once the status line says it, also when the request's own step refreshed it earlier."""

    class Handle:
        def __init__(self) -> None:
            self.shown: list[str] = []

        def update(self, bundle, raw=False):
            self.shown.append(bundle["text/html"])

    handle = Handle()
    app._displays.append(handle)

    def job() -> int:
        app._refresh_snapshot()  # as a tab's done() does, while the line still says busy
        return 1

    app._work("Crunching numbers…", job, lambda _: "Crunched: all done.")
    app.wait(30)
    assert "Crunched: all done." in handle.shown[-1]
    assert "Crunching numbers" not in handle.shown[-1]
    app._work("Crunching again…", lambda: 1 / 0, lambda _: "never")
    app.wait(30)
    assert "ZeroDivisionError" in handle.shown[-1]


def test_a_run_is_named_after_the_model_the_method_and_the_data(app):
    """The panel's title says what trains on what: finetune's own name (model · method), then
    the data's source."""
    from labkit.train.run import model_label

    app.train_rank.value = 4
    app.train_steps.value = 2
    app.start_training()
    app.run.wait(60)
    assert app.run.name == f"{model_label(app.model)} · LoRA r=4 · {app.data.source or 'data'}"
