"""LoRA per architecture, peft configs passing through, and export that transformers loads."""

from __future__ import annotations

import pytest
import torch

import labkit
from labkit.train import lora as _lora

LABELS = ["negative", "positive"]
TEXTS = ["a great film", "dull and lifeless", "the movie was not good", "brilliant fun", ""]

EXPECTED_TARGETS = {
    "bert": {"query", "key", "value"},
    "distilbert": {"q_lin", "k_lin", "v_lin"},
    "roberta": {"query", "key", "value"},
    "gpt2": {"c_attn"},
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj"},
}


def _train(model, data, folder, *, lora, steps):
    run = labkit.finetune(
        model,
        data,
        lora=lora,
        max_steps=steps,
        batch_size=8,
        output_dir=folder,
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    return run


@pytest.mark.parametrize("arch", sorted(EXPECTED_TARGETS))
def test_lora_true_adapts_the_attention_of_each_family(tiny_dirs, toy_data, tmp_path, arch):
    model = labkit.load_model(tiny_dirs[arch], labels=LABELS, device="cpu")
    embeddings = model.hf.get_input_embeddings().weight.detach().clone()
    run = labkit.finetune(
        model, toy_data, lora=True, max_steps=3, batch_size=8, output_dir=tmp_path, progress=False
    ).wait()
    assert run.status == "finished", run.error
    assert model.lora and run.model is model
    adapted = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1]
        for n, p in model.hf.named_parameters()
        if ".lora_A." in n
    }
    assert adapted == EXPECTED_TARGETS[arch]
    trainable = [n for n, p in model.hf.named_parameters() if p.requires_grad]
    heads = _lora.head_modules(model.base)
    assert heads and all(any(f".{h}." in n for n in trainable) for h in heads)
    assert model.trainable_parameters < model.num_parameters / 2
    assert torch.equal(model.base.get_input_embeddings().weight, embeddings)  # base frozen
    assert len(model.predict(TEXTS)) == len(TEXTS)


def test_a_peft_config_passes_through_as_is(tiny_dirs, toy_data, tmp_path):
    from peft import AdaLoraConfig, LoraConfig

    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    config = LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["value"])
    _train(model, toy_data, tmp_path / "lora", lora=config, steps=2)
    assert model.hf.peft_config["default"].r == 2
    assert {n for n, _ in model.hf.named_parameters() if "lora_A" in n} == {
        n for n, _ in model.hf.named_parameters() if "value.lora_A" in n
    }

    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    ada = AdaLoraConfig(
        task_type="SEQ_CLS", init_r=4, target_r=2, total_step=4, target_modules=["query", "value"]
    )
    _train(model, toy_data, tmp_path / "ada", lora=ada, steps=4)
    assert type(model.hf.peft_config["default"]).__name__ == "AdaLoraConfig"


def test_adalora_reallocates_its_ranks_during_the_run(tiny_dirs, toy_data, tmp_path):
    """AdaLoRA prunes ranks by importance while it trains (peft's update_and_allocate each
    step): the run ends with a rank pattern below the initial rank, at the target budget."""
    from peft import AdaLoraConfig

    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    ada = AdaLoraConfig(
        task_type="SEQ_CLS",
        init_r=4,
        target_r=1,
        tinit=1,
        tfinal=1,
        deltaT=1,
        total_step=6,
        target_modules=["query", "value"],
    )
    _train(model, toy_data, tmp_path / "ada", lora=ada, steps=6)
    pattern = model.hf.peft_config["default"].rank_pattern
    assert pattern, "the rank budget never moved: AdaLoRA trained as plain LoRA"
    ranks = [sum(bool(x) for x in mask) for mask in pattern.values()]
    assert all(r <= 4 for r in ranks) and sum(ranks) < 4 * len(ranks)


def test_an_unknown_architecture_asks_for_a_lora_config(tiny_model):
    class Odd(torch.nn.Module):
        config = type("C", (), {"model_type": "oddformer"})()

        def __init__(self):
            super().__init__()
            self.mixer = torch.nn.Linear(2, 2)

    with pytest.raises(labkit.ConfigError, match="LoraConfig"):
        _lora.target_modules(Odd())


@pytest.mark.parametrize(("arch", "lora"), [("bert", True), ("gpt2", True), ("distilbert", False)])
def test_export_loads_in_transformers_and_pipeline_with_the_same_predictions(
    tiny_dirs, toy_data, tmp_path, arch, lora
):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    model = labkit.load_model(tiny_dirs[arch], labels=LABELS, device="cpu")
    run = labkit.finetune(
        model,
        toy_data,
        lora=lora,
        max_steps=4,
        batch_size=8,
        lr=5e-3,
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    path = run.export(tmp_path / "export")
    assert (tmp_path / "export" / "model.safetensors").exists()
    assert model.lora == lora  # exporting merged a copy, not the run's model
    texts = [t for t in TEXTS if t]
    ours = model.logits(texts).softmax(-1)

    hf = AutoModelForSequenceClassification.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    hf.eval()
    with torch.no_grad():
        theirs = torch.cat([hf(**tok([t], return_tensors="pt")).logits for t in texts]).softmax(-1)
    assert torch.allclose(ours, theirs, atol=1e-5)

    pipe = pipeline("text-classification", model=path, tokenizer=path, device="cpu", top_k=None)
    for text, row, scored in zip(texts, ours, pipe(texts)):
        got = {d["label"]: d["score"] for d in scored}
        assert set(got) == set(LABELS), text
        assert [got[name] for name in LABELS] == pytest.approx(row.tolist(), abs=1e-5)
    assert labkit.load_model(path, device="cpu").predict(texts)[0].label in LABELS


def test_export_before_the_end_is_refused(tiny_model, toy_data, tmp_path):
    import threading

    gate = threading.Event()

    class Hold:
        def on_event(self, event, control):
            if isinstance(event, labkit.StepEnd):
                gate.wait(30)

    run = labkit.finetune(
        tiny_model,
        toy_data,
        max_steps=2,
        batch_size=8,
        callbacks=[Hold()],
        output_dir=tmp_path / "run",
        progress=False,
    )
    try:
        with pytest.raises(labkit.TrainingError, match="wait"):
            run.export(tmp_path / "export")
    finally:
        gate.set()
        run.wait()


def test_lora_checkpoints_and_adapter_exports_keep_the_label_names(tiny_dirs, toy_data, tmp_path):
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    run = _train(model, toy_data, tmp_path / "run", lora=True, steps=3)
    texts = [t for t in TEXTS if t]
    expected = model.logits(texts)
    for folder in (run.checkpoints[-1], run.export(tmp_path / "adapter", merge_lora=False)):
        loaded = labkit.load_model(folder, device="cpu")
        assert loaded.lora
        assert loaded.labels == tuple(LABELS)  # not LABEL_0 / LABEL_1
        assert torch.allclose(loaded.logits(texts), expected, atol=1e-5)
