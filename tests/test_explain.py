"""explain / explain_dataset mechanics on tiny config-built models (fast, offline)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import labkit
from labkit.inspect.attribution.api import (
    METHODS,
    AttributionResult,
    explain,
    explain_dataset,
    rank_agreement,
)

FAST = {
    "lime": {"n_samples": 40},
    "kernel_shap": {"n_samples": 40},
    "gradient_shap": {"n_samples": 8},
}
SENTENCES = [
    "great fun",
    "an excellent and moving film",
    "the worst film of the year",
    "dull",
    "painfully slow and predictable, with terrible acting and a boring plot",
    "I loved every minute",
]


def _model(folder, **kw):
    return labkit.load_model(folder, labels=["negative", "positive"], device="cpu", **kw)


def test_every_method_runs_on_every_tiny_architecture(tiny_arch_dir):
    model = _model(tiny_arch_dir)
    text = "a gorgeous, witty movie"
    for method in METHODS:
        r = explain(model, text, method=method, **FAST.get(method, {}))
        assert isinstance(r, AttributionResult)
        assert r.method == method
        assert r.scores.dtype == np.float32 and r.scores.shape == (len(r.tokens),)
        assert len(r.special) == len(r.tokens) == len(r.token_ids)
        assert np.isfinite(r.scores).all()
        assert np.abs(r.scores[~np.asarray(r.special)]).max() > 0, method
        assert r.target == r.predicted and abs(sum(r.probs.values()) - 1) < 1e-5
        assert "".join(t for t, s in zip(r.tokens, r.special) if not s).replace(
            "␣", ""
        ) == text.replace(" ", "")
        if method in ("integrated_gradients", "kernel_shap", "gradient_shap"):
            assert r.delta is not None and r.delta >= 0
        else:
            assert r.delta is None


def _baseline_prob(model, r):
    """p(target) with every non-special token replaced by the pad token (BERT-family only)."""
    import torch

    ids = torch.tensor(
        [[t if s else model.tokenizer.pad_token_id for t, s in zip(r.token_ids, r.special)]]
    )
    with torch.no_grad():
        probs = model.hf(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.softmax(-1)
    return float(probs[0, model.labels.index(r.target)])


def test_integrated_gradients_scores_add_up_to_the_change_in_probability(tiny_dirs):
    model = _model(tiny_dirs["bert"])
    for text in SENTENCES:
        r = explain(model, text, tolerance=1e-3)
        assert r.delta is not None and r.delta <= 1e-3
        change = r.probs[r.target] - _baseline_prob(model, r)
        assert abs(float(r.scores.sum()) - change) <= r.delta + 1e-5


def test_integrated_gradients_raises_n_steps_until_the_tolerance_holds(tiny_dirs):
    model = _model(tiny_dirs["llama"])
    text = "a delightful surprise"
    first = explain(model, text, tolerance=None)
    assert first.options["n_steps"] == 50
    tol = first.delta / 4
    r = explain(model, text, tolerance=tol, max_steps=6400)
    assert r.options["n_steps"] > 50
    assert r.delta <= tol


def test_integrated_gradients_warns_when_the_step_cap_is_reached(tiny_dirs):
    model = _model(tiny_dirs["llama"])
    with pytest.warns(labkit.LabkitWarning, match="did not converge.*n_steps=100"):
        r = explain(model, "a delightful surprise", tolerance=1e-12, max_steps=100)
    assert r.options["n_steps"] == 100


def test_explaining_the_other_label_flips_the_scores(tiny_dirs):
    model = _model(tiny_dirs["bert"])
    pos = explain(model, "an excellent and moving film", target="positive")
    neg = explain(model, "an excellent and moving film", target="negative")
    assert pos.target == "positive" and neg.target == "negative"
    np.testing.assert_allclose(pos.scores, -neg.scores, atol=1e-6)
    assert explain(model, "great fun", target=1).target == "positive"


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
@pytest.mark.parametrize(
    "method", ["integrated_gradients", "occlusion", "attention_rollout", "gradient_shap"]
)
def test_batched_dataset_equals_one_by_one(tiny_dirs, arch, method):
    model = _model(tiny_dirs[arch])
    opts = FAST.get(method, {})
    # a small budget forces several captum calls, each holding several texts of unequal length
    batched = explain_dataset(
        model,
        SENTENCES,
        subset="all",
        method=method,
        memory_budget="2MB",
        faithfulness=False,
        **opts,
    )
    assert [r.text for r in batched.results] == SENTENCES
    for r in batched.results:
        single = explain(model, r.text, method=method, **opts)
        assert single.tokens == r.tokens
        np.testing.assert_allclose(r.scores, single.scores, rtol=1e-3, atol=1e-6)
        if single.delta is not None:
            assert r.delta == pytest.approx(single.delta, abs=1e-5)


def _lora(model, arch):
    from peft import LoraConfig, get_peft_model

    modules = {
        "bert": ["query", "value"],
        "distilbert": ["q_lin", "v_lin"],
        "roberta": ["query", "value"],
        "gpt2": ["c_attn"],
        "llama": ["q_proj", "v_proj"],
    }[arch]
    cfg = LoraConfig(
        task_type="SEQ_CLS",
        r=4,
        lora_alpha=8,
        target_modules=modules,
        fan_in_fan_out=arch == "gpt2",
    )
    wrapped = labkit.Model.wrap(get_peft_model(model.hf, cfg), model.tokenizer, labels=model.labels)
    assert wrapped.lora
    return wrapped


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta", "gpt2", "llama"])
def test_lora_wrapped_models_explain_like_their_base(tiny_dirs, arch):
    text = "an excellent and moving film"
    plain = explain(_model(tiny_dirs[arch]), text)
    # a fresh adapter adds B @ A = 0: the wrapped model computes the same function
    lora = explain(_lora(_model(tiny_dirs[arch]), arch), text)
    assert lora.tokens == plain.tokens
    np.testing.assert_allclose(lora.scores, plain.scores, rtol=1e-4, atol=1e-7)
    grads = explain(_lora(_model(tiny_dirs[arch]), arch), text, method="gradient_x_input")
    assert np.abs(grads.scores).max() > 0


def test_the_model_is_left_as_it_was(tiny_model):
    tiny_model.hf.train()
    trainable = [p.requires_grad for p in tiny_model.hf.parameters()]

    def ours():  # transformers keeps its own output-capturing hooks; ours must all be gone
        return [
            h
            for m in tiny_model.hf.modules()
            for h in m._forward_hooks.values()
            if getattr(h, "__module__", "").startswith("labkit")
        ]

    explain(tiny_model, "great fun")
    explain(tiny_model, "great fun", method="attention_rollout")
    with pytest.raises(labkit.ConfigError):
        explain(tiny_model, "great fun", baseline="mask", embeddings="bert.embeddings.nope")
    assert tiny_model.hf.training
    assert [p.requires_grad for p in tiny_model.hf.parameters()] == trainable
    assert ours() == []
    assert labkit._utils.eager.attn_implementation(tiny_model.hf) == "sdpa"


def test_a_bf16_model_is_explained_in_float32_and_given_back_untouched(tiny_dirs):
    import torch

    half = _model(tiny_dirs["bert"], dtype="bfloat16")
    same = _model(tiny_dirs["bert"], dtype="bfloat16")
    same.hf.float()  # the very same weights, held in float32
    before = {k: v.clone() for k, v in half.hf.state_dict().items()}
    for text in SENTENCES[:3]:
        r = explain(half, text, tolerance=1e-3)
        # in bf16 the completeness error alone is ~1e-2; in float32 it meets 1e-3
        assert r.delta is not None and r.delta <= 1e-3
        ref = explain(same, text, tolerance=1e-3)
        np.testing.assert_allclose(r.scores, ref.scores, rtol=1e-5, atol=1e-7)
        assert r.probs == pytest.approx(ref.probs, abs=1e-6)
    batched = explain_dataset(half, SENTENCES[:3], subset="all", tolerance=1e-3)
    assert batched.results[0].scores == pytest.approx(
        explain(same, SENTENCES[0], tolerance=1e-3).scores, abs=1e-6
    )
    after = half.hf.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert half.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "error",
    [
        "cuda",  # torch.cuda.OutOfMemoryError
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1024 bytes",
    ],
)
def test_a_bf16_model_too_big_for_a_float32_copy_is_explained_as_it_is(
    tiny_dirs, monkeypatch, error
):
    import torch

    from labkit._utils import device as _device

    half = _model(tiny_dirs["bert"], dtype="bfloat16")
    before = {k: v.clone() for k, v in half.hf.state_dict().items()}
    made = []

    def upcast(t):  # the third tensor's float32 copy does not fit
        if len(made) == 2:
            if error == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            raise RuntimeError(error)
        made.append(t)
        return t.float()

    monkeypatch.setattr(_device, "_upcast", upcast)
    with pytest.warns(labkit.LabkitWarning, match=r"does not fit.*dtype='float32'") as seen:
        r = explain(half, "great fun")
    assert seen[0].filename == __file__  # points at the caller's line
    assert np.isfinite(r.scores).all()
    after = half.hf.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    # a later, unrelated failure is not reported as happening while handling the OOM
    made.clear()
    with (
        pytest.raises(ValueError) as failed,
        pytest.warns(labkit.LabkitWarning),
        _device.float32_weights(half.hf),
    ):
        raise ValueError("something else")
    assert failed.value.__context__ is None


def test_finetune_waits_for_an_explain_holding_float32_copies(
    tiny_dirs, toy_data, tmp_path, monkeypatch
):
    import threading

    import torch

    from labkit.inspect.attribution import api

    half = _model(tiny_dirs["bert"], dtype="bfloat16")
    inside, release, dtypes, runs = threading.Event(), threading.Event(), [], []
    real = api.run

    def held(model, *args, **kwargs):  # explain, paused while it holds float32 copies
        dtypes.append(model.dtype)
        inside.set()
        release.wait(30)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(api, "run", held)  # the engine call explain makes
    explaining = threading.Thread(target=explain, args=(half, "great fun"))
    explaining.start()
    assert inside.wait(30)

    def train():
        runs.append(
            labkit.finetune(half, toy_data, max_steps=2, output_dir=tmp_path, progress=False)
        )

    training = threading.Thread(target=train)
    training.start()
    training.join(0.5)  # a run started now would train weights about to be swapped back
    assert training.is_alive() and not runs and not half.is_training
    release.set()
    explaining.join(30)
    training.join(30)
    assert runs and runs[0].wait().status == "finished", runs[0].error
    assert dtypes == [torch.float32] and half.dtype == torch.bfloat16


def test_float32_weights_keeps_a_float32_adapter_over_a_bf16_base(tiny_dirs):
    import torch

    from labkit._utils.device import float32_weights

    model = _lora(_model(tiny_dirs["bert"], dtype="bfloat16"), "bert")
    dtypes = {n: p.dtype for n, p in model.hf.named_parameters()}
    assert torch.float32 in dtypes.values() and torch.bfloat16 in dtypes.values()
    with float32_weights(model.hf) as changed:
        assert changed and all(p.dtype == torch.float32 for p in model.hf.parameters())
    assert {n: p.dtype for n, p in model.hf.named_parameters()} == dtypes
    with float32_weights(model.hf, allowed=False) as changed:  # a run owns the weights
        assert not changed and {n: p.dtype for n, p in model.hf.named_parameters()} == dtypes


# -- bad input ------------------------------------------------------------------------------------
def test_unknown_target_lists_the_labels(tiny_model):
    with pytest.raises(
        labkit.InputError,
        match=r"'positve'.*Did you mean 'positive'.*'negative', "
        r"'positive'",
    ):
        explain(tiny_model, "great fun", target="positve")
    with pytest.raises(labkit.InputError, match="out of range"):
        explain(tiny_model, "great fun", target=5)


def test_misspelled_method_lists_the_methods(tiny_model):
    with pytest.raises(labkit.ConfigError, match=r"Did you mean 'integrated_gradients'.*occlusion"):
        explain(tiny_model, "great fun", method="integrated_gradient")
    assert explain(tiny_model, "great fun", method="IG").method == "integrated_gradients"


def test_unknown_or_bad_options_name_the_choices(tiny_model):
    with pytest.raises(
        labkit.ConfigError, match=r"occlusion does not take option.*n_steps.*window"
    ):
        explain(tiny_model, "great fun", method="occlusion", n_steps=10)
    with pytest.raises(labkit.ConfigError, match="n_steps must be an int >= 2"):
        explain(tiny_model, "great fun", n_steps=0)
    with pytest.raises(labkit.ConfigError, match=r"max_steps .* is below n_steps"):
        explain(tiny_model, "great fun", n_steps=100, max_steps=50)
    with pytest.raises(labkit.ConfigError, match="memory_budget"):
        explain(tiny_model, "great fun", memory_budget="lots")


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_refused(tiny_model, text):
    with pytest.raises(labkit.InputError, match="empty"):
        explain(tiny_model, text)


def test_text_over_the_limit_is_truncated_with_one_warning(tiny_model):
    text = " ".join(["wonderful"] * 400)
    with pytest.warns(labkit.LabkitWarning, match="limit of 128 tokens") as record:
        r = explain(tiny_model, text)
    assert len([w for w in record if issubclass(w.category, labkit.LabkitWarning)]) == 1
    assert len(r.tokens) == 128
    with pytest.warns(labkit.LabkitWarning, match="2 of 3 text") as record:
        explain_dataset(tiny_model, [text, "fine", text], subset="all", faithfulness=False)
    assert len(record) == 1


def test_missing_embedding_layer_says_what_to_pass(tiny_model, monkeypatch):
    def missing():
        raise NotImplementedError

    monkeypatch.setattr(tiny_model.base, "get_input_embeddings", missing)
    with pytest.raises(labkit.ConfigError, match=r"BERT.*Llama.*embeddings="):
        explain(tiny_model, "great fun")
    r = explain(tiny_model, "great fun", embeddings="bert.embeddings.word_embeddings")
    assert np.abs(r.scores).max() > 0
    with pytest.raises(labkit.ConfigError, match=r"no submodule 'nope'.*word_embeddings"):
        explain(tiny_model, "great fun", embeddings="nope")


# -- faithfulness and agreement ---------------------------------------------------------------------
def test_faithfulness_is_computed_on_request(tiny_model):
    plain = explain(tiny_model, "an excellent and moving film")
    assert plain.comprehensiveness is None and plain.sufficiency is None
    r = explain(tiny_model, "an excellent and moving film", faithfulness=True)
    assert isinstance(r.comprehensiveness, float) and isinstance(r.sufficiency, float)
    assert -1 <= r.comprehensiveness <= 1 and -1 <= r.sufficiency <= 1


def test_aopc_matches_deleting_tokens_by_hand(tiny_model):
    import torch

    from labkit.inspect.attribution.faithfulness import aopc

    r = explain(tiny_model, "an excellent and moving film")
    target = tiny_model.labels.index(r.target)
    comp, suff = aopc(
        tiny_model,
        [list(r.token_ids)],
        [list(r.special)],
        [r.scores],
        [target],
        [r.probs[r.target]],
        max_rows=8,
        bins=(0.4,),
    )
    words = [i for i, s in enumerate(r.special) if not s]
    top = sorted(words, key=lambda i: -r.scores[i])[:2]  # 40% of 5 tokens

    def prob(ids):
        t = torch.tensor([ids])
        with torch.no_grad():
            return float(tiny_model.hf(input_ids=t).logits.softmax(-1)[0, target])

    deleted = [t for i, t in enumerate(r.token_ids) if i not in top]
    kept = [t for i, t in enumerate(r.token_ids) if i in top or r.special[i]]
    assert comp[0] == pytest.approx(r.probs[r.target] - prob(deleted), abs=1e-5)
    assert suff[0] == pytest.approx(r.probs[r.target] - prob(kept), abs=1e-5)


def test_rank_agreement_matches_scipy(tiny_model):
    import scipy.stats as stats  # comes with scikit-learn (dev extra)

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    b[:10] = a[:10]
    a[5] = a[6]  # a tie
    assert rank_agreement(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert rank_agreement(a, b, method="kendall") == pytest.approx(stats.kendalltau(a, b).statistic)
    ig = explain(tiny_model, "an excellent and moving film")
    assert ig.agreement(ig) == pytest.approx(1.0)
    other = explain(tiny_model, "an excellent and moving film", method="occlusion")
    assert -1 <= ig.agreement(other, method="kendall") <= 1
    with pytest.raises(labkit.InputError, match="different texts"):
        ig.agreement(explain(tiny_model, "great fun"))


# -- datasets --------------------------------------------------------------------------------------
def test_explain_dataset_picks_misclassified_rows_and_aggregates(tiny_model, toy_data):
    result = explain_dataset(tiny_model, toy_data, split="validation")
    table = result.table
    assert list(table.columns[:7]) == [
        "row",
        "text",
        "label",
        "predicted",
        "target",
        "prob",
        "correct",
    ]
    assert len(table) == len(result) and len(result) > 0
    assert (table["label"] != table["predicted"]).all() and not table["correct"].any()
    assert (table["target"] == table["predicted"]).all()
    truth = toy_data.validation
    for row, text in zip(table["row"], table["text"]):
        assert truth[int(row)]["text"] == text
    assert table["comprehensiveness"].notna().all()
    inf = result.influence
    for label in set(table["target"]):
        top = result.top_tokens(label, 3)
        assert len(top) >= 1 and (top["label"] == label).all()
        assert list(top["total"]) == sorted(top["total"], reverse=True)
    with pytest.raises(labkit.InputError, match="explained labels"):
        result.top_tokens("neutral")
    assert set(inf.columns) == {"label", "token", "count", "total", "mean"}


def test_explain_dataset_subsets_and_targets(tiny_model, toy_data):
    first = explain_dataset(tiny_model, toy_data.train, subset=5, target="true", faithfulness=False)
    assert list(first.table["row"]) == [0, 1, 2, 3, 4]
    assert (first.table["target"] == first.table["label"]).all()
    every = explain_dataset(
        tiny_model, ["great fun", "dull"], subset="all", target="negative", method="saliency"
    )
    assert list(every.table["target"]) == ["negative", "negative"]
    assert every.table["label"].isna().all()
    with pytest.raises(labkit.InputError, match="need true labels"):
        explain_dataset(tiny_model, ["great fun"])
    with pytest.raises(labkit.InputError, match="row 1 of the dataset is empty"):
        explain_dataset(tiny_model, ["great fun", ""], subset="all")
    with pytest.raises(labkit.InputError, match="subset must be"):
        explain_dataset(tiny_model, ["great fun"], subset="some")


def test_no_warning_escapes_a_normal_call(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explain(tiny_model, "great fun", method="gradient_x_input")
        explain(tiny_model, "great fun", method="saliency")


def test_the_memory_budget_decides_how_much_one_pass_holds(tiny_model):
    from labkit.inspect.attribution.batching import rows_per_pass

    assert rows_per_pass(tiny_model, 64, 2**30) > rows_per_pass(tiny_model, 256, 2**30) >= 1
    assert rows_per_pass(tiny_model, 64, 2**30) > rows_per_pass(tiny_model, 64, 2**24)
    passes = []
    handle = tiny_model.hf.register_forward_pre_hook(
        lambda m, a, kw: passes.append(1), with_kwargs=True
    )
    try:
        explain_dataset(
            tiny_model, SENTENCES, subset="all", faithfulness=False, memory_budget="1GiB"
        )
        roomy = len(passes)
        passes.clear()
        explain_dataset(
            tiny_model, SENTENCES, subset="all", faithfulness=False, memory_budget="1MB"
        )
        tight = len(passes)
    finally:
        handle.remove()
    assert roomy < tight


def test_length_groups_cover_every_text_once_with_little_padding():
    import random

    from labkit.inspect.attribution.batching import PAD_SLACK, length_groups

    rng = random.Random(0)
    lengths = [rng.randint(3, 80) for _ in range(300)]
    groups = length_groups(lengths, lambda n, width: n <= 16)
    assert sorted(i for g in groups for i in g) == list(range(300))
    for g in groups:
        assert len(g) <= 16
        real = sum(lengths[i] for i in g)
        padded = len(g) * max(lengths[i] for i in g)
        assert padded <= (1 + PAD_SLACK) * real or len(g) == 1
    # dense lengths still batch: far fewer passes than texts
    assert len(groups) < 60
    # a limit that depends on the width is respected
    groups = length_groups(lengths, lambda n, width: n * width <= 200)
    assert all(len(g) * max(lengths[i] for i in g) <= 200 or len(g) == 1 for g in groups)


def test_probabilities_come_back_in_input_order(tiny_model):
    import torch

    from labkit.inspect.attribution.methods import probabilities

    rows = [tiny_model.tokenizer(t)["input_ids"] for t in SENTENCES]
    together = probabilities(tiny_model, rows, max_rows=4)
    alone = torch.cat([probabilities(tiny_model, [r], max_rows=1) for r in rows])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)


# -- one colour scale for several results ------------------------------------------------------
def _alphas(page: str) -> list[float]:
    """The colour opacity of each non-special token span of a static page."""
    import re

    spans = re.findall(
        r'class="labkit-token" style="background:rgba\([^)]*,([\d.]+)\)([^"]*)"', page
    )
    return [float(alpha) for alpha, rest in spans if "italic" not in rest]


def test_shared_scale_puts_a_weaker_explanation_in_paler_colours(tiny_model):
    """Before/after on their own scales both reach full colour; on a shared one the weaker is
    paler, and each legend says which scale it is on."""
    import dataclasses

    from labkit.inspect.attribution import shared_scale
    from labkit.render.attribution import OPACITY, scale

    strong = explain(tiny_model, "an excellent and moving film", method="saliency")
    weak = dataclasses.replace(strong, scores=strong.scores / 4.6)  # 0.0037 vs 0.017
    top = shared_scale(weak, strong)
    assert top == pytest.approx(scale(strong.scores, strong.special))
    assert shared_scale(weak) == pytest.approx(top / 4.6, rel=1e-6)
    own_weak, own_strong = _alphas(weak._repr_html_()), _alphas(strong._repr_html_())
    assert max(own_weak) == max(own_strong) == pytest.approx(OPACITY)  # the bug: equally strong
    shared_weak = weak.with_scale(top)
    assert shared_weak.scale == top and weak.scale is None  # a copy; scores unchanged
    np.testing.assert_array_equal(shared_weak.scores, weak.scores)
    page = shared_weak._repr_html_()
    assert max(_alphas(page)) == pytest.approx(OPACITY / 4.6, abs=2e-3)
    assert f"shared scale ±{top:.2g}" in page
    assert f"own scale ±{top / 4.6:.2g}" in weak._repr_html_()
    assert max(_alphas(strong.with_scale(top)._repr_html_())) == pytest.approx(OPACITY)
    record = shared_weak.to_captum()  # captum's record is on the same scale
    words = record.word_attributions.abs().numpy()[~np.asarray(weak.special)]
    assert float(words.max()) == pytest.approx(1 / 4.6, rel=1e-4)


def test_shared_scale_ignores_special_tokens_and_all_zero_results(tiny_model):
    import dataclasses

    from labkit.inspect.attribution import shared_scale

    r = explain(tiny_model, "great fun", method="saliency")
    zero = dataclasses.replace(r, scores=np.zeros_like(r.scores))
    assert shared_scale(zero) == 1.0
    assert shared_scale(zero, r) == pytest.approx(
        float(np.abs(r.scores[~np.asarray(r.special)]).max())
    )
    loud = r.scores.copy()
    loud[0] = 1e6  # [CLS]: never drawn on the scale
    assert shared_scale(dataclasses.replace(r, scores=loud)) == shared_scale(r)


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), "0.1", None, True])
def test_with_scale_refuses_what_is_not_a_positive_number(tiny_model, bad):
    r = explain(tiny_model, "great fun", method="saliency")
    with pytest.raises(labkit.InputError, match=r"positive finite number .*got"):
        r.with_scale(bad)


def test_shared_scale_needs_results(tiny_model):
    from labkit.inspect.attribution import shared_scale

    with pytest.raises(labkit.InputError, match="at least one"):
        shared_scale()
    with pytest.raises(labkit.InputError, match="got str"):
        shared_scale(explain(tiny_model, "great fun", method="saliency"), "x")
    assert shared_scale(explain(tiny_model, "great fun", method="saliency")) > 0
    r = explain(tiny_model, "great fun", method="saliency").with_scale(np.float32(0.5))
    assert r.scale == 0.5 and type(r.scale) is float  # numpy numbers are accepted
