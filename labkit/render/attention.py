"""Static HTML of attention results (every head's map, per-head summaries, diffs, importance):
pooled heatmaps as PNG data URIs, every token and name escaped. What a saved notebook,
nbviewer and GitHub show where the live view is gone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.render import heatmap as _heatmap

if TYPE_CHECKING:
    from labkit.inspect.attention.diff import AttentionDiff
    from labkit.inspect.attention.heads import HeadSummary
    from labkit.inspect.attention.importance import HeadImportance
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["attention_html", "diff_html", "heads_html", "importance_html"]

_THUMB = 32  # static heatmaps are pooled to at most this many rows and columns
_SHOWN_TOKENS = 200  # tokens listed in the static HTML
_SHOWN_HEADS = 10  # most changed heads listed in a diff's static HTML


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


def diff_html(self: AttentionDiff) -> str:
    """Static view of an attention diff: JSD per head, the most changed heads before / after."""
    e = html.escape
    peak = float(self.jsd.max())
    grid = _heatmap.png(_heatmap.to_levels(self.jsd, top=peak if peak > 0 else 1.0), _heatmap.REDS)
    rows = []
    for layer, head, score in self.ranked(_SHOWN_HEADS):
        li, hi = self.layers.index(layer), self.heads.index(head)
        imgs = "".join(
            f"<img alt='{e(name)}' title='{e(name)}' style='height:48px;"
            f"image-rendering:pixelated;margin-right:4px' src='"
            f"{_heatmap.data_uri(_heatmap.png(_heatmap.to_levels(_heatmap.pool(r.weights[li, hi], _THUMB))))}'>"
            for name, r in (
                ("before: " + self.a.model_name, self.a),
                ("after: " + self.b.model_name, self.b),
            )
        )
        rows.append(
            f"<tr><td>layer {layer}</td><td>head {head}</td>"
            f"<td>{score:.4f}</td><td>{imgs}</td></tr>"
        )
    width = max(120, 16 * len(self.heads))
    return (
        f"<div class='labkit-attention-diff' style='font-family:sans-serif;font-size:13px'>"
        f"<div><b>Attention change</b> · {e(self.a.model_name)} → {e(self.b.model_name)} · "
        f"{len(self.tokens)} tokens · mean Jensen-Shannon divergence "
        f"{float(self.jsd.mean()):.4f} bits (max {peak:.4f})</div>"
        f"<div style='display:flex;gap:16px;align-items:flex-start'>"
        f"<figure style='margin:4px'><img alt='JSD per head: rows layers, columns heads' "
        f"src='{_heatmap.data_uri(grid)}' style='width:{width}px;image-rendering:pixelated'>"
        f"<figcaption>rows: layers {e(str(list(self.layers)))}; columns: heads</figcaption>"
        f"</figure><table><thead><tr><th>layer</th><th>head</th><th>JSD</th>"
        f"<th>before / after</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f"</div>"
    )


def heads_html(self: HeadSummary) -> str:
    """Static table of the per-head summary."""
    cols = (
        "layer",
        "head",
        "role",
        "norm_entropy",
        "distance",
        "special",
        "previous",
        "next",
        "self",
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in self.rows():
        cells = "".join(
            f"<td>{html.escape(f'{row[c]:.3f}' if isinstance(row[c], float) else str(row[c]))}</td>"
            for c in cols
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f"<table class='labkit-heads'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def importance_html(self: HeadImportance) -> str:
    """Static view of head importance: the layers x heads grid and the top heads."""
    e = html.escape
    grid = _heatmap.png(_heatmap.to_levels(self.scores))
    top = "".join(
        f"<tr><td>{layer}</td><td>{head}</td><td>{score:.4f}</td></tr>"
        for layer, head, score in self.ranked(10)
    )
    width = max(120, 16 * self.scores.shape[1])
    return (
        f"<div class='labkit-importance' style='font-family:sans-serif;font-size:13px'>"
        f"<div><b>Head importance</b> (Michel et al. 2019) · {e(self.model_name)} · "
        f"{self.examples} examples{' · normalised per layer' if self.normalized else ''}"
        f"</div><div style='display:flex;gap:16px;align-items:flex-start'>"
        f"<img alt='importance: rows layers, columns heads' src='{_heatmap.data_uri(grid)}' "
        f"style='width:{width}px;image-rendering:pixelated'>"
        f"<table><thead><tr><th>layer</th><th>head</th><th>score</th></tr></thead>"
        f"<tbody>{top}</tbody></table></div></div>"
    )
