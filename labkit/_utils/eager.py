"""Switch a model to eager attention for one inspection pass, then back.

Training and prediction use the fast kernel (sdpa), which returns no attention weights;
attention maps and attention rollout need the eager implementation. The switch is undone in
``finally``, so an error inside the block never leaves the model on the slow kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["attn_implementation", "eager_attention"]


def _configs(model: Any) -> list[Any]:
    """Every config object whose attention implementation matters (top model and sub-configs)."""
    seen: list[Any] = []
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None and all(cfg is not s for s in seen):
            seen.append(cfg)
    return seen


def attn_implementation(model: Any) -> str | None:
    """The attention kernel a (possibly peft-wrapped) transformers model uses now."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base.config, "_attn_implementation", None)


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Within the block ``model`` computes attention eagerly (weights available)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = [(cfg, getattr(cfg, "_attn_implementation", None)) for cfg in _configs(base)]
    if all(impl in (None, "eager") for _, impl in before):
        yield
        return
    setter = getattr(base, "set_attn_implementation", None)
    try:
        if setter is not None:
            setter("eager")
        else:  # older transformers: the config attribute is what the layers read
            for cfg, _ in before:
                cfg._attn_implementation = "eager"
        yield
    finally:
        original = before[0][1]
        if setter is not None and original is not None:
            setter(original)
        for cfg, impl in before:
            if impl is not None:
                cfg._attn_implementation = impl
