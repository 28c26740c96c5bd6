"""labkit.App without a browser: forms call the library, errors become messages."""

from __future__ import annotations

import datetime
import threading

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
    assert _titles(app.tabs) == ["Model", "Data", "Train", "Attention", "Explain", "Compare"]
    assert "negative" in app.model_info.value
    assert app.explain_target.options == ("predicted label", "negative", "positive")
    assert app.status.kind in ("info", "ok") and app.status.message


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
    app.explain_target.value = "negative"
    app.show_explanation()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert type(app.explain_box.children[0]).__name__ == "AttributionView"
    assert "negative" in app.status.message


def test_only_one_request_at_a_time(app):
    gate = threading.Event()
    app._work("slow", lambda: gate.wait(10), lambda _: "done")
    app.show_attention()
    assert app.status.kind == "error" and "Still working" in app.status.message
    gate.set()
    app.wait()
    assert app.status.message == "done"


def test_train_then_compare(app):
    app.compare()
    app.wait()
    assert app.status.kind == "error" and "train the model" in app.status.message
    app.train_mode.value = "full"
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.start_training()
    assert type(app.train_box.children[0]).__name__ == "RunPanel"
    app.run.wait(60)
    assert app.run.status == "finished"
    assert app.base is not None and app.base.hf is not app.model.hf
    app.compare_text.value = "a dull and boring film"
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    kinds = [type(c).__name__ for c in app.compare_box.children]
    assert "AttentionDiffView" in kinds and "HBox" in kinds
    assert "before" in app.compare_box.children[0].value


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
    assert app.status.kind == "ok" and app.status.message.startswith("Training stopped")


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
