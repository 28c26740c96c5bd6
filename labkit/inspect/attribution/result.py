"""What ``explain`` and ``explain_dataset`` return: :class:`AttributionResult` (one text) and
:class:`DatasetAttribution` (many). A leaf: the engine, the dataset loop and the renderers
import it; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit.inspect.attribution.faithfulness import rank_agreement

if TYPE_CHECKING:
    import pandas as pd
    from captum.attr._utils.visualization import VisualizationDataRecord

    from labkit.model import Model

__all__ = ["AttributionResult", "DatasetAttribution"]


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

        Scores are divided by the largest |score|; tokens and labels are HTML-escaped, because
        captum pastes them into its HTML as they are.
        """
        import html

        import torch

        from labkit._utils.optional import require

        require("captum.attr", extra="explain", feature="AttributionResult.to_captum")
        from captum.attr import visualization

        from labkit.render.attribution import scale

        top = scale(self.scores, self.special)
        return visualization.VisualizationDataRecord(
            torch.from_numpy(self.scores / top),
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
