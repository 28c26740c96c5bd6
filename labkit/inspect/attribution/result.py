"""What ``explain`` and ``explain_dataset`` return: :class:`AttributionResult` (one text) and
:class:`DatasetAttribution` (many). A leaf: the engine, the dataset loop and the renderers
import it; it imports none of them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit.inspect.attribution.faithfulness import rank_agreement

if TYPE_CHECKING:
    import pandas as pd
    from captum.attr._utils.visualization import VisualizationDataRecord

    from labkit.inspect.attribution.compare import ExplanationComparison
    from labkit.model import Model

__all__ = ["AttributionResult", "DatasetAttribution", "shared_scale"]


def _check_scale(top: Any) -> float:
    """``top`` as a float when it is a positive finite number, else an InputError."""
    if (
        isinstance(top, bool)
        or not isinstance(top, numbers.Real)
        or not math.isfinite(float(top))
        or float(top) <= 0
    ):
        raise InputError(
            "scale must be a positive finite number (the |score| drawn at full colour, e.g. "
            f"shared_scale(before, after)); got {top!r} ({type(top).__name__})."
        )
    return float(top)


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """How much each token pushed the model toward ``target``, by one method.

    ``tokens`` [T] are the pieces of ``text`` as the model saw them (special tokens included,
    flagged in ``special`` [T]; ``spaces`` [T] says whether whitespace precedes a token, for
    display). ``scores`` [T] float32: positive pushes toward ``target``, negative away (saliency
    is unsigned). ``probs`` maps every label to the model's probability. ``delta`` is the
    completeness error |sum(scores) - (f(x) - f(baseline))| for integrated gradients and
    kernel SHAP (the mean over samples for gradient SHAP), else None. ``options`` holds the
    options used (for integrated gradients ``n_steps`` is the number finally used).
    ``comprehensiveness``/``sufficiency`` are AOPC scores when ``faithfulness=True`` was asked.

    ``scale`` is for display only: the |score| drawn at full colour (the legend's ends are
    ±scale). None draws on the result's own scale, its largest |score| over non-special tokens;
    :meth:`with_scale` and :func:`shared_scale` put several results on one scale, so a weaker
    explanation looks weaker.
    """

    text: str
    tokens: tuple[str, ...]
    scores: np.ndarray
    target: str
    probs: dict[str, float]
    method: str
    delta: float | None
    options: dict[str, Any]
    comprehensiveness: float | None = None
    sufficiency: float | None = None
    special: tuple[bool, ...] = ()
    spaces: tuple[bool, ...] = ()
    token_ids: tuple[int, ...] = ()
    model: Model | None = field(default=None, repr=False)
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            object.__setattr__(self, "scale", _check_scale(self.scale))

    def with_scale(self, top: float) -> AttributionResult:
        """A copy drawn on a colour scale whose ends are ±``top`` (scores unchanged), e.g.
        ``r.with_scale(shared_scale(before, after))``."""
        return dataclasses.replace(self, scale=_check_scale(top))

    def compare(
        self, other: AttributionResult, *, k: int = 5, correlation: str = "spearman"
    ) -> ExplanationComparison:
        """This explanation beside ``other`` (another method, or the same text under another
        model): both top-``k`` tokens and their rank agreement, with a labelled view."""
        from labkit.inspect.attribution.compare import compare_explanations

        return compare_explanations(self, other, k=k, correlation=correlation)

    @property
    def predicted(self) -> str:
        """The label with the highest probability."""
        return max(self.probs, key=self.probs.__getitem__)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.probs)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` non-special tokens with the highest scores, as (token, score)."""
        order = [
            i
            for i in np.argsort(-self.scores, kind="stable")
            if not (self.special and self.special[i])
        ]
        return [(self.tokens[i], float(self.scores[i])) for i in order[:k]]

    def agreement(self, other: AttributionResult, *, method: str = "spearman") -> float:
        """Rank correlation of this explanation with ``other`` (same text, another method)."""
        return rank_agreement(self, other, method=method)

    def to_captum(self, *, true_label: str | None = None) -> VisualizationDataRecord:
        """captum's ``VisualizationDataRecord`` for ``captum.attr.visualization.visualize_text``.

        Scores are divided by the display scale (``scale``, else the largest |score|) and clipped
        to [-1, 1]; tokens and labels are HTML-escaped, because
        captum pastes them into its HTML as they are.
        """
        import html

        import torch

        from labkit._utils.optional import require

        require("captum.attr", extra="explain", feature="AttributionResult.to_captum")
        from captum.attr import visualization

        from labkit.render.attribution import scale_of

        top = scale_of(self)
        return visualization.VisualizationDataRecord(
            torch.from_numpy(np.clip(self.scores / top, -1.0, 1.0)),
            float(self.probs[self.predicted]),
            html.escape(self.predicted),
            html.escape(true_label if true_label is not None else ""),
            html.escape(self.target),
            float(self.scores.sum()),
            [html.escape(t) for t in self.tokens],
            float(self.delta or 0.0),
        )

    def __repr__(self) -> str:
        delta = "" if self.delta is None else f", delta={self.delta:.2g}"
        top = ", ".join(repr(t) for t, _ in self.top(3))
        return (
            f"AttributionResult(target={self.target!r} p={self.probs[self.target]:.3f}, "
            f"method={self.method!r}, {len(self.tokens)} tokens{delta}, top=[{top}])"
        )

    def _repr_html_(self) -> str:
        from labkit.render.attribution import render

        return render(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def shared_scale(*results: AttributionResult) -> float:
    """One colour scale for several explanations: the largest |score| over their non-special
    tokens (1.0 when every score is zero). Draw each with ``r.with_scale(top)``.

    ::

        top = shared_scale(before, after)
        before.with_scale(top), after.with_scale(top)
    """
    from labkit.render.attribution import top_score

    if not results:
        raise InputError(
            "shared_scale needs at least one AttributionResult, e.g. shared_scale(before, after)."
        )
    bad = [type(r).__name__ for r in results if not isinstance(r, AttributionResult)]
    if bad:
        raise InputError(
            "shared_scale takes AttributionResults (what labkit.explain returns); got "
            f"{', '.join(bad)}."
        )
    top = max(top_score(r.scores, r.special) for r in results)
    return top if top > 0 else 1.0


@dataclass(frozen=True, eq=False)
class DatasetAttribution:
    """Explanations of many examples.

    ``table`` has one row per explained example: ``row`` (position in the split), ``text``,
    ``label`` (true label, None without labels), ``predicted``, ``target`` (explained label),
    ``prob`` (of the target), ``correct``, ``n_tokens``, ``top`` (its 5 strongest tokens),
    ``delta``, ``n_steps``, ``comprehensiveness``, ``sufficiency``. ``influence`` has one row
    per (label, token): ``count`` (texts explained for that label containing it), ``total`` and
    ``mean`` score, sorted so the tokens that push each label most come first. ``results``
    holds every :class:`AttributionResult` in table order.
    """

    table: pd.DataFrame
    influence: pd.DataFrame
    results: tuple[AttributionResult, ...]
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> AttributionResult:
        return self.results[i]

    def top_tokens(self, label: str, k: int = 15, *, min_count: int = 1) -> pd.DataFrame:
        """The ``k`` tokens with the largest total push toward ``label`` across the set."""
        labels = sorted(set(self.influence["label"])) if len(self.influence) else []
        if label not in labels:
            raise InputError(
                f"no explanation targets label {label!r}; explained labels are "
                f"{', '.join(map(repr, labels)) or 'none'}."
            )
        rows = self.influence[
            (self.influence["label"] == label) & (self.influence["count"] >= min_count)
        ]
        return rows.head(k).reset_index(drop=True)

    def __repr__(self) -> str:
        return (
            f"DatasetAttribution({len(self.results)} examples, method={self.method!r}, "
            f"labels={sorted(set(self.table['target'])) if len(self.table) else []})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.attribution import dataset_html

        return dataset_html(self)
