"""Masked language models: fill-mask, masked-LM (continued) pretraining and its evaluation, and
domain-adaptive pretraining measured.

``labkit.load_model(name, task="masked-lm")`` (or ``labkit.demo.mlm()`` offline) gives the
model; ``Model.fill_mask(text)`` its guesses for each mask; ``labkit.finetune(model, texts)``
continues its pretraining; ``Model.evaluate(texts)`` scores it on fixed masks
(:class:`MLMMetrics`); :func:`domain_adaptation` compares classifiers finetuned from before and
after that continued pretraining.
"""

from labkit.mlm.dapt import DomainAdaptation, adapt_encoder, domain_adaptation
from labkit.mlm.evaluate import MLMMetrics, evaluate_mlm
from labkit.mlm.fill import Candidate, Candidates, MaskFills, fill_mask

__all__ = [
    "Candidate",
    "Candidates",
    "DomainAdaptation",
    "MLMMetrics",
    "MaskFills",
    "adapt_encoder",
    "domain_adaptation",
    "evaluate_mlm",
    "fill_mask",
]
