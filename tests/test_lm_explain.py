"""labkit.explain on causal LMs: GenerationAttribution, checked against sums done by hand.

Tiny config-built Llama / GPT-2 models for the mechanics; one short test on the real SmolLM2.
"""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit.inspect.attribution.api import explain
from labkit.inspect.attribution.generation import METHODS, method_options
from labkit.inspect.attribution.generation_result import GenerationAttribution

PROMPT = "the movie was not good"
TARGET = " and the plot was dull"


def _lm(tiny_lm_dirs, arch="llama", **kw):
    return labkit.load_model(tiny_lm_dirs[arch], device="cpu", **kw)


def _teacher_forced(model, prompt_ids, target_ids):
    """log p(target_i | prompt, target_<i), float64 [N], from one forward pass by hand."""
    import torch

    ids = torch.tensor([list(prompt_ids) + list(target_ids)])
    with torch.no_grad():
        logp = model.hf.eval()(input_ids=ids).logits[0].double().log_softmax(-1)
    p = len(prompt_ids)
    return np.array([float(logp[p - 1 + i, t]) for i, t in enumerate(target_ids)])


def _prompt_ids(model, prompt):
    ids = model.tokenizer(prompt)["input_ids"]
    special = set(model.tokenizer.all_special_ids)
    return ids, [i not in special for i in ids]


def _replaced(ids, features, positions, token):
    return [token if f and k in positions else i for k, (i, f) in enumerate(zip(ids, features))]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_integrated_gradients_shapes_and_completeness(tiny_lm_dirs, arch):
    lm = _lm(tiny_lm_dirs, arch)
    r = explain(lm, PROMPT, target=TARGET, n_steps=300)
    assert isinstance(r, GenerationAttribution)
    ids, features = _prompt_ids(lm, PROMPT)
    target_ids = lm.tokenizer(TARGET, add_special_tokens=False)["input_ids"]
    assert r.target_ids == tuple(target_ids)
    assert r.token_ids == tuple(i for i, f in zip(ids, features) if f)
    assert r.scores.dtype == np.float32 and r.scores.shape == (len(target_ids), sum(features))
    assert r.sequence_scores.shape == (sum(features),) and r.target_logprobs.shape == (
        len(target_ids),
    )
    assert r.shape == r.scores.shape and not r.generated and r.target == TARGET
    # completeness, by hand: each row adds up to log p_i(prompt) - log p_i(baseline prompt)
    pad = lm.tokenizer.pad_token_id
    x = _teacher_forced(lm, ids, target_ids)
    b = _teacher_forced(lm, _replaced(ids, features, range(len(ids)), pad), target_ids)
    np.testing.assert_allclose(r.scores.sum(1), x - b, atol=2e-3)
    assert r.delta is not None and float(r.delta.max()) < 2e-3
    # the sequence row is the attribution of the whole target's log-probability
    np.testing.assert_allclose(r.sequence_scores, r.scores.sum(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.target_logprobs, x, atol=1e-4)
    assert r.logprob == pytest.approx(float(x.sum()), abs=1e-3)
    assert r.baseline_logprobs is not None
    np.testing.assert_allclose(r.baseline_logprobs, b, atol=1e-4)


def test_no_target_explains_the_greedy_continuation(tiny_lm):
    gen = tiny_lm.generate(PROMPT, max_new_tokens=5)[0]
    r = explain(tiny_lm, PROMPT, max_new_tokens=5, method="gradient_x_input")
    assert r.generated
    assert r.target_ids == gen.token_ids and r.target_tokens == gen.tokens
    assert r.target == gen.text
    # hf.generate's own per-step log-probabilities: the same numbers from another path
    np.testing.assert_allclose(r.target_logprobs, gen.logprobs, atol=1e-4)
    assert r.logprob == pytest.approx(gen.logprob, abs=1e-3)
    assert r.scores.shape == (5, len(r.tokens))


def test_feature_ablation_is_the_drop_when_one_token_is_replaced(tiny_lm):
    r = explain(tiny_lm, PROMPT, target=TARGET, method="occlusion")
    assert r.method == "feature_ablation" and r.delta is None
    ids, features = _prompt_ids(tiny_lm, PROMPT)
    target_ids = list(r.target_ids)
    pad = tiny_lm.tokenizer.pad_token_id
    x = _teacher_forced(tiny_lm, ids, target_ids)
    for j in (0, 2, sum(features) - 1):
        pos = [k for k, f in enumerate(features) if f][j]
        without = _teacher_forced(tiny_lm, _replaced(ids, features, {pos}, pad), target_ids)
        np.testing.assert_allclose(r.scores[:, j], x - without, atol=1e-4)
        assert r.sequence_scores[j] == pytest.approx(float((x - without).sum()), abs=1e-3)


def test_shapley_sampling_rows_add_up_to_the_whole_change(tiny_lm):
    r = explain(tiny_lm, "a dull film", target=" indeed", method="shapley", n_samples=3)
    ids, features = _prompt_ids(tiny_lm, "a dull film")
    pad = tiny_lm.tokenizer.pad_token_id
    x = _teacher_forced(tiny_lm, ids, list(r.target_ids))
    b = _teacher_forced(tiny_lm, _replaced(ids, features, range(len(ids)), pad), list(r.target_ids))
    # efficiency: every sampled order telescopes from the baseline to the prompt
    np.testing.assert_allclose(r.scores.sum(1), x - b, atol=1e-4)
    again = explain(tiny_lm, "a dull film", target=" indeed", method="shapley", n_samples=3)
    np.testing.assert_array_equal(r.scores, again.scores)  # seeded


def test_gradient_x_input_is_the_embedding_gradient_times_the_embedding(tiny_lm):
    import torch

    r = explain(tiny_lm, PROMPT, target=TARGET, method="gradient_x_input")
    ids, features = _prompt_ids(tiny_lm, PROMPT)
    target_ids = list(r.target_ids)
    hf = tiny_lm.hf.eval()
    emb = hf.get_input_embeddings()(torch.tensor([ids + target_ids])).detach().requires_grad_()
    logp = hf(inputs_embeds=emb).logits[0].float().log_softmax(-1)
    i = 2  # the third target token, given the prompt and the two before it
    (grad,) = torch.autograd.grad(logp[len(ids) - 1 + i, target_ids[i]], emb)
    by_hand = (grad * emb)[0, : len(ids)].sum(-1).detach().numpy()[np.array(features)]
    np.testing.assert_allclose(r.scores[i], by_hand, rtol=1e-4, atol=1e-6)


def test_methods_agree_on_the_strongest_push_of_an_obvious_case(tiny_lm):
    """The last prompt token's embedding made to point at the target's output row: every
    method that compares with the token taken away ranks it first, and with the same sign."""
    import torch

    tok = tiny_lm.tokenizer
    (key,) = tok(" mess", add_special_tokens=False)["input_ids"]
    (target,) = tok(" minute", add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # tied embeddings: row `target` is also the output row of " minute"
        w = tiny_lm.hf.get_input_embeddings().weight
        w[target] *= 20.0
        w[key] = w[target] / w[target].norm()
    settings = {
        "integrated_gradients": {"n_steps": 100},
        "feature_ablation": {},
        "shapley_sampling": {"n_samples": 4},
    }
    for method, opts in settings.items():
        r = explain(tiny_lm, "a film all mess", target=" minute", method=method, **opts)
        assert r.scores.shape == (1, len(r.tokens))
        assert r.pieces[int(np.argmax(r.sequence_scores))] == "mess", method
        assert r.sequence_scores[-1] > 1.0, method  # nats: it makes " minute" far likelier
    grads = explain(tiny_lm, "a film all mess", target=" minute", method="gradient_x_input")
    assert grads.scores.shape == (1, len(grads.tokens)) and np.isfinite(grads.scores).all()


def test_a_chat_prompt_attributes_the_users_tokens_only(tiny_lm_dirs):
    from labkit.lm.generate import prompt_ids

    lm = _lm(tiny_lm_dirs, "chat")
    r = explain(lm, PROMPT, target=" fine", n_steps=200)
    assert r.chat
    templated = prompt_ids(lm, PROMPT, chat=True)
    own = lm.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    assert r.token_ids == tuple(own) and len(templated) > len(own)
    # the pieces shown spell the prompt (the template's own text is not among them)
    assert len(r.pieces) == len(own) and "".join(r.pieces) == PROMPT.replace(" ", "")
    # completeness with the template fixed: only the user's tokens become the baseline
    start = next(k for k in range(len(templated)) if templated[k : k + len(own)] == own)
    pad = lm.tokenizer.pad_token_id
    base = templated[:start] + [pad] * len(own) + templated[start + len(own) :]
    x = _teacher_forced(lm, templated, list(r.target_ids))
    b = _teacher_forced(lm, base, list(r.target_ids))
    np.testing.assert_allclose(r.scores.sum(1), x - b, atol=2e-3)
    raw = explain(lm, PROMPT, target=" fine", chat=False, method="gradient_x_input")
    assert not raw.chat and raw.token_ids == tuple(own)


def test_a_lora_wrapped_lm_explains_like_its_base(tiny_lm_dirs):
    from peft import LoraConfig, get_peft_model

    plain = explain(_lm(tiny_lm_dirs), PROMPT, target=TARGET)
    base = _lm(tiny_lm_dirs)
    cfg = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    wrapped = labkit.Model.wrap(get_peft_model(base.hf, cfg), base.tokenizer)
    assert wrapped.lora and wrapped.task == "causal-lm"
    lora = explain(wrapped, PROMPT, target=TARGET)
    np.testing.assert_allclose(lora.scores, plain.scores, rtol=1e-4, atol=1e-6)


def test_a_bf16_lm_is_explained_in_float32_and_given_back_untouched(tiny_lm_dirs):
    import torch

    half = _lm(tiny_lm_dirs, dtype="bfloat16")
    same = _lm(tiny_lm_dirs, dtype="bfloat16")
    same.hf.float()
    before = {k: v.clone() for k, v in half.hf.state_dict().items()}
    r = explain(half, PROMPT, target=TARGET, method="gradient_x_input")
    ref = explain(same, PROMPT, target=TARGET, method="gradient_x_input")
    np.testing.assert_allclose(r.scores, ref.scores, rtol=1e-5, atol=1e-7)
    after = half.hf.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


def test_the_lm_is_left_as_it_was(tiny_lm):
    tiny_lm.hf.train()
    grads = [p.requires_grad for p in tiny_lm.hf.parameters()]
    for method in METHODS:
        opts = {"n_samples": 2} if "n_samples" in method_options(method) else {}
        explain(tiny_lm, "a film", target=" indeed", method=method, **opts)
    assert tiny_lm.hf.training
    assert [p.requires_grad for p in tiny_lm.hf.parameters()] == grads
    hooks = [h for m in tiny_lm.hf.modules() for h in m._forward_hooks.values()]
    assert not [h for h in hooks if getattr(h, "__module__", "").startswith(("labkit", "captum"))]


def test_methods_and_options_are_listed(tiny_lm):
    assert set(METHODS) >= {"integrated_gradients", "gradient_x_input", "feature_ablation"}
    assert method_options("ig")["n_steps"] == 50
    with pytest.raises(labkit.InputError, match=r"unknown method 'lime'.*integrated_gradients"):
        explain(tiny_lm, PROMPT, method="lime")
    with pytest.raises(labkit.InputError, match=r"Did you mean 'gradient_x_input'"):
        explain(tiny_lm, PROMPT, method="gradient_x_inpt")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": ""}, "prompt is empty"),
        ({"text": "   "}, "prompt is empty"),
        ({"target": ""}, "target is empty"),
        ({"target": " \n "}, "target is empty"),
        ({"target": 1}, "label ids are a classifier"),
        ({"faithfulness": True}, "faithfulness.*AOPC"),
        ({"output": "logit"}, "output"),
        ({"method": "occlusion", "n_steps": 10}, "does not take option.*n_steps"),
        ({"memory_budget": "1KB"}, "would need about .* over memory_budget of 1000 B"),
    ],
)
def test_bad_input_is_refused_with_a_reason(tiny_lm, kwargs, match):
    args = {"text": PROMPT, **kwargs}
    text = args.pop("text")
    with pytest.raises(labkit.InputError, match=match):
        explain(tiny_lm, text, **args)


def test_bad_settings_are_refused(tiny_lm, tiny_lm_dirs):
    with pytest.raises(labkit.ConfigError, match="n_steps must be an int >= 2"):
        explain(tiny_lm, PROMPT, n_steps=1)
    with pytest.raises(labkit.ConfigError, match="max_new_tokens must be between 1"):
        explain(tiny_lm, PROMPT, max_new_tokens=0)
    with pytest.raises(labkit.ConfigError, match="chat=True needs a chat template"):
        explain(tiny_lm, PROMPT, chat=True)


def test_a_prompt_and_target_over_the_context_are_refused_with_the_numbers(tiny_lm):
    long = " ".join(["word"] * 100)  # the tiny model's context is 128 tokens
    n = len(tiny_lm.tokenizer(long)["input_ids"])
    with pytest.raises(
        labkit.InputError, match=rf"prompt \({n:,} tokens\).*over .* context of 128"
    ):
        explain(tiny_lm, long, target=long)
    with pytest.raises(labkit.InputError, match=r"max_new_tokens \(64 tokens\).*context of 128"):
        explain(tiny_lm, long, max_new_tokens=64)


def test_a_classifier_is_still_explained_as_one(tiny_dirs):
    clf = labkit.load_model(tiny_dirs["llama"], labels=["neg", "pos"], device="cpu")
    r = explain(clf, PROMPT, method="gradient_x_input")
    assert type(r).__name__ == "AttributionResult"
    from labkit.inspect.attribution.generation import explain_generation

    with pytest.raises(labkit.InputError, match=r"needs a causal-lm model.*classification"):
        explain_generation(clf, PROMPT)


def test_unconverged_integrated_gradients_warn_when_a_tolerance_is_set(tiny_lm):
    with pytest.warns(labkit.LabkitWarning, match=r"completeness error .* raise n_steps="):
        explain(tiny_lm, PROMPT, target=TARGET, n_steps=2, tolerance=1e-9)


@pytest.mark.slow
def test_smollm2_explains_its_answer_about_france():
    lm = labkit.demo.lm(device="cpu")
    r = explain(lm, "What is the capital of France?", max_new_tokens=8, method="occlusion")
    assert r.chat and r.generated
    assert "Paris" in r.target
    assert r.pieces == ("What", "is", "the", "capital", "of", "France", "?")
    # teacher forcing: each answer token is explained given the answer so far, so the prompt
    # word an answer token repeats drives it most
    for word in ("capital", "France"):
        row = r.target_pieces.index(f" {word}")
        assert r.top(1, row=row)[0][0] == word, (word, r.top(3, row=row))
    assert r.target_logprobs.max() <= 0 and r.logprob == pytest.approx(
        float(np.sum(r.target_logprobs, dtype=np.float64))
    )
