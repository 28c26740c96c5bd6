"""Head pruning (lk.prune_heads, lk.pruning_curve) on tiny config-built BERT/DistilBERT/RoBERTa."""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import labkit as lk
from labkit import ConfigError, InputError, LabkitWarning, ModelLoadError
from labkit.compress.heads import layout

ARCHS = ("bert", "distilbert", "roberta")
LABELS = ["negative", "positive"]
TEXTS = ["a great movie", "dull and lifeless, the worst film of the year", "simply fun"]


def _load(tiny_dirs: dict[str, Path], arch: str) -> lk.Model:
    return lk.load_model(tiny_dirs[arch], labels=LABELS, device="cpu", seed=0)


@contextmanager
def _masked(model: lk.Model, heads: dict[int, list[int]]):
    """The unpruned model with ``heads`` zeroed right before each layer's output projection."""
    lay = layout(model.hf)
    d = lay.head_dim
    handles = []

    def hook_for(drop: list[int]):
        def hook(_module, args):
            x = args[0].clone()
            for h in drop:
                x[..., h * d : (h + 1) * d] = 0
            return (x, *args[1:])

        return hook

    try:
        for layer, drop in heads.items():
            handles.append(lay.layers[layer].output.register_forward_pre_hook(hook_for(drop)))
        yield
    finally:
        for handle in handles:
            handle.remove()


# -- the cut -----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_pruned_linear_shapes_and_parameters(tiny_dirs, arch):
    model = _load(tiny_dirs, arch)
    before = {n: p.clone() for n, p in model.hf.named_parameters()}
    pruned = lk.prune_heads(model, heads={0: [1, 2], 1: [3]})
    lay = layout(pruned.hf)
    d = lay.head_dim  # tiny models: hidden 32, 4 heads -> 8 per head
    assert (lay.num_heads, d) == (4, 8)
    for layer, kept in ((0, 2), (1, 3)):
        part = lay.layers[layer]
        for proj in (part.query, part.key, part.value):
            assert tuple(proj.weight.shape) == (kept * d, 32)
            assert tuple(proj.bias.shape) == (kept * d,)
        assert tuple(part.output.weight.shape) == (32, kept * d)
        assert tuple(part.output.bias.shape) == (32,)
    # per removed head: q/k/v lose d x 32 weights + d biases each, the output d x 32 weights
    assert model.num_parameters - pruned.num_parameters == 3 * (3 * (d * 32 + d) + d * 32)
    assert pruned.hf.config.labkit_pruned_heads == {"0": [1, 2], "1": [3]}
    assert pruned.name.endswith(" · pruned 3 heads")
    # the input model is untouched
    assert model.hf.config.to_dict().get("labkit_pruned_heads") is None
    for n, p in model.hf.named_parameters():
        assert torch.equal(p, before[n]), n


@pytest.mark.parametrize("arch", ARCHS)
def test_pruning_nothing_keeps_outputs(tiny_dirs, arch):
    model = _load(tiny_dirs, arch)
    want = model.logits(TEXTS)
    by_fraction = lk.prune_heads(model, fraction=0.0, importance=np.ones((2, 4)))
    by_heads = lk.prune_heads(model, heads={})
    for same in (by_fraction, by_heads):
        assert same.num_parameters == model.num_parameters
        torch.testing.assert_close(same.logits(TEXTS), want, atol=1e-5, rtol=0)
    assert by_fraction.name.endswith(" · pruned 0%")


@pytest.mark.parametrize("arch", ARCHS)
def test_removing_a_head_equals_masking_it(tiny_dirs, arch):
    model = _load(tiny_dirs, arch)
    cut = {0: [0, 3], 1: [2]}
    pruned = lk.prune_heads(model, heads=cut)
    with _masked(model, cut):
        want = model.logits(TEXTS)
    assert not torch.allclose(want, model.logits(TEXTS), atol=1e-6)  # the heads mattered
    torch.testing.assert_close(pruned.logits(TEXTS), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_save_and_load_round_trip(tiny_dirs, arch, tmp_path):
    pruned = lk.prune_heads(_load(tiny_dirs, arch), heads={0: [1], 1: [0, 2]})
    pruned.hf.save_pretrained(tmp_path)
    pruned.tokenizer.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["labkit_pruned_heads"] == {"0": [1], "1": [0, 2]}
    back = lk.load_model(tmp_path, device="cpu")
    assert back.labels == tuple(LABELS)
    assert back.num_parameters == pruned.num_parameters
    torch.testing.assert_close(back.logits(TEXTS), pruned.logits(TEXTS), atol=1e-6, rtol=0)
    # other labels: a new head, the pruned encoder as saved
    three = lk.load_model(tmp_path, labels=["a", "b", "c"], device="cpu", seed=0)
    assert three.logits(TEXTS).shape == (3, 3)
    assert three.num_parameters == pruned.num_parameters + 32 + 1


def test_run_export_round_trip(tiny_dirs, toy_data, tmp_path):
    pruned = lk.prune_heads(_load(tiny_dirs, "bert"), heads={0: [2]})
    run = lk.finetune(pruned, toy_data, max_steps=2, output_dir=tmp_path / "run", progress=False)
    run.wait()
    assert run.status == "finished", run.error
    run.export(tmp_path / "out")
    back = lk.load_model(tmp_path / "out", device="cpu")
    assert back.hf.config.labkit_pruned_heads == {"0": [2]}
    torch.testing.assert_close(back.logits(TEXTS), pruned.logits(TEXTS), atol=1e-6, rtol=0)


def test_pruning_again_keeps_original_numbers(tiny_dirs):
    model = _load(tiny_dirs, "bert")
    once = lk.prune_heads(model, heads={0: [1]})
    twice = lk.prune_heads(once, heads={0: [3], 1: [0]})
    assert twice.hf.config.labkit_pruned_heads == {"0": [1, 3], "1": [0]}
    assert twice.name.endswith(" · pruned 3 heads") and twice.name.count(" · pruned") == 1
    with _masked(model, {0: [1, 3], 1: [0]}):
        want = model.logits(TEXTS)
    torch.testing.assert_close(twice.logits(TEXTS), want, atol=1e-5, rtol=0)
    with pytest.raises(InputError, match=r"already pruned; layer 0 has heads \[0, 2, 3\] left"):
        lk.prune_heads(once, heads={0: [1]})
    # by importance: only heads still there are candidates
    scores = np.array([[0.0, 0.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0]])
    third = lk.prune_heads(twice, fraction=0.6, importance=scores)  # 3 of the 5 left
    assert third.hf.config.labkit_pruned_heads == {"0": [0, 1, 3], "1": [0, 1, 2]}


def test_fraction_removes_least_important_and_keeps_one_per_layer(tiny_dirs):
    model = _load(tiny_dirs, "distilbert")
    scores = np.array([[0.1, 0.9, 0.2, 0.3], [0.05, 0.04, 0.5, 0.03]])
    half = lk.prune_heads(model, fraction=0.5, importance=scores)
    assert half.hf.config.labkit_pruned_heads == {"0": [0], "1": [0, 1, 3]}
    assert half.name.endswith(" · pruned 50%")
    with pytest.warns(LabkitWarning, match="asks for 7 of 8 heads, but every layer keeps one"):
        most = lk.prune_heads(model, fraction=0.9, importance=scores)
    # each layer keeps its most important head
    assert most.hf.config.labkit_pruned_heads == {"0": [0, 2, 3], "1": [0, 1, 3]}


def test_importance_keeps_a_planted_head_that_random_drops(tiny_dirs, toy_data):
    model = _load(tiny_dirs, "bert")
    lay = layout(model.hf)
    d = lay.head_dim
    with torch.no_grad():  # head 2 of layer 1 now carries most of what reaches the classifier
        lay.layers[1].value.weight[2 * d : 3 * d] *= 40
        lay.layers[1].value.bias[2 * d : 3 * d] *= 40
    importance = lk.head_importance(model, toy_data)
    assert importance.scores[1].argmax() == 2
    by_importance = lk.prune_heads(model, fraction=0.75, importance=importance)
    assert 2 not in by_importance.hf.config.labkit_pruned_heads.get("1", [])
    rng = np.random.default_rng(0)
    randoms = [
        lk.prune_heads(model, fraction=0.75, importance=rng.random((2, 4))) for _ in range(6)
    ]
    dropped = [m for m in randoms if 2 in m.hf.config.labkit_pruned_heads.get("1", [])]
    assert dropped
    want = model.logits(TEXTS)
    kept_error = (by_importance.logits(TEXTS) - want).abs().max()
    assert all(kept_error < (m.logits(TEXTS) - want).abs().max() for m in dropped)


# -- pruned models in the rest of labkit -------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_attention_of_a_pruned_model(tiny_dirs, arch):
    model = _load(tiny_dirs, arch)
    pruned = lk.prune_heads(model, heads={0: [1, 2], 1: [3]})
    full, cut = lk.attention(model, TEXTS[0]), lk.attention(pruned, TEXTS[0])
    assert cut.weights.shape == full.weights.shape
    assert cut.num_heads == 4 and cut.pruned == {0: (1, 2), 1: (3,)}
    assert not cut.weights[0, [1, 2]].any() and not cut.weights[1, 3].any()
    # layer 0 sees the same input: its kept heads' maps are the unpruned model's
    np.testing.assert_allclose(cut.weights[0, [0, 3]], full.weights[0, [0, 3]], atol=1e-6)
    np.testing.assert_allclose(cut.weights[1, :3].sum(-1), 1.0, atol=1e-5)
    assert full.pruned == {}
    assert lk.attention(pruned, TEXTS[0], heads=[1, 3]).weights.shape[1] == 2
    assert cut.summary.entropy.shape == (2, 4) and cut._repr_html_()
    # the head summary names the removed heads, and only those, as pruned
    assert [cut.summary.role(0, h) for h in (1, 2)] == ["pruned", "pruned"]
    assert cut.summary.role(1, 3) == "pruned"
    kept = [cut.summary.role(0, 0), cut.summary.role(0, 3), cut.summary.role(1, 0)]
    assert "pruned" not in kept and "pruned" not in [r for row in full.summary.roles for r in row]


def test_head_importance_and_evaluate_of_a_pruned_model(tiny_model, toy_data):
    pruned = lk.prune_heads(tiny_model, heads={1: [0, 1]})
    importance = lk.head_importance(pruned, toy_data)
    assert importance.scores.shape == (2, 4)
    assert (importance.scores[1, :2] == 0).all() and (importance.scores[1, 2:] > 0).all()
    assert len(pruned.predict(TEXTS)) == 3
    assert 0.0 <= pruned.evaluate(toy_data).accuracy <= 1.0


# -- the curve ---------------------------------------------------------------------------------
def test_pruning_curve_rows_and_html(tiny_dirs, toy_data, tmp_path):
    model = _load(tiny_dirs, "bert")
    model.name = "<img src=x onerror=alert(1)>"
    curve = lk.pruning_curve(model, toy_data, fractions=(0.5, 0.0), random_repeats=2)
    assert [p.fraction for p in curve.rows] == [0.0, 0.5]
    zero, half = curve.rows
    assert zero.heads_removed == 0 and half.heads_removed == 4
    assert zero.random_accuracies == (zero.accuracy, zero.accuracy)
    assert half.parameters < zero.parameters and len(half.random_f1s) == 2
    assert half.random_spread[0] <= half.random_accuracy <= half.random_spread[1]
    assert half.latency > 0 and half.random_latency > 0
    assert curve.split == "validation" and curve.importance_split == "train"
    assert curve.total_heads == 8 and curve.examples == len(toy_data.validation)
    html = curve._repr_html_()
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "data:image/svg+xml;base64," in html
    page = curve.to_html(tmp_path / "curve.html")
    assert "random range" in Path(page).read_text()
    assert model.hf.config.to_dict().get("labkit_pruned_heads") is None


def test_pruning_curve_with_recovery(tiny_dirs, toy_data):
    model = _load(tiny_dirs, "bert")
    scores = lk.head_importance(model, toy_data, split="train")
    curve = lk.pruning_curve(
        model, toy_data, fractions=[0.25], random_repeats=1, recover_steps=2, importance=scores
    )
    assert curve.recover_steps == 2 and curve.importance_split == "given"
    assert "2 recovery steps" in curve._repr_html_() or "finetuned 2 steps" in curve._repr_html_()


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), True, "0.3"])
def test_bad_fraction(tiny_model, fraction):
    with pytest.raises(ConfigError, match="fraction"):
        lk.prune_heads(tiny_model, fraction=fraction, importance=np.ones((2, 4)))


def test_bad_arguments(tiny_model, toy_data):
    ones = np.ones((2, 4))
    cases = [
        ({}, r"exactly one of fraction= \(.*\) or heads="),
        ({"fraction": 0.3, "heads": {0: [1]}}, "exactly one of"),
        ({"fraction": 0.3}, "pass data="),
        ({"fraction": 0.3, "data": toy_data, "importance": ones}, "not both"),
        ({"heads": {0: [1]}, "importance": ones}, "names the heads to remove itself"),
        ({"heads": [0, 1]}, r"heads must be a dict"),
        ({"heads": {0: [1.5]}}, r"must be an int"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            lk.prune_heads(tiny_model, **kwargs)


def test_heads_that_do_not_exist(tiny_model):
    with pytest.raises(InputError, match=r"layer 2, but the model has 2 layers \(0\.\.1\)"):
        lk.prune_heads(tiny_model, heads={2: [0]})
    with pytest.raises(InputError, match=r"heads \[4, -1\]|heads \[-1, 4\]"):
        lk.prune_heads(tiny_model, heads={0: [4, -1]})
    with pytest.raises(InputError, match=r"each layer has 4 heads \(0\.\.3\)"):
        lk.prune_heads(tiny_model, heads={1: [9]})
    with pytest.raises(InputError, match="keeps at least one head"):
        lk.prune_heads(tiny_model, heads={1: [0, 1, 2, 3]})


def test_bad_importance(tiny_model):
    with pytest.raises(InputError, match=r"shape \[3, 4\], but the model has 2 layers x 4 heads"):
        lk.prune_heads(tiny_model, fraction=0.5, importance=np.ones((3, 4)))
    with pytest.raises(InputError, match="NaN"):
        lk.prune_heads(tiny_model, fraction=0.5, importance=np.full((2, 4), np.nan))
    with pytest.raises(InputError, match="HeadImportance"):
        lk.prune_heads(tiny_model, fraction=0.5, importance=object())


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_models_that_cannot_be_pruned(tiny_dirs, tiny_model):
    gpt2 = lk.load_model(tiny_dirs["gpt2"], labels=LABELS, device="cpu")
    with pytest.raises(InputError, match=r"'gpt2' model .*supports bert, roberta, distilbert"):
        lk.prune_heads(gpt2, heads={0: [1]})
    with pytest.raises(InputError, match=r"needs a labkit\.Model"):
        lk.prune_heads(tiny_model.hf, heads={0: [1]})
    int8 = copy.deepcopy(tiny_model)
    int8.backend = "torch-int8"
    with pytest.raises(InputError, match="prune_heads needs the model's float torch weights"):
        lk.prune_heads(int8, heads={0: [1]})
    from peft import LoraConfig, get_peft_model

    lora = copy.deepcopy(tiny_model)
    lora.hf = get_peft_model(
        lora.hf, LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS")
    )
    with pytest.raises(InputError, match=r"LoRA adapter attached.*Merge it first"):
        lk.prune_heads(lora, heads={0: [1]})


def test_the_record_field_is_the_one_load_model_reads():
    from labkit.compress import heads
    from labkit.model import PRUNED_HEADS

    assert heads.PRUNED_HEADS == PRUNED_HEADS == "labkit_pruned_heads"


def test_bad_curve_arguments(tiny_model, toy_data):
    for kwargs, message in [
        ({"fractions": [0.2, 1.0]}, "outside"),
        ({"fractions": []}, "fractions is empty"),
        ({"fractions": "0.3"}, "fraction"),
        ({"random_repeats": 0}, "random_repeats must be >= 1"),
        ({"recover_steps": -1}, "recover_steps must be >= 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            lk.pruning_curve(tiny_model, toy_data, **kwargs)


def test_edited_record_is_refused_on_load(tiny_model, tmp_path):
    pruned = lk.prune_heads(tiny_model, heads={0: [1]})
    pruned.hf.save_pretrained(tmp_path)
    pruned.tokenizer.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["labkit_pruned_heads"] = {"0": [1], "5": [0]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="records pruned heads"):
        lk.load_model(tmp_path, device="cpu")
    cfg["labkit_pruned_heads"] = {"0": [1, 2]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="do not fit the pruned model"):
        lk.load_model(tmp_path, device="cpu")
