"""Models built from scratch: from a transformers config (:func:`from_config`) or by hand (a plain
``torch.nn.Module`` that ``labkit.finetune`` trains with the same Run and panel;
:func:`wrap_module` makes a labkit Model of one)."""

from labkit.scratch.config import from_config
from labkit.scratch.module import wrap_module

__all__ = ["from_config", "wrap_module"]
