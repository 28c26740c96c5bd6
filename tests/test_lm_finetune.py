"""Finetuning causal LMs through labkit.finetune on tiny config-built models: what the loss is
computed on, LoRA and full runs end to end, stop/resume, evaluation, bad combinations; and one
acceptance run of the real SmolLM2 on the instruction task."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import labkit
from labkit import ConfigError, DataError, InputError, StepEnd
from labkit.events import EvalEnd, Samples
from labkit.lm.data import LMData
from labkit.lm.generate import prompt_ids
from labkit.lm.train import (
    IGNORE_INDEX,
    CausalLMCollator,
    instruction_row,
    summed_token_loss,
    token_rows,
)
from labkit.train import lora as _lora
from tests._tiny import toy_rows

WORDS = ("yes", "no", "great", "awful")
PAIRS = [{"prompt": f"say {w}", "response": w} for w in WORDS] * 10
TEXTS = [{"text": f"a {w} movie and a {w} story"} for w in WORDS] * 10


@pytest.fixture(scope="module")
def pairs():
    return labkit.load_data(PAIRS, validation_size=0.2)


def _lm(dirs, arch="chat"):
    return labkit.load_model(dirs[arch], device="cpu")


def _go(model, data, tmp_path: Path, name: str = "run", **kw):
    kw.setdefault("max_steps", 6)
    kw.setdefault("batch_size", 8)
    kw.setdefault("lr", 3e-3)
    kw.setdefault("progress", False)
    kw.setdefault("sample_prompts", ())
    return labkit.finetune(model, data, output_dir=tmp_path / name, **kw)


class Recorder:
    def __init__(self, stop_at: int | None = None) -> None:
        self.events: list[object] = []
        self.stop_at = stop_at

    def on_event(self, event, control) -> None:
        self.events.append(event)
        if isinstance(event, StepEnd) and event.step == self.stop_at:
            control.stop()


# -- what the loss is computed on ------------------------------------------------------------


def test_instruction_rows_learn_the_response_and_its_end_only(tiny_lm_dirs, pairs):
    model = _lm(tiny_lm_dirs)  # its tokenizer has a chat template: prompts go in it
    tok = model.tokenizer
    rows = token_rows(model, "instruction", pairs.train, 64)
    for row, p, r in zip(rows, pairs.train["prompt"], pairs.train["response"]):
        prompt = prompt_ids(model, p, chat=True)
        response = [*tok(r, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        assert row["input_ids"] == prompt + response
        assert row["labels"] == [IGNORE_INDEX] * len(prompt) + response


def test_the_loss_equals_a_hand_computed_loss_over_response_tokens(tiny_lm_dirs, pairs):
    model = _lm(tiny_lm_dirs)
    ds = pairs.train.select(range(4))
    rows = token_rows(model, "instruction", ds, 64)
    batch = CausalLMCollator(model.tokenizer.pad_token_id)(rows)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()  # padding
    with torch.no_grad():
        out = model.hf(**batch)
    logp = out.logits.float().log_softmax(-1)
    nll, count = 0.0, 0
    for i, (row, p) in enumerate(zip(rows, ds["prompt"])):
        for t in range(len(prompt_ids(model, p, chat=True)), len(row["input_ids"])):
            nll -= float(logp[i, t - 1, row["input_ids"][t]])  # position t-1 predicts token t
            count += 1
    assert float(out.loss) == pytest.approx(nll / count, rel=1e-5)
    sums = summed_token_loss(out.logits, batch["labels"])
    assert sums[:, 1].tolist() == [len(r["labels"]) - r["labels"].count(IGNORE_INDEX) for r in rows]
    assert float(sums[:, 0].sum() / sums[:, 1].sum()) == pytest.approx(nll / count, rel=1e-5)
    everything = float(
        torch.nn.functional.cross_entropy(
            out.logits[:, :-1].flatten(0, 1), batch["input_ids"][:, 1:].flatten()
        )
    )
    assert abs(everything - nll / count) > 1e-3  # the prompt really is left out


def test_a_text_is_learned_whole_and_ends_with_eos(tiny_lm_dirs):
    model = _lm(tiny_lm_dirs, "gpt2")
    data = labkit.load_data(TEXTS)
    rows = token_rows(model, "text", data.train, 64)
    eos = model.tokenizer.eos_token_id
    for row, text in zip(rows, data.train["text"]):
        assert row["input_ids"] == [*model.tokenizer(text)["input_ids"], eos]
        assert row["labels"] == row["input_ids"]
    short = token_rows(model, "text", data.train, 4)
    assert all(len(r["input_ids"]) == 4 and r["input_ids"][-1] == eos for r in short)


def test_truncation_keeps_the_response_and_cuts_the_prompt_from_the_left():
    row = instruction_row(list(range(10)), [100, 101, 102], 8)
    assert row["input_ids"] == [5, 6, 7, 8, 9, 100, 101, 102]
    assert row["labels"] == [IGNORE_INDEX] * 5 + [100, 101, 102]
    long = instruction_row([1, 2, 3], list(range(100, 120)), 8)  # only a huge response is cut
    assert long["input_ids"] == [3, *range(100, 107)]
    assert long["labels"] == [IGNORE_INDEX, *range(100, 107)]


# -- runs end to end -------------------------------------------------------------------------


def test_full_finetune_lowers_the_loss_and_its_checkpoint_reloads_as_a_causal_lm(
    tiny_lm_dirs, pairs, tmp_path
):
    model = _lm(tiny_lm_dirs)
    before = model.evaluate(pairs, split="validation")
    run = _go(model, pairs, tmp_path, max_steps=12, eval_every=6).wait()
    assert run.status == "finished", run.error
    assert [e.step for e in run.history.evals] == [6, 12]
    ev = run.evaluation
    assert ev.loss < before.loss - 0.5 and ev.tokens == before.tokens
    assert set(run.metrics) == {"loss", "perplexity"}
    assert run.metrics["loss"] == pytest.approx(ev.loss)
    assert run.metrics["perplexity"] == pytest.approx(math.exp(ev.loss))
    # the evaluation inside the run and Model.evaluate score the same tokens the same way
    again = model.evaluate(pairs, split="validation")
    assert again.loss == pytest.approx(ev.loss, rel=1e-4) and again.tokens == ev.tokens
    ckpt = Path(run.checkpoints[-1])
    assert json.loads((ckpt / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    reloaded = labkit.load_model(ckpt, device="cpu")
    assert reloaded.task == "causal-lm" and not reloaded.lora
    prompts = ["say yes", "say awful"]
    mine = [g.token_ids for g in model.generate(prompts, max_new_tokens=4)]
    assert [g.token_ids for g in reloaded.generate(prompts, max_new_tokens=4)] == mine


@pytest.mark.parametrize(
    ("arch", "targets"), [("llama", {"q_proj", "v_proj"}), ("gpt2", {"c_attn"})]
)
def test_lora_adapts_the_attention_and_its_checkpoint_reloads_as_a_causal_lm(
    tiny_lm_dirs, tmp_path, arch, targets
):
    model = _lm(tiny_lm_dirs, arch)
    config = _lora.lora_config(model.hf)
    assert config.task_type == "CAUSAL_LM" and set(config.target_modules) == targets
    assert not config.modules_to_save  # no classifier head on a language model
    embeddings = model.hf.get_input_embeddings().weight.detach().clone()
    data = labkit.load_data(TEXTS)
    before = model.evaluate(data, split="validation").loss
    run = _go(model, data, tmp_path, lora=True, max_steps=8, lr=1e-2).wait()
    assert run.status == "finished", run.error
    assert run.evaluation.loss < before
    trainable = {n for n, p in model.hf.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert torch.equal(model.base.get_input_embeddings().weight, embeddings)
    ckpt = Path(run.checkpoints[-1])
    assert json.loads((ckpt / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    reloaded = labkit.load_model(ckpt, device="cpu")
    assert reloaded.task == "causal-lm" and reloaded.lora
    prompt = ["a great"]
    assert (
        reloaded.generate(prompt, max_new_tokens=5)[0].token_ids
        == model.generate(prompt, max_new_tokens=5)[0].token_ids
    )


@pytest.mark.parametrize(("lora", "cut"), [(False, 3), (True, 2)])
def test_stop_then_resume_ends_where_an_uninterrupted_run_ends(
    tiny_lm_dirs, pairs, tmp_path, lora, cut
):
    common = {"lora": lora, "max_steps": 6, "batch_size": 8, "lr": 3e-3}
    full = _go(_lm(tiny_lm_dirs), pairs, tmp_path, "full", **common).wait()
    part = _go(
        _lm(tiny_lm_dirs), pairs, tmp_path, "part", **common, callbacks=[Recorder(stop_at=cut)]
    ).wait()
    assert part.status == "stopped" and part.step == cut
    model = _lm(tiny_lm_dirs)
    rest = _go(model, pairs, tmp_path, "rest", **common, resume_from=part.checkpoints[-1]).wait()
    assert rest.status == "finished", rest.error
    assert rest.history.column("step") == list(range(cut + 1, 7))
    assert rest.history.column("loss") == pytest.approx(full.history.column("loss")[cut:], abs=1e-5)
    assert rest.evaluation.loss == pytest.approx(full.evaluation.loss, abs=1e-5)
    a = {n: p for n, p in full.model.hf.named_parameters() if p.requires_grad}
    b = {n: p for n, p in model.hf.named_parameters() if p.requires_grad}
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)


def test_sample_generations_follow_each_evaluation(tiny_lm_dirs, pairs, tmp_path):
    rec = Recorder()
    run = _go(
        _lm(tiny_lm_dirs),
        pairs,
        tmp_path,
        max_steps=4,
        eval_every=2,
        sample_prompts=["say yes", "<b>hi</b>"],
        sample_tokens=3,
        callbacks=[rec],
    ).wait()
    assert [s.step for s in run.history.samples] == [2, 4]
    assert all(s.prompts == ("say yes", "<b>hi</b>") for s in run.history.samples)
    order = [(type(e), e.step) for e in rec.events if isinstance(e, EvalEnd | Samples)]
    assert order == [(EvalEnd, 2), (Samples, 2), (EvalEnd, 4), (Samples, 4)]
    default = _go(_lm(tiny_lm_dirs), pairs, tmp_path, "d", max_steps=2, sample_prompts=None)
    default.wait()
    expected = tuple(dict.fromkeys(pairs.validation["prompt"]))[:3]
    assert [s.prompts for s in default.history.samples] == [expected]
    none = _go(_lm(tiny_lm_dirs), pairs, tmp_path, "n", max_steps=2, sample_prompts=()).wait()
    assert none.history.samples == [] and len(none.history.evals) == 1


def test_raw_sources_load_for_the_model_task(tiny_lm_dirs, tmp_path):
    run = _go(_lm(tiny_lm_dirs, "gpt2"), PAIRS, tmp_path, max_steps=2).wait()
    assert run.status == "finished" and set(run.metrics) == {"loss", "perplexity"}


# -- bad combinations ------------------------------------------------------------------------


def test_data_for_another_task_is_refused_with_what_to_load(tiny_lm, tiny_model, pairs, toy_data):
    with pytest.raises(DataError, match=r"causal language model.*labelled text.*instructions"):
        labkit.finetune(tiny_lm, toy_data, progress=False)
    with pytest.raises(DataError, match=r"labelled text.*task='causal-lm'"):
        labkit.finetune(tiny_lm, toy_rows(8), progress=False)  # raw labelled rows too
    with pytest.raises(DataError, match=r"classification model.*LMData.*task='causal-lm'"):
        labkit.finetune(tiny_model, pairs, progress=False)
    assert not tiny_lm.is_training and not tiny_model.is_training


def test_metrics_and_sample_settings_are_checked_against_the_task(tiny_lm, tiny_model, pairs):
    with pytest.raises(ConfigError, match=r"metric='accuracy'.*loss, perplexity"):
        labkit.finetune(tiny_lm, pairs, metric="accuracy", progress=False)
    with pytest.raises(ConfigError, match=r"metric='perplexity'.*loss, accuracy"):
        labkit.finetune(tiny_model, toy_rows(8), metric="perplexity", progress=False)
    with pytest.raises(ConfigError, match="sample_prompts are continued by a causal"):
        labkit.finetune(tiny_model, toy_rows(8), sample_prompts=["hi"], progress=False)
    with pytest.raises(ConfigError, match="sample_prompts must be a list"):
        labkit.finetune(tiny_lm, pairs, sample_prompts="say yes", progress=False)
    with pytest.raises(ConfigError, match="non-empty strings"):
        labkit.finetune(tiny_lm, pairs, sample_prompts=["ok", " "], progress=False)
    with pytest.raises(ConfigError, match="sample_tokens"):
        labkit.finetune(tiny_lm, pairs, sample_tokens=0, progress=False)
    with pytest.raises(ConfigError, match="max_new_tokens must be between"):
        labkit.finetune(tiny_lm, pairs, sample_tokens=10**6, progress=False)
    assert not tiny_lm.is_training


def test_evaluate_takes_lm_data_or_a_dataset_and_refuses_others(tiny_lm, pairs):
    from datasets import Dataset

    whole = tiny_lm.evaluate(Dataset.from_list(PAIRS))
    assert whole.split == "data" and whole.tokens > tiny_lm.evaluate(pairs).tokens
    assert tiny_lm.evaluate(pairs).split == "validation"  # no test split: validation
    assert math.isclose(whole.perplexity, math.exp(whole.loss))
    assert "perplexity" in whole._repr_html_()
    with pytest.raises(DataError, match="no split 'test'"):
        tiny_lm.evaluate(pairs, split="test")
    with pytest.raises(DataError, match="LMData"):
        tiny_lm.evaluate(Dataset.from_list(toy_rows(4)).remove_columns("text"))
    with pytest.raises(ConfigError, match="batch_size"):
        tiny_lm.evaluate(pairs, batch_size=0)
    from labkit.lm.evaluate import evaluate_lm

    with pytest.raises(InputError, match="causal-lm model"):
        evaluate_lm(labkit.load_model(tiny_lm.name, task="classification", device="cpu"), pairs)


# -- the real model --------------------------------------------------------------------------


@pytest.mark.slow
def test_lora_on_the_instruction_task_raises_the_generative_accuracy(tmp_path):
    """SmolLM2-135M-Instruct on the review snippets as instructions. Before finetuning it
    answers in sentences ("This review is ..."), none starting with the label (16 test prompts);
    after 12 LoRA steps of 8 at a high constant lr it answers with a label, mostly the right one
    (32 test prompts). Seen when this was written: 0/16 -> 28/32 (answers positive 22,
    negative 10; 0.6 needs 20) in 51 s on a 2-core CPU under a load of 4, where 24 steps at
    1e-3 scored on 64 prompts took 187 s for 45/64. The runs are seeded: the figures repeat on
    one machine."""
    from datasets import DatasetDict

    from labkit.lm.instruct import generative_accuracy

    model = labkit.demo.lm(device="cpu")
    data = labkit.demo.instructions()
    before = generative_accuracy(model, data, limit=16)
    small = LMData(  # all the training rows; a small validation split for the one evaluation
        splits=DatasetDict({"train": data.train, "validation": data.validation.select(range(16))}),
        kind="instruction",
    )
    run = labkit.finetune(
        model,
        small,
        lora=True,
        max_steps=12,
        batch_size=8,
        lr=2e-3,
        schedule="constant",
        max_length=96,
        sample_prompts=(),
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    after = generative_accuracy(model, data, limit=32)
    assert before.accuracy < 0.3 and after.accuracy >= 0.6, (before, after)
    assert after.unparseable <= 3, after
    assert set(after.answers) >= {"positive", "negative"}, after  # not one answer for all
