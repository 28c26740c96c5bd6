"""Masked language models: fill-mask, masked-LM (continued) pretraining and its evaluation."""

__all__: list[str] = []
