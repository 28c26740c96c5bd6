"""The HTML report of ``labkit demo``: metrics before/after, the loss curve, an attention
summary and explanations of a few test texts, in one self-contained file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.render.report import Report

__all__ = ["demo_report"]


def _metric_row(name: str, m: Any) -> dict[str, Any]:
    return {
        "model": name,
        "accuracy": m.accuracy,
        "macro F1": m.f1,
        "precision": m.precision,
        "recall": m.recall,
        "loss": m.loss,
        "examples": m.n,
    }


def demo_report(
    path: str | os.PathLike[str],
    *,
    model: Any,
    data: Any,
    before: Any,
    after: Any,
    run: Any,
    texts: Sequence[str],
    wall_seconds: float | None = None,
) -> Path:
    """Write the demo's report to ``path`` and return it.

    ``before``/``after`` are :class:`labkit.Metrics` on the test split, ``run`` the finished
    :class:`labkit.Run`, ``texts`` a few test texts to inspect with the finetuned ``model``.
    """
    from labkit.inspect.attention.extract import attention
    from labkit.inspect.attribution.api import explain

    subtitle = f"{model.name} finetuned on {data.source}"
    rep = Report("labkit demo report", subtitle=subtitle)
    note = "Test split; 'before' is the pretrained encoder with a new, untrained head."
    if wall_seconds is not None:
        note += f" Whole job: {wall_seconds:.0f} s."
    rep.add_table(
        "Accuracy before and after finetuning",
        [_metric_row("before", before), _metric_row("after", after)],
        note=note,
    )
    rep.add_html("Training", run._repr_html_())
    rep.add_text("Classification report after finetuning", after.report)
    if texts:
        res = attention(model, texts[0])
        rep.add_html(f"Attention for: {texts[0][:80]}", res._repr_html_())
        for text in texts:
            rep.add_html(f"Explanation: {text[:80]}", explain(model, text)._repr_html_())
    return rep.write(path)
