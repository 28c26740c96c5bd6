"""Static summaries of a loaded model and of a dataset: small key/value tables, escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.data import TextData
    from labkit.model import Model

__all__ = ["data_html", "model_html"]


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    e = html.escape
    return "".join(
        f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows
    )


def model_html(model: Model) -> str:
    """Name, labels, device, dtype, parameters, LoRA and token limit of a model."""
    rows = [
        ("model", model.name),
        ("labels", ", ".join(model.labels)),
        ("device", str(model.device)),
        ("dtype", str(model.dtype).replace("torch.", "")),
        ("parameters", f"{model.num_parameters:,} ({model.trainable_parameters:,} trainable)"),
        ("LoRA", "yes" if model.lora else "no"),
        ("max tokens", str(model.max_length)),
    ]
    return f"<table class='labkit-model'>{_rows(rows)}</table>"


def data_html(data: TextData) -> str:
    """Source, labels and the size of every split of a dataset."""
    e = html.escape
    rows = _rows((k, f"{len(v):,}") for k, v in data.splits.items())
    return (
        f"<div class='labkit-data'><b>{e(data.source or 'TextData')}</b> — labels: "
        f"{e(', '.join(data.labels))}<table>{rows}</table></div>"
    )
