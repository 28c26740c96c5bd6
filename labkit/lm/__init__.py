"""Causal language models in the lab: generation, streaming, causal-LM data, training pieces,
evaluation and the explanation of generated tokens. ``labkit.model`` routes here for a model
whose ``task`` is ``"causal-lm"``.
"""

from labkit.lm.generate import Generation, generate

__all__ = ["Generation", "generate"]
