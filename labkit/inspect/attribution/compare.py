"""Two explanations of one text side by side: each method's strongest tokens and how far the
two methods agree (rank correlation over every token). Displays as a labelled table; static
HTML lives in ``labkit.render.summary``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError
from labkit.inspect.attribution.faithfulness import rank_agreement

if TYPE_CHECKING:
    from labkit.inspect.attribution.result import AttributionResult

__all__ = ["ExplanationComparison", "compare_explanations"]


@dataclass(frozen=True, eq=False)
class ExplanationComparison:
    """Explanations ``a`` and ``b`` of the same text (same tokens), by two methods.

    ``top_a`` / ``top_b`` are each one's ``k`` highest-scoring non-special tokens as
    (token, score); ``agreement`` is the rank correlation of all non-special scores
    (``correlation``: ``"spearman"`` or ``"kendall"``; 1 = same order, 0 = unrelated,
    -1 = reversed, NaN for fewer than two tokens). Scores keep full precision; the display
    rounds them.
    """

    a: AttributionResult = field(repr=False)
    b: AttributionResult = field(repr=False)
    k: int
    correlation: str
    agreement: float

    @property
    def top_a(self) -> list[tuple[str, float]]:
        return self.a.top(self.k)

    @property
    def top_b(self) -> list[tuple[str, float]]:
        return self.b.top(self.k)

    @property
    def shared(self) -> list[str]:
        """Tokens in both top-``k`` lists, each once, in ``a``'s order."""
        theirs = {t for t, _ in self.top_b}
        return list(dict.fromkeys(t for t, _ in self.top_a if t in theirs))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per rank: ``rank``, then ``token_a`` / ``score_a`` and ``token_b`` /
        ``score_b``, each method's token and score there (None past the end of its list)."""
        ta, tb = self.top_a, self.top_b
        out = []
        for i in range(max(len(ta), len(tb))):
            token_a, score_a = ta[i] if i < len(ta) else (None, None)
            token_b, score_b = tb[i] if i < len(tb) else (None, None)
            out.append(
                {
                    "rank": i + 1,
                    "token_a": token_a,
                    "score_a": score_a,
                    "token_b": token_b,
                    "score_b": score_b,
                }
            )
        return out

    def verdict(self) -> str:
        """The agreement in words: "largely agree", "partly agree", ... ."""
        r = self.agreement
        if r != r:  # NaN
            return "cannot be compared (fewer than two tokens)"
        if r >= 0.7:
            return "largely agree"
        if r >= 0.4:
            return "partly agree"
        if r >= 0.1:
            return "agree weakly"
        if r > -0.1:
            return "are unrelated"
        if r > -0.4:
            return "disagree weakly"
        return "disagree: they rank the tokens in roughly opposite orders"

    def __repr__(self) -> str:
        return (
            f"ExplanationComparison({self.a.method!r} vs {self.b.method!r}, "
            f"{self.correlation} {self.agreement:.2f}, top-{self.k} shared "
            f"{len(self.shared)})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.attribution import comparison_html

        return comparison_html(self)


def compare_explanations(
    a: AttributionResult, b: AttributionResult, *, k: int = 5, correlation: str = "spearman"
) -> ExplanationComparison:
    """Two explanations of the same text (e.g. integrated gradients and occlusion) side by
    side: each one's ``k`` strongest tokens and their rank agreement over every token."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive number of tokens, got {k!r}.")
    for name, r in (("a", a), ("b", b)):
        if not (hasattr(r, "scores") and hasattr(r, "top")):
            raise InputError(
                f"{name} must be an AttributionResult (from labkit.explain), got "
                f"{type(r).__name__}."
            )
    agreement = rank_agreement(a, b, method=correlation)  # checks the tokens and the name
    return ExplanationComparison(a=a, b=b, k=k, correlation=correlation, agreement=agreement)
