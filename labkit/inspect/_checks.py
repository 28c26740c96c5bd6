"""Checks shared by every inspection call: the model, one text, layer/head indices, and the one
reader of a model's dimensions from its config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from labkit._errors import InputError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["Dims", "check_model", "dims", "indices", "model_dims", "one_text"]


def check_model(model: Any, what: str = "attention", *, gradients: bool = False) -> None:
    """Refuse anything but a :class:`labkit.Model` with torch weights (float ones when the
    inspection takes ``gradients``), naming ``what`` needs one."""
    from labkit.model import Model

    if not isinstance(model, Model):
        raise InputError(
            f"{what} needs a labkit.Model, got {type(model).__name__}. Load one with "
            "labkit.load_model(...) or wrap a transformers model with "
            "labkit.Model.wrap(hf_model, tokenizer)."
        )
    model.require_backend(what, gradients=gradients)


def one_text(text: Any, what: str) -> str:
    from labkit._utils.text import clean_text

    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__} ({text!r:.60}).")
    if not text.strip():
        raise InputError(f"{what} is empty: pass the sentence whose attention you want to see.")
    return clean_text(text)


def indices(wanted: Any, total: int, what: str) -> tuple[int, ...]:
    """Sorted unique model indices from None (all), an int or a sequence; negatives count back."""
    if wanted is None:
        return tuple(range(total))
    items = [wanted] if isinstance(wanted, int) else wanted
    try:
        values = [int(x) for x in items]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be an int or a list of ints, got {wanted!r}.") from None
    bad = [x for x in values if not -total <= x < total]
    if not values or bad:
        raise InputError(
            f"{what}={wanted!r}: the model has {total} {what} "
            f"(0..{total - 1}); got {bad or 'none'}."
        )
    return tuple(sorted({x % total for x in values}))


class Dims(NamedTuple):
    """A model's sizes read from its config; 0 where the config has no such field."""

    layers: int
    heads: int
    hidden: int
    ffn: int

    def or_defaults(self) -> Dims:
        """Unknown sizes filled with BERT-base's (12 layers, 12 heads, 64 per head, 4x FFN):
        what memory estimates assume for a config they cannot read."""
        heads = self.heads or 12
        hidden = self.hidden or 64 * heads
        return Dims(self.layers or 12, heads, hidden, self.ffn or 4 * hidden)


def dims(cfg: Any) -> Dims:
    """(layers, heads, hidden, feed-forward width) from a config; 0 where it has no such field.

    The one reader of a model's dimensions: the names differ by family (BERT's
    ``num_hidden_layers``, GPT-2's ``n_layer``, DistilBERT's ``n_layers``, ...).
    """

    def first(*names: str) -> int:
        for name in names:
            value = getattr(cfg, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0

    return Dims(
        layers=first("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
        heads=first("num_attention_heads", "n_head", "n_heads"),
        hidden=first("hidden_size", "n_embd", "dim", "d_model"),
        ffn=first("intermediate_size", "n_inner", "hidden_dim", "ffn_dim"),
    )


def model_dims(model: Model) -> Dims:
    """The sizes memory estimates use: :func:`dims` of the model's config, gaps filled."""
    return dims(model.base.config).or_defaults()
