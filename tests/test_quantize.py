"""labkit.quantize: a CPU int8 copy (and bf16/fp16 copies) that predict, evaluate, attention
and the App accept, with torch.ao's deprecation notices kept from the user."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import pytest
import torch

import labkit
from labkit.compress.measure import size_on_disk
from tests._tiny import toy_rows

LABELS = ["negative", "positive"]
TEXTS = [r["text"] for r in toy_rows(8)]
# int8 weights and run-time activation scales move a tiny model's logits by up to ~5e-4
# (measured: bert 4.1e-4, distilbert 2.4e-4, roberta 4.6e-4)
INT8_TOLERANCE = 2e-3


def _load(tiny_dirs, arch: str) -> labkit.Model:
    return labkit.load_model(tiny_dirs[arch], labels=LABELS, device="cpu")


def _dynamic_linears(model: labkit.Model) -> list[str]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return [n for n, m in model.hf.named_modules() if isinstance(m, DynamicLinear)]


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_int8_copy_predicts_evaluates_and_shows_attention(tiny_dirs, toy_data, arch):
    model = _load(tiny_dirs, arch)
    before = {k: v.clone() for k, v in model.hf.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.ao's DeprecationWarning must not reach the user
        q = labkit.quantize(model)
        logits, ref = q.logits(TEXTS), model.logits(TEXTS)
        preds = q.predict(TEXTS)
        metrics = q.evaluate(toy_data, split="validation")
        att, att_ref = (
            labkit.attention(q, "a great movie"),
            labkit.attention(model, "a great movie"),
        )
        sizes = size_on_disk(model), size_on_disk(q)

    assert (q.backend, q.device.type, q.name) == ("torch-int8", "cpu", f"{model.name} · int8")
    assert q.labels == model.labels and q.num_parameters == model.num_parameters
    assert q.trainable_parameters == 0
    # every Linear of the encoder and the head is int8; the float model is untouched
    linears = [n for n, m in model.hf.named_modules() if isinstance(m, torch.nn.Linear)]
    assert linears and _dynamic_linears(q) == linears
    assert not _dynamic_linears(model) and model.backend == "torch"
    assert all(torch.equal(before[k], v) for k, v in model.hf.state_dict().items())

    assert logits.shape == ref.shape == (len(TEXTS), 2)
    assert (logits - ref).abs().max().item() < INT8_TOLERANCE
    assert [p.label for p in preds] == [p.label for p in model.predict(TEXTS)]
    assert 0.0 <= metrics.accuracy <= 1.0
    assert att.weights.shape == att_ref.weights.shape
    assert att.tokens == att_ref.tokens
    assert abs(att.weights - att_ref.weights).max() < 1e-2
    assert sizes[1] < sizes[0]


@pytest.mark.slow
def test_int8_weights_are_smaller_on_the_demo_model(demo_model_session):
    q = labkit.quantize(demo_model_session)
    # the Linear layers are 4x smaller; the float32 embeddings (half of MiniLM) stay as they are
    assert size_on_disk(q) < 0.7 * size_on_disk(demo_model_session)  # measured 0.65
    text = ["a gorgeous, witty, seductive movie"]
    diff = (q.logits(text) - demo_model_session.logits(text)).abs().max().item()
    assert diff < 0.05  # measured 0.015 on 64 rotten-tomatoes texts


def test_a_copy_of_the_int8_model_is_independent(tiny_model):
    q = labkit.quantize(tiny_model)
    twin = copy.deepcopy(q)
    assert twin.backend == "torch-int8" and twin.num_parameters == q.num_parameters
    assert torch.equal(twin.logits(TEXTS), q.logits(TEXTS))


def test_lora_is_merged_into_the_copy(tiny_model):
    from labkit.train.lora import attach_lora

    count = tiny_model.num_parameters  # what merging gives back (attaching injects in place)
    hf = attach_lora(tiny_model.hf, True)
    with torch.no_grad():  # a trained adapter: B no longer zero, so merging changes the output
        for name, p in hf.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model = labkit.Model.wrap(hf, tiny_model.tokenizer, name="tiny-lora")
    assert model.lora
    q = labkit.quantize(model)
    assert not q.lora and model.lora
    assert not any("lora" in n for n, _ in q.hf.named_modules())
    assert (q.logits(TEXTS) - model.logits(TEXTS)).abs().max().item() < INT8_TOLERANCE
    assert q.num_parameters == count < model.num_parameters


def test_keep_leaves_the_matched_linears_float(tiny_model):
    q = labkit.quantize(tiny_model, keep=r"layer\.0\.(intermediate|output)\.dense")
    kept = {"bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense"}
    modules = dict(q.hf.named_modules())
    assert all(type(modules[name]) is torch.nn.Linear for name in kept)
    assert "bert.encoder.layer.1.output.dense" in _dynamic_linears(q)
    assert "bert.encoder.layer.0.attention.output.dense" in _dynamic_linears(q)
    assert not any(p.requires_grad for p in q.hf.parameters())
    assert (q.logits(TEXTS) - tiny_model.logits(TEXTS)).abs().max().item() < INT8_TOLERANCE
    with pytest.raises(labkit.ConfigError, match=r"matches none.*bert\.encoder"):
        labkit.quantize(tiny_model, keep=["layer.0.", "h\\.0\\.mlp"])
    with pytest.raises(labkit.ConfigError, match="invalid regular expression"):
        labkit.quantize(tiny_model, keep="layer[")
    with pytest.raises(labkit.ConfigError, match="method='dynamic-int8'"):
        labkit.quantize(tiny_model, method="bf16", keep="layer")
    with pytest.raises(labkit.ConfigError, match="regular expression or a list"):
        labkit.quantize(tiny_model, keep=[3])


@pytest.mark.parametrize("method", ["bf16", "fp16"])
def test_half_precision_copies(tiny_model, method):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = labkit.quantize(tiny_model, method=method)
        logits = h.logits(TEXTS)
    dtype = torch.bfloat16 if method == "bf16" else torch.float16
    assert (h.backend, h.dtype, h.device) == ("torch", dtype, tiny_model.device)
    assert h.name == f"{tiny_model.name} · {method}" and tiny_model.dtype == torch.float32
    assert logits.dtype == torch.float32
    assert (logits - tiny_model.logits(TEXTS)).abs().max().item() < 1e-2
    assert size_on_disk(h) < 0.6 * size_on_disk(tiny_model)
    with pytest.raises(labkit.ConfigError, match=f"already holds {method}"):
        labkit.quantize(h, method=method)


def test_causal_lms_quantize_and_generate(tiny_lm_dirs):
    for arch in ("llama", "gpt2"):  # GPT-2's Conv1D layers become Linear ones first
        lm = labkit.load_model(tiny_lm_dirs[arch], device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            q = labkit.quantize(lm)
            out = q.generate("a great", max_new_tokens=4)[0]
        assert q.task == "causal-lm" and q.backend == "torch-int8"
        blocks = [n for n in _dynamic_linears(q) if ".0." in n]
        assert len(blocks) >= 4, blocks  # attention and MLP of the first block
        assert out.text == lm.generate("a great", max_new_tokens=4)[0].text


def test_bad_methods_and_models(tiny_model):
    with pytest.raises(labkit.ConfigError, match=r"'dynamic-int8'.*'bf16'.*'fp16'"):
        labkit.quantize(tiny_model, method="int4")
    q = labkit.quantize(tiny_model)
    with pytest.raises(labkit.ConfigError, match="already an int8 copy"):
        labkit.quantize(q)
    with pytest.raises(labkit.InputError, match=r"needs a labkit\.Model"):
        labkit.quantize(tiny_model.hf)


def test_int8_on_a_gpu_model_is_refused_with_what_works(tiny_model):
    # a Model on cuda (the field is all quantize reads before refusing): no GPU needed
    on_gpu = dataclasses.replace(tiny_model, device=torch.device("cuda"))
    with pytest.raises(labkit.ConfigError) as info:
        labkit.quantize(on_gpu)
    message = str(info.value)
    assert "CPU" in message and "device='cpu'" in message and "method='bf16'" in message


@pytest.mark.gpu
def test_on_a_gpu_bf16_halves_the_weights_and_int8_is_refused(tiny_dirs):
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cuda")
    with pytest.raises(labkit.ConfigError, match=r"method='bf16'"):
        labkit.quantize(model)
    h = labkit.quantize(model, method="bf16")
    assert (h.device.type, h.dtype, h.backend) == ("cuda", torch.bfloat16, "torch")
    assert next(h.hf.parameters()).device.type == "cuda"
    assert (h.logits(TEXTS) - model.logits(TEXTS)).abs().max().item() < 1e-2
    assert size_on_disk(h) < 0.6 * size_on_disk(model)


def test_the_int8_copy_refuses_gradient_work_clearly(tiny_model, toy_data, tmp_path):
    q = labkit.quantize(tiny_model)
    for call in (
        lambda: labkit.explain(q, "a great movie"),
        lambda: labkit.head_importance(q, toy_data),
        lambda: labkit.finetune(q, toy_data, max_steps=1, output_dir=tmp_path, progress=False),
    ):
        with pytest.raises(labkit.InputError, match=r"int8 copy.*float model"):
            call()


def test_the_app_takes_the_int8_copy(tiny_model, toy_data, tmp_path):
    from labkit.ui.app import App

    q = labkit.quantize(tiny_model)
    app = App(model=q, data=toy_data, output_dir=str(tmp_path / "runs"))
    assert "int8" in app.model_info.value
    app.show_attention()
    app.wait(60)
    assert app.status.kind == "ok", app.status.message
    app.show_explanation()
    app.wait(60)
    assert app.status.kind == "error"
    assert "int8 copy" in app.status.message and "Unexpected" not in app.status.message


def test_on_an_avx512_vnni_cpu_activations_keep_all_8_bits(tiny_model, monkeypatch):
    """torch.ao quantizes activations to 7 bits by default; on an AVX-512 VNNI CPU the copy uses
    all 8 (no 16-bit saturation there): its logits are closer to the float model's, and a copy
    of the copy keeps the choice. Elsewhere the copy keeps torch's 7 bits."""
    from labkit.compress import quantize as q_module

    def bound(q: labkit.Model) -> int:
        return sum("forward" in vars(m) for m in q.hf.modules())

    default = labkit.quantize(tiny_model)
    linears = len(_dynamic_linears(default))
    if not q_module._full_range_activations():
        assert bound(default) == 0
        return
    assert bound(default) == linears
    texts = [r["text"] for r in toy_rows(48)]
    ref = tiny_model.logits(texts)
    twin = copy.deepcopy(default)
    assert torch.equal(twin.logits(texts), default.logits(texts))
    monkeypatch.setattr(q_module, "_full_range_activations", lambda: False)
    seven = labkit.quantize(tiny_model)
    assert bound(seven) == 0
    errors = [(q.logits(texts) - ref).abs().mean().item() for q in (default, seven)]
    # measured 1.35e-4 against 1.73e-4: the weights' share of the error is the same in both
    assert 0 < errors[0] < 0.9 * errors[1], errors
