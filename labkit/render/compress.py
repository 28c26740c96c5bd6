"""Static HTML of a model comparison (``lk.compare_models``): the trade-off table and a scatter
of accuracy against latency, one labelled point per model.

As ``labkit.render.compare``: pure Python, inline styles, the plot an SVG image
(``svgchart``'s ticks, number format and ``as_image``), every model name escaped. The live view
(``labkit.ui.compress_view``) draws the same table and the same SVG.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from labkit.render.compare import run_color, table_html
from labkit.render.summary import sig
from labkit.render.svgchart import DOT_R, as_image, fmt, nice_ticks

if TYPE_CHECKING:
    from labkit.compress.compare import ModelComparison, ModelRow
    from labkit.runs.compare import Table

__all__ = ["comparison_html", "comparison_table", "scatter_svg", "table_note"]

_FONT = "system-ui, -apple-system, Segoe UI, sans-serif"


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n:,}"


def _latency(row: ModelRow, batch: int, first: bool) -> str:
    ms = f"{sig(row.latency[batch] * 1000)} ms"
    return ms if first else f"{ms} ({sig(row.speedup[batch])}×)"


def comparison_table(comparison: ModelComparison) -> Table:
    """The rows as text: parameters, size, latency (ms, and the speedup over the first model at
    each batch size), accuracy, macro-F1 and agreement with the first model (percent)."""
    from labkit.runs.compare import Table

    columns = ["model", "runs on", "parameters", "size on disk"]
    columns += [f"latency, batch {b}" for b in comparison.batch_sizes]
    columns += ["accuracy", "macro-F1", "agreement"]
    rows = []
    for i, r in enumerate(comparison.rows):
        rows.append(
            [
                r.name,
                f"{r.backend} · {r.device}",
                _params(r.parameters),
                f"{sig(r.size_bytes / 1e6)} MB",
                *(_latency(r, b, i == 0) for b in comparison.batch_sizes),
                f"{r.accuracy * 100:.1f}%",
                f"{r.f1 * 100:.1f}%",
                "—" if i == 0 else f"{r.agreement * 100:.1f}%",
            ]
        )
    return Table(columns=columns, rows=rows, note=table_note(comparison))


def table_note(comparison: ModelComparison) -> str:
    """What the table's figures are, in one sentence."""
    n = comparison.rows[0].examples if comparison.rows else 0
    first = f"“{comparison.rows[0].name}”" if comparison.rows else "the first model"
    return (
        f"{n:,} texts of the {comparison.split} split. Latency: median of "
        f"{comparison.repeats} calls (tokenizing included) on each model's device; (n×) is "
        f"{first}'s latency over this model's, the two timed in turn in one loop. Agreement: "
        f"texts predicted as {first} predicts them."
    )


def scatter_svg(comparison: ModelComparison, *, width: int = 640, height: int = 300) -> str:
    """Accuracy (%) against latency (ms) at ``comparison.plot_batch``, one labelled point per
    model, as an ``<svg>`` string (presentation attributes only, every label escaped)."""
    e = html.escape
    batch = comparison.plot_batch
    title = f"accuracy against latency at batch {batch}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" '
        f'font-family="{_FONT}"><title>{e(title)}</title>'
    )
    rows = comparison.rows
    if not rows:
        return (
            head + f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
            f'fill="none" stroke="#ddd"/>{_text(width / 2, height / 2, "no models yet")}</svg>'
        )
    left, right, top, bottom = 56, 24, 16, 40
    pw, ph = width - left - right, height - top - bottom
    xs = [r.latency[batch] * 1000 for r in rows]
    ys = [r.accuracy * 100 for r in rows]
    xt = nice_ticks(0.0, max(xs) * 1.08)  # from 0: how many times faster reads off the axis
    yt = nice_ticks(min(ys) - 1.0, max(ys) + 1.0)
    x0, x1 = xt[0], xt[-1]
    y0, y1 = yt[0], yt[-1]
    if y1 <= y0:
        y0, y1 = y0 - 1, y1 + 1

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0 or 1.0) * pw

    def py(v: float) -> float:
        return top + ph - (v - y0) / (y1 - y0) * ph

    parts = [head]
    for t in yt:
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
        )
        parts.append(_text(left - 6, py(t) + 4, fmt(t), anchor="end"))
    for t in xt:
        parts.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
            'stroke="#999"/>'
        )
        parts.append(_text(px(t), top + ph + 16, fmt(t)))
    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
    )
    parts.append(_text(left + pw / 2, height - 4, f"latency at batch {batch} (ms)"))
    parts.append(
        f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
        'font-size="11" fill="#555">accuracy (%)</text>'
    )
    # labels beside their points, nudged apart vertically where two would overlap
    placed: list[tuple[float, float, str, str, float, float, ModelRow]] = []
    for i, (r, x, y) in enumerate(zip(rows, xs, ys)):
        cx, cy = px(x), py(y)
        right_side = cx < left + pw * 0.65
        anchor = "start" if right_side else "end"
        lx = cx + 8 if right_side else cx - 8
        placed.append((lx, cy + 4, anchor, run_color(i), cx, cy, r))
    order = sorted(range(len(placed)), key=lambda k: placed[k][1])
    last: dict[str, float] = {}
    for k in order:
        lx, ly, anchor, color, cx, cy, r = placed[k]
        if anchor in last and ly - last[anchor] < 13:
            ly = last[anchor] + 13
        last[anchor] = ly
        placed[k] = (lx, ly, anchor, color, cx, cy, r)
    for lx, ly, anchor, color, cx, cy, r in placed:
        tip = (
            f"{r.name}: accuracy {r.accuracy * 100:.1f}%, "
            f"{sig(r.latency[batch] * 1000)} ms at batch {batch}"
        )
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{DOT_R + 1.5}" fill="{color}">'
            f"<title>{e(tip)}</title></circle>"
        )
        parts.append(_text(lx, ly, r.name, anchor=anchor, color="#222"))
    parts.append("</svg>")
    return "".join(parts)


def _text(
    x: float, y: float, s: str, *, anchor: str = "middle", size: int = 11, color: str = "#555"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{color}">{html.escape(s)}</text>'
    )


def _alt(comparison: ModelComparison) -> str:
    batch = comparison.plot_batch
    return f"accuracy against latency at batch {batch}: " + "; ".join(
        f"{r.name} {r.accuracy * 100:.1f}% at {sig(r.latency[batch] * 1000)} ms"
        for r in comparison.rows
    )


def comparison_html(comparison: ModelComparison) -> str:
    """The static snapshot of a ``ModelComparison``: a heading, the table, its note, the plot."""
    esc = html.escape
    n = len(comparison.rows)
    colors = [run_color(i) for i in range(n)]
    parts = [
        f"<div class='labkit-model-comparison' style='font-family:{_FONT};font-size:13px;"
        "line-height:1.45;max-width:960px;color:#222'>",
        f"<div style='margin-bottom:4px'><b>{n} model{'s' if n != 1 else ''} compared</b> "
        f"<span style='color:#666'>on the {esc(comparison.split)} split</span></div>",
    ]
    if n:
        parts.append(table_html(comparison.table(), colors=colors))
    parts.append(f"<div style='color:#666;margin:2px 0 6px'>{esc(table_note(comparison))}</div>")
    parts.append(as_image(scatter_svg(comparison), _alt(comparison)))
    parts.append("</div>")
    return "".join(parts)
