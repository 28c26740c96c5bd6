"""The wrapper that makes a hand-built ``torch.nn.Module`` look like a transformers image
classifier to the trainer and to labkit (imported only when one is wrapped: it needs torch)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ModuleClassifier"]


class ModuleClassifier(torch.nn.Module):
    """``module`` as an image classifier (``labkit_task = "image-classification"``):
    ``forward(pixel_values, labels=None)`` returns an ``ImageClassifierOutput`` (``loss`` the
    mean cross-entropy when labels are given, ``logits`` [B, num_labels]). ``flatten``: the
    module takes [B, C*H*W] rather than [B, C, H, W]. Checkpoints hold the wrapper's state dict
    (keys ``module.<name>``) as safetensors."""

    labkit_task = "image-classification"
    main_input_name = "pixel_values"

    def __init__(self, module: torch.nn.Module, config: Any, *, flatten: bool) -> None:
        super().__init__()
        self.module = module
        self.config = config
        self.flatten = flatten

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **_: Any
    ) -> Any:
        from transformers.modeling_outputs import ImageClassifierOutput

        x = pixel_values.flatten(1) if self.flatten else pixel_values
        logits = self.module(x)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels.to(logits.device))
        return ImageClassifierOutput(loss=loss, logits=logits)
