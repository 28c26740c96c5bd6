"""Static HTML of a pruning curve (``lk.pruning_curve``): accuracy against the share of heads
removed, pruning by importance against pruning at random, and the figures as a table.

The plot is an SVG image (``svgchart``): the importance line, the random mean line, each random
repeat as a faint dot and the random spread (lowest and highest repeat) as faint lines, so the
gap between the two strategies reads against the noise of random choice. Every name is escaped.
"""

from __future__ import annotations

import html
from types import SimpleNamespace
from typing import Any

from labkit.render.compare import run_color, table_html
from labkit.render.svgchart import Series, as_image, line_chart

__all__ = ["curve_html", "curve_svg", "curve_table"]

IMPORTANCE, RANDOM = run_color(0), run_color(1)


def curve_svg(curve: Any, *, width: int = 640, height: int = 280) -> str:
    """Accuracy (y) against % of heads removed (x) as an ``<svg>`` string."""
    rows = curve.rows
    x = [p.fraction * 100 for p in rows]
    low = [p.random_spread[0] for p in rows]
    high = [p.random_spread[1] for p in rows]
    dots_x = [p.fraction * 100 for p in rows for _ in p.random_accuracies]
    dots_y = [a for p in rows for a in p.random_accuracies]
    series = [
        Series("random: lowest to highest", low, color=RANDOM, width=1, opacity=0.35),
        Series("random: highest", high, color=RANDOM, width=1, opacity=0.35, legend=False),
        Series(
            "random repeat",
            dots_y,
            x=dots_x,
            color=RANDOM,
            opacity=0.35,
            kind="points",
            legend=False,
        ),
        Series(
            f"random (mean of {curve.random_repeats})",
            [p.random_accuracy for p in rows],
            color=RANDOM,
            width=2,
        ),
        Series(
            "random mean",
            [p.random_accuracy for p in rows],
            color=RANDOM,
            kind="points",
            legend=False,
        ),
        Series("by importance", [p.accuracy for p in rows], color=IMPORTANCE, width=2),
        Series(
            "importance", [p.accuracy for p in rows], color=IMPORTANCE, kind="points", legend=False
        ),
    ]
    recovered = f", after {curve.recover_steps} recovery steps" if curve.recover_steps else ""
    return line_chart(
        x,
        series,
        width=width,
        height=height,
        x_label="% of heads removed",
        y_label=f"{curve.split} accuracy",
        title=f"{curve.split} accuracy as heads are removed{recovered}",
    )


def curve_table(curve: Any) -> SimpleNamespace:
    """The curve's figures as a table (``columns``, ``rows`` of formatted cells)."""
    columns = [
        "removed",
        "parameters",
        "accuracy (importance)",
        "accuracy (random, mean)",
        "random range",
        "macro-F1 (importance)",
        "macro-F1 (random)",
        "latency b1 (ms)",
    ]
    rows = []
    for p in curve.rows:
        lo, hi = p.random_spread
        rows.append(
            [
                f"{p.fraction:.0%} ({p.heads_removed} heads)",
                f"{p.parameters / 1e6:.2f}M",
                f"{p.accuracy:.3f}",
                f"{p.random_accuracy:.3f}",
                f"{lo:.3f} – {hi:.3f}",
                f"{p.f1:.3f}",
                f"{p.random_f1:.3f}",
                f"{p.latency * 1000:.1f}",
            ]
        )
    return SimpleNamespace(columns=columns, rows=rows)


def _alt(curve: Any) -> str:
    parts = [
        f"{p.fraction:.0%}: importance {p.accuracy:.3f}, random {p.random_accuracy:.3f}"
        for p in curve.rows
    ]
    return f"{curve.split} accuracy by share of heads removed: " + "; ".join(parts)


def curve_html(curve: Any) -> str:
    """The static view of a ``PruningCurve``: a heading, the plot and the table."""
    esc = html.escape
    recovered = (
        f", each finetuned {curve.recover_steps} steps after the cut" if curve.recover_steps else ""
    )
    return (
        "<div class='labkit-pruning' style='font-family:system-ui,-apple-system,Segoe UI,"
        "sans-serif;font-size:13px;line-height:1.45;max-width:760px;color:#222'>"
        f"<div><b>Pruning heads of {esc(curve.model_name)}</b> "
        f"<span style='color:#666'>{curve.total_heads} heads; {curve.examples:,} texts of the "
        f"{esc(curve.split)} split; importance from {esc(curve.importance_split)}; "
        f"{curve.random_repeats} random orders{esc(recovered)}</span></div>"
        + as_image(curve_svg(curve), _alt(curve))
        + table_html(curve_table(curve))
        + "</div>"
    )
