"""Static summaries, small escaped tables: a loaded model, a dataset; and ``sig``, how every static table writes a number for people (a few
significant digits).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.data import TextData
    from labkit.model import Model

__all__ = ["data_html", "model_html", "sig"]


def sig(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits for a table: ``0.123``, ``12.3``, ``1,235``,
    ``4.20e-06``; never more digits than that for values from 1e-4 up, and no exponent for
    large ones. None and NaN are written as a dash. The data keeps full precision."""
    if x is None or not math.isfinite(x):
        return "–" if x is None or math.isnan(x) else ("∞" if x > 0 else "-∞")
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= digits - 1:
        return f"{x:,.0f}"
    if magnitude < -4:
        return f"{x:.{digits - 1}e}"
    text = f"{x:.{digits - 1 - magnitude}f}"
    # rounding may add a digit (0.9996 -> 1.000): write it again at its new magnitude
    if len(text.lstrip("-").replace(".", "").lstrip("0")) > digits:
        return sig(float(text), digits)
    return text


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    e = html.escape
    return "".join(
        f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows
    )


def model_html(model: Model) -> str:
    """Name, task (a causal LM) or labels (a classifier), device, backend, dtype, parameters,
    LoRA and token limit of a model."""
    if model.task == "classification":
        what = [("labels", ", ".join(model.labels))]
    elif model.task == "image-classification":
        what = [("task", "image classification"), ("labels", ", ".join(model.labels))]
    else:
        what = [("task", f"{model.task}" + (", chat template" if _has_chat(model) else ""))]
    if model.task == "image-classification":
        from labkit.vision.pixels import image_shape

        channels, h, w = image_shape(model)
        patch = getattr(model.base.config, "patch_size", None)
        size = f"{h}x{w}, {channels} channel{'s' if channels != 1 else ''}"
        limit = ("image", size + (f", patches {patch}x{patch}" if patch else ""))
    else:
        limit = ("max tokens", str(model.max_length))
    rows = [
        ("model", model.name),
        *what,
        ("device", str(model.device)),
        ("backend", model.backend),
        (
            "dtype",
            str(model.dtype).replace("torch.", "")
            + (" (Linear weights int8)" if model.backend == "torch-int8" else ""),
        ),
        ("parameters", f"{model.num_parameters:,} ({model.trainable_parameters:,} trainable)"),
        ("LoRA", "yes" if model.lora else "no"),
        limit,
    ]
    return f"<table class='labkit-model'>{_rows(rows)}</table>"


def _has_chat(model: Model) -> bool:
    return bool(getattr(model.tokenizer, "chat_template", None))


def data_html(data: TextData) -> str:
    """Source, labels and the size of every split of a dataset."""
    e = html.escape
    rows = _rows((k, f"{len(v):,}") for k, v in data.splits.items())
    return (
        f"<div class='labkit-data'><b>{e(data.source or 'TextData')}</b> — labels: "
        f"{e(', '.join(data.labels))}<table>{rows}</table></div>"
    )
