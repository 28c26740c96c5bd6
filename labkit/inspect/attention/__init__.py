"""Attention: extract every head's weights, summarise and compare heads, rank their importance.

``result`` holds :class:`AttentionResult` (a leaf); ``extract`` runs the pass (``maps`` copies
each layer's maps as it makes them, ``qk`` finishes queries and keys for the neuron view);
``memory`` sizes it before it runs; ``heads`` summarises heads; ``diff`` compares two
results; ``importance`` ranks heads by gradient (Michel et al., 2019). Static HTML lives in
``labkit.render``.
"""

from __future__ import annotations

from labkit.inspect.attention.diff import AttentionDiff, attention_diff
from labkit.inspect.attention.extract import attention
from labkit.inspect.attention.heads import HeadSummary
from labkit.inspect.attention.importance import HeadImportance, head_importance
from labkit.inspect.attention.memory import AttentionMemory, attention_memory
from labkit.inspect.attention.result import AttentionResult

__all__ = [
    "AttentionDiff",
    "AttentionMemory",
    "AttentionResult",
    "HeadImportance",
    "HeadSummary",
    "attention",
    "attention_diff",
    "attention_memory",
    "head_importance",
]
