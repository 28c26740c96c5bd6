"""Static HTML of a run comparison (``lk.compare_runs``): the loss chart of every run, the chosen
metric in a second chart, the final metrics per run and the configuration fields that differ.

What a saved notebook, nbviewer and GitHub show where the live widget cannot run. As
``labkit.render.run``: pure Python, inline styles, the charts as SVG images (``svgchart``), every
run name and value escaped.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

from labkit.render.run import STATUS_COLORS
from labkit.render.svgchart import Series, as_image, fmt, line_chart

__all__ = ["RUN_COLORS", "comparison_html", "loss_svg", "metric_svg", "run_color", "table_html"]

# one colour per run, in order (Tableau 10, as matplotlib's default cycle); the live widget gets
# each run's colour from the kernel, so both views agree
RUN_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
STATIC_POINTS = 400  # per drawn line in the snapshot (the widget gets up to MAX_POINTS)
X_LABELS = {"step": "step", "time": "seconds since the run began"}


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def loss_svg(comparison: Any, *, width: int = 720, height: int = 300, log_y: bool = False) -> str:
    """Every run's training loss (raw, faint; smoothed, solid) and validation loss (points)
    against ``comparison.x``, as an ``<svg>`` string."""
    axis = comparison.x
    series: list[Series] = []
    for i, c in enumerate(comparison.curves()):
        color, xs = run_color(i), c.x(axis)
        pts = [(x, r, s) for x, r, s in zip(xs, c.loss, c.smooth) if x is not None]
        px = [p[0] for p in pts]
        series.append(
            Series(f"{c.label}", [p[1] for p in pts], x=px, color=color, width=1, opacity=0.25)
        )
        series.append(Series(f"{c.label} (smoothed)", [p[2] for p in pts], x=px, color=color))
        ev = [(x, m.get("loss")) for x, (_, _, m) in zip(c.eval_x(axis), c.evals) if x is not None]
        if any(v is not None for _, v in ev):
            series.append(
                Series(
                    f"{c.label} val loss",
                    [v for _, v in ev],
                    x=[x for x, _ in ev],
                    color=color,
                    kind="points",
                )
            )
    series = [replace(s, legend=False) for s in series]
    return line_chart(
        [],
        series,
        width=width,
        height=height,
        x_label=X_LABELS[axis],
        y_label="loss",
        log_y=log_y,
        max_points=STATIC_POINTS,
        title="training and validation loss",
    )


def metric_svg(comparison: Any, *, width: int = 720, height: int = 200) -> str:
    """Each run's validation ``comparison.metric`` at each evaluation; "" with no metric."""
    metric, axis = comparison.metric, comparison.x
    if not metric:
        return ""
    series = []
    curves = comparison.curves()
    # the loss chart's x range above it: the two charts line up step for step
    xs_all = [x for c in curves for x in c.x(axis) if x is not None]
    span = (min(xs_all), max(xs_all)) if xs_all else None
    for i, c in enumerate(curves):
        ev = [(x, m.get(metric)) for x, (_, _, m) in zip(c.eval_x(axis), c.evals) if x is not None]
        xs, ys = [x for x, _ in ev], [v for _, v in ev]
        color = run_color(i)
        series.append(Series(c.label, ys, x=xs, color=color, legend=False))
        series.append(Series(c.label, ys, x=xs, color=color, kind="points", legend=False))
    return line_chart(
        [],
        series,
        width=width,
        height=height,
        x_label=X_LABELS[axis],
        y_label=f"val {metric}",
        title=f"validation {metric}",
        x_span=span,
    )


def _alt(comparison: Any) -> str:
    parts = []
    for c in comparison.curves():
        losses = [v for v in c.loss if v is not None]
        if losses:
            parts.append(f"{c.label}: {c.steps} steps, loss {fmt(losses[0])} to {fmt(losses[-1])}")
        else:
            parts.append(f"{c.label}: no steps yet")
    return "loss of each run by " + comparison.x + ": " + "; ".join(parts)


def table_html(table: Any, *, colors: list[str] | None = None) -> str:
    """``table`` (``labkit.runs.compare.Table``) as an HTML table, every cell escaped; with
    ``colors``, each row starts with its run's swatch."""
    esc = html.escape
    cell = "padding:2px 10px 2px 0;text-align:left;vertical-align:top"
    head = "".join(
        f"<th style='{cell};color:#666;font-weight:600;border-bottom:1px solid #ddd'>{esc(c)}</th>"
        for c in table.columns
    )
    body = []
    for r, row in enumerate(table.rows):
        cells = []
        for k, value in enumerate(row):
            mark = ""
            if k == 0 and colors:
                mark = (
                    "<span style='display:inline-block;width:10px;height:10px;border-radius:2px;"
                    f"margin-right:6px;background:{colors[r % len(colors)]}'></span>"
                )
            cells.append(f"<td style='{cell}'>{mark}{esc(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table style='border-collapse:collapse;margin:6px 0;font-variant-numeric:"
        f"tabular-nums'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def comparison_html(comparison: Any) -> str:
    """The static snapshot of a ``RunComparison``."""
    esc = html.escape
    n = len(comparison.runs)
    colors = [run_color(i) for i in range(n)]
    parts = [
        "<div class='labkit-compare' style='font-family:system-ui,-apple-system,Segoe UI,"
        "sans-serif;font-size:13px;line-height:1.45;max-width:760px;color:#222'>",
        f"<div style='margin-bottom:4px'><b>{n} run{'s' if n != 1 else ''} compared</b> "
        f"<span style='color:#666'>by {esc(X_LABELS[comparison.x])}</span></div>",
    ]
    keys = []
    for i, c in enumerate(comparison.curves()):
        run = comparison.runs[i]
        status = str(getattr(run, "status", ""))
        badge = STATUS_COLORS.get(status, "#555")
        empty = "" if c.steps else " <i style='color:#888'>no steps yet</i>"
        keys.append(
            "<span style='display:inline-flex;align-items:center;gap:4px;margin-right:12px'>"
            f"<span style='display:inline-block;width:14px;height:3px;background:{colors[i]}'>"
            f"</span>{esc(c.label)}{empty}"
            f"<span style='color:{badge};font-size:11px'>{esc(status.replace('_', ' '))}</span>"
            "</span>"
        )
    parts.append(f"<div style='display:flex;flex-wrap:wrap'>{''.join(keys)}</div>")
    parts.append(as_image(loss_svg(comparison), _alt(comparison)))
    metric = comparison.metric
    if metric:
        parts.append(as_image(metric_svg(comparison), f"validation {metric} of each run"))
    parts.append("<div style='color:#666;margin-top:6px'>final metrics (last evaluation)</div>")
    parts.append(table_html(comparison.finals(), colors=colors))
    diff = comparison.config_diff()
    parts.append(f"<div style='color:#666;margin-top:6px'>{esc(diff.note)}</div>")
    if diff.rows:
        parts.append(table_html(diff))
    if comparison.live:
        parts.append(
            "<div style='color:#888;margin-top:4px'>snapshot taken while runs were still "
            "going; display the comparison again for the latest state</div>"
        )
    parts.append("</div>")
    return "".join(parts)
