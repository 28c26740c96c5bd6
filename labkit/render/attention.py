"""Static HTML of an :class:`~labkit.inspect.attention.result.AttentionResult`: the tokens, the
head roles and one pooled heatmap strip per layer (PNG data URIs). What a saved notebook,
nbviewer and GitHub show where the live view is gone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.render import heatmap as _heatmap

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["attention_html"]

_THUMB = 32  # static heatmaps are pooled to at most this many rows and columns
_SHOWN_TOKENS = 200  # tokens listed in the static HTML


def _span(ids: Sequence[int]) -> str:
    ids = list(ids)
    if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(str(i) for i in ids)


def _layer_image(result: AttentionResult, li: int) -> str:
    tiles = [
        _heatmap.to_levels(_heatmap.pool(result.weights[li, hi], _THUMB))
        for hi in range(len(result.heads))
    ]
    return _heatmap.data_uri(_heatmap.png(_heatmap.tile(tiles, gap=2)))


def attention_html(self: AttentionResult) -> str:
    """The result's static view (escaped: tokens and names are shown as text)."""
    e = html.escape
    t = len(self.tokens)
    shown = "".join(
        f"<span style='border:1px solid #ddd;margin:1px;padding:0 2px;"
        f"{'color:#888;' if self.special[i] else ''}' title='token {i}'>{e(tok)}</span>"
        for i, tok in enumerate(self.tokens[:_SHOWN_TOKENS])
    )
    more = f" ... ({t - _SHOWN_TOKENS} more)" if t > _SHOWN_TOKENS else ""
    roles = ", ".join(f"{e(k)} {v}" for k, v in sorted(self.summary.count().items()))
    size = min(t, _THUMB)
    height = max(48, min(96, 3 * size))
    rows = []
    for li, layer in enumerate(self.layers):
        rows.append(
            f"<tr><th style='text-align:right;padding-right:6px;font-weight:normal'>"
            f"layer {layer}</th><td><img alt='layer {layer}, heads {e(_span(self.heads))}' "
            f"src='{_layer_image(self, li)}' style='height:{height}px;"
            f"image-rendering:pixelated'></td></tr>"
        )
    return (
        f"<div class='labkit-attention' style='font-family:sans-serif;font-size:13px'>"
        f"<div><b>Attention</b> · {e(self.model_name)} · {t} tokens · "
        f"{len(self.layers)} layers x {len(self.heads)} heads "
        f"(heads {e(_span(self.heads))}, left to right; row = query, column = key"
        f"{', pooled' if t > _THUMB else ''})</div>"
        f"<div style='margin:4px 0;line-height:1.6'>{shown}{e(more)}</div>"
        f"<div style='color:#555'>head roles: {roles}</div>"
        f"<table style='border-collapse:collapse'>{''.join(rows)}</table></div>"
    )
