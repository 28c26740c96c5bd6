"""Causal language models in the lab: generation and streaming, causal-LM data, training
pieces, evaluation and the instruction task. ``labkit.model`` routes here for a model whose
``task`` is ``"causal-lm"``; explaining generated tokens lives with the other attributions
(``labkit.inspect.attribution.generation``).

Importing this package is cheap: each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "Generation": "labkit.lm.generate",
    "generate": "labkit.lm.generate",
    "prepare": "labkit.lm.generate",
    "GenerationStream": "labkit.lm.stream",
    "stream": "labkit.lm.stream",
    "LMData": "labkit.lm.data",
    "LMMetrics": "labkit.lm.evaluate",
    "evaluate_lm": "labkit.lm.evaluate",
    "GenerativeAccuracy": "labkit.lm.instruct",
    "generative_accuracy": "labkit.lm.instruct",
    "instructions": "labkit.lm.instruct",
    "SampleGenerations": "labkit.lm.samples",
    "default_sample_prompts": "labkit.lm.samples",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'labkit.lm' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from labkit.lm.data import LMData
    from labkit.lm.evaluate import LMMetrics, evaluate_lm
    from labkit.lm.generate import Generation, generate, prepare
    from labkit.lm.instruct import GenerativeAccuracy, generative_accuracy, instructions
    from labkit.lm.samples import SampleGenerations, default_sample_prompts
    from labkit.lm.stream import GenerationStream, stream
