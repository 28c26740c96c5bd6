"""Which task a loaded model has (classification or causal-lm), and what each refuses."""

from __future__ import annotations

import json

import pytest

import labkit
from labkit import ConfigError, InputError


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_a_checkpoint_saved_as_a_causal_lm_loads_as_one(tiny_lm_dirs, arch):
    model = labkit.load_model(tiny_lm_dirs[arch], device="cpu")
    assert model.task == "causal-lm"
    assert model.labels == ()
    assert type(model.hf).__name__.endswith(("ForCausalLM", "LMHeadModel"))
    assert model.tokenizer.pad_token_id is not None  # batches need one
    assert "task='causal-lm'" in repr(model)


def test_labels_make_a_classifier_of_a_causal_lm_checkpoint(tiny_lm_dirs):
    model = labkit.load_model(tiny_lm_dirs["llama"], labels=["neg", "pos"], device="cpu")
    assert model.task == "classification"
    assert type(model.hf).__name__ == "LlamaForSequenceClassification"
    assert len(model.predict("a fine film")[0].probs) == 2


def test_a_classifier_checkpoint_stays_a_classifier_and_can_be_asked_for_as_an_lm(tiny_dirs):
    assert labkit.load_model(tiny_dirs["gpt2"], device="cpu").task == "classification"
    lm = labkit.load_model(tiny_dirs["gpt2"], task="causal-lm", device="cpu")
    assert lm.task == "causal-lm"
    assert len(lm.generate("a movie", max_new_tokens=3)[0].token_ids) == 3


def test_encoders_without_labels_are_classifiers_as_before(tiny_dirs):
    assert labkit.load_model(tiny_dirs["bert"], device="cpu").task == "classification"


def test_bad_task_and_labels_for_an_lm_are_refused(tiny_lm_dirs):
    with pytest.raises(ConfigError, match="task must be 'auto' or one of classification"):
        labkit.load_model(tiny_lm_dirs["llama"], task="translation")
    with pytest.raises(ConfigError, match="labels= names a classifier"):
        labkit.load_model(tiny_lm_dirs["llama"], task="causal-lm", labels=["a", "b"])


def test_each_task_refuses_the_other_tasks_calls_naming_them(tiny_lm, tiny_model):
    with pytest.raises(InputError, match=r"predict needs a classification model.*causal-lm"):
        tiny_lm.predict("text")
    with pytest.raises(InputError, match=r"generate needs a causal-lm model.*classification"):
        tiny_model.generate("text")
    with pytest.raises(InputError, match="stream needs a causal-lm model"):
        tiny_model.stream("text")


def test_wrap_takes_the_task_from_the_model_class(tiny_lm):
    again = labkit.Model.wrap(tiny_lm.hf, tiny_lm.tokenizer)
    assert again.task == "causal-lm"
    with pytest.raises(ConfigError, match="causal language model: it has no labels"):
        labkit.Model.wrap(tiny_lm.hf, tiny_lm.tokenizer, labels=["a", "b"])


def test_a_saved_causal_lm_adapter_reloads_as_a_causal_lm(tiny_lm_dirs, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = labkit.load_model(tiny_lm_dirs["llama"], device="cpu")
    peft_model = get_peft_model(
        base.hf, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"])
    )
    peft_model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["task_type"] == "CAUSAL_LM"
    loaded = labkit.load_model(tmp_path, device="cpu")
    assert loaded.task == "causal-lm" and loaded.lora
    assert loaded.generate("a movie", max_new_tokens=2)[0].token_ids


def test_a_causal_lm_shows_its_task_where_a_classifier_shows_labels(tiny_lm_dirs, tiny_model):
    chat = labkit.load_model(tiny_lm_dirs["chat"], device="cpu")
    shown = chat._repr_html_()
    assert "causal-lm, chat template" in shown and "labels" not in shown
    assert "negative, positive" in tiny_model._repr_html_()
