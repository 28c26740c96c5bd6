"""Whether an explanation can be trusted: AOPC faithfulness and agreement between methods.

* **Comprehensiveness** (DeYoung et al. 2020, ERASER): how much the probability of the explained
  label drops when the top-k% tokens are deleted, averaged over k in {1, 5, 10, 20, 50}%. High
  is good: the tokens the method ranks first are the ones the model needs.
* **Sufficiency**: how much it drops when *only* the top-k% tokens are kept. Low is good.
* **Rank agreement**: Spearman's rho or Kendall's tau-b between two methods' token scores.

Special tokens ([CLS], [SEP], <s>, ...) are never deleted and never counted. Only numpy is
needed here besides the model forward passes (no scipy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["BINS", "aopc", "kendall", "rank_agreement", "spearman"]

BINS = (0.01, 0.05, 0.1, 0.2, 0.5)


def _top(scores: np.ndarray, special: Sequence[bool], fraction: float) -> set[int]:
    """Indices of the ``fraction`` highest-scoring non-special tokens (at least one)."""
    order = [i for i in np.argsort(-scores, kind="stable") if not special[i]]
    k = max(1, round(fraction * len(order)))
    return set(order[:k])


def aopc(
    model: Model,
    ids: Sequence[Sequence[int]],
    special: Sequence[Sequence[bool]],
    scores: Sequence[np.ndarray],
    targets: Sequence[int],
    probs: Sequence[float],
    *,
    max_rows: int,
    bins: Sequence[float] = BINS,
) -> tuple[list[float], list[float]]:
    """(comprehensiveness, sufficiency) per example, in probability units.

    ``ids`` are each example's token ids (no padding), ``special`` marks tokens never deleted,
    ``scores`` [T] per example, ``targets`` the explained label ids and ``probs`` the model's
    probability of that label on the full text. All perturbed texts of all examples go through
    the model in passes of ``max_rows``.
    """
    from labkit.inspect.attribution.methods import probabilities

    rows: list[list[int]] = []
    for tok_ids, spec, sc in zip(ids, special, scores):
        for frac in bins:
            top = _top(np.asarray(sc), spec, frac)
            rows.append([t for i, t in enumerate(tok_ids) if i not in top])  # deleted
            rows.append([t for i, t in enumerate(tok_ids) if i in top or spec[i]])  # kept
    out = probabilities(model, rows, max_rows=max_rows).numpy()
    comp, suff = [], []
    per = 2 * len(bins)
    for n, (target, full) in enumerate(zip(targets, probs)):
        block = out[n * per : (n + 1) * per, target]
        comp.append(float(np.mean(full - block[0::2])))
        suff.append(float(np.mean(full - block[1::2])))
    return comp, suff


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties sharing their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    if len(values) < len(x):  # average the ranks of ties
        sums = np.bincount(inverse, weights=ranks)
        counts = np.bincount(inverse)
        ranks = (sums / counts)[inverse]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson correlation of tie-averaged ranks); nan if constant."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties accounted for); nan if either side is constant. O(T^2)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    da, db = da[upper], db[upper]
    concordance = float((da * db).sum())
    denom = float(np.sqrt(np.count_nonzero(da) * np.count_nonzero(db)))
    return concordance / denom if denom > 0 else float("nan")


def rank_agreement(a: Any, b: Any, *, method: str = "spearman") -> float:
    """Rank correlation between two explanations of the same text (non-special tokens only).

    ``a`` and ``b`` are :class:`labkit.AttributionResult` objects (or 1-D arrays of equal
    length). ``method`` is ``"spearman"`` or ``"kendall"``. 1 means the same order, -1 the
    reverse, about 0 unrelated.
    """
    funcs = {"spearman": spearman, "kendall": kendall}
    if method not in funcs:
        raise InputError(f"method must be 'spearman' or 'kendall', got {method!r}.")
    if hasattr(a, "scores") and hasattr(b, "scores"):
        if list(a.tokens) != list(b.tokens):
            raise InputError(
                "the two explanations are of different texts (their tokens differ); "
                "rank agreement compares two methods on the same text."
            )
        keep = ~np.asarray(a.special, dtype=bool)
        x, y = np.asarray(a.scores)[keep], np.asarray(b.scores)[keep]
    else:
        x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise InputError(f"the two score arrays differ in length ({len(x)} vs {len(y)}).")
    if len(x) < 2:
        return float("nan")
    return funcs[method](x, y)
