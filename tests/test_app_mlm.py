"""labkit.App with a masked LM, without a browser: the tabs follow the model's task, Fill-mask
fills masks on the worker thread (after training, next to the model before it), Train passes
the mask probability, Attention works as for a text encoder, the snapshot keeps the last
answers, escaped. A tiny config-built BertForMaskedLM saved as a real folder (WordPiece
vocabulary of the packaged MiniLM) and a handful of texts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import labkit

MLM_TABS = ["Model", "Data", "Train", "Fill-mask", "Attention"]
CLASSIFIER_TABS = ["Model", "Data", "Train", "Attention", "Explain", "Compare", "Compress"]
HOSTILE = "<img src=x onerror=alert(1)>"
TEXTS = [
    "the movie was good and long",
    "a dull and lifeless film",
    "great fun for everyone",
    "the worst film of the year",
    "an excellent and moving film",
    "the plot was slow and the acting was good",
]


def _titles(app) -> list[str]:
    return [app.tabs.get_title(i) for i in range(len(app.tabs.children))]


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory) -> Path:
    """A tiny BertForMaskedLM with its head, saved with the MiniLM tokenizer."""
    import torch
    import transformers as tf

    from labkit.demo import model_path

    folder = tmp_path_factory.mktemp("tiny-mlm")
    tok = tf.AutoTokenizer.from_pretrained(str(model_path()), model_max_length=128)
    config = tf.BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    tf.BertForMaskedLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def mlm(mlm_dir):
    return labkit.load_model(mlm_dir, task="masked-lm", device="cpu")


@pytest.fixture(scope="module")
def corpus():
    """Plain text as the corpus preset gives it (its source names the corpus file)."""
    data = labkit.load_data([{"text": t} for t in TEXTS * 6], task="masked-lm")
    data.source = "rotten_tomatoes_corpus_full (test copy)"
    return data


@pytest.fixture
def app(mlm, corpus, tmp_path):
    from labkit.ui.app import App

    return App(model=mlm, data=corpus, output_dir=str(tmp_path / "runs"))


def test_the_masked_lm_preset_loads_a_folder_as_a_masked_lm_and_back(mlm_dir, tiny_dirs, toy_data):
    """ "other masked LM" loads the typed folder with task="masked-lm": five tabs, no labels,
    the masked-LM data presets, full finetuning; the same folder with "other" loads as what its
    checkpoint is for labkit.load_model (a classifier); each task keeps its data."""
    from labkit.ui.app import OTHER_MLM, App
    from labkit.ui.app_mlm import MLM_DATA

    app = App(data=toy_data)
    app.model_preset.value = OTHER_MLM
    assert app.model_labels.disabled
    app.model_name.value = str(mlm_dir)
    assert app.model_preset.value == OTHER_MLM  # typing keeps the masked-LM choice
    app.model_load.click()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert "(a masked LM)" in app.status.message
    assert app.model.task == "masked-lm" and _titles(app) == MLM_TABS
    assert "masked language models" in app.heading.value
    assert app.tabs.children[3] is app.mlm.page
    assert app.data is None and app.data_preset.options[0] == MLM_DATA
    assert app.data_label.layout.display == "none" and app.train_mode.value == "full"
    train = list(app.tabs.children[2].children)
    assert train[train.index(app.train_start) - 1] is app.mlm.train_rows[0]
    assert "for Fill-mask the App keeps one copy" in app.train_note.value
    # the classifier's folder brings its tabs and data back
    app.model_preset.value = "other: type a hub name or folder below"
    app.model_labels.value = "bad,good"
    app.model_name.value = str(tiny_dirs["bert"])
    app.load_model()
    app.wait()
    assert _titles(app) == CLASSIFIER_TABS and app.data is toy_data


def test_the_offline_presets_call_the_demo_functions(monkeypatch, mlm, corpus):
    """The masked-LM preset is labkit.demo.mlm() and its data preset labkit.demo.corpus(),
    both on the worker thread; the preview shows the first texts, escaped."""
    from labkit.ui.app import DEFAULT_MLM, App

    hostile = labkit.load_data([{"text": f"{HOSTILE} {t}"} for t in TEXTS * 3], task="masked-lm")
    monkeypatch.setattr(labkit.demo, "mlm", lambda: mlm)
    monkeypatch.setattr(labkit.demo, "corpus", lambda: hostile)
    app = App()
    app.model_preset.value = DEFAULT_MLM
    assert app.model_labels.disabled and app.model_name.value == ""
    app.load_model()
    app.wait()
    assert app.status.kind == "ok" and app.model is mlm, app.status.message
    app.load_data()
    app.wait()
    assert app.status.kind == "ok" and app.data is hostile, app.status.message
    assert "text data" in app.status.message
    info = app.data_info.value
    assert "&lt;img src=x" in info and "<img src=x" not in info
    # the corpus alone (no model yet) opens the masked-LM tabs
    assert _titles(App(data=corpus)) == MLM_TABS


def test_fill_mask_shows_the_candidates_and_refuses_bad_input(app):
    from labkit.ui.app_mlm import MLM_EXAMPLE

    m = app.mlm
    assert m.fill_text.value == MLM_EXAMPLE and m.top_k.value == 5
    m.top_k.value = 3
    m.fill_go.click()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    f = m.filled
    assert f.before is None and len(f.after) == 1 and len(f.after[0]) == 3
    expected = app.model.fill_mask(MLM_EXAMPLE, top_k=3)
    assert [c.token for c in f.after[0]] == [c.token for c in expected]
    assert f"'{expected[0].token}'" in app.status.message
    assert "<table>" in m.fill_box.value and "before training" not in m.fill_box.value
    m.fill_text.value = "a [MASK] film and a [MASK] plot"
    m.fill()
    app.wait()
    assert app.status.kind == "ok" and "Filled 2 masks" in app.status.message
    assert len(m.filled.after) == 2
    for text, words in (("no mask here", "no mask token"), ("", "no mask token")):
        m.fill_text.value = text
        m.fill()
        app.wait()
        assert app.status.kind == "error" and words in app.status.message, app.status.message


def test_fill_mask_needs_a_masked_lm(tiny_model):
    from labkit.ui.app import App

    app = App()
    app.mlm.fill()
    app.wait()
    assert app.status.kind == "error" and "No model loaded" in app.status.message
    app = App(model=tiny_model)
    app.mlm.fill()
    app.wait()
    assert app.status.kind == "error" and "masked-lm" in app.status.message


def test_training_passes_the_mask_probability_and_fill_shows_before_and_after(app):
    """Full finetuning keeps a copy of the weights; afterwards Fill-mask answers with the model
    before training (the copy) next to the trained one."""
    m = app.mlm
    m.fill_go.click()
    app.wait()
    pretrained = m.filled.after
    m.mask_probability.value = 0.3
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.train_lr.value = 1e-2  # a visible change in a few steps
    app.start_training()
    assert type(app.train_box.children[0]).__name__ == "RunPanel"
    app.run.wait(120)
    assert app.run.status == "finished", app.run.error
    assert app.run.config.mask_probability == pytest.approx(0.3)
    assert set(app.run.history.evals[-1].metrics) >= {"loss", "perplexity", "masked_accuracy"}
    assert app.base is not None and app.base.task == "masked-lm"
    m.fill_go.click()
    app.wait()
    assert app.status.kind == "ok" and "before training:" in app.status.message
    f = m.filled
    assert [c.token for c in f.before[0]] == [c.token for c in pretrained[0]]
    assert [c.probability for c in f.before[0]] == pytest.approx(
        [c.probability for c in pretrained[0]]
    )
    assert [c.token for c in f.after[0]] != [c.token for c in f.before[0]]
    assert "copy of the weights" in f.how
    assert "before training" in m.fill_box.value and "after" in m.fill_box.value


def test_fill_is_refused_while_a_run_trains_the_model(app):
    hold, held = threading.Event(), threading.Event()
    app.train_steps.value = 40
    app.train_batch.value = 4
    app.start_training()
    run = app.run

    def at_step(event) -> None:
        if type(event).__name__ == "StepEnd" and event.step == 2:
            held.set()
            hold.wait(60)

    run.history.subscribe(at_step)
    try:
        assert held.wait(60)
        app.mlm.fill()
        app.wait(60)
        said = (app.status.kind, app.status.message)
    finally:
        hold.set()
        run.stop()
        run.wait(60)
    assert said[0] == "error" and "A run is training this model" in said[1], said


def test_attention_works_as_for_a_text_encoder(app):
    from labkit.ui.attention_view import AttentionView

    app.attention_text.value = "the movie was [MASK] and long."
    app.show_attention()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    (view,) = app.attention_box.children
    assert isinstance(view, AttentionView) and "[MASK]" in view.tokens


def test_the_snapshot_keeps_the_last_answers_escaped(app):
    assert "Fill-mask" not in app.snapshot_html()
    app.mlm.fill_text.value = f"{HOSTILE} was [MASK]."
    app.mlm.fill()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    html = app.snapshot_html()
    assert "Fill-mask: “" in html and "<table>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    app.model = None  # a new model: what was shown belonged to the old one
    app._show_model()
    assert "Fill-mask" not in app.snapshot_html()


@pytest.mark.slow
def test_the_offline_masked_lm_preset_fills_a_mask():
    """The real all-MiniLM-L6-v2 with its fresh head, from the Model tab's preset."""
    from labkit.ui.app import DEFAULT_MLM, App

    app = App()
    app.model_preset.value = DEFAULT_MLM
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert _titles(app) == MLM_TABS
    app.mlm.fill()
    app.wait()
    assert app.status.kind == "ok" and len(app.mlm.filled.after[0]) == 5, app.status.message
