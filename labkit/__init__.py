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

from ._errors import (
    ConfigError,
    DataError,
    InputError,
    LabkitError,
    LabkitWarning,
    ModelLoadError,
    TrainingError,
)
from ._version import __version__

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "load_model": "labkit.model",
    "Model": "labkit.model",
    "Prediction": "labkit.model",
    "load_data": "labkit.data",
    "TextData": "labkit.data",
    "Metrics": "labkit.metrics",
    "pick_device": "labkit._device",
    "StepEnd": "labkit.events",
    "EvalEnd": "labkit.events",
    "Saved": "labkit.events",
    "TrainEnd": "labkit.events",
    "Callback": "labkit.events",
    "Control": "labkit.events",
    "MetricHistory": "labkit.history",
    "FinetuneConfig": "labkit._finetune",
    "finetune": "labkit._finetune",
    "Run": "labkit.run",
    "attention": "labkit._attention",
    "AttentionResult": "labkit._attention",
    "attention_diff": "labkit._attention",
    "AttentionDiff": "labkit._attention",
    "head_importance": "labkit._attention",
    "explain": "labkit._explain",
    "explain_dataset": "labkit._explain",
    "AttributionResult": "labkit._explain",
    "DatasetAttribution": "labkit._explain",
    "App": "labkit.ui",
}
_SUBMODULES = ("demo", "cli", "report", "ui")

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "LabkitError",
    "LabkitWarning",
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
        value = importlib.import_module(f"labkit.{name}")
    else:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from . import cli, demo, report, ui
    from ._attention import (
        AttentionDiff,
        AttentionResult,
        attention,
        attention_diff,
        head_importance,
    )
    from ._device import pick_device
    from ._explain import AttributionResult, DatasetAttribution, explain, explain_dataset
    from ._finetune import FinetuneConfig, finetune
    from .data import TextData, load_data
    from .events import Callback, Control, EvalEnd, Saved, StepEnd, TrainEnd
    from .history import MetricHistory
    from .metrics import Metrics
    from .model import Model, Prediction, load_model
    from .run import Run
    from .ui import App
