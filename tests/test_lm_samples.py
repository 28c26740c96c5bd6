"""Sample generations while a causal LM trains: ``SampleGenerations`` under a real ``Trainer``
behind labkit's ``Bridge``, the ``Samples`` record in ``MetricHistory``, the default prompts, and
the live panel's front end drawing them (browser)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from labkit._errors import ConfigError, InputError
from labkit.events import Control, EvalEnd, Samples, StepEnd, event_to_dict
from labkit.history import MetricHistory
from labkit.lm.samples import SampleGenerations, default_sample_prompts
from tests import _tiny

PROMPTS = ["the movie was", "a delightful"]
TOKENS = 6


def _lm_dataset(tok: Any) -> Any:
    from datasets import Dataset

    enc = tok(_tiny.CORPUS[:10])
    return Dataset.from_dict({"input_ids": enc["input_ids"]})


def _train(
    model: Any,
    tmp_path: Path,
    callback: SampleGenerations,
    history: MetricHistory,
    control: Control,
    *,
    steps: int = 6,
    every: int = 2,
) -> Any:
    """A real Trainer with labkit's Bridge first (it emits EvalEnd), then ``callback``."""
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from labkit.train.trainer import Bridge

    bridge = Bridge(
        control, history.record, on_status=lambda s: None, on_diverged=lambda step, loss: None
    )
    data = _lm_dataset(model.tokenizer)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=steps,
        eval_strategy="steps",
        eval_steps=every,
        logging_steps=1,
        learning_rate=5e-3,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(
        model=model.hf,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        data_collator=DataCollatorForLanguageModeling(model.tokenizer, mlm=False),
        callbacks=[bridge, callback],
    )
    trainer.train()
    return trainer


def _wired(model: Any, **kw: Any) -> tuple[SampleGenerations, MetricHistory, Control]:
    history, control = MetricHistory(), Control()
    cb = SampleGenerations(
        model, PROMPTS, history.record, max_new_tokens=TOKENS, control=control, **kw
    )
    return cb, history, control


def test_samples_are_recorded_after_each_evaluation_with_its_step(tiny_lm, tmp_path) -> None:
    cb, history, control = _wired(tiny_lm)
    order: list[str] = []
    history.subscribe(lambda e: order.append(type(e).__name__))
    trainer = _train(tiny_lm, tmp_path, cb, history, control)
    assert trainer.state.global_step == 6
    assert [e.step for e in history.evals] == [2, 4, 6]
    assert [s.step for s in history.samples] == [2, 4, 6]  # one set per evaluation, its step
    assert all(s.prompts == tuple(PROMPTS) and len(s.texts) == 2 for s in history.samples)
    # each Samples comes right after its EvalEnd, before the next training step
    evals_and_samples = [n for n in order if n in ("EvalEnd", "Samples", "StepEnd")]
    for i, name in enumerate(evals_and_samples):
        if name == "EvalEnd":
            assert evals_and_samples[i + 1] == "Samples"
    # what the last evaluation shows is the trained model's own greedy answer, and the model
    # is in the mode the callback found it in
    assert not tiny_lm.hf.training
    now = tiny_lm.generate(PROMPTS, max_new_tokens=TOKENS)
    assert history.samples[-1].texts == tuple(g.text for g in now)
    assert history.answers() == [(s.step, s.texts[0]) for s in history.samples]
    assert history.answers(PROMPTS[1]) == [(s.step, s.texts[1]) for s in history.samples]


def test_under_lora_the_samples_come_from_the_adapter(tiny_lm_dirs, tmp_path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    import labkit

    model = labkit.load_model(tiny_lm_dirs["gpt2"], device="cpu")
    torch.manual_seed(0)
    model.hf = get_peft_model(
        model.hf, LoraConfig(r=4, lora_alpha=32, target_modules=["c_attn"], fan_in_fan_out=True)
    )
    for p in model.hf.parameters():  # a trained adapter: B is no longer zero
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.5)
    cb, history, control = _wired(model)
    _train(model, tmp_path, cb, history, control, steps=2, every=2)
    (samples,) = history.samples
    with_adapter = tuple(g.text for g in model.generate(PROMPTS, max_new_tokens=TOKENS))
    with model.hf.disable_adapter():
        without = tuple(g.text for g in model.generate(PROMPTS, max_new_tokens=TOKENS))
    assert with_adapter != without  # the adapter changes the answers: the test can tell
    assert samples.texts == with_adapter


def test_no_samples_once_a_stop_was_requested(tiny_lm, tmp_path) -> None:
    cb, history, control = _wired(tiny_lm)

    def stop_at_the_second_evaluation(event: Any) -> None:
        if isinstance(event, EvalEnd) and event.step == 4:
            control.stop()  # pressed between the evaluation and its samples

    history.subscribe(stop_at_the_second_evaluation)
    _train(tiny_lm, tmp_path, cb, history, control)
    assert [e.step for e in history.evals] == [2, 4]  # the Bridge stops at the next step
    assert [s.step for s in history.samples] == [2]


def test_a_stop_pressed_while_it_generates_cuts_the_samples(tiny_lm) -> None:
    from transformers import TrainerState

    cb, history, control = _wired(tiny_lm, chat=False)
    calls = []

    def press_stop(module: Any, args: Any, output: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            control.stop()

    handle = tiny_lm.hf.register_forward_hook(press_stop)
    try:
        cb.on_evaluate(None, TrainerState(global_step=3), None)
    finally:
        handle.remove()
    assert history.samples == []
    assert 2 <= len(calls) < TOKENS  # it stopped early instead of finishing the answers


def test_a_failing_generation_is_logged_and_the_run_goes_on(tiny_lm, tmp_path, caplog) -> None:
    cb, history, control = _wired(tiny_lm)
    real = tiny_lm.generate
    broken = iter([True])

    def generate(*args: Any, **kwargs: Any) -> Any:
        if next(broken, False):
            raise RuntimeError("generation broke <b>")
        return real(*args, **kwargs)

    tiny_lm.generate = generate  # the instance's method: the next evaluations work again
    with caplog.at_level(logging.WARNING, logger="labkit"):
        trainer = _train(tiny_lm, tmp_path, cb, history, control)
    assert trainer.state.global_step == 6  # the whole run
    assert [s.step for s in history.samples] == [4, 6]
    assert cb.failures == 1
    (record,) = [r for r in caplog.records if "sample generations failed" in r.getMessage()]
    assert record.name == "labkit" and "generation broke" in str(record.exc_info[1])


def test_no_prompts_costs_nothing(tiny_lm) -> None:
    from transformers import TrainerState

    history = MetricHistory()
    cb = SampleGenerations(tiny_lm, [], history.record)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("generate was called for no prompts")

    tiny_lm.generate = never
    cb.on_evaluate(None, TrainerState(global_step=1), None)
    assert history.samples == []


def test_only_the_main_process_generates(tiny_lm) -> None:
    from transformers import TrainerState

    cb, history, _ = _wired(tiny_lm)
    cb.on_evaluate(None, TrainerState(global_step=1, is_world_process_zero=False), None)
    assert history.samples == []


def test_the_chat_template_is_used_as_generate_uses_it(tiny_lm_dirs) -> None:
    from transformers import TrainerState

    import labkit

    chat = labkit.load_model(tiny_lm_dirs["chat"], device="cpu")
    history = MetricHistory()
    SampleGenerations(chat, PROMPTS, history.record, max_new_tokens=TOKENS).on_evaluate(
        None, TrainerState(global_step=5), None
    )
    expected = tuple(g.text for g in chat.generate(PROMPTS, max_new_tokens=TOKENS, chat=True))
    assert history.samples[0].texts == expected


def test_bad_settings_fail_before_training(tiny_lm, tiny_model) -> None:
    emit = MetricHistory().record
    with pytest.raises(InputError, match="classification"):
        SampleGenerations(tiny_model, PROMPTS, emit)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        SampleGenerations(tiny_lm, PROMPTS, emit, max_new_tokens=0)
    with pytest.raises(ConfigError, match="chat template"):
        SampleGenerations(tiny_lm, PROMPTS, emit, chat=True)
    with pytest.raises(InputError, match="list of strings"):
        SampleGenerations(tiny_lm, "one prompt", emit)
    with pytest.raises(InputError, match=r"prompts\[1\]"):
        SampleGenerations(tiny_lm, ["fine", "  "], emit)


def test_samples_events_are_recorded_in_order_and_json_ready() -> None:
    history = MetricHistory()
    history.record(StepEnd(step=1, epoch=0.1, loss=2.0, lr=1e-3))
    history.record(Samples(step=2, prompts=["p", "q"], texts=["a", "b"], time=5.0))  # type: ignore[arg-type]
    history.record(Samples(step=4, prompts=("p", "q"), texts=("c", "d")))
    assert [s.step for s in history.samples] == [2, 4]
    assert history.samples[0].prompts == ("p", "q")  # lists become tuples: a frozen event
    assert history.last_samples is history.samples[-1]
    assert history.samples_since(1) == [history.samples[1]]
    data = json.loads(json.dumps(history.to_dict()))
    assert data["samples"][0] == {
        "step": 2,
        "prompts": ["p", "q"],
        "texts": ["a", "b"],
        "time": 5.0,
        "kind": "Samples",
    }
    assert history.answers("q") == [(2, "b"), (4, "d")]
    assert history.answers("not asked") == []
    assert MetricHistory().answers() == []
    assert event_to_dict(history.samples[1])["kind"] == "Samples"
    with pytest.raises(InputError, match="2 prompts but 1 texts"):
        Samples(step=1, prompts=("a", "b"), texts=("x",))


def _data(kind: str, validation: dict[str, list[str]] | None, train: dict[str, list[str]]) -> Any:
    from datasets import Dataset

    return SimpleNamespace(
        kind=kind,
        validation=None if validation is None else Dataset.from_dict(validation),
        train=Dataset.from_dict(train),
    )


def test_default_prompts_are_the_first_validation_prompts_or_first_words() -> None:
    instructions = _data(
        "instruction",
        {
            "prompt": ["Is it good?", "", "Is it good?", "Name a colour.", "Why?"],
            "response": ["x"] * 5,
        },
        {"prompt": ["train only"], "response": ["y"]},
    )
    assert default_sample_prompts(instructions) == ["Is it good?", "Name a colour.", "Why?"]
    assert default_sample_prompts(instructions, n=1) == ["Is it good?"]
    assert default_sample_prompts(instructions, n=0) == []
    long = "one two three four five six seven eight nine ten"
    texts = _data("text", {"text": [long, "  short  text "]}, {"text": ["t"]})
    assert default_sample_prompts(texts) == [
        "one two three four five six seven eight",
        "short text",
    ]
    no_validation = _data("text", None, {"text": ["from the train split"]})
    assert default_sample_prompts(no_validation) == ["from the train split"]
    with pytest.raises(InputError, match="'prompt' column"):
        default_sample_prompts(_data("instruction", {"text": ["x"]}, {"text": ["x"]}))
    with pytest.raises(InputError, match="n must be"):
        default_sample_prompts(texts, n=-1)


HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.browser
def test_the_live_panel_draws_samples_as_text_and_replays_them(page) -> None:
    """The front end (widgets/run_panel.js) against a fake model: samples from the kernel's
    messages, escaped, the latest shown with the first prompt's answers; a gap asks again."""
    from tests._browser import widget_page

    state = {
        "_kind": "panel",
        "_key": "samples",
        "rows": 0,
        "n_evals": 0,
        "n_samples": 0,
        "smoothing": 0.6,
        "log_scale": False,
        "window": 0,
        "metric": "",
        "status": "running",
        "status_label": "running",
        "ended": False,
        "step": 40,
        "total_steps": 100,
        "epoch": 0.4,
        "samples_per_s": 10.0,
        "eta_s": -1.0,
        "device": "cpu",
        "gpu_memory": "",
        "metrics": {},
        "checkpoints": [],
        "error": "",
        "notice": "",
        "title": "tiny lm",
    }
    widget_page(page, "run_panel", state)
    emit = """([start, samples, reply]) => window.__model.emit({type: "rows", start: 0, n: 0,
        cols: ["step", "epoch", "loss", "lr"], evals_start: 0, evals: [],
        samples_start: start, samples, reply}, [])"""
    assert page.locator(".labkit-samples").is_hidden()  # nothing until samples come
    first = [20, [HOSTILE, "q2"], ["</div><b>bold</b>", ""], "</div><b>bold</b>"]
    page.evaluate(emit, [0, [first], True])
    page.wait_for_function("document.querySelector('.labkit-samples').dataset.samples === '1'")
    assert page.inner_text(".labkit-sample-prompt >> nth=0") == HOSTILE
    assert page.inner_text(".labkit-sample-text") == "</div><b>bold</b>"
    assert page.locator(".labkit-samples img, .labkit-samples b").count() == 0
    assert page.inner_text(".labkit-sample-empty") == "(nothing generated)"
    assert "step 20" in page.inner_text(".labkit-samples")
    assert page.locator(".labkit-answers").count() == 0  # one evaluation: no history yet
    page.evaluate(emit, [2, [[60, [HOSTILE, "q2"], ["x", "y"], "x"]], False])  # 1 was lost
    page.wait_for_function(
        "window.__model.sent.some((s) => s.msg.type === 'sync' && s.msg.have_samples === 1)"
    )
    second = [40, [HOSTILE, "q2"], ["positive", "negative"], "positive"]
    page.evaluate(emit, [1, [second, [60, [HOSTILE, "q2"], ["x", "y"], "x"]], True])
    page.wait_for_function("document.querySelector('.labkit-samples').dataset.samples === '3'")
    assert "step 60" in page.inner_text(".labkit-samples > .labkit-label >> nth=0")
    answers = page.locator(".labkit-answer").all_inner_texts()
    assert answers == ["step 20: </div><b>bold</b>", "step 40: positive", "step 60: x"]
    assert page.blocked == [] and page.console_errors == []
