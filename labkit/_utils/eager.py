"""Switch a model to eager attention for one inspection pass, then back.

Training and prediction use the fast kernel (sdpa), which returns no attention weights;
attention maps and attention rollout need the eager implementation. The switch is undone in
``finally``, so an error inside the block never leaves the model on the slow kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["attn_implementation", "eager_attention", "inspection_pass"]


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


@contextmanager
def inspection_pass(model: Any) -> Iterator[None]:
    """One inspection pass of a labkit ``Model``: eval mode, eager attention and no autograd, put
    back as they were; a failure of the model (not a ``LabkitError``) becomes an ``InputError``
    saying what attention maps need."""
    import torch

    from labkit._errors import InputError, LabkitError

    hf = model.hf
    was_training = hf.training
    hf.eval()
    try:
        with eager_attention(hf), torch.inference_mode():
            yield
    except LabkitError:
        raise
    except (TypeError, ValueError, NotImplementedError, AttributeError, RuntimeError) as exc:
        raise InputError(
            f"{model.name} could not run an attention pass with eager attention "
            f"({type(exc).__name__}: {exc}). Attention maps need a model whose layers can "
            "return their weights."
        ) from None
    finally:
        hf.train(was_training)
