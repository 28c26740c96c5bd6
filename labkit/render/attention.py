"""Static HTML of attention results (every head's map, per-head summaries, diffs, importance):
pooled heatmaps as PNG data URIs, every token and name escaped, numbers to a few significant
digits. What a saved notebook, nbviewer and GitHub show where the live view is gone. Long
tables open as a short, sorted view with the full table one click away (``<details>``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from labkit.render import heatmap as _heatmap
from labkit.render.summary import sig

if TYPE_CHECKING:
    from labkit.inspect.attention.diff import AttentionDiff
    from labkit.inspect.attention.heads import HeadSummary
    from labkit.inspect.attention.importance import HeadImportance
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["attention_html", "diff_html", "heads_html", "importance_html"]

_THUMB = 32  # static heatmaps are pooled to at most this many rows and columns
_SHOWN_TOKENS = 200  # tokens listed in the static HTML
_SHOWN_HEADS = 10  # most changed heads listed in a diff's static HTML
_TOP_HEADS = 10  # most important heads listed before the full ranking
_CLEAREST = 3  # heads named per role in a head summary
_NUMBERED = 16  # grids with at most this many heads write each score in its cell
_FONT = "font-family:sans-serif;font-size:13px"
# Role map colours: light fills under dark text, so a cell reads on light and dark themes.
_ROLE_STYLE: dict[str, tuple[str, str]] = {  # role -> (letter, fill)
    "delimiter": ("D", "#d9d9d9"),
    "previous-token": ("P", "#a6cee3"),
    "next-token": ("N", "#b2df8a"),
    "self": ("S", "#fdbf6f"),
    "broad": ("B", "#cab2d6"),
    "local": ("L", "#ffff99"),
    "focused": ("F", "#fb9a99"),
    "mixed": ("M", "#f2f2f2"),
    "pruned": ("×", "#ffffff"),
}
_CELL = "text-align:center;padding:1px 3px;border:1px solid #fff"


def _span(ids: Sequence[int]) -> str:
    ids = list(ids)
    if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(str(i) for i in ids)


def _pretty(token: str) -> str:
    """A token as the views show it: byte-level BPE (Ġ) / SentencePiece (▁) markers as spaces."""
    return token.replace("\u0120", " ").replace("\u2581", " ")


def _axis_label(token: str) -> str:
    return _pretty(token).strip() or "␣"


def _ink(level: int) -> str:
    """Text colour on a ramp cell of ``level``: dark on light fills, white on dark ones."""
    return "#ffffff" if level > 140 else "#111111"


def _thumb(matrix: np.ndarray) -> str:
    """One head's map, pooled to at most _THUMB x _THUMB, as a data URI."""
    return _heatmap.data_uri(_heatmap.png(_heatmap.to_levels(_heatmap.pool(matrix, _THUMB))))


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
    """Static view of an attention diff: JSD per head, the most changed heads, and the most
    changed head's maps on each side with the tokens on their axes."""
    e = html.escape
    first, second = self.captions
    peak = float(self.jsd.max())
    grid = _heatmap.png(_heatmap.to_levels(self.jsd, top=peak if peak > 0 else 1.0), _heatmap.REDS)
    rows = []
    for layer, head, score in self.ranked(_SHOWN_HEADS):
        li, hi = self.layers.index(layer), self.heads.index(head)
        imgs = "".join(
            f"<img alt='{e(name)}' title='{e(name)}' style='height:48px;"
            f"image-rendering:pixelated;margin-right:4px' src='"
            f"{_thumb(r.weights[li, hi])}'>"
            for name, r in ((first, self.a), (second, self.b))
        )
        rows.append(
            f"<tr><td>layer {layer}</td><td>head {head}</td>"
            f"<td>{sig(score)}</td><td>{imgs}</td></tr>"
        )
    width = max(120, 16 * len(self.heads))
    return (
        f"<div class='labkit-attention-diff' style='{_FONT}'>"
        f"<div><b>Attention change</b> · {e(first)} → {e(second)} · "
        f"{len(self.tokens)} tokens · mean Jensen-Shannon divergence "
        f"{sig(float(self.jsd.mean()))} bits (max {sig(peak)}; 0 = same, 1 = disjoint)</div>"
        f"<div style='display:flex;gap:16px;align-items:flex-start'>"
        f"<figure style='margin:4px'><img alt='JSD per head: rows layers, columns heads' "
        f"src='{_heatmap.data_uri(grid)}' style='width:{width}px;image-rendering:pixelated'>"
        f"<figcaption>rows: layers {e(str(list(self.layers)))}; columns: heads</figcaption>"
        f"</figure><table><thead><tr><th>layer</th><th>head</th><th>JSD (bits)</th>"
        f"<th>{e(first)} / {e(second)}</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table></div>{_diff_detail(self)}</div>"
    )


def _diff_detail(self: AttentionDiff) -> str:
    """The most changed head on each side, one shared colour scale, tokens on the axes; then
    its change per query token."""
    e = html.escape
    layer, head, _ = self.ranked(1)[0]
    li, hi = self.layers.index(layer), self.heads.index(head)
    maps = [self.a.weights[li, hi], self.b.weights[li, hi]]
    top = max(float(m.max()) for m in maps)
    labels = [_axis_label(t) for t in self.tokens]
    figures = "".join(
        _heatmap.labelled(m, labels, caption=caption, top=top if top > 0 else None)
        for m, caption in zip(maps, self.captions)
    )
    change = self.row_jsd[li, hi]
    most = float(change.max())
    strip = "".join(
        f"<span title='token {i}: change {sig(float(v))} bits' style='border:1px solid #ddd;"
        f"margin:1px;padding:0 2px;white-space:pre;background:"
        f"{_heatmap.shade(_heatmap.REDS, round(153 * float(v) / most) if most > 0 else 0)}"
        f";color:#111111'>{e(_pretty(tok))}</span>"
        for i, (tok, v) in enumerate(zip(self.tokens[:_SHOWN_TOKENS], change.tolist()))
    )
    more = len(self.tokens) - _SHOWN_TOKENS
    return (
        f"<div style='margin-top:8px'><b>Most changed: layer {layer}, head {head}</b> "
        f"<span style='color:#777'>(rows: query tokens, columns: key tokens)</span></div>"
        f"<div>{figures}</div><div style='color:#777'>change per query token (bits):</div>"
        f"<div style='line-height:1.7'>{strip}{e(f' ... ({more} more)') if more > 0 else ''}"
        f"</div>"
    )


def _cell_grid(
    values: list[list[str]],
    fills: list[list[tuple[str, str]]],
    titles: list[list[str]],
    layers: Sequence[int],
    heads: Sequence[int],
) -> str:
    """A layers x heads table: cell text, (fill, ink) and tooltip per cell; escaped."""
    e = html.escape
    th = "font-weight:normal;color:#777;font-size:11px;padding:0 3px;text-align:center"
    out = [f"<tr><th style='{th}'>layer \\ head</th>"]
    out += [f"<th style='{th}'>{h}</th>" for h in heads]
    out.append("</tr>")
    for li, layer in enumerate(layers):
        out.append(f"<tr><th style='{th}'>{layer}</th>")
        for hi in range(len(heads)):
            fill, ink = fills[li][hi]
            out.append(
                f"<td title='{e(titles[li][hi])}' style='{_CELL};background:{fill};"
                f"color:{ink};font-size:11px;min-width:14px'>{e(values[li][hi])}</td>"
            )
        out.append("</tr>")
    return f"<table style='border-collapse:collapse'>{''.join(out)}</table>"


_COLUMNS = {  # rows() key -> (header, what it is)
    "layer": ("layer", "the model's layer"),
    "head": ("head", "the model's head"),
    "role": ("role", "what the head mostly does"),
    "norm_entropy": ("spread", "normalised entropy: 0 = one token, 1 = uniform"),
    "distance": ("distance", "mean attention distance, in tokens"),
    "special": ("→ special", "share of attention to special tokens"),
    "previous": ("→ previous", "share of attention to the previous token"),
    "next": ("→ next", "share of attention to the next token"),
    "self": ("→ self", "share of attention to the token itself"),
}
_FIGURE_WORDS = {  # what the number after each head is
    "special": "share to special tokens",
    "previous": "share to the previous token",
    "next": "share to the next token",
    "self": "share to itself",
    "norm_entropy": "normalised entropy",
    "distance": "mean distance in tokens",
}


def heads_html(self: HeadSummary) -> str:
    """Compact view of the per-head summary: the heads per role (with the clearest ones and
    the figure their role rests on), a layers x heads map of roles, and the full table of every
    head in a ``<details>`` element."""
    meanings, figures = self.role_meanings, self.role_figures
    e = html.escape
    counts = self.count()
    total = sum(counts.values())
    order = sorted(counts, key=lambda r: (-counts[r], list(meanings).index(r)))
    pad = "padding:1px 6px"
    role_rows = []
    for role in order:
        letter, fill = _ROLE_STYLE[role]
        spec = figures[role]
        clearest = self.by_role(role, _CLEAREST)
        if spec is None:
            named = ", ".join(f"L{layer} H{head}" for layer, head, _ in clearest)
        else:
            named = ", ".join(f"L{layer} H{head} ({sig(v, 2)})" for layer, head, v in clearest)
        if counts[role] > _CLEAREST:
            named += f" and {counts[role] - _CLEAREST} more"
        if spec is not None:
            named += f" <span style='color:#777'>— {e(_FIGURE_WORDS[spec[0]])}</span>"
        role_rows.append(
            f"<tr><td style='{_CELL};background:{fill};color:#111111'>{letter}</td>"
            f"<td style='{pad};text-align:left'><b>{e(role)}</b></td>"
            f"<td style='{pad};text-align:right'>{counts[role]}</td>"
            f"<td style='{pad};text-align:left'>{e(meanings[role])}</td>"
            f"<td style='{pad};text-align:left'>{named}</td></tr>"
        )
    fills = [[(_ROLE_STYLE[r][1], "#111111") for r in row] for row in self.roles]
    letters = [[_ROLE_STYLE[r][0] for r in row] for row in self.roles]
    titles = [
        [f"layer {layer}, head {head}: {r}" for head, r in zip(self.heads, row)]
        for layer, row in zip(self.layers, self.roles)
    ]
    role_map = _cell_grid(letters, fills, titles, self.layers, self.heads)
    head_cells = "".join(f"<th title='{e(w)}'>{e(h)}</th>" for h, w in _COLUMNS.values())
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(sig(row[c]) if isinstance(row[c], float) else str(row[c]))}</td>"
            for c in _COLUMNS
        )
        + "</tr>"
        for row in self.rows()
    )
    return (
        f"<div class='labkit-heads' style='{_FONT}'>"
        f"<div><b>Head roles</b> · {len(self.layers)} layers x {len(self.heads)} heads · "
        f"averaged over query tokens</div>"
        f"<div style='display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start'>"
        f"<table class='labkit-roles'><thead><tr><th></th><th style='text-align:left'>role"
        f"</th><th>heads</th><th style='text-align:left'>meaning</th>"
        f"<th style='text-align:left'>clearest (layer, head)</th></tr></thead>"
        f"<tbody>{''.join(role_rows)}</tbody></table>{role_map}</div>"
        f"<details><summary>all {total} heads: every figure</summary>"
        f"<table class='labkit-heads-table'><thead><tr>{head_cells}</tr></thead>"
        f"<tbody>{body}</tbody></table></details></div>"
    )


def importance_html(self: HeadImportance) -> str:
    """Static view of head importance: the layers x heads grid (scores written in the cells
    of models up to 16 heads), the most important heads with bars, and the full ranking in a
    ``<details>`` element."""
    e = html.escape
    scores = self.scores
    n_layers, n_heads = scores.shape
    peak = float(scores.max()) if scores.size else 0.0
    levels = _heatmap.to_levels(scores)
    ranked = self.ranked()
    rank = {(layer, head): i + 1 for i, (layer, head, _) in enumerate(ranked)}
    numbered = n_heads <= _NUMBERED
    values = [
        [sig(float(scores[li, hi]), 2) if numbered else "" for hi in range(n_heads)]
        for li in range(n_layers)
    ]
    fills = [
        [(_heatmap.shade(_heatmap.BLUES, int(v)), _ink(int(v))) for v in row] for row in levels
    ]
    titles = [
        [
            f"layer {li}, head {hi}: {sig(float(scores[li, hi]))} "
            f"(rank {rank[(li, hi)]} of {len(ranked)})"
            for hi in range(n_heads)
        ]
        for li in range(n_layers)
    ]
    grid = _cell_grid(values, fills, titles, range(n_layers), range(n_heads))
    bar = _heatmap.shade(_heatmap.BLUES, 170)
    pad = "padding:1px 6px"

    def rows(items: list[tuple[int, int, float]], start: int = 1) -> str:
        return "".join(
            f"<tr><td style='{pad};text-align:right'>{start + i}</td><td style='{pad}'>{layer}"
            f"</td><td style='{pad}'>{head}</td><td style='{pad};text-align:right'>{sig(score)}"
            f"</td><td style='width:124px'>"
            f"<div style='background:{bar};height:10px;width:"
            f"{120 * score / peak if peak > 0 else 0:.0f}px'></div></td></tr>"
            for i, (layer, head, score) in enumerate(items)
        )

    head_row = (
        "<thead><tr><th>rank</th><th>layer</th><th>head</th><th>score</th><th></th></tr></thead>"
    )
    rest = ranked[_TOP_HEADS:]
    full = (
        f"<details><summary>all {len(ranked)} heads, ranked</summary><table>{head_row}"
        f"<tbody>{rows(ranked)}</tbody></table></details>"
        if rest
        else ""
    )
    how = (
        "score: how much the loss would change, to first order, if the head were removed "
        "(mean |∂loss/∂gate| over the examples); larger = the task relies on it more"
        + ("; each layer's scores scaled to unit length" if self.normalized else "")
    )
    return (
        f"<div class='labkit-importance' style='{_FONT}'>"
        f"<div><b>Head importance</b> (Michel et al. 2019) · {e(self.model_name)} · "
        f"{self.examples} examples{' · normalised per layer' if self.normalized else ''}</div>"
        f"<div style='color:#777;margin-bottom:4px'>{e(how)}</div>"
        f"<div style='display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start'>{grid}"
        f"<table class='labkit-importance-top'><caption style='text-align:left'><b>"
        f"{min(_TOP_HEADS, len(ranked))} most important heads</b></caption>{head_row}"
        f"<tbody>{rows(ranked[:_TOP_HEADS])}</tbody></table></div>{full}</div>"
    )
