"""Attribution: which tokens drove one prediction, over one text or a whole dataset.

``api`` is the entry (``explain``, ``explain_dataset``); ``options`` names the methods and
validates their options; ``result`` holds what they return (a leaf) and ``shared_scale``, one
colour scale for several results (before / after); ``engine`` runs one set of
encoded texts through a method; ``dataset`` picks and aggregates a dataset's examples;
``batching`` sizes and groups passes; ``methods`` adapts captum's methods; ``embeddings``
finds the token-embedding layer; ``faithfulness`` scores an explanation (AOPC, rank agreement);
``compare`` sets two explanations of one text side by side (``ExplanationComparison``);
``generation`` explains a causal LM's generated tokens (``GenerationAttribution``, a leaf in
``generation_result``).
Static HTML lives in ``labkit.render.attribution``.
"""

from __future__ import annotations

from labkit.inspect.attribution.api import explain, explain_dataset
from labkit.inspect.attribution.compare import ExplanationComparison, compare_explanations
from labkit.inspect.attribution.generation_result import GenerationAttribution
from labkit.inspect.attribution.options import METHODS, method_options
from labkit.inspect.attribution.result import AttributionResult, DatasetAttribution, shared_scale

__all__ = [
    "METHODS",
    "AttributionResult",
    "DatasetAttribution",
    "ExplanationComparison",
    "GenerationAttribution",
    "compare_explanations",
    "explain",
    "explain_dataset",
    "method_options",
    "shared_scale",
]
