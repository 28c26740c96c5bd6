"""Static HTML of a :class:`~labkit.inspect.attribution.generation_result.GenerationAttribution`.

The prompt's tokens coloured by how much each drove the whole answer (the sequence row), the
answer's tokens with their log-probabilities (each one's strongest prompt tokens in its
tooltip), a legend, and the full [answer x prompt] matrix as a heatmap image. Shown in saved
notebooks, nbviewer and GitHub; the live view (``labkit.ui``) recolours the prompt by the answer
token hovered or clicked. Every token and text is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

from labkit.render import heatmap
from labkit.render.attribution import AGAINST, OPACITY, TOWARD, colour, legend_html
from labkit.render.summary import sig

if TYPE_CHECKING:
    from labkit.inspect.attribution.generation_result import GenerationAttribution

__all__ = [
    "DIVERGING",
    "display_piece",
    "generation_attribution_html",
    "matrix_html",
    "row_scale",
    "target_display",
]


def _diverging() -> bytes:
    """256 colours: AGAINST at full strength (0) through white (127/128) to TOWARD (255), each
    as the attribution spans look on white (their colour at ``|x| * OPACITY`` opacity)."""
    x = np.linspace(-1.0, 1.0, 256)[:, None]
    alpha = np.abs(x) * OPACITY
    end = np.where(x < 0, np.array(AGAINST, dtype=float), np.array(TOWARD, dtype=float))
    rgb = np.rint(255.0 * (1 - alpha) + end * alpha).astype(np.uint8)
    return rgb.tobytes()


DIVERGING = _diverging()  # the heatmap's palette, the same colours as the token spans


def display_piece(piece: str) -> tuple[bool, str]:
    """(whitespace before it, its text) of a generated token's piece, as views show it: a
    leading space becomes the gap before the token, line breaks and tabs visible marks, and a
    piece of whitespace only ``␣``."""
    space = piece[:1] == " "
    text = piece[1:] if space else piece
    text = text.replace("\r\n", "↵").replace("\n", "↵").replace("\r", "↵").replace("\t", "⇥")
    if not text.strip():
        text = "␣" * max(1, len(text))
    return space, text


def target_display(result: GenerationAttribution) -> tuple[list[bool], list[str]]:
    """The answer's tokens as views show them: (whitespace before each, text of each)."""
    pieces = result.target_pieces or result.target_tokens
    shown = [display_piece(p) for p in pieces]
    return [s for s, _ in shown], [t for _, t in shown]


def row_scale(result: GenerationAttribution, *, sequence: bool) -> float:
    """The |score| drawn at full colour: ``result.scale`` when set, else the largest |score|
    of the sequence row (``sequence``) or of the whole matrix (a token row: rows compare)."""
    if result.scale is not None:
        return result.scale
    values = result.sequence_scores if sequence else result.scores
    finite = np.abs(values[np.isfinite(values)]) if values.size else np.zeros(0)
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _label(result: GenerationAttribution, *, sequence: bool) -> str:
    kind = "shared" if result.scale is not None else "own"
    return f"{kind} scale ±{row_scale(result, sequence=sequence):.2g}"


def _header(r: GenerationAttribution) -> str:
    e = html.escape
    n = len(r.target_tokens)
    how = "the model's greedy continuation" if r.generated else "the given target"
    parts = [
        f"<b>{e(r.method.replace('_', ' '))}</b>",
        f"{n} token{'s' if n != 1 else ''} of {how}",
        f"log p = {r.logprob:.3f} (perplexity {sig(r.perplexity)})",
    ]
    if r.delta is not None and len(r.delta):
        steps = r.options.get("n_steps")
        parts.append(
            f"completeness error up to {float(np.max(r.delta)):.3g} nats"
            + (f" at {int(steps)} steps" if steps else "")
        )
    if r.chat:
        parts.append("prompt in the chat template (its own tokens fixed)")
    return " · ".join(parts)


def _prompt_spans(r: GenerationAttribution) -> str:
    e = html.escape
    top = row_scale(r, sequence=True)
    pieces = r.pieces or r.tokens
    out = []
    for j, (piece, value) in enumerate(zip(pieces, r.sequence_scores.tolist())):
        space = " " if j and (not r.spaces or r.spaces[j]) else ""
        out.append(
            f"{space}<span class='labkit-token' style='background:{colour(value, top)};"
            f"padding:1px 2px;border-radius:3px' title='{e(f'{piece}: {value:+.4g}')}'>"
            f"{e(piece)}</span>"
        )
    return "".join(out)


def _answer_spans(r: GenerationAttribution) -> str:
    e = html.escape
    spaces, texts = target_display(r)
    pieces = r.pieces or r.tokens
    out = []
    for i, (space, text) in enumerate(zip(spaces, texts)):
        lp = float(r.target_logprobs[i])
        best = np.argsort(-r.scores[i], kind="stable")[:3]
        drivers = ", ".join(f"{pieces[j]} ({float(r.scores[i, j]):+.3g})" for j in best)
        tip = f"{text}: log p {lp:.3f}; drove it most: {drivers}"
        special = bool(r.target_special[i]) if r.target_special else False
        style = "border-bottom:2px solid #bbb;padding:0 1px;white-space:pre"
        if special:
            style += ";color:#888;font-style:italic"
        out.append(
            f"{' ' if i and space else ''}<span class='labkit-answer-token' style='{style}' "
            f"title='{e(tip)}'>{e(text)}</span>"
        )
    return "".join(out)


_CELL_MAX = 14  # px of one cell at most
_LABEL_PX = 11  # axis labels at least this far apart (else every few rows/columns get one)
_LABEL_CHARS = 12


def _slots(labels: list[str], cut: np.ndarray, cell: int) -> list[tuple[int, str, str]]:
    """(pixels, short label, tooltip) per label slot along one axis."""
    groups = len(cut) - 1
    step = -(-_LABEL_PX // cell)
    out = []
    for g in range(0, groups, step):
        lo, hi = int(cut[g]), int(cut[min(g + step, groups)])
        name = labels[lo]
        short = name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1].rstrip() + "…"
        tip = f"{lo}: {name}" if hi - lo == 1 else f"{lo}-{hi - 1}, from {name}"
        out.append((min(step, groups - g) * cell, short, tip))
    return out


def matrix_html(r: GenerationAttribution, *, size: int = 96, width: int = 560) -> str:
    """The [answer x prompt] matrix as a palette PNG: rows the answer's tokens, columns the
    prompt's, green up / red down on the token rows' scale; pooled to at most ``size`` cells
    a side, about ``width`` px wide; labels escaped (thinned where cells are small)."""
    e = html.escape
    n, p = r.scores.shape
    if n == 0 or p == 0:
        return ""
    top = row_scale(r, sequence=False)
    pooled = heatmap.pool(np.nan_to_num(r.scores.astype(np.float32)), size)
    levels = np.clip(np.rint(pooled / top * 127.5 + 127.5), 0, 255).astype(np.uint8)
    src = heatmap.data_uri(heatmap.png(levels, DIVERGING))
    rows_cut, cols_cut = heatmap.edges(n, size), heatmap.edges(p, size)
    g_rows, g_cols = len(rows_cut) - 1, len(cols_cut) - 1
    cell = max(2, min(_CELL_MAX, width // max(g_cols, 1)))
    _, answer = target_display(r)
    prompt = list(r.pieces or r.tokens)
    rows = _slots(answer, rows_cut, cell)
    cols = _slots(prompt, cols_cut, cell)
    gutter = min(90, 6 * max(len(s) for _, s, _ in rows) + 6)
    top_gutter = min(90, 6 * max(len(s) for _, s, _ in cols) + 6)
    label = "font-size:10px;white-space:pre;overflow:hidden;flex:none"
    row_html = "".join(
        f"<div title='{e('answer ' + tip)}' style='height:{px}px;line-height:{px}px;{label}'>"
        f"{e(text)}</div>"
        for px, text, tip in rows
    )
    col_html = "".join(
        f"<div title='{e('prompt ' + tip)}' style='width:{px}px;line-height:{px}px;"
        f"max-height:{top_gutter}px;writing-mode:vertical-rl;transform:rotate(180deg);"
        f"{label}'>{e(text)}</div>"
        for px, text, tip in cols
    )
    alt = (
        f"attribution matrix: {n} answer tokens (rows) x {p} prompt tokens (columns), "
        f"green raises, red lowers the answer token's log-probability"
    )
    return (
        "<figure class='labkit-generation-matrix' style='margin:6px 0;display:inline-block'>"
        "<figcaption style='font-size:13px;font-weight:600;margin-bottom:2px'>every answer token (rows) by "
        f"prompt token (columns), {e(_label(r, sequence=False))}</figcaption>"
        f"<div style='display:flex'><div style='width:{gutter + 3}px;flex:none'></div>"
        f"<div style='display:flex;align-items:flex-end'>{col_html}</div></div>"
        f"<div style='display:flex'><div style='width:{gutter}px;flex:none;text-align:right'>"
        f"{row_html}</div><img alt='{e(alt)}' src='{src}' style='width:{g_cols * cell}px;"
        f"height:{g_rows * cell}px;margin-left:3px;image-rendering:pixelated;flex:none'>"
        "</div></figure>"
    )


def generation_attribution_html(r: GenerationAttribution) -> str:
    """One self-contained HTML block for ``r``: header, prompt coloured by the whole answer,
    the answer's tokens, the legend and the matrix."""
    e = html.escape
    muted = "font-size:12px;color:#666;margin-top:6px"
    return (
        "<div class='labkit-generation-attribution' style='font-family:sans-serif;"
        "line-height:1.9'>"
        f"<div style='font-size:13px;margin-bottom:4px'>{_header(r)}</div>"
        f"<div style='{muted}'>prompt, coloured by how much each token drove the whole "
        "answer:</div>"
        f"<div class='labkit-generation-prompt' style='font-size:15px;white-space:pre-wrap'>"
        f"{_prompt_spans(r)}</div>"
        f"<div style='{muted}'>answer (hover a token: its log-probability and the prompt "
        "tokens that drove it most):</div>"
        f"<div class='labkit-generation-answer' style='font-size:15px'>{_answer_spans(r)}</div>"
        f"{legend_html('the answer', _label(r, sequence=True))}"
        f"{matrix_html(r)}"
        f"<div style='{muted}'>{e(r.model_name)}</div></div>"
    )
