"""A small pure-Python SVG line chart, built from columns (no plotting library, no JavaScript).

Used for the static snapshot of a run (a saved notebook, nbviewer, GitHub) and reusable by the
HTML report. The SVG uses presentation attributes only (no ``<style>``, no script), so it
survives HTML sanitisers. Every label is escaped.

    svg = line_chart(steps, [Series("loss", losses), Series("val", vals, kind="points")])
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DOT_R",
    "PAD",
    "Series",
    "as_image",
    "ema",
    "fmt",
    "line_chart",
    "log_ticks",
    "nice_ticks",
]

DOT_R = 3.5  # px, a "points" series' dot
# px between the plot's frame and its data range, so a dot at the last step or at an axis end
# is drawn whole; the live chart (widgets/run_panel.js) gets both through labkit.ui's PALETTE
PAD = 6.0


@dataclass(frozen=True)
class Series:
    """One drawn series.

    ``y`` is aligned with ``x`` (or with its own ``x`` when given); ``None`` or non-finite
    values leave a gap. ``axis`` 2 draws against the right-hand axis. ``kind`` "line" joins
    the points; "points" draws one dot per value.
    """

    name: str
    y: Sequence[float | None]
    x: Sequence[float] | None = None
    color: str = "#1f77b4"
    width: float = 1.5
    opacity: float = 1.0
    axis: Literal[1, 2] = 1
    kind: Literal["line", "points"] = "line"
    legend: bool = True


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def ema(values: Sequence[float | None], smoothing: float) -> list[float | None]:
    """Debiased exponential moving average (TensorBoard's smoothing); gaps stay gaps.

    ``smoothing`` in [0, 1): 0 returns the values, 0.99 is very smooth.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    out: list[float | None] = []
    acc, weight = 0.0, 0.0
    for v in values:
        if not _finite(v):
            out.append(None)
            continue
        acc = smoothing * acc + (1.0 - smoothing) * float(v)  # type: ignore[arg-type]
        weight = smoothing * weight + (1.0 - smoothing)
        out.append(acc / weight)
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    f = raw / mag
    step = (1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10) * mag
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over [lo, hi] (lo > 0): decades, plus 2 and 5 when few."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if k1 - k0 <= 2 else (1,)
    ticks = [m * 10.0**k for k in range(k0, k1 + 1) for m in mults]
    inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(inside) >= 2:
        return inside
    return [t for t in nice_ticks(lo, hi, 4) if t > 0]  # a narrow range: round linear values


def fmt(v: float) -> str:
    """A short tick/readout label: 0.25, 1.5k, 2e-05."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10_000:
        return f"{v / 1000:.4g}k"
    if a < 1e-3:
        return f"{v:.0e}"
    return f"{v:.4g}"


def _thin(
    xs: list[float], ys: list[float | None], limit: int
) -> tuple[list[float], list[float | None]]:
    """At most ~``limit`` points: per bucket the min and the max (spikes stay visible)."""
    n = len(xs)
    if n <= limit:
        return xs, ys
    buckets = max(1, limit // 2)
    size = n / buckets
    ox: list[float] = []
    oy: list[float | None] = []
    for b in range(buckets):
        i0, i1 = int(b * size), min(n, int((b + 1) * size))
        idx = [i for i in range(i0, i1) if _finite(ys[i])]
        if not idx:
            ox.append(xs[i0])
            oy.append(None)
            continue
        lo = min(idx, key=lambda i: ys[i])  # type: ignore[arg-type,return-value]
        hi = max(idx, key=lambda i: ys[i])  # type: ignore[arg-type,return-value]
        for i in sorted({lo, hi}):
            ox.append(xs[i])
            oy.append(ys[i])
    return ox, oy


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool = False) -> None:
        self.log = log
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi == lo:
            lo, hi = lo - 1, hi + 1
        self.lo, self.hi, self.a, self.b = lo, hi, a, b

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log10(v)
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _domain(values: list[float], log: bool) -> tuple[float, float, list[float]]:
    lo, hi = min(values), max(values)
    if log:
        ticks = log_ticks(lo, hi)
        return min(lo, ticks[0]), max(hi, ticks[-1]), ticks
    ticks = nice_ticks(lo, hi)
    if ticks:
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        if ticks[0] > lo:
            ticks.insert(0, ticks[0] - step)
        if ticks[-1] < hi:
            ticks.append(ticks[-1] + step)
        lo, hi = ticks[0], ticks[-1]
    return lo, hi, ticks


def _text(
    x: float, y: float, s: str, *, anchor: str = "middle", size: int = 11, color: str = "#555"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{color}">{html.escape(s)}</text>'
    )


def line_chart(
    x: Sequence[float],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 260,
    x_label: str = "step",
    y_label: str = "loss",
    y2_label: str = "",
    log_y: bool = False,
    max_points: int = 800,
    title: str = "",
    x_span: tuple[float, float] | None = None,
) -> str:
    """An ``<svg>`` string drawing ``series`` against ``x`` (left axis, optional right axis).

    ``x_span``: an x range the axis covers besides the data's (a chart drawn under another,
    lining up with it).

    Long series are thinned to about ``max_points`` points (min and max per bucket), so the
    SVG stays small for a 100,000-step run. ``log_y`` puts the left axis on a log10 scale
    (non-positive values become gaps). Returns an empty-chart SVG saying "no data" when no
    series has a finite value.
    """
    left, right, top, bottom = 56, 56 if any(s.axis == 2 for s in series) else 16, 26, 34
    pw, ph = width - left - right, height - top - bottom
    xs_all = [float(v) for v in x]

    def pairs(s: Series) -> tuple[list[float], list[float | None]]:
        sx = [float(v) for v in s.x] if s.x is not None else xs_all
        ys: list[float | None] = []
        for v in s.y:
            ok = _finite(v) and (not (log_y and s.axis == 1) or float(v) > 0)  # type: ignore[arg-type]
            ys.append(float(v) if ok else None)  # type: ignore[arg-type]
        return sx[: len(ys)], ys[: len(sx)]

    data = [(s, *pairs(s)) for s in series]
    y1 = [v for s, _, ys in data if s.axis == 1 for v in ys if v is not None]
    y2 = [v for s, _, ys in data if s.axis == 2 for v in ys if v is not None]
    xv = [v for s, xs, ys in data for v, y in zip(xs, ys) if y is not None]
    label = html.escape(title or y_label)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'font-family="system-ui, -apple-system, Segoe UI, sans-serif">'
        f"<title>{label}</title>"
    )
    if not xv or not (y1 or y2):
        return (
            head + f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
            'fill="none" stroke="#ddd"/>' + _text(width / 2, height / 2, "no data yet") + "</svg>"
        )
    pad = PAD
    x_lo, x_hi = min(xv), max(xv)
    if x_span is not None:
        x_lo, x_hi = min(x_lo, float(x_span[0])), max(x_hi, float(x_span[1]))
    xt = nice_ticks(x_lo, x_hi)
    xs_ = _Scale(x_lo, x_hi, left + pad, left + pw - pad)
    parts = [head]
    if y1:
        lo1, hi1, t1 = _domain(y1, log_y)
        sy1 = _Scale(lo1, hi1, top + ph - pad, top + pad, log=log_y)
        for t in t1:
            py = sy1(t)
            parts.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>'
            )
            parts.append(_text(left - 6, py + 4, fmt(t), anchor="end"))
    if y2:
        lo2, hi2, t2 = _domain(y2, False)
        sy2 = _Scale(lo2, hi2, top + ph - pad, top + pad)
        for t in t2:
            parts.append(_text(left + pw + 6, sy2(t) + 4, fmt(t), anchor="start"))
    for t in xt:
        if x_lo <= t <= x_hi:
            px = xs_(t)
            parts.append(
                f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
                'stroke="#999"/>'
            )
            parts.append(_text(px, top + ph + 16, fmt(t)))
    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
    )
    parts.append(_text(left + pw / 2, height - 3, x_label))
    parts.append(
        f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" font-size="11" fill="#555">{html.escape(y_label)}</text>'
    )
    if y2 and y2_label:
        parts.append(
            f'<text transform="translate({width - 8} {top + ph / 2:.1f}) rotate(90)" '
            f'text-anchor="middle" font-size="11" fill="#555">'
            f"{html.escape(y2_label)}</text>"
        )
    for s, xs, ys in data:
        sy = sy1 if s.axis == 1 and y1 else sy2 if s.axis == 2 and y2 else None
        if sy is None:
            continue
        if s.kind == "line":
            xs, ys = _thin(xs, ys, max_points)
            d, pen = [], "M"
            for vx, vy in zip(xs, ys):
                if vy is None:
                    pen = "M"
                    continue
                d.append(f"{pen}{xs_(vx):.1f} {sy(vy):.1f}")
                pen = "L"
            if d:
                parts.append(
                    f'<path d="{" ".join(d)}" fill="none" stroke="{html.escape(s.color)}" '
                    f'stroke-width="{s.width}" stroke-opacity="{s.opacity}" '
                    'stroke-linejoin="round"/>'
                )
        else:
            for vx, vy in zip(xs, ys):
                if vy is not None:
                    parts.append(
                        f'<circle cx="{xs_(vx):.1f}" cy="{sy(vy):.1f}" r="{DOT_R}" '
                        f'fill="{html.escape(s.color)}" fill-opacity="{s.opacity}">'
                        f"<title>{html.escape(s.name)} {fmt(vy)} at {fmt(vx)}</title>"
                        "</circle>"
                    )
    lx: float = left + 8
    for s in series:
        if not s.legend:
            continue
        color = html.escape(s.color)
        mark = (
            f'<circle cx="{lx + 6}" cy="{top - 14}" r="{DOT_R}" fill="{color}"/>'
            if s.kind == "points"
            else f'<line x1="{lx}" x2="{lx + 14}" y1="{top - 14}" y2="{top - 14}" '
            f'stroke="{color}" stroke-width="2" stroke-opacity="{max(s.opacity, 0.5)}"/>'
        )
        parts.append(mark + _text(lx + 18, top - 10, s.name, anchor="start", color="#333"))
        lx += 26 + 6.5 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


def as_image(svg: str, alt: str) -> str:
    """``svg`` as an ``<img>`` with a data URI: drawn the same wherever HTML is shown, including
    where inline SVG is stripped (JupyterLab's sanitizer in an untrusted notebook, GitHub), with
    ``alt`` (escaped) saying what it shows where images are off."""
    import base64
    import re

    size = re.search(r'<svg[^>]*\bwidth="(\d+)"[^>]*\bheight="(\d+)"', svg)
    dims = f" width='{size[1]}' height='{size[2]}'" if size else ""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f"<img class='labkit-chart' alt='{html.escape(alt, quote=True)}'{dims} "
        f"style='max-width:100%;height:auto' src='data:image/svg+xml;base64,{data}'>"
    )
