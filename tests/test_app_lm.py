"""labkit.App with a causal LM, without a browser: the tabs follow the model's task, Generate
streams and Stop stops, a LoRA run shows sample generations, Compare sets the model before and
after finetuning side by side. Tiny config-built causal LMs, loaded as a user would: by typing
their folder into the Model tab."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

import labkit
from tests._tiny import toy_rows

CLASSIFIER_TABS = ["Model", "Data", "Train", "Attention", "Explain", "Compare", "Compress"]
LM_TABS = ["Model", "Data", "Train", "Generate", "Attention", "Explain", "Compare"]
HOSTILE = "<img src=x onerror=alert(1)>"


def _titles(app) -> list[str]:
    return [app.tabs.get_title(i) for i in range(len(app.tabs.children))]


def _instructions(n: int = 16) -> list[dict[str, str]]:
    return [
        {
            "prompt": f"Review: {r['text']}\nIs this review positive or negative?",
            "response": r["label"],
        }
        for r in toy_rows(n)
    ]


@pytest.fixture
def lm_data():
    return labkit.load_data(_instructions(), task="causal-lm")


def _load_folder(app, folder) -> None:
    """What a user does: type the folder into the Model tab and press Load."""
    from labkit.ui.app import OTHER_MODEL

    app.model_name.value = str(folder)
    assert app.model_preset.value == OTHER_MODEL
    app.model_load.click()
    app.wait()
    assert app.status.kind == "ok", app.status.message


@pytest.fixture
def app(tiny_lm_dirs, lm_data, tmp_path):
    """An App with the tiny chat LM loaded from its folder and instruction data."""
    from labkit.ui.app import App

    app = App(output_dir=str(tmp_path / "runs"))
    _load_folder(app, tiny_lm_dirs["chat"])
    app.data = lm_data
    app._show_data()
    return app


def _until(check, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.01)


@contextmanager
def _held_generation(model, after_calls: int = 3):
    """Hold ``model``'s forward passes from the ``after_calls``-th one on, until released: a
    generation then waits mid-way, the moment to press Stop. Yields (reached, release)."""
    reached, release = threading.Event(), threading.Event()
    calls = [0]

    def hook(*_args):
        calls[0] += 1
        if calls[0] >= after_calls:
            reached.set()
            release.wait(30)

    handle = model.hf.register_forward_hook(hook)
    try:
        yield reached, release
    finally:
        release.set()
        handle.remove()


def test_the_tabs_follow_the_models_task(tiny_lm_dirs, tiny_dirs, lm_data, toy_data):
    """A classifier's six tabs, a causal LM's seven (Generate among them) once one loads from
    its folder, and back; each task's data is kept for it and comes back with it."""
    from labkit.ui.app import App

    app = App()
    assert _titles(app) == CLASSIFIER_TABS and app.task == "classification"
    app.data = toy_data
    _load_folder(app, tiny_lm_dirs["llama"])
    assert app.model.task == "causal-lm" and "causal LM" in app.status.message
    assert _titles(app) == LM_TABS and app.tabs.selected_index == 0
    assert "language models" in app.heading.value
    assert app.tabs.children[3] is app.lm.generate_page
    # the Data tab offers causal-LM data now; the classifier's data waits for a classifier
    assert app.data is None and "No data loaded" in app.data_info.value
    assert app.data_preset.options[0].startswith("offline: review snippets")
    assert app.data_label.layout.display == "none"
    # the Train tab has the sample prompts; the Attention tab the "last generation" button
    train = list(app.tabs.children[2].children)
    assert train[train.index(app.train_start) - len(app.lm.train_rows) :][:-2] == app.lm.train_rows
    assert app.lm.sample_prompts in app.lm.train_rows
    assert app.lm.attention_row in app.tabs.children[4].children
    app.data = lm_data
    # a classifier folder loads as a classifier with the Labels field's names
    app.model_labels.value = "bad,good"
    _load_folder(app, tiny_dirs["bert"])
    assert app.model.labels == ("bad", "good")
    assert _titles(app) == CLASSIFIER_TABS and app.data is toy_data
    assert app.tabs.children[2].children == tuple(app._train_rows)
    assert app.data_label.layout.display is None
    _load_folder(app, tiny_lm_dirs["gpt2"])
    assert _titles(app) == LM_TABS and app.data is lm_data


def test_the_offline_lm_preset_loads_the_demo_lm_and_says_it_takes_a_minute(
    monkeypatch, tiny_lm_dirs
):
    """The preset calls labkit.demo.lm() on the worker thread; while it converts, the status
    line stays busy and says the first time takes about a minute."""
    from labkit.ui.app import DEFAULT_LM, App

    gate, started = threading.Event(), threading.Event()

    def demo_lm():
        started.set()
        gate.wait(30)
        return labkit.load_model(tiny_lm_dirs["chat"], device="cpu")

    monkeypatch.setattr(labkit.demo, "lm", demo_lm)
    app = App()
    app.model_preset.value = DEFAULT_LM
    assert app.model_name.value == "" and app.model_labels.disabled
    app.load_model()
    assert started.wait(30)
    try:
        assert app.status.kind == "busy" and "about a minute" in app.status.message
    finally:
        gate.set()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.model.task == "causal-lm" and _titles(app) == LM_TABS
    assert app.lm.chat.value and not app.lm.chat.disabled  # its tokenizer has a chat template


def test_generate_streams_into_its_view_and_stop_stops_at_once(app):
    """Generate shows the stream's live view while it runs (Stop enabled); Stop ends it
    within a token, and the status line says it was stopped."""
    from labkit.ui.generation_view import GenerationView

    app.lm.prompt.value = "a gorgeous movie"
    app.lm.max_new_tokens.value = 100
    with _held_generation(app.model) as (reached, release):
        app.lm.generate_go.click()
        assert reached.wait(30), "the generation did not start"
        assert app.status.kind == "busy"
        (view,) = app.lm.generate_box.children
        assert isinstance(view, GenerationView) and view.prompt == "a gorgeous movie"
        assert not app.lm.generate_stop.disabled
        app.lm.generate_stop.click()  # returns at once: the generation is still held
        assert app.lm.stream.stop_requested and app.lm.generate_stop.disabled
        release.set()
        app.wait(30)
    assert app.status.kind == "ok" and "stopped" in app.status.message, app.status.message
    g = app.lm.generation
    assert g.finish_reason == "cancelled" and 0 < len(g.token_ids) < 100
    assert app.lm.stream.status == "stopped"


def test_generate_uses_the_tabs_settings_and_reports_errors(app, tiny_lm_dirs):
    """Greedy generation in the tab equals Model.generate with the same settings; the chat
    box follows the tokenizer's template; errors are status messages."""
    app.lm.prompt.value = "the movie was"
    app.lm.max_new_tokens.value = 6
    app.generate()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert "Generated 6 tokens" in app.status.message or "end of sequence" in app.status.message
    expected = app.model.generate(["the movie was"], max_new_tokens=6, chat=True)[0]
    assert app.lm.generation.token_ids == expected.token_ids
    assert not app.lm.attention_use.disabled and not app.lm.explain_use.disabled
    # a model without a chat template: the box is off and cannot be ticked on
    _load_folder(app, tiny_lm_dirs["llama"])
    assert app.lm.chat.disabled and not app.lm.chat.value and "has none" in app.lm.chat.description
    assert app.lm.generation is None and app.lm.attention_use.disabled  # it was the other model's


def test_generate_is_refused_without_a_causal_lm(tiny_model, toy_data):
    from labkit.ui.app import App

    app = App()
    app.generate()
    app.wait()
    assert app.status.kind == "error" and "No model loaded" in app.status.message
    app = App(model=tiny_model, data=toy_data)
    app.generate()
    app.wait()
    assert app.status.kind == "error" and "classification" in app.status.message


def test_attention_on_the_prompt_and_the_last_generation(app):
    from labkit.ui.attention_view import AttentionView

    app.lm.prompt.value = "the movie was"
    app.lm.max_new_tokens.value = 4
    app.generate()
    app.wait()
    g = app.lm.generation
    app.lm.attention_use.click()
    assert app.attention_text.value.startswith("the movie was")
    assert app.attention_text.value.endswith(g.text)
    app.show_attention()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    (view,) = app.attention_box.children
    assert isinstance(view, AttentionView)


def test_a_lora_run_starts_with_the_sample_prompts_and_the_apps_name(app, lm_data):
    """The sample prompts field starts as the first 3 validation prompts; what it holds (one
    prompt per block, blank line between) is what the run answers at each evaluation."""
    from labkit.lm.samples import default_sample_prompts

    assert app.lm.sample_prompts.value == "\n\n".join(default_sample_prompts(lm_data))
    prompts = ["Review: a superb film\nIs this review positive or negative?", "Say hi"]
    app.lm.sample_prompts.value = f"{prompts[0]}\n\n  \n{prompts[1]}\n"
    app.lm.eval_every.value = 2
    app.train_rank.value = 4
    app.train_steps.value = 4
    app.train_batch.value = 8
    app.start_training()
    assert type(app.train_box.children[0]).__name__ == "RunPanel"
    app.run.wait(120)
    assert app.run.status == "finished", app.run.error
    samples = app.run.history.samples
    assert [s.step for s in samples] == [2, 4]
    assert all(s.prompts == tuple(prompts) for s in samples)
    assert app.model.hf.peft_config["default"].r == 4
    assert app.run.name.endswith(f"LoRA r=4 · {lm_data.source or 'data'}")


def test_explain_explains_the_greedy_continuation_or_the_given_target(app):
    """An empty target explains the model's own greedy continuation (the Generate tab's max
    new tokens and chat setting); "Use the last generation" explains what was generated."""
    from labkit.inspect.attribution.generation import METHODS

    assert tuple(app.lm.explain_method.options) == METHODS
    app.lm.max_new_tokens.value = 4
    app.lm.explain_prompt.value = "the movie was"
    app.lm.explain_method.value = "gradient_x_input"
    app.show_explanation()
    app.wait(120)
    assert app.status.kind == "ok", app.status.message
    r = app.lm.explained
    greedy = app.model.generate(["the movie was"], max_new_tokens=4, chat=True)[0]
    assert r.generated and r.chat and r.method == "gradient_x_input"
    assert list(r.target_ids) == list(greedy.token_ids)
    assert r.scores.shape == (len(r.target_tokens), len(r.tokens))
    assert len(app.lm.explain_box.children) == 1
    # the last generation as the target (the raw continuation: this tiny model's chat
    # answers are blank lines)
    app.lm.chat.value = False
    app.lm.prompt.value = "a gorgeous movie"
    app.generate()
    app.wait()
    app.lm.explain_use.click()
    assert app.lm.explain_prompt.value == "a gorgeous movie"
    assert app.lm.explain_target.value == app.lm.generation.text
    app.show_explanation()
    app.wait(120)
    assert app.status.kind == "ok", app.status.message
    r = app.lm.explained
    assert r.target == app.lm.generation.text and r.target.strip()
    assert not r.generated and not r.chat
    app.lm.explain_target.value = "   "  # nothing but spaces: the greedy continuation again
    app.show_explanation()
    app.wait(120)
    assert app.status.kind == "ok" and app.lm.explained.generated, app.status.message


def _lora_train(app, steps: int = 6) -> None:
    app.train_mode.value = "LoRA"
    app.train_steps.value = steps
    app.train_batch.value = 8
    app.train_lr.value = 5e-2  # a visible change in a few steps
    app.lm.sample_prompts.value = ""  # no samples: a shorter run
    app.start_training()
    app.run.wait(120)
    assert app.run.status == "finished", app.run.error


def test_compare_sets_the_model_before_and_after_lora_side_by_side(app):
    """Before = the adapter turned off: the pretrained model's own generation; after = the
    trained model's, which differs; each shown with its generation."""
    app.lm.compare_prompt.value = "Review: a superb film\nIs this review positive or negative?"
    app.lm.max_new_tokens.value = 8
    app.lm.chat.value = False  # the raw continuation: this tiny model's chat answers are blank
    app.lm.explain_method.value = "gradient_x_input"
    app.compare()
    app.wait()
    assert app.status.kind == "error" and "train the model" in app.status.message
    pretrained = app.model.generate([app.lm.compare_prompt.value], max_new_tokens=8, chat=False)[0]
    _lora_train(app)
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    c = app.lm.comparison
    assert c.before.token_ids == pretrained.token_ids
    assert c.after.token_ids != c.before.token_ids
    assert "adapter turned off" in c.how
    # each side explained its own generation under its own weights: the log-probability the
    # explanation measured is the one its model generated with
    for g, e in ((c.before, c.explained_before), (c.after, c.explained_after)):
        assert list(e.target_ids) == list(g.token_ids) and e.model is None  # a static view
        assert e.logprob == pytest.approx(g.logprob, abs=1e-3)
    (sides, note) = app.lm.compare_box.children
    before, after = sides.children
    assert "before" in before.children[0].value and "after" in after.children[0].value
    assert len(before.children) == len(after.children) == 3  # title, generation, attribution
    assert "adapter turned off" in note.value
    # the adapter is on again: the model generates the trained text
    again = app.model.generate([app.lm.compare_prompt.value], max_new_tokens=8, chat=False)[0]
    assert again.token_ids == c.after.token_ids


def test_full_finetuning_compares_with_the_kept_copy(app):
    app.train_mode.value = "full"
    app.train_steps.value = 3
    app.train_batch.value = 8
    app.train_lr.value = 1e-2
    app.lm.sample_prompts.value = ""
    app.lm.compare_prompt.value = "the movie was"
    app.lm.max_new_tokens.value = 6
    pretrained = app.model.generate(["the movie was"], max_new_tokens=6)[0]
    app.start_training()
    app.run.wait(120)
    assert app.run.status == "finished", app.run.error
    assert app.base is not None and app.base.task == "causal-lm"
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert app.lm.comparison.before.token_ids == pretrained.token_ids
    assert "copy of the weights" in app.lm.comparison.how


def test_generate_and_compare_are_refused_while_a_run_trains_the_model(app):
    hold, held = threading.Event(), threading.Event()
    app.train_steps.value = 40
    app.train_batch.value = 8
    app.lm.sample_prompts.value = ""
    app.start_training()
    run = app.run

    def at_step(event) -> None:
        if type(event).__name__ == "StepEnd" and event.step == 2:
            held.set()
            hold.wait(60)

    run.history.subscribe(at_step)
    try:
        assert held.wait(60)
        messages = []
        for action in (app.generate, app.compare):
            action()
            app.wait(60)
            messages.append((app.status.kind, app.status.message))
    finally:
        hold.set()
        run.stop()
        run.wait(60)
    for kind, message in messages:
        assert kind == "error" and "A run is training this model" in message, message
    app.lm.max_new_tokens.value = 4
    app.compare()
    app.wait(120)
    assert app.status.kind == "ok", app.status.message


def test_the_snapshot_keeps_the_last_generation_and_comparison_escaped(app):
    html = app.snapshot_html()
    assert "Generate" not in html and "Compare" not in html
    app.lm.prompt.value = HOSTILE
    app.lm.max_new_tokens.value = 4
    app.generate()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    _lora_train(app, steps=2)
    app.lm.compare_prompt.value = HOSTILE
    app.lm.max_new_tokens.value = 4
    app.compare()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    html = app.snapshot_html()
    assert "Generate" in html and "Compare: “" in html and "before" in html
    assert "<img src=x" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3
    # a new model: what was shown belonged to the old one
    app.model = None
    app._show_model()
    assert "Generate" not in app.snapshot_html()


@pytest.mark.slow
def test_the_offline_lm_preset_answers_a_factual_prompt():
    """The real SmolLM2-135M-Instruct from the Model tab's preset, then the Generate tab's
    default settings (greedy, chat template)."""
    from labkit.ui.app import DEFAULT_LM, App

    app = App()
    app.model_preset.value = DEFAULT_LM
    app.load_model()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert _titles(app) == LM_TABS and app.lm.chat.value
    app.lm.prompt.value = "What is the capital of France?"
    app.lm.max_new_tokens.value = 12
    app.generate()
    app.wait()
    assert app.status.kind == "ok", app.status.message
    assert "Paris" in app.lm.generation.text
