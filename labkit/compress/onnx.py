"""``export_onnx``: a classifier as an ONNX graph folder, checked against torch before it counts;
``load_onnx``: such a folder as a :class:`labkit.Model` that predicts through onnxruntime.

The folder holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask`` and, when the model
takes them, ``token_type_ids``, each ``int64 [batch, sequence]`` with both axes dynamic; output
``logits``, ``float32 [batch, num_labels]``), the tokenizer, the transformers config and
``labkit.json`` (format, labels, source, opset, the parity figures). Anything that runs ONNX
reads it without labkit; ``labkit.load_model(folder)`` gives back a ``Model`` with
``backend="onnxruntime"`` that ``predict`` and ``evaluate`` accept.

The graph comes from ``torch.onnx.export(..., dynamo=False)`` (the TorchScript tracer, opset
17). Measured on all-MiniLM-L6-v2 on 2 CPU cores: 6.5 s and one 91 MB file, against 26.6 s and
a graph plus an external ``.onnx.data`` file for ``dynamo=True`` (both match torch to ~5e-8),
and the dynamo exporter prints its progress to stdout. Tracing fixes Python control flow to the
example it runs, which is why the parity check (onnxruntime against torch on held-out texts, one
at a time and in padded batches) is part of the export and not an afterthought.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, InputError, LabkitWarning, ModelLoadError, TrainingError
from labkit._utils.checkpoint import LABELS_FILE

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = [
    "GRAPH",
    "PARITY_TEXTS",
    "ExportedPath",
    "OnnxExport",
    "export_onnx",
    "load_onnx",
    "max_prob_diff",
    "parity_tolerance",
]

from labkit.compress.onnx_backend import GRAPH

# a half-precision model's probabilities are already rounded at ~1e-2: an exported copy of one
# (safetensors keeps the dtype) is checked against this bound instead of fp32's tolerance
HALF_TOLERANCE = 2e-2
_OPSETS = range(14, 21)  # scaled_dot_product_attention needs 14; the tracer's newest is 20
_EXAMPLE = ("a short one", "a longer example sentence, with padding after the short one")

# Held-out texts every export is checked on when none are given: short and long, punctuation,
# markup, digits, emoji and other scripts, so batches pad unevenly and rare tokens show up.
PARITY_TEXTS: tuple[str, ...] = (
    "a gorgeous, witty, seductive movie.",
    "ok",
    "!!!",
    "Worst. Movie. Ever.",
    "not bad at all",
    "I didn't expect to cry at the end, yet here we are.",
    "The plot? Thin. The acting? Worse... but the score (oh, the score) is wonderful.",
    "naïve, café-au-lait charm; déjà vu all over again",
    "Отличный фильм, но слишком длинный.",
    "映画はとても良かったです",
    "emoji 😀🎬 and a 10/10 rating",
    '<b>bold</b> & "quoted" text',
    "12345 67890",
    "A quiet, patient film about grief, memory and the small rituals that hold a family "
    "together after a loss.",
    "It starts slowly, and for the first forty minutes you may wonder where it is going, but "
    "the second half gathers every thread it laid down, the performances deepen, the music "
    "finally earns its swells, and by the closing scene the whole thing feels inevitable, "
    "generous and, against the odds, genuinely moving; one of the year's best surprises.",
    "terrible",
)


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote: the folder, and what its parity check found.

    ``max_prob_diff`` is the largest absolute difference of a softmax probability between
    onnxruntime and torch over ``texts_checked`` texts (each run alone and in padded batches);
    ``size_bytes`` the graph's files on disk; ``seconds`` the whole export, check included.
    ``str()`` and ``os.fspath()`` give the path, so ``labkit.load_model(export)`` works.
    """

    path: str
    max_prob_diff: float
    texts_checked: int
    size_bytes: int
    seconds: float

    def __str__(self) -> str:
        return self.path

    def __fspath__(self) -> str:
        return self.path


class ExportedPath(str):
    """The folder ``Run.export`` wrote: a ``str`` (the path, as it always returned, so
    ``transformers.pipeline(model=path)`` takes it), with what the export's parity check found.

    ``file_format`` is ``"safetensors"`` or ``"onnx"`` (``format`` would hide ``str.format``);
    ``max_prob_diff``, ``texts_checked``, ``size_bytes`` (the weight files) and ``seconds``
    mean what they mean in :class:`OnnxExport`.
    """

    file_format: str
    max_prob_diff: float
    texts_checked: int
    size_bytes: int
    seconds: float

    def __new__(
        cls,
        path: str,
        *,
        file_format: str,
        max_prob_diff: float,
        texts_checked: int,
        size_bytes: int,
        seconds: float,
    ) -> ExportedPath:
        self = super().__new__(cls, path)
        self.file_format = file_format
        self.max_prob_diff = max_prob_diff
        self.texts_checked = texts_checked
        self.size_bytes = size_bytes
        self.seconds = seconds
        return self

    @classmethod
    def of(cls, export: OnnxExport) -> ExportedPath:
        return cls(
            export.path,
            file_format="onnx",
            max_prob_diff=export.max_prob_diff,
            texts_checked=export.texts_checked,
            size_bytes=export.size_bytes,
            seconds=export.seconds,
        )

    @property
    def path(self) -> str:
        return str(self)

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:
        facts = ("file_format", "max_prob_diff", "texts_checked", "size_bytes", "seconds")
        return (str(self),), {k: getattr(self, k) for k in facts}


# -- parity: one definition, for the ONNX export and Run.export's safetensors one ---------------
def parity_tolerance(tolerance: float, dtype: torch.dtype) -> float:
    """The bound an export of weights in ``dtype`` is held to: ``tolerance`` for float32,
    at least :data:`HALF_TOLERANCE` for half precision."""
    import torch

    if dtype in (torch.bfloat16, torch.float16):
        return max(tolerance, HALF_TOLERANCE)
    return tolerance


def check_tolerance(tolerance: object) -> float:
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ConfigError(
            f"tolerance must be a probability difference >= 0 (e.g. 1e-4), got {tolerance!r}."
        )
    return float(tolerance)


def parity_texts(texts: Sequence[str] | str | None) -> list[str]:
    """``texts`` as a list (a single string counts as one), or the built-in :data:`PARITY_TEXTS`."""
    from labkit._utils.text import as_texts

    return list(PARITY_TEXTS) if texts is None else as_texts(texts)


def max_prob_diff(
    reference: Model,
    candidate: Model,
    texts: Sequence[str],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    builtin: bool = False,
) -> float:
    """Largest ``|p_reference - p_candidate|`` over the texts, labels and ``batch_sizes``.

    A classifier compares its label probabilities ``[N, labels]``; a causal LM the next-token
    distribution after each text ``[N, vocab]``. Each batch size runs both models on the same
    batches (``batch_size=1``: no padding; larger: uneven padding). ``builtin=True`` (the texts
    are labkit's own) keeps the truncation warning of a long one quiet: the caller cannot act on
    it.
    """
    worst = 0.0
    with contextlib.ExitStack() as stack:
        if builtin:
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings(
                "ignore", message=r".*were truncated to it", category=LabkitWarning
            )
        for size in batch_sizes:
            ours = _probabilities(reference, texts, size)
            theirs = _probabilities(candidate, texts, size)
            worst = max(worst, float((ours - theirs).abs().max()))
    return worst


def _probabilities(model: Model, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    import torch

    if model.task == "classification":
        return model.logits(list(texts), batch_size=batch_size).softmax(-1)
    rows = []
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = model.encode(list(texts[start : start + batch_size]), stacklevel=5)
                logits = model.hf(**enc).logits
                mask = enc["attention_mask"]
                if getattr(model.tokenizer, "padding_side", "right") == "left":
                    last = torch.full((mask.shape[0],), mask.shape[1] - 1, device=mask.device)
                else:
                    last = mask.sum(-1) - 1
                picked = logits[torch.arange(logits.shape[0], device=logits.device), last]
                rows.append(picked.float().softmax(-1).cpu())
    finally:
        model.hf.train(was_training)
    return torch.cat(rows)


# -- export --------------------------------------------------------------------------------------
def export_onnx(
    model: Model,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    texts: Sequence[str] | None = None,
    opset: int = 17,
    tolerance: float = 1e-4,
) -> OnnxExport:
    """Write ``model`` (a classifier) as an ONNX folder at ``path`` and check it.

    The folder gets ``model.onnx`` (dynamic batch and sequence axes), the tokenizer, the
    config and ``labkit.json``; ``labkit.load_model(path)`` reads it back with
    ``backend="onnxruntime"``. A LoRA adapter is merged into a copy of the weights first, and
    half-precision or GPU weights are exported as a float32 CPU copy (the model itself is left
    as it is). Before the folder counts, onnxruntime and torch classify ``texts`` (default:
    :data:`PARITY_TEXTS`), one at a time and in padded batches of 8; a largest probability
    difference above ``tolerance`` raises ``ModelLoadError`` and leaves nothing at ``path``.
    The folder is written to a staging folder and renamed into place, so a failed or
    interrupted export leaves no half-written one. An existing ``path`` is refused unless
    ``overwrite=True`` (then replaced only once the new export has passed).
    """
    import torch

    from labkit._utils import checkpoint as _checkpoint
    from labkit._utils.optional import require
    from labkit.compress.onnx_backend import open_onnx
    from labkit.model import Model

    _check_exportable(model)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in _OPSETS:
        raise ConfigError(
            f"opset must be an int from {_OPSETS.start} to {_OPSETS.stop - 1} (the TorchScript "
            f"exporter's range that has attention), got {opset!r}; 17 is the default."
        )
    tolerance = check_tolerance(tolerance)
    checked = parity_texts(texts)
    require("onnx", extra="onnx", feature="labkit.export_onnx")
    require("onnxruntime", extra="onnx", feature="labkit.export_onnx's parity check")
    target = refuse_existing(path, overwrite)

    start = time.perf_counter()
    staged = target.with_name(f"{_checkpoint.STAGING}-{target.name}")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        staged.mkdir(parents=True)
        with _float_cpu_module(model) as hf:
            names = _graph_inputs(hf, model.tokenizer)
            _trace(hf, model, names, staged / GRAPH, opset)
            config = copy.deepcopy(hf.config)
            config.id2label = dict(enumerate(model.labels))
            config.label2id = {name: i for i, name in enumerate(model.labels)}
            config.save_pretrained(staged)
            model.tokenizer.save_pretrained(staged)
            # the model as the user has it (adapter and all); a half-precision one through its
            # float32 copy, since its own rounding is far above an fp32 tolerance
            half = model.dtype != torch.float32
            reference = _torch_model(model, hf) if half else model
            candidate = Model(**open_onnx(staged, labels=list(model.labels), device="cpu", meta={}))
            candidate.max_length = model.max_length
            diff = max_prob_diff(reference, candidate, checked, builtin=texts is None)
            files: list[str] = list(getattr(candidate.hf, "labkit_files", ()))
            params = sum(p.numel() for p in hf.parameters())  # LoRA merged: the graph's own
            del reference, candidate  # the session holds the graph open until it goes
        if diff > tolerance:
            raise ModelLoadError(
                f"the ONNX graph does not reproduce {model.name!r}: onnxruntime's probabilities "
                f"differ from torch's by up to {diff:.2e} on {len(checked)} texts (tolerance "
                f"{tolerance:.0e}), so nothing was written to {target}. Tracing fixes Python "
                "control flow to the example it ran: a model whose forward branches on its "
                "input cannot be exported this way. Predict with the torch model, or raise "
                "tolerance= if the difference is acceptable."
            )
        against = f"a float32 copy of the {str(model.dtype)[6:]} model" if half else "the model"
        _write_meta(staged, model, names, opset, diff, len(checked), tolerance, params, against)
        size = sum(Path(f).stat().st_size for f in files)
        final = _checkpoint.commit(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return OnnxExport(
        path=final,
        max_prob_diff=diff,
        texts_checked=len(checked),
        size_bytes=size,
        seconds=time.perf_counter() - start,
    )


def refuse_existing(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """``path`` expanded, its parent made; ``ConfigError`` when it exists and not ``overwrite``."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path).strip():
        raise ConfigError(f"path must be a folder to write the export to, got {path!r}.")
    # absolute: "." or "runs/.." name a folder too, and the staging folder sits beside it
    target = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if target.is_file():
        raise ConfigError(f"{target} is a file; give a folder to write the export to.")
    if target.exists() and not overwrite:
        raise ConfigError(
            f"{target} already exists; pass overwrite=True to replace it (it is replaced only "
            "once the new export has passed its check), or give another path."
        )
    if target.exists():
        _replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


# what an export folder holds: overwrite=True replaces only a folder made of these files
_EXPORT_SUFFIXES = frozenset({".json", ".txt", ".safetensors", ".onnx", ".data", ".model", ".bin"})


def _replaceable(target: Path) -> None:
    """Refuse to replace a folder that is not an earlier export (a run's folder with its
    checkpoints, a project folder): overwrite=True must never delete what labkit did not write."""
    entries = list(target.iterdir())
    if not entries:
        return
    exported = any(e.name in (LABELS_FILE, "config.json") for e in entries)
    foreign = [
        e.name for e in entries if e.is_dir() or "".join(e.suffixes[-1:]) not in _EXPORT_SUFFIXES
    ]
    if not exported or foreign:
        shown = ", ".join(sorted(foreign)[:5]) or ", ".join(sorted(e.name for e in entries)[:5])
        raise ConfigError(
            f"{target} is not an exported model folder (it holds {shown}): overwrite=True "
            "replaces only a folder an export wrote. Give a new folder to export to."
        )


def _check_exportable(model: Model) -> None:
    from labkit.model import Model

    if not isinstance(model, Model):
        raise InputError(
            f"export_onnx needs a labkit.Model, got {type(model).__name__}. Load one with "
            "labkit.load_model(...) or wrap a transformers model with "
            "labkit.Model.wrap(hf_model, tokenizer)."
        )
    model.require_task("classification", "export_onnx")
    if model.backend == "torch-int8":
        raise ConfigError(
            f"{model.name!r} is an int8 torch copy (labkit.quantize): its packed weights do not "
            "trace to ONNX. Export the float model it was made from; to run int8 in ONNX, "
            "quantize the exported graph with onnxruntime.quantization.quantize_dynamic."
        )
    if model.backend == "onnxruntime":
        raise ConfigError(
            f"{model.name!r} is already an ONNX export run by onnxruntime; copy its folder, or "
            "export the torch model it was made from."
        )
    if model.is_training:
        raise TrainingError(
            f"{model.name!r} is being trained by a run; wait for it (run.wait()) before "
            "exporting, so the graph holds the weights it ends with."
        )


@contextlib.contextmanager
def _float_cpu_module(model: Model) -> Iterator[Any]:
    """The module to trace: float32 on the CPU, LoRA merged, in eval mode. The model's own when
    it already is that (held against training meanwhile), else a copy."""
    import torch

    from labkit._utils.quiet import hf_quiet

    hf: Any = model.hf
    with model.weights_held():
        if model.lora or model.device.type != "cpu" or model.dtype != torch.float32:
            with hf_quiet():
                hf = copy.deepcopy(hf).to(device="cpu", dtype=torch.float32)
                if model.lora:
                    hf = hf.merge_and_unload()
        was_training = hf.training
        hf.eval()
        try:
            yield hf
        finally:
            hf.train(was_training)


def _torch_model(model: Model, hf: Any) -> Model:
    """``model`` with ``hf`` (its float32 CPU form) in place of its weights, for the check."""
    import torch

    from labkit.model import Model

    return Model(
        hf=hf,
        tokenizer=model.tokenizer,
        labels=model.labels,
        device=torch.device("cpu"),
        name=model.name,
        max_length=model.max_length,
        task=model.task,
    )


def _graph_inputs(hf: Any, tokenizer: Any) -> list[str]:
    """input_ids and attention_mask, and token_type_ids when the tokenizer makes them and the
    model's forward names them (BERT does; DistilBERT and RoBERTa's tokenizer do not)."""
    import inspect

    names = ["input_ids", "attention_mask"]
    params = inspect.signature(hf.forward).parameters
    if "token_type_ids" in params and "token_type_ids" in (tokenizer.model_input_names or ()):
        names.append("token_type_ids")
    return names


def _trace(hf: Any, model: Model, names: list[str], out: Path, opset: int) -> None:
    import torch

    from labkit._utils.quiet import hf_quiet
    from labkit._utils.text import encode

    class Logits(torch.nn.Module):
        """The classifier as positional tensors in, logits out (what the graph's I/O is)."""

        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.hf(**dict(zip(names, tensors, strict=True))).logits

    # two lengths, so the example has padding and the traced mask path keeps it
    enc = encode(model.tokenizer, list(_EXAMPLE), max_length=model.max_length)
    example = tuple(enc[n] if n in enc else torch.zeros_like(enc["input_ids"]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), hf_quiet(), torch.inference_mode(False), torch.no_grad():
        # the tracer's notices are about its own choices, checked below by the parity run:
        # that it is the TorchScript exporter, Python bools it fixed, how it spelled indexing
        warnings.filterwarnings(
            "ignore", message=r"You are using the legacy TorchScript", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            Logits(),
            example,
            str(out),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _write_meta(
    folder: Path,
    model: Model,
    names: list[str],
    opset: int,
    diff: float,
    texts_checked: int,
    tolerance: float,
    num_parameters: int,
    against: str,
) -> None:
    from labkit._version import __version__

    meta = {
        "format": "onnx",
        "labels": list(model.labels),
        "task": "classification",
        "source": model.name,
        "graph": GRAPH,
        "inputs": names,
        "max_length": model.max_length,
        # the exporter merges equal initializers (untrained LayerNorms, zero biases): the
        # graph's own count can be lower than the model's
        "num_parameters": num_parameters,
        "opset": opset,
        "parity": {
            "max_prob_diff": diff,
            "texts_checked": texts_checked,
            "batch_sizes": [1, 8],
            "tolerance": tolerance,
            "against": f"{against} in torch on {model.device}",
        },
        "labkit": __version__,
    }
    Path(folder, LABELS_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False))


# -- the onnxruntime backend ---------------------------------------------------------------------
def load_onnx(
    folder: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    device: str | torch.device = "auto",
) -> Model:
    """The ONNX folder :func:`export_onnx` wrote, as a ``Model`` with ``backend="onnxruntime"``.

    ``labels`` renames the classes (default: those in ``labkit.json``; the count must match the
    graph's outputs). onnxruntime runs on the GPU (CUDAExecutionProvider) when ``device`` picks
    cuda and the installed onnxruntime has it, else on the CPU with torch's thread count.
    ``predict``, ``evaluate`` and ``logits`` work as for a torch model; attention,
    attributions, head importance and training need the torch model and say so.
    """
    from labkit._utils.checkpoint import read_meta
    from labkit.compress.onnx_backend import open_onnx
    from labkit.model import Model

    root = Path(os.path.expanduser(os.fspath(folder)))
    return Model(**open_onnx(root, labels=labels, device=device, meta=read_meta(root)))
