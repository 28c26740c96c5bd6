"""Static summary of causal-LM data: its source, kind, split sizes and a first example, escaped."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from labkit._utils.text import short
from labkit.render.summary import _rows

if TYPE_CHECKING:
    from labkit.lm.data import LMData

__all__ = ["lm_data_html"]

_KIND_NAMES = {"text": "language modelling", "instruction": "instruction tuning"}


def lm_data_html(data: LMData) -> str:
    """Source, kind, the size of every split and the first training row (each column cut to
    200 characters)."""
    e = html.escape
    sizes = _rows((k, f"{len(v):,}") for k, v in data.splits.items())
    first = data.train[0] if len(data.train) else {}
    example = _rows((c, short(first.get(c, ""), 200)) for c in data.columns)
    return (
        f"<div class='labkit-data'><b>{e(data.source or 'LMData')}</b> — "
        f"{e(_KIND_NAMES.get(data.kind, data.kind))} ({e(', '.join(data.columns))})"
        f"<table>{sizes}</table><table class='labkit-example'>{example}</table></div>"
    )
