"""What changed between two attention maps of the same text (base vs finetuned, base vs LoRA)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["DEFAULT_LABELS", "AttentionDiff", "attention_diff", "js_divergence"]

DEFAULT_LABELS = ("before", "after")  # what the two sides are called unless labels= says


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) along the last axis."""
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.where(a > 0, a / np.where(m > 0, m, 1.0), 1.0)
        return (a * np.log2(ratio)).sum(-1)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class AttentionDiff:
    """How each head's attention moved between ``a`` and ``b`` (same text, same tokens).

    ``jsd`` float32 [layers, heads]: mean over query tokens of the Jensen-Shannon divergence
    (bits, 0..1) between the two rows. ``row_jsd`` float32 [layers, heads, T]: the same per
    query token. ``labels`` names the two sides (``("before", "after")`` by default);
    ``captions`` adds each side's model name when the names differ. ``ranked()`` lists heads
    from most to least changed.
    """

    a: AttentionResult = field(repr=False)
    b: AttentionResult = field(repr=False)
    jsd: np.ndarray
    row_jsd: np.ndarray = field(repr=False)
    labels: tuple[str, str] = DEFAULT_LABELS

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.a.tokens

    @property
    def layers(self) -> tuple[int, ...]:
        return self.a.layers

    @property
    def heads(self) -> tuple[int, ...]:
        return self.a.heads

    @property
    def captions(self) -> tuple[str, str]:
        """What each side is called in a view: its label, then its model name in parentheses
        when the two models' names differ (``"before"`` / ``"after"`` for one model trained)."""
        first, second = self.labels
        name_a, name_b = self.a.model_name, self.b.model_name
        if name_a == name_b:
            return first, second
        return f"{first} ({name_a})", f"{second} ({name_b})"

    def ranked(self, k: int | None = None) -> list[tuple[int, int, float]]:
        """(layer, head, jsd) of the ``k`` most changed heads (all by default), largest first."""
        order = np.argsort(-self.jsd, axis=None, kind="stable")
        if k is not None:
            order = order[: max(0, int(k))]
        n_heads = len(self.heads)
        return [
            (self.layers[i // n_heads], self.heads[i % n_heads], float(self.jsd.flat[i]))
            for i in order
        ]

    def __repr__(self) -> str:
        top = self.ranked(1)[0]
        first, second = self.captions
        return (
            f"AttentionDiff({first!r} -> {second!r}, "
            f"{len(self.tokens)} tokens, mean JSD {float(self.jsd.mean()):.4f}, "
            f"most changed layer {top[0]} head {top[1]} ({top[2]:.4f}))"
        )

    def _repr_html_(self) -> str:
        from labkit.render.attention import diff_html

        return diff_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def _labels(labels: Any) -> tuple[str, str]:
    ok = (
        isinstance(labels, tuple | list)
        and len(labels) == 2
        and all(isinstance(x, str) and x.strip() for x in labels)
    )
    if not ok:
        raise InputError(
            f"labels must be two non-empty strings naming a and b, e.g. "
            f"labels=('base', 'LoRA'); got {labels!r}."
        )
    return str(labels[0]).strip(), str(labels[1]).strip()


def attention_diff(
    a: AttentionResult,
    b: AttentionResult,
    *,
    labels: tuple[str, str] = DEFAULT_LABELS,
) -> AttentionDiff:
    """Per-head change between two results for the same text (e.g. before / after finetuning).

    Both must have the same tokens and the same kept layers and heads: compute them with
    ``labkit.attention(model_a, text)`` and ``labkit.attention(model_b, text)``. ``labels``
    names the two sides in the views (e.g. ``("base", "LoRA")``); the model names are added
    only when they differ.
    """
    from labkit.inspect.attention.result import AttentionResult

    names = _labels(labels)
    for name, r in (("a", a), ("b", b)):
        if not isinstance(r, AttentionResult):
            raise InputError(
                f"{name} must be an AttentionResult (from labkit.attention), got "
                f"{type(r).__name__}."
            )
    if a.tokens != b.tokens:
        raise InputError(
            f"a and b tokenize differently (a: {len(a.tokens)} tokens {list(a.tokens[:8])}..., "
            f"b: {len(b.tokens)} tokens {list(b.tokens[:8])}...): compare the same text under "
            "two models that share a tokenizer."
        )
    if a.layers != b.layers or a.heads != b.heads:
        raise InputError(
            f"a keeps layers {list(a.layers)} and heads {list(a.heads)} but b keeps layers "
            f"{list(b.layers)} and heads {list(b.heads)}: compute both with the same layers= "
            "and heads=."
        )
    rows = js_divergence(a.weights, b.weights)  # [L, H, T]
    return AttentionDiff(
        a=a,
        b=b,
        jsd=rows.mean(-1).astype(np.float32),
        row_jsd=rows.astype(np.float32),
        labels=names,
    )
