"""Classification metrics: accuracy, macro precision/recall/F1, confusion matrix, report; and
the names of every task's scalar metrics (a causal LM's loss and perplexity live in
``labkit.lm.evaluate``).

Pure numpy so that evaluation inside training, ``Model.evaluate`` and reports share one
definition (the same numbers as scikit-learn's ``classification_report``, zero_division=0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LOWER_IS_BETTER",
    "METRIC_NAMES",
    "TASK_METRICS",
    "Metrics",
    "compute_metrics",
    "lower_is_better",
]

# The scalar metrics each task's evaluation reports (``Metrics.as_dict`` / ``LMMetrics.as_dict``
# keys): what training logs, early stopping may watch (``FinetuneConfig.metric``) and the panel
# charts.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("loss", "accuracy", "precision", "recall", "f1"),
    "causal-lm": ("loss", "perplexity"),
    # masked-token accuracy: the share of masked positions whose top prediction is the original
    "masked-lm": ("loss", "perplexity", "masked_accuracy"),
    "image-classification": ("loss", "accuracy", "precision", "recall", "f1"),
}
# Every task's metric names, in order of first appearance.
METRIC_NAMES = tuple(dict.fromkeys(n for names in TASK_METRICS.values() for n in names))
# The metrics that improve as they fall; every other one improves as it rises.
LOWER_IS_BETTER = frozenset({"loss", "perplexity"})


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one (loss, perplexity)."""
    return metric in LOWER_IS_BETTER


@dataclass(frozen=True)
class Metrics:
    """Evaluation of a classifier on one labelled split.

    ``confusion[i][j]`` counts examples of true label ``labels[i]`` predicted as ``labels[j]``.
    ``per_label`` maps each label name to its precision, recall, f1 and support.
    ``loss`` is the mean cross-entropy (nats) when it was computed, else ``None``.
    """

    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: list[list[int]]
    labels: tuple[str, ...]
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    loss: float | None = None
    n: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Flat scalar metrics (for logging, early stopping and tables)."""
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }
        if self.loss is not None:
            out["loss"] = self.loss
        return out

    @property
    def report(self) -> str:
        """A text table in the layout of scikit-learn's ``classification_report``."""
        width = max([len(name) for name in self.labels] + [len("weighted avg")])
        head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
        lines = [head, ""]
        for name in self.labels:
            row = self.per_label[name]
            lines.append(
                f"{name:>{width}} {row['precision']:>9.4f} {row['recall']:>9.4f} "
                f"{row['f1']:>9.4f} {int(row['support']):>9d}"
            )
        lines.append("")
        lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {self.accuracy:>9.4f} {self.n:>9d}")
        lines.append(
            f"{'macro avg':>{width}} {self.precision:>9.4f} {self.recall:>9.4f} "
            f"{self.f1:>9.4f} {self.n:>9d}"
        )
        support = np.array([self.per_label[n]["support"] for n in self.labels], dtype=float)
        if support.sum() > 0:
            w = support / support.sum()
            wp, wr, wf = (
                float(sum(w[i] * self.per_label[n][k] for i, n in enumerate(self.labels)))
                for k in ("precision", "recall", "f1")
            )
            lines.append(f"{'weighted avg':>{width}} {wp:>9.4f} {wr:>9.4f} {wf:>9.4f} {self.n:>9d}")
        return "\n".join(lines)

    def __str__(self) -> str:
        loss = "" if self.loss is None else f" loss={self.loss:.4f}"
        return (
            f"accuracy={self.accuracy:.4f} macro-f1={self.f1:.4f} "
            f"precision={self.precision:.4f} recall={self.recall:.4f}{loss} (n={self.n})"
        )


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    *,
    loss: float | None = None,
) -> Metrics:
    """Metrics for integer label ids ``y_true``/``y_pred`` (shape [N]) over ``labels``."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    k = len(labels)
    conf = np.zeros((k, k), dtype=np.int64)
    if t.size:
        np.add.at(conf, (t, p), 1)
    tp = np.diag(conf).astype(float)
    pred_count = conf.sum(axis=0).astype(float)
    true_count = conf.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_count > 0, tp / pred_count, 0.0)
        recall = np.where(true_count > 0, tp / true_count, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_label = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": float(true_count[i]),
        }
        for i, name in enumerate(labels)
    }
    return Metrics(
        accuracy=float(tp.sum() / t.size) if t.size else 0.0,
        precision=float(precision.mean()) if k else 0.0,
        recall=float(recall.mean()) if k else 0.0,
        f1=float(f1.mean()) if k else 0.0,
        confusion=conf.tolist(),
        labels=tuple(str(x) for x in labels),
        per_label=per_label,
        loss=loss,
        n=int(t.size),
    )
