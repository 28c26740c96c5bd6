"""``quantize``: a copy of a model with smaller weights — int8 on the CPU, bf16/fp16 anywhere.

``method="dynamic-int8"`` replaces every ``nn.Linear`` of a CPU copy by torch.ao's dynamically
quantized Linear: int8 weights (one scale per output channel), activations quantized per batch
at run time, so no calibration data is needed. Embeddings and LayerNorms stay float32. The
copy's ``backend`` is ``"torch-int8"``: it predicts, evaluates and shows attention like the
float model (its hooks and eager attention are the same modules), but its packed weights have
no gradients, so finetune, explain and head importance refuse it (``Model.require_backend``).

Why torch.ao, measured on these machines (2 CPU cores, 2026-12-03, quiet;
``benchmarks/bench_quantize.py``: the finetuned all-MiniLM-L6-v2, ``Model.logits`` on
rotten-tomatoes test texts, medians of interleaved runs; speed-ups over torch fp32, except the
onnxruntime int8 row, which is over onnxruntime's own fp32 graph):

===================================  ===============  ==========  ====================
implementation                       batch 1 (1 thr)  batch 32    test accuracy change
===================================  ===============  ==========  ====================
torch.ao dynamic int8 (this module)  1.86x (2.0x)     1.99x       -0.6 points (13/486)
... ``keep=`` first 2 layers' FFN    1.53x (1.65x)    1.59x       +0.2 points (5/486)
onnxruntime ``quantize_dynamic``     1.82x            1.99x       -2.9 points (30/486)
torchao 0.18 (no torch.compile)      0.07x / 0.60x (random weights, offline-assets.md)
===================================  ===============  ==========  ====================

The accuracy cost comes from quantizing each activation tensor with one run-time scale, and
10% of this model's texts have a logit margin under 0.5. torch.ao's default gives activations
7 bits (``reduce_range``: fbgemm's AVX2 kernels sum pairs of u8 x s8 products in 16 bits,
which can saturate); on an AVX-512 VNNI CPU this module uses all 8
(``_full_range_activations``), which took the change from -1.4 points (25 predictions) to -0.6
(13) at the same speed. Sensitivity on the validation split: the feed-forward blocks of layers
0 and 1 make most of the rest, hence ``keep=``. Per-channel weight scales move the logits a
third less than per-tensor ones (mean change 0.16 vs 0.25) at the same speed, so they are used.
Also measured and not taken: the onednn engine (-0.8 points, 1.1x at batch 1, 1.8x at 32),
SmoothQuant (alpha 0.7: +-0 points but an extra multiply per Linear, 1.2x); 7-bit weights with
8-bit activations (+-0 points, 10 changed) is within 3 predictions of this module's choice.
onnxruntime is 2-6x faster than torch eager at batch 1 (no Python per module) whatever the
precision, but an onnxruntime model only predicts and evaluates (no attention, no App
inspection) and needs an export and the onnx extra: ``labkit.export_onnx`` is
that road. torch 2.13 marks torch.ao.quantization deprecated: its DeprecationWarning and the
``quantize_per_tensor`` UserWarning are silenced where ``quantize`` calls it; inference on the
copy emits neither. At batch 1 with two threads on a busy machine torch waits on its own
threads (fp32 70-300 ms against 40-70 ms on one), which hides most of the int8 gain.

``method="bf16"`` / ``"fp16"``: a half-precision copy on the model's own device (backend stays
``"torch"``): half the bytes, and on a GPU the form that runs fast (dynamic int8 is CPU-only).
"""

from __future__ import annotations

import copy
import functools
import re
import types
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, InputError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["METHODS", "quantize"]

# method -> what the copy holds
METHODS: dict[str, str] = {
    "dynamic-int8": "int8 Linear weights, activations quantized at run time (CPU)",
    "bf16": "bfloat16 weights on the model's device",
    "fp16": "float16 weights on the model's device",
}

_SUFFIX = {"dynamic-int8": "int8", "bf16": "bf16", "fp16": "fp16"}

# torch.ao's own notices, emitted while it converts the Linear layers (not at inference)
_AO_WARNINGS = (
    (re.escape("torch.ao.quantization is deprecated"), DeprecationWarning),
    (r"torch\.quantize_per_tensor, torch\.quantize_per_channel", UserWarning),
)


def quantize(
    model: Model, *, method: str = "dynamic-int8", keep: str | Sequence[str] = ()
) -> Model:
    r"""A new :class:`labkit.Model` with smaller weights; ``model`` is left untouched.

    ``method``:

    - ``"dynamic-int8"`` (default): a CPU copy whose ``nn.Linear`` layers hold int8 weights
      (all-MiniLM-L6-v2: 0.65x the bytes, its float32 embeddings
      being half of the model; about 1.5x faster on the CPU). ``backend="torch-int8"``: ``predict``, ``evaluate``,
      ``labkit.attention`` and the App work on it; training and attributions need the float
      model. Only for a model on the CPU.
    - ``"bf16"`` / ``"fp16"``: a half-precision copy on the model's device (backend
      ``"torch"``); on a GPU this is what halves the weights.

    ``keep`` (dynamic int8 only): regular expressions; every Linear layer whose module name
    one of them matches (``re.search``) stays float32. Int8 noise in the first layers' feed-
    forward blocks costs a finetuned MiniLM the most accuracy:
    ``keep=r"layer\.[01]\.(intermediate|output)\."`` trades some speed for part of it back
    (``benchmarks/bench_quantize.py``).

    A LoRA adapter is merged into the copy's weights first. The copy is named
    ``"<name> · int8"`` (``· bf16``, ``· fp16``), and ``num_parameters`` is the float
    model's count.
    """
    from labkit.model import Model

    if not isinstance(model, Model):
        raise InputError(
            f"quantize needs a labkit.Model, got {type(model).__name__}. Load one with "
            "labkit.load_model(...) or wrap a transformers model with labkit.Model.wrap(...)."
        )
    if not isinstance(method, str) or method not in METHODS:
        listed = "; ".join(f"{name!r}: {what}" for name, what in METHODS.items())
        raise ConfigError(
            f"method={method!r} is not a quantization method; choose one of {listed}."
        )
    patterns = _patterns(keep, method)
    if model.backend == "torch-int8":
        raise ConfigError(
            f"{model.name!r} is already an int8 copy (backend 'torch-int8'); quantize the "
            "float model it was made from instead."
        )
    model.require_backend("quantize", gradients=True)  # an ONNX graph has no torch weights
    if model.is_training:
        raise InputError(
            f"{model.name!r} is being trained right now: its weights change under the copy. "
            "Quantize it after the run ends (run.wait()) or stop the run first."
        )
    if method == "dynamic-int8":
        _check_cpu(model)
    with model.weights_held():  # no run starts and no dtype swap happens mid-copy
        hf = _float_copy(model)
    count = sum(p.numel() for p in hf.parameters())
    if method == "dynamic-int8":
        hf = _int8(hf, model, patterns)
        for p in hf.parameters():  # what is left float (embeddings, norms) is not trained either
            p.requires_grad_(False)
        backend = "torch-int8"
    else:
        import torch

        dtype = torch.bfloat16 if method == "bf16" else torch.float16
        if model.dtype == dtype:
            raise ConfigError(
                f"{model.name!r} already holds {method} weights; quantize(model, "
                "method='dynamic-int8') on the CPU makes them smaller still."
            )
        hf = hf.to(dtype)
        backend = "torch"
    hf.eval()
    hf.labkit_num_parameters = count
    return Model(
        hf=hf,
        tokenizer=copy.deepcopy(model.tokenizer),
        labels=model.labels,
        device=model.device,
        name=f"{model.name} · {_SUFFIX[method]}",
        max_length=model.max_length,
        task=model.task,
        backend=backend,
    )


def _check_cpu(model: Model) -> None:
    if model.device.type == "cpu":
        return
    half = (
        " On this GPU, quantize(model, method='bf16') halves the weights instead."
        if model.device.type == "cuda"
        else ""
    )
    raise ConfigError(
        f"dynamic int8 runs on the CPU only, but {model.name!r} is on {model.device}. Load a "
        "CPU copy with labkit.load_model(folder, device='cpu') (a run's model: run.export(folder) "
        f"first) and quantize that.{half}"
    )


def _float_copy(model: Model) -> Any:
    """A deep copy of the model's transformers module, LoRA adapter merged in."""
    hf: Any = copy.deepcopy(model.hf)
    if model.lora:
        hf = hf.merge_and_unload()
    return hf


def _patterns(keep: str | Sequence[str], method: str) -> list[re.Pattern[str]]:
    items = [keep] if isinstance(keep, str) else keep
    if not isinstance(items, Sequence) or not all(isinstance(x, str) for x in items):
        raise ConfigError(
            f"keep must be a regular expression or a list of them (module names to leave "
            f"float), got {keep!r}."
        )
    if items and method != "dynamic-int8":
        raise ConfigError(
            f"keep= chooses Linear layers to leave out of dynamic int8; method={method!r} "
            "converts every weight. Drop keep=, or use method='dynamic-int8'."
        )
    try:
        return [re.compile(x) for x in items]
    except re.error as exc:
        raise ConfigError(f"keep has an invalid regular expression: {exc}.") from None


def _int8(hf: Any, model: Model, keep: list[re.Pattern[str]]) -> Any:
    """``hf`` (on the CPU) in float32 with its ``nn.Linear`` layers dynamically quantized,
    except those a ``keep`` pattern matches."""
    import torch

    if hf.dtype != torch.float32:  # the quantized kernels take float32 activations
        hf = hf.float()
    _conv1d_to_linear(hf)
    tied = {id(m.weight) for m in hf.modules() if isinstance(m, torch.nn.Embedding)}
    # a head tied to the input embeddings stays float: quantizing it would untie the two and
    # store the matrix twice
    linears = [
        name
        for name, m in hf.named_modules()
        if isinstance(m, torch.nn.Linear) and id(m.weight) not in tied
    ]
    unused = [p.pattern for p in keep if not any(p.search(name) for name in linears)]
    if unused:
        raise ConfigError(
            f"keep={unused!r} matches none of {model.name!r}'s Linear layers (they are named "
            f"like {', '.join(linears[:3])}, ...); check the pattern."
        )
    names = [name for name in linears if not any(p.search(name) for p in keep)]
    if not names:
        raise InputError(
            f"{model.name!r} ({type(hf).__name__}) has no torch.nn.Linear layers for dynamic "
            "int8 to quantize. Use method='bf16' to halve its weights instead."
        )
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = dict.fromkeys(names, per_channel_dynamic_qconfig)
    with warnings.catch_warnings():
        for message, category in _AO_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        hf = quantize_dynamic(hf, spec, dtype=torch.qint8, inplace=True)
    if _full_range_activations():
        for module in hf.modules():
            if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
                module.forward = types.MethodType(_linear_8bit_activations, module)  # type: ignore[method-assign]
    return hf


@functools.cache
def _full_range_activations() -> bool:
    """Whether this CPU multiplies int8 exactly with all 8 bits of the activations.

    torch.ao quantizes activations to 7 bits (``reduce_range=True``) because fbgemm's AVX2
    kernels sum pairs of u8 x s8 products in 16 bits, which can saturate. Its AVX-512 VNNI
    kernels (``avx512_vnni``: Intel server CPUs since Cascade Lake, AMD since Zen 4) sum in 32
    bits, and the eighth bit halves the activations' rounding error: on the finetuned default
    it changed 13 test predictions instead of 25 (``benchmarks/bench_quantize.py``), at the
    same speed. ``avx_vnni`` alone (client CPUs without AVX-512) is not enough: fbgemm runs its
    AVX2 kernels there.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:  # not Linux: keep torch's safe default
        return False
    return "avx512_vnni" in flags


def _linear_8bit_activations(self: Any, x: Any) -> Any:
    """torch.ao's dynamic int8 Linear with activations quantized to the full 8 bits."""
    import torch

    out = torch.ops.quantized.linear_dynamic(
        x, self._packed_params._packed_params, reduce_range=False
    )
    return out.to(x.dtype)


def _conv1d_to_linear(hf: Any) -> None:
    """GPT-2's ``Conv1D`` (a Linear with its weight stored transposed) becomes an
    ``nn.Linear`` computing the same, so dynamic int8 reaches GPT-2's blocks too."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for parent in list(hf.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                nx, nf = child.weight.shape
                linear = torch.nn.Linear(nx, nf, dtype=child.weight.dtype)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.T)
                    linear.bias.copy_(child.bias)
                setattr(parent, child_name, linear)
