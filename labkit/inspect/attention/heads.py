"""Per-head summaries of attention maps and a plain-words role for each head.

Every figure is an average over query rows (the rows that attend to at least two positions, so
the first token of a decoder, which can only attend to itself, does not count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labkit._errors import InputError

__all__ = ["ROLES", "ROLE_FIGURES", "HeadSummary", "summarize"]

# role -> what it means, in the order the rules are tried
ROLES: dict[str, str] = {
    "delimiter": "most attention goes to special tokens ([CLS], [SEP], <s>, ...)",
    "previous-token": "most attention goes to the token just before",
    "next-token": "most attention goes to the token just after",
    "self": "most attention stays on the token itself",
    "broad": "attention is spread evenly over the whole input",
    "local": "attention stays within a few tokens of the query",
    "focused": "each token attends mostly to one or two others, by content",
    "mixed": "no single pattern dominates",
    "pruned": "the head was removed (labkit.prune_heads): its map is empty",
}

# role -> (the figure of ``HeadSummary.rows()`` the role rests on, True if larger = clearer);
# "mixed" rests on none: its heads are listed with their normalised entropy, in head order.
ROLE_FIGURES: dict[str, tuple[str, bool] | None] = {
    "delimiter": ("special", True),
    "previous-token": ("previous", True),
    "next-token": ("next", True),
    "self": ("self", True),
    "broad": ("norm_entropy", True),
    "local": ("distance", False),
    "focused": ("norm_entropy", False),
    "mixed": None,
    "pruned": None,
}

_FIGURES = ("entropy", "norm_entropy", "distance", "special", "previous", "next", "self")
_STRONG = 0.5  # share of attention that makes a pattern the head's role
_BROAD = 0.8  # normalised entropy above which a head counts as broad
_LOCAL = 2.0  # mean distance (tokens) below which a head counts as local
_FOCUSED = 0.35  # normalised entropy below which a head counts as focused


@dataclass(frozen=True, eq=False)
class HeadSummary:
    """Summaries of each kept head; every array is float32 [layers, heads].

    ``entropy`` is the mean row entropy in nats and ``norm_entropy`` the same divided by the
    largest possible value (log of the positions a row may attend to), 0 = one token, 1 =
    uniform. ``distance`` is the mean attention distance in tokens (sum of weight x |i - j|).
    ``special``, ``previous``, ``next`` and ``self_`` are the mean shares of attention that go to
    special tokens, to the previous token, to the next token and to the token itself. ``roles``
    holds one plain-words role per head (see ``ROLES``). ``layers`` / ``heads`` are the model's
    indices of the kept layers and heads.
    """

    # what each role means and the figure it is decided by, for views (``labkit.render``)
    role_meanings: ClassVar[dict[str, str]] = ROLES
    role_figures: ClassVar[dict[str, tuple[str, bool] | None]] = ROLE_FIGURES

    layers: tuple[int, ...]
    heads: tuple[int, ...]
    entropy: np.ndarray
    norm_entropy: np.ndarray
    distance: np.ndarray
    special: np.ndarray
    previous: np.ndarray
    next: np.ndarray
    self_: np.ndarray
    roles: tuple[tuple[str, ...], ...]

    def role(self, layer: int, head: int) -> str:
        """The role of the model's ``layer`` / ``head`` (model indices, not positions)."""
        return self.roles[self.layers.index(layer)][self.heads.index(head)]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per head: layer, head, role and each figure (for a DataFrame or a table)."""
        out = []
        for li, layer in enumerate(self.layers):
            for hi, head in enumerate(self.heads):
                out.append(
                    {
                        "layer": layer,
                        "head": head,
                        "role": self.roles[li][hi],
                        "entropy": float(self.entropy[li, hi]),
                        "norm_entropy": float(self.norm_entropy[li, hi]),
                        "distance": float(self.distance[li, hi]),
                        "special": float(self.special[li, hi]),
                        "previous": float(self.previous[li, hi]),
                        "next": float(self.next[li, hi]),
                        "self": float(self.self_[li, hi]),
                    }
                )
        return out

    def figure(self, name: str) -> np.ndarray:
        """The float32 [layers, heads] array of a ``rows()`` figure (``"self"`` is ``self_``)."""
        if name not in _FIGURES:
            raise InputError(f"no figure {name!r}; the figures are {', '.join(_FIGURES)}.")
        return getattr(self, "self_" if name == "self" else name)

    def by_role(self, role: str, k: int | None = None) -> list[tuple[int, int, float]]:
        """(layer, head, figure) of the ``k`` heads (all by default) whose role is ``role``,
        clearest first. The figure is the one the role rests on (``ROLE_FIGURES``): the share
        of attention to special / previous / next tokens or to itself, the normalised entropy
        (broad: highest first; focused: lowest first) or the mean distance (local: shortest
        first). Mixed heads come in layer and head order, with their normalised entropy."""
        if role not in ROLES:
            raise InputError(f"no role {role!r}; the roles are {', '.join(ROLES)}.")
        spec = ROLE_FIGURES[role]
        values = self.figure(spec[0] if spec else "norm_entropy")
        found = [
            (float(values[li, hi]), li, hi)
            for li, row in enumerate(self.roles)
            for hi, r in enumerate(row)
            if r == role
        ]
        if spec is not None:  # stable: ties keep head order
            found.sort(key=lambda x: -x[0] if spec[1] else x[0])
        if k is not None:
            found = found[: max(0, int(k))]
        return [(self.layers[li], self.heads[hi], v) for v, li, hi in found]

    def count(self) -> dict[str, int]:
        """How many heads have each role."""
        counts: dict[str, int] = {}
        for row in self.roles:
            for role in row:
                counts[role] = counts.get(role, 0) + 1
        return counts

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.count().items()))
        return f"HeadSummary({len(self.layers)} layers x {len(self.heads)} heads: {counts})"

    def _repr_html_(self) -> str:
        from labkit.render.attention import heads_html

        return heads_html(self)


def _role(special: float, prev: float, nxt: float, own: float, norm_h: float, dist: float) -> str:
    if special >= _STRONG:
        return "delimiter"
    if prev >= _STRONG:
        return "previous-token"
    if nxt >= _STRONG:
        return "next-token"
    if own >= _STRONG:
        return "self"
    if norm_h >= _BROAD:
        return "broad"
    if dist <= _LOCAL:
        return "local"
    if norm_h <= _FOCUSED:
        return "focused"
    return "mixed"


def summarize(
    weights: np.ndarray,
    special: np.ndarray,
    *,
    layers: tuple[int, ...],
    heads: tuple[int, ...],
    causal: bool,
) -> HeadSummary:
    """Summaries of ``weights`` float32 [L, H, T, T] (rows sum to 1) with ``special`` bool [T].

    ``causal`` says that row i may only attend to positions 0..i (decoders).
    """
    w = weights.astype(np.float32, copy=False)
    t = w.shape[-1]
    idx = np.arange(t)
    # A decoder row i may attend to i + 1 positions; an encoder row to all T.
    reach = (idx + 1).astype(np.float64) if causal else np.full(t, float(t))
    rows = reach >= 2  # rows with a choice to make
    if not rows.any():  # a single token: every figure is trivially zero
        rows = np.ones(t, dtype=bool)
    # einsum reductions: no [L, H, T, T] temporaries besides the log (long inputs are large)
    logs = np.log(np.maximum(w, np.float32(1e-30)))
    row_h = -np.einsum("lhij,lhij->lhi", w, logs, dtype=np.float64)  # [L, H, T] nats
    del logs
    norm = np.log(np.maximum(reach, 2.0))
    dist = np.abs(idx[:, None] - idx[None, :]).astype(np.float32)
    row_dist = np.einsum("lhij,ij->lhi", w, dist, dtype=np.float64)
    row_special = (
        w[..., special].sum(-1, dtype=np.float64) if special.any() else np.zeros(w.shape[:-1])
    )
    diag = np.diagonal(w, axis1=-2, axis2=-1)  # [L, H, T]
    prev = np.zeros(w.shape[:-1])
    nxt = np.zeros(w.shape[:-1])
    if t > 1:
        prev[..., 1:] = np.diagonal(w, offset=-1, axis1=-2, axis2=-1)
        nxt[..., :-1] = np.diagonal(w, offset=1, axis1=-2, axis2=-1)

    def mean(a: np.ndarray) -> np.ndarray:
        return a[..., rows].mean(-1).astype(np.float32)

    entropy, norm_h = mean(row_h), mean(row_h / norm)
    distance, spec = mean(row_dist), mean(row_special)
    previous, following, own = mean(prev), mean(nxt), mean(diag)
    # a head labkit.prune_heads removed has an all-zero map (its rows sum to 0, not 1)
    alive = mean(w.sum(-1, dtype=np.float64)) > 0.5
    roles = tuple(
        tuple(
            _role(
                spec[li, hi],
                previous[li, hi],
                following[li, hi],
                own[li, hi],
                norm_h[li, hi],
                distance[li, hi],
            )
            if alive[li, hi]
            else "pruned"
            for hi in range(w.shape[1])
        )
        for li in range(w.shape[0])
    )
    return HeadSummary(
        layers=layers,
        heads=heads,
        entropy=entropy,
        norm_entropy=norm_h,
        distance=distance,
        special=spec,
        previous=previous,
        next=following,
        self_=own,
        roles=roles,
    )
