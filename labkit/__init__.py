"""labkit: an interactive lab for transformer models.

``import labkit`` is cheap: torch, transformers, datasets and every UI library load the first
time a function that needs them is used. Every public name is still an attribute right away::

    import labkit as lk
    model = lk.load_model("distilbert-base-uncased", labels=["negative", "positive"])
    data = lk.load_data("rotten_tomatoes")
    run = lk.finetune(model, data, lora=True, epochs=1)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labkit._errors import (
    ConfigError,
    DataError,
    GenerationError,
    InputError,
    LabkitError,
    LabkitWarning,
    MissingDependencyError,
    ModelLoadError,
    TrainingError,
)
from labkit._version import __version__

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "load_model": "labkit.model",
    "Model": "labkit.model",
    "Prediction": "labkit.model",
    "load_data": "labkit.data",
    "TextData": "labkit.data",
    "LMData": "labkit.lm.data",
    "Generation": "labkit.lm.generate",
    "GenerationStream": "labkit.lm.stream",
    "Metrics": "labkit.metrics",
    "pick_device": "labkit._utils.device",
    "StepEnd": "labkit.events",
    "EvalEnd": "labkit.events",
    "Samples": "labkit.events",
    "Saved": "labkit.events",
    "TrainEnd": "labkit.events",
    "Callback": "labkit.events",
    "Control": "labkit.events",
    "MetricHistory": "labkit.history",
    "FinetuneConfig": "labkit.train.config",
    "finetune": "labkit.train.finetune",
    "Run": "labkit.train.run",
    "load_run": "labkit.runs.loaded",
    "RecordedRun": "labkit.runs.loaded",
    "compare_runs": "labkit.runs.compare",
    "RunComparison": "labkit.runs.compare",
    "attention": "labkit.inspect.attention.extract",
    "AttentionResult": "labkit.inspect.attention.result",
    "attention_diff": "labkit.inspect.attention.diff",
    "AttentionDiff": "labkit.inspect.attention.diff",
    "head_importance": "labkit.inspect.attention.importance",
    "explain": "labkit.inspect.attribution.api",
    "explain_dataset": "labkit.inspect.attribution.api",
    "AttributionResult": "labkit.inspect.attribution.result",
    "GenerationAttribution": "labkit.inspect.attribution.generation_result",
    "shared_scale": "labkit.inspect.attribution.result",
    "compare_explanations": "labkit.inspect.attribution.compare",
    "DatasetAttribution": "labkit.inspect.attribution.result",
    "prune_heads": "labkit.compress.prune",
    "pruning_curve": "labkit.compress.prune",
    "PruningCurve": "labkit.compress.prune",
    "quantize": "labkit.compress.quantize",
    "distill": "labkit.compress.distill",
    "shrink": "labkit.compress.distill",
    "export_onnx": "labkit.compress.onnx",
    "compare_models": "labkit.compress.compare",
    "ModelComparison": "labkit.compress.compare",
    "from_config": "labkit.scratch.config",
    "ImageData": "labkit.vision.data",
    "App": "labkit.ui.app",
}
# public submodule name -> module (``lk.report`` is the report builder in labkit.render)
_SUBMODULES: dict[str, str] = {
    "demo": "labkit.demo",
    "cli": "labkit.cli",
    "lm": "labkit.lm",
    "mlm": "labkit.mlm",
    "vision": "labkit.vision",
    "scratch": "labkit.scratch",
    "report": "labkit.render.report",
    "ui": "labkit.ui",
}

__all__ = [
    "ConfigError",
    "DataError",
    "GenerationError",
    "InputError",
    "LabkitError",
    "LabkitWarning",
    "MissingDependencyError",
    "ModelLoadError",
    "TrainingError",
    "__version__",
    *_LAZY,
    *_SUBMODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from labkit import cli, demo, lm, mlm, scratch, ui, vision
    from labkit._utils.device import pick_device
    from labkit.compress.compare import ModelComparison, compare_models
    from labkit.compress.distill import distill, shrink
    from labkit.compress.onnx import export_onnx
    from labkit.compress.prune import PruningCurve, prune_heads, pruning_curve
    from labkit.compress.quantize import quantize
    from labkit.data import TextData, load_data
    from labkit.events import Callback, Control, EvalEnd, Samples, Saved, StepEnd, TrainEnd
    from labkit.history import MetricHistory
    from labkit.inspect.attention.diff import AttentionDiff, attention_diff
    from labkit.inspect.attention.extract import attention
    from labkit.inspect.attention.importance import head_importance
    from labkit.inspect.attention.result import AttentionResult
    from labkit.inspect.attribution.api import explain, explain_dataset
    from labkit.inspect.attribution.compare import compare_explanations
    from labkit.inspect.attribution.generation_result import GenerationAttribution
    from labkit.inspect.attribution.result import (
        AttributionResult,
        DatasetAttribution,
        shared_scale,
    )
    from labkit.lm.data import LMData
    from labkit.lm.generate import Generation
    from labkit.lm.stream import GenerationStream
    from labkit.metrics import Metrics
    from labkit.model import Model, Prediction, load_model
    from labkit.render import report
    from labkit.runs.compare import RunComparison, compare_runs
    from labkit.runs.loaded import RecordedRun, load_run
    from labkit.scratch.config import from_config
    from labkit.train.config import FinetuneConfig
    from labkit.train.finetune import finetune
    from labkit.train.run import Run
    from labkit.ui.app import App
    from labkit.vision.data import ImageData
