"""How many bytes one ``labkit.attention`` pass holds, estimated from the config before it runs.

Attention maps grow with the square of the input; a pass over the budget is refused with advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkit.inspect._checks import check_model, indices, model_dims
from labkit.inspect.budget import format_bytes, suggest_budget

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["AttentionMemory", "attention_memory"]

_MARGIN = 1.25  # resident memory above the tensors' bytes (allocator, small temporaries)


@dataclass(frozen=True)
class AttentionMemory:
    """Bytes one :func:`attention` pass holds at its peak, by part (estimated from the config).

    ``maps``: every layer's [heads, T, T] weights (model dtype), which the pass computes one
    layer at a time and lets go once copied (not part of ``total``: see ``labkit.inspect.
    attention.maps``); ``transient``: the layer at work's scores, masked scores, softmax and
    the copy of its kept heads; ``kept``: the float32 copy of the kept layers and heads (the
    result's ``weights``); ``vectors``: queries, keys and activations. ``total`` is
    ``transient + kept + vectors`` plus 25% for the allocator (measured resident memory:
    SmolLM2 at 512 to 2,048 tokens and MiniLM at 512 are below it).
    """

    tokens: int
    layers: int
    heads: int
    kept_layers: int
    kept_heads: int
    maps: int
    transient: int
    kept: int
    vectors: int

    @property
    def total(self) -> int:
        return int(_MARGIN * (self.transient + self.kept + self.vectors))

    def advice(self, budget: int, *, explicit: bool) -> str:
        """Why a pass of this size is refused under ``budget`` bytes, and what to do."""
        f = format_bytes
        whose = (
            "memory_budget" if explicit else "the automatic memory budget (half the free memory)"
        )
        fit = _tokens_within(self, budget)
        shorter = f"shorten the text to about {fit} tokens" if fit >= 2 else "shorten the text"
        kept = ""
        if self.kept_layers == self.layers and self.kept_heads == self.heads:
            kept = (
                ", keep fewer layers/heads (layers=[...], heads=[...]) to shrink the kept copy "
                f"({f(self.kept)} of it)"
            )
        return (
            f"attention maps of {self.tokens} tokens would need about {f(self.total)} "
            f"(the float32 copy of {self.kept_layers} layers x {self.kept_heads} heads x "
            f"{self.tokens}^2 weights kept: {f(self.kept)}, one layer's maps at work: "
            f"{f(self.transient)}), over {whose} of {f(budget)}. "
            f"To fit: {shorter}{kept}, or raise the budget with memory_budget='{_suggest(self)}' "
            "if the machine has that much free memory."
        )


def _suggest(need: AttentionMemory) -> str:
    return suggest_budget(need.total)


def _tokens_within(need: AttentionMemory, budget: int) -> int:
    """The most tokens whose pass fits ``budget`` (the T^2 parts dominate)."""
    t = need.tokens
    quad = (need.transient + need.kept) / max(t * t, 1)
    lin = need.vectors / max(t, 1)
    if quad <= 0:
        return t
    # _MARGIN * (quad * x^2 + lin * x) <= budget
    room = budget / _MARGIN
    x = (-lin + (lin * lin + 4 * quad * room) ** 0.5) / (2 * quad)
    return max(0, int(x))


def attention_memory(
    model: Model,
    tokens: int,
    *,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
) -> AttentionMemory:
    """Estimated peak bytes of :func:`attention` on an input of ``tokens`` tokens (special
    tokens included), keeping ``layers`` / ``heads`` (as :func:`attention` takes them)."""
    check_model(model)
    d = model_dims(model)
    n_layers, n_heads = d.layers, d.heads
    kl = len(indices(layers, n_layers, "layers"))
    kh = len(indices(heads, n_heads, "heads"))
    width = int(getattr(model.dtype, "itemsize", 4))
    t2 = tokens * tokens
    hidden = d.hidden
    kept_vectors = 2 * kl * tokens * (hidden * kh // n_heads) * 4
    return AttentionMemory(
        tokens=tokens,
        layers=n_layers,
        heads=n_heads,
        kept_layers=kl,
        kept_heads=kh,
        maps=n_layers * n_heads * t2 * width,
        # scores, masked scores and softmax of the layer at work, and the float32 copy of its
        # kept heads before it lands in ``kept``
        transient=3 * n_heads * t2 * width + kh * t2 * 4,
        kept=kl * kh * t2 * 4,
        vectors=(2 * n_layers * hidden + 4 * hidden + d.ffn) * tokens * width + kept_vectors,
    )
