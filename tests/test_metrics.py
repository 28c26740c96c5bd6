from __future__ import annotations

import numpy as np
import pytest

from labkit.metrics import compute_metrics


def test_metrics_match_scikit_learn():
    import sklearn.metrics as sk  # the dev extra has it: a missing one fails, never skips

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 3, 200))
    y_pred[y_pred == 2] = 1  # label 2 never predicted: precision 0 by convention
    m = compute_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m.accuracy == pytest.approx(sk.accuracy_score(y_true, y_pred))
    p, r, f, _ = sk.precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    assert (m.precision, m.recall, m.f1) == pytest.approx((p, r, f))
    assert m.confusion == sk.confusion_matrix(y_true, y_pred).tolist()
    assert m.per_label["c"]["precision"] == 0.0
    assert m.per_label["a"]["support"] == float((y_true == 0).sum())


def test_report_lists_every_label_and_averages():
    m = compute_metrics([0, 1, 1, 0], [0, 1, 0, 0], ["negative", "positive"], loss=0.5)
    report = m.report
    for word in ("negative", "positive", "accuracy", "macro avg", "weighted avg"):
        assert word in report
    assert m.as_dict()["loss"] == 0.5
    assert m.accuracy == 0.75
