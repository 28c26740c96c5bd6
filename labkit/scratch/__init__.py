"""Models built from scratch: from a transformers config (:func:`from_config`) or by hand (a plain
``torch.nn.Module`` that ``labkit.finetune`` trains with the same Run and panel)."""

from labkit.scratch.config import from_config

__all__ = ["from_config"]
