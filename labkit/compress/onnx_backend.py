"""The onnxruntime backend: a folder :func:`labkit.export_onnx` wrote, opened as the parts of a
:class:`labkit.Model` (``load_model`` builds the Model; this module does not import it, so
``labkit.model`` can use it without a circle).

The module it makes is an ``nn.Module`` whose ``forward(input_ids, attention_mask,
token_type_ids=None)`` runs the ``InferenceSession`` and returns ``.logits`` as a float32 torch
tensor, so ``Model.logits`` / ``predict`` / ``evaluate`` run unchanged.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, LabkitWarning, ModelLoadError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

__all__ = ["GRAPH", "open_onnx"]

GRAPH = "model.onnx"


def open_onnx(
    root: Path,
    *,
    labels: Sequence[str] | None,
    device: str | torch.device,
    meta: dict[str, Any],
) -> dict[str, Any]:
    from labkit._utils.device import pick_device
    from labkit._utils.optional import require
    from labkit._utils.quiet import hf_quiet
    from labkit._utils.text import as_texts, model_max_length

    graph = root / str(meta.get("graph") or GRAPH)
    if not graph.is_file():
        raise ModelLoadError(
            f"{root} is marked as an ONNX export (labkit.json) but has no {graph.name}; "
            "export it again with labkit.export_onnx."
        )
    require("onnxruntime", extra="onnx", feature="running an ONNX export")
    require("onnx", extra="onnx", feature="reading an ONNX export")
    from transformers import AutoConfig, AutoTokenizer

    try:
        with hf_quiet():
            config = AutoConfig.from_pretrained(str(root))
            tokenizer = AutoTokenizer.from_pretrained(str(root))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"could not read the config or tokenizer of the ONNX export in {root}: "
            f"{str(exc).splitlines()[0][:300]}"
        ) from exc
    chosen = pick_device(device)
    hf: Any = _classifier()(graph, config, chosen, explicit=str(device) != "auto")
    outputs = hf.num_outputs
    if labels is None:
        recorded = meta.get("labels")
        if isinstance(recorded, list) and recorded:
            names = [str(x) for x in recorded]
        else:
            id2label = dict(config.id2label or {})
            names = [str(id2label.get(i, f"LABEL_{i}")) for i in range(outputs)]
    else:
        names = as_texts(labels, what="labels")
    if len(names) != outputs:
        raise ConfigError(
            f"labels has {len(names)} names but the ONNX graph in {root} has {outputs} outputs; "
            "an exported graph's head cannot change. Give one name per output, or export a model "
            "with that head."
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"labels has duplicates: {names}.")
    counted = meta.get("num_parameters")
    if isinstance(counted, int) and not isinstance(counted, bool):
        hf.labkit_num_parameters = counted
    recorded_length = meta.get("max_length")
    return {
        "hf": hf,  # an nn.Module with .config and a transformers-like forward
        "tokenizer": tokenizer,
        "labels": tuple(names),
        "device": hf.device,
        "name": str(root),
        "max_length": recorded_length
        if isinstance(recorded_length, int)
        else model_max_length(tokenizer, config),
        "task": "classification",
        "backend": "onnxruntime",
    }


@functools.cache
def _classifier() -> type:
    """The onnxruntime-backed module class (made on first use: torch is imported lazily)."""
    import torch

    class _OnnxClassifier(torch.nn.Module):
        """An onnxruntime session behind a transformers-like forward.

        ``forward(input_ids, attention_mask, token_type_ids=None, **_)`` takes int64 tensors
        ``[batch, sequence]`` and returns an output whose ``.logits`` is a float32 CPU tensor
        ``[batch, num_labels]``, so ``Model.logits`` runs it as it runs a torch classifier.
        ``config`` is the exported model's transformers config, ``labkit_num_parameters`` the
        float weights in the graph (``load_onnx`` puts the exported model's own count, from
        ``labkit.json``, in its place), ``labkit_files`` the graph's files on disk.
        """

        def __init__(
            self, graph: Path, config: Any, device: torch.device, *, explicit: bool
        ) -> None:
            super().__init__()
            self.config = config
            self.graph = graph
            self.session, self.device = _session(graph, device, explicit=explicit)
            self.input_names = [i.name for i in self.session.get_inputs()]
            dims = self.session.get_outputs()[0].shape
            self.num_outputs = int(dims[-1]) if isinstance(dims[-1], int) else config.num_labels
            self.labkit_num_parameters, self.labkit_files = _graph_facts(graph)
            self.eval()

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
            **_: Any,
        ) -> Any:
            from transformers.modeling_outputs import SequenceClassifierOutput

            ids = input_ids.detach().cpu().numpy().astype("int64", copy=False)
            given = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
            feeds = {"input_ids": ids}
            for name in self.input_names[1:]:
                value = given.get(name)
                if value is None:  # what the model assumes without them: attend all, type 0
                    fill = 1 if name == "attention_mask" else 0
                    feeds[name] = ids * 0 + fill
                else:
                    feeds[name] = value.detach().cpu().numpy().astype("int64", copy=False)
            (logits,) = self.session.run(["logits"], feeds)
            return SequenceClassifierOutput(logits=torch.from_numpy(logits))

        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            # a session is immutable and safe to share across threads: a copy is a new view on it
            twin = self.__class__.__new__(self.__class__)
            torch.nn.Module.__init__(twin)
            for key in (
                "graph",
                "session",
                "device",
                "input_names",
                "num_outputs",
                "labkit_num_parameters",
                "labkit_files",
            ):
                setattr(twin, key, getattr(self, key))
            twin.config = copy.deepcopy(self.config, memo)
            twin.train(self.training)
            return twin

        def extra_repr(self) -> str:
            return f"{self.graph}, inputs={self.input_names}"

    _OnnxClassifier.__name__ = _OnnxClassifier.__qualname__ = "OnnxClassifier"
    return _OnnxClassifier


def _session(graph: Path, device: torch.device, *, explicit: bool) -> tuple[Any, torch.device]:
    """An InferenceSession on ``device`` when onnxruntime can run there, else on the CPU (with a
    warning when that device was asked for by name)."""
    import torch

    from labkit._utils.optional import require

    ort: Any = require("onnxruntime", extra="onnx", feature="running an ONNX export")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    # labkit runs torch and onnxruntime in one process (compare_models times them in turn):
    # threads spinning after a run would take the cores torch needs next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: its notices about graph rewrites are not the user's
    providers: list[Any] = ["CPUExecutionProvider"]
    where = torch.device("cpu")
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            index = device.index if device.index is not None else torch.cuda.current_device()
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
            where = torch.device("cuda", index)
        elif explicit:
            warnings.warn(
                f"device={str(device)!r}: this onnxruntime has no CUDAExecutionProvider, so the "
                "ONNX model runs on the CPU. Install onnxruntime-gpu in place of onnxruntime to "
                "run it on the GPU.",
                LabkitWarning,
                stacklevel=5,
            )
    elif device.type != "cpu" and explicit:
        warnings.warn(
            f"device={str(device)!r}: labkit runs ONNX models on the CPU or a CUDA GPU; this one "
            "runs on the CPU.",
            LabkitWarning,
            stacklevel=5,
        )
    try:
        session = ort.InferenceSession(str(graph), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(
            f"onnxruntime could not load {graph}: {str(exc).splitlines()[0][:300]}. Export the "
            "model again with labkit.export_onnx."
        ) from exc
    return session, where


def _graph_facts(graph: Path) -> tuple[int, tuple[str, ...]]:
    """The number of float weights in the graph's initializers, and the files it is made of (the
    graph and any external data files it names), read without loading the weights."""
    import onnx

    proto = onnx.load(str(graph), load_external_data=False)
    floats = {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
    count = 0
    files = [str(graph)]
    for init in proto.graph.initializer:
        if init.data_type in floats:
            count += math.prod(init.dims)
        if init.data_location == onnx.TensorProto.EXTERNAL:
            where = {e.key: e.value for e in init.external_data}.get("location")
            if where and str(graph.parent / where) not in files:
                files.append(str(graph.parent / where))
    return count, tuple(files)
