"""Static HTML of fill-mask candidates: per mask, a table of tokens with probability bars and the
filled text. Every text is escaped (a candidate token may be ``<img onerror=...>``)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.mlm.fill import Candidates

__all__ = ["fill_mask_html"]


def fill_mask_html(masks: Sequence[Candidates]) -> str:
    """One table per mask (rank, token, probability with a bar, text with the token filled)."""
    from labkit.render.summary import sig

    e = html.escape
    parts = ["<div class='labkit-fill-mask'>"]
    if masks:
        parts.append(f"<div style='margin-bottom:4px'><code>{e(masks[0].text)}</code></div>")
    for cands in masks:
        if len(masks) > 1:
            parts.append(f"<div style='margin-top:6px'><b>mask {cands.mask + 1}</b></div>")
        rows = []
        for rank, c in enumerate(cands, 1):
            width = max(0.0, min(100.0, 100.0 * c.probability))
            bar = (
                "<span style='display:inline-block;height:0.8em;background:#4e79a7;"
                f"width:{width:.1f}px;margin-right:4px'></span>"
            )
            rows.append(
                f"<tr><td>{rank}</td><td><code>{e(c.token)}</code></td>"
                f"<td style='white-space:nowrap'>{bar}{e(sig(c.probability, 3))}</td>"
                f"<td>{e(c.text)}</td></tr>"
            )
        parts.append(
            "<table><tr><th>#</th><th>token</th><th>probability</th><th>filled text</th></tr>"
            f"{''.join(rows)}</table>"
        )
    parts.append("</div>")
    return "".join(parts)
