"""Where a classifier's token embeddings are, and which position its head reads.

Gradient attributions are taken on the output of the token-embedding layer (the lookup table
from token ids to vectors). ``get_input_embeddings()`` finds it for every transformers model,
plain or inside a peft wrapper; a model that does not answer it can name the layer itself with
``embeddings=`` (the module, or its dotted name such as ``"bert.embeddings.word_embeddings"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["SUPPORTED", "embedding_layer", "pooled_position_from_last"]

# Families whose embedding layer and pooled position are tested (tiny models in tests/_tiny.py
# and the offline MiniLM). Others work when they answer get_input_embeddings().
SUPPORTED = ("BERT", "DistilBERT", "RoBERTa", "MiniLM", "GPT-2", "Llama")


def _not_found(model: Model, why: str) -> ConfigError:
    return ConfigError(
        f"could not find the token-embedding layer of {type(model.base).__name__} ({why}). "
        f"labkit finds it for {', '.join(SUPPORTED)} models, plain or LoRA-wrapped. Pass the layer "
        "yourself: explain(model, text, embeddings=model.hf.<path>.word_embeddings) or its dotted "
        "name, e.g. embeddings='bert.embeddings.word_embeddings'."
    )


def embedding_layer(model: Model, embeddings: Any = None) -> torch.nn.Module:
    """The module whose output is the token embeddings [N, T, H] of ``model``.

    ``embeddings`` overrides the search: a ``torch.nn.Module`` or a dotted attribute path looked
    up on the base model first, then on ``model.hf`` (the peft wrapper when there is one).
    """
    import torch

    if embeddings is not None:
        if isinstance(embeddings, torch.nn.Module):
            return embeddings
        if not isinstance(embeddings, str):
            raise ConfigError(
                f"embeddings must be a torch.nn.Module or a dotted name, got "
                f"{type(embeddings).__name__}."
            )
        for root in (model.base, model.hf):
            try:
                found = root.get_submodule(embeddings)
            except AttributeError:
                continue
            return found
        names = [n for n, m in model.base.named_modules() if isinstance(m, torch.nn.Embedding)]
        raise ConfigError(
            f"the model has no submodule {embeddings!r}; its embedding layers are "
            f"{', '.join(names) or 'none'}."
        )
    getter = getattr(model.base, "get_input_embeddings", None)
    if getter is None:
        raise _not_found(model, "it has no get_input_embeddings()")
    try:
        layer = getter()
    except (NotImplementedError, AttributeError) as exc:
        raise _not_found(model, f"get_input_embeddings() failed: {exc}") from None
    if not isinstance(layer, torch.nn.Module):
        raise _not_found(model, "get_input_embeddings() returned no module")
    return layer


def pooled_position_from_last(model: Model) -> bool:
    """True when the classification head reads the last real token (GPT-2, Llama, ...).

    Decoder classifiers in transformers name their head ``score`` and pool the last non-pad
    token; encoder classifiers (BERT, RoBERTa, DistilBERT) read the first token.
    """
    base = model.base
    return hasattr(base, "score") and not hasattr(base, "classifier")
