"""On a CUDA GPU: placement, mixed precision, memory budgets and CPU agreement.

Marked ``gpu``: collected everywhere, deselected (with a note in the summary) where torch sees
no CUDA device, so ``make test`` on a GPU machine runs them. Tiny config-built models; the
real default model on a GPU is measured by ``benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import labkit
from labkit import StepEnd

pytestmark = pytest.mark.gpu

LABELS = ["negative", "positive"]
TEXTS = ["great fun", "the worst film of the year", "an excellent and moving film", "dull"]


def _load(folder, **kw):
    kw.setdefault("device", "auto")
    return labkit.load_model(folder, labels=LABELS, seed=0, **kw)


def test_auto_picks_the_gpu_with_float32_weights(tiny_dirs):
    model = _load(tiny_dirs["bert"])
    assert model.device.type == "cuda"
    assert model.dtype == torch.float32
    assert all(p.device.type == "cuda" for p in model.hf.parameters())
    cpu = _load(tiny_dirs["bert"], device="cpu")
    np.testing.assert_allclose(model.logits(TEXTS).numpy(), cpu.logits(TEXTS).numpy(), atol=1e-4)
    half = _load(tiny_dirs["bert"], dtype="bfloat16")
    assert half.dtype == torch.bfloat16 and half.device.type == "cuda"
    assert [p.label for p in half.predict(TEXTS)] == [p.label for p in cpu.predict(TEXTS)]


def _finetune(model, data, tmp_path, **kw):
    kw.setdefault("max_steps", 150)
    run = labkit.finetune(
        model, data, batch_size=16, output_dir=tmp_path, progress=False, **kw
    ).wait()
    assert run.status == "finished", run.error
    return run


def test_auto_precision_trains_float32_weights_under_bf16_autocast(demo_data, tmp_path):
    from labkit._utils.device import native_bf16
    from labkit.train.finetune import FinetuneConfig, _training_arguments

    model = labkit.demo.model()  # the real default, on the GPU
    # bf16 autocast where the tensor cores have it (A100, H100), fp16 with a scaler elsewhere
    native = native_bf16(model.device)
    args = _training_arguments(FinetuneConfig(), model, str(tmp_path / "args"))
    assert (args.bf16, args.fp16) == (native, not native)
    before = model.evaluate(demo_data, split="test").accuracy
    run = _finetune(model, demo_data, tmp_path)
    after = model.evaluate(demo_data, split="test").accuracy
    assert after >= before + 0.15 and after >= 0.7, (before, after)
    assert model.dtype == torch.float32  # master weights stay float32
    # the checkpoint reloads on the GPU and computes what the trained model computes
    again = labkit.load_model(run.checkpoints[-1], device="cuda")
    np.testing.assert_allclose(again.logits(TEXTS).numpy(), model.logits(TEXTS).numpy(), atol=1e-5)


def test_fp16_autocast_with_a_loss_scaler_trains(demo_data, tmp_path):
    model = labkit.demo.model()
    before = model.evaluate(demo_data, split="test").accuracy
    _finetune(model, demo_data, tmp_path, precision="fp16")
    after = model.evaluate(demo_data, split="test").accuracy
    assert after >= before + 0.15 and after >= 0.7, (before, after)


def test_lora_over_a_bf16_base_keeps_float32_adapters_and_learns(demo_data, tmp_path):
    model = labkit.demo.model(dtype="bfloat16")
    before = model.evaluate(demo_data, split="test").accuracy
    _finetune(model, demo_data, tmp_path, lora=True, lr=2e-3)
    adapters = [p for n, p in model.hf.named_parameters() if "lora_" in n]
    assert adapters and all(p.dtype == torch.float32 and p.is_cuda for p in adapters)
    assert model.evaluate(demo_data, split="test").accuracy >= before + 0.1


def test_stop_on_the_gpu_keeps_a_checkpoint(tiny_dirs, toy_data, tmp_path):
    class StopAt:
        def on_event(self, event, control):
            if isinstance(event, StepEnd) and event.step == 5:
                control.stop()

    model = _load(tiny_dirs["bert"])
    run = labkit.finetune(
        model,
        toy_data,
        max_steps=200,
        batch_size=8,
        output_dir=tmp_path,
        progress=False,
        callbacks=[StopAt()],
    ).wait()
    assert run.status == "stopped" and run.checkpoints
    assert not model.is_training


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input", "occlusion"])
def test_explain_on_the_gpu_matches_the_cpu(tiny_dirs, method):
    gpu, cpu = _load(tiny_dirs["bert"]), _load(tiny_dirs["bert"], device="cpu")
    for text in TEXTS:
        a, b = labkit.explain(gpu, text, method=method), labkit.explain(cpu, text, method=method)
        assert a.tokens == b.tokens and a.target == b.target
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-5)
        if method == "integrated_gradients":
            assert a.delta <= a.options["tolerance"]
    batched = labkit.explain_dataset(gpu, TEXTS, subset="all", method=method, faithfulness=False)
    for r, text in zip(batched.results, TEXTS):
        np.testing.assert_allclose(
            r.scores, labkit.explain(gpu, text, method=method).scores, rtol=1e-3, atol=1e-5
        )


def test_a_bf16_model_is_explained_in_float32_on_the_gpu(tiny_dirs):
    half = _load(tiny_dirs["bert"], dtype="bfloat16")
    same = _load(tiny_dirs["bert"], dtype="bfloat16")
    same.hf.float()
    for text in TEXTS:
        a, b = (
            labkit.explain(half, text, tolerance=1e-3),
            labkit.explain(same, text, tolerance=1e-3),
        )
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-6)
    assert half.dtype == torch.bfloat16


def test_integrated_gradients_at_512_tokens_keeps_within_its_memory_budget():
    from labkit.inspect.attribution.batching import bytes_per_row

    model = labkit.demo.model()
    text = " ".join(["a gorgeous, witty, seductive movie that never quite lands"] * 80)
    budget = 8 * bytes_per_row(model, 512)  # 8 of the 50 path points per pass
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    with pytest.warns(labkit.LabkitWarning, match="truncated"):
        small = labkit.explain(model, text, memory_budget=budget, tolerance=None)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    assert len(small.tokens) == 512
    assert peak <= budget, (peak, budget)
    with pytest.warns(labkit.LabkitWarning, match="truncated"):
        big = labkit.explain(model, text, tolerance=None)  # auto budget: all steps in one pass
    np.testing.assert_allclose(small.scores, big.scores, rtol=1e-4, atol=1e-6)


def test_an_impossible_budget_is_refused_before_any_pass(tiny_dirs):
    model = _load(tiny_dirs["bert"])
    with pytest.raises(labkit.InputError, match="memory_budget="):
        labkit.explain(model, "great fun", memory_budget=1024)
