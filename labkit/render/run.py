"""Static HTML of a run: status, progress, an inline SVG loss chart, the last metrics and, for a
causal LM, the sample generations made at each evaluation.

This is a ``Run``'s ``_repr_html_``: what a saved notebook, nbviewer and GitHub show where the
live panel cannot run. Pure Python, inline styles and SVG presentation attributes only (no
``<style>``, no script), every value escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from labkit.events import ENDED_STATUSES, REQUESTED_STATUSES
from labkit.render.svgchart import Series, as_image, ema, fmt, line_chart

__all__ = [
    "STATUS_COLORS",
    "clip",
    "duration",
    "loss_chart_svg",
    "run_html",
    "sample_row",
    "samples_html",
    "status_label",
]

# the status badge's colour, here and in the live panel (which gets it through labkit.ui's palette)
STATUS_COLORS = {
    "pending": "#777",
    "running": "#1a73e8",
    "pausing": "#b26a00",
    "paused": "#b26a00",
    "stopping": "#555",
    "stopped": "#555",
    "finished": "#188038",
    "diverged": "#c5221f",
    "out_of_memory": "#c5221f",
    "failed": "#c5221f",
}


def status_label(status: str) -> str:
    """What the badge says for ``status``: a request on its way reads ``stopping…``."""
    return status.replace("_", " ") + ("…" if status in REQUESTED_STATUSES else "")


# the loss chart's series (the live panel draws with the same, through labkit.ui's palette)
RAW, SMOOTH, VAL, METRIC = "#1f77b4", "#1f77b4", "#d62728", "#2ca02c"


def pick_metric(evals: list[Any], wanted: str = "") -> str:
    """The metric drawn on the second axis: ``wanted`` if recorded, else accuracy, else the
    first non-loss metric found; "" when the evaluations hold only the loss."""
    names: list[str] = []
    for e in evals:
        for k in getattr(e, "metrics", {}) or {}:
            if k != "loss" and k not in names:
                names.append(k)
    for choice in (wanted, "accuracy"):
        if choice and choice in names:
            return choice
    return names[0] if names else ""


def loss_chart_svg(
    history: Any,
    *,
    smoothing: float = 0.6,
    metric: str = "",
    log_y: bool = False,
    width: int = 640,
    height: int = 260,
) -> str:
    """The loss chart of a ``MetricHistory`` as an ``<svg>`` string.

    Raw training loss (faint), its EMA (``smoothing`` in [0, 1)), validation loss as points on
    the loss axis and ``metric`` (default: accuracy when recorded) as points on a second axis.
    """
    cols = history.steps_since(0)
    steps, loss = cols["step"], cols["loss"]
    evals = list(history.evals)
    metric = pick_metric(evals, metric)
    series = [
        Series("train loss", loss, color=RAW, width=1, opacity=0.3, legend=False),
        Series("train loss (smoothed)", ema(loss, smoothing), color=SMOOTH, width=2),
    ]
    ev_x = [float(e.step) for e in evals]
    val = [e.metrics.get("loss") for e in evals]
    if any(v is not None for v in val):
        series.append(Series("val loss", val, x=ev_x, color=VAL, kind="points"))
    if metric:
        series.append(
            Series(
                f"val {metric}",
                [e.metrics.get(metric) for e in evals],
                x=ev_x,
                color=METRIC,
                kind="points",
                axis=2,
            )
        )
    return line_chart(
        steps,
        series,
        width=width,
        height=height,
        y_label="loss",
        y2_label=metric,
        log_y=log_y,
        title="training loss",
    )


# Sample generations (causal LMs): how much of each text is shown, here and in the live panel
# (which receives the texts already cut by sample_row). A prompt is cut in its middle: an
# instruction's question is at its end.
PROMPT_CHARS = 160
TEXT_CHARS = 400
ANSWER_CHARS = 80  # one answer in the "first prompt over evaluations" list
ANSWERS_SHOWN = 8  # the snapshot lists the last 8 evaluations' answers


def clip(text: str, limit: int, *, middle: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis: its end is cut, or its
    middle with ``middle=True``."""
    if len(text) <= limit:
        return text
    if middle:
        head = (limit - 1) // 2
        return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"
    return text[: limit - 1] + "…"


def _shown(text: str) -> str:
    """A generation as shown: without the white space around it, except when that is all the
    model wrote, which is then made visible (``↵`` for a line break, ``·`` for a space)."""
    body = text.strip()
    if body or not text:
        return body
    return text.replace("\r", "").replace("\n", "↵").replace("\t", "→").replace(" ", "·")


def sample_row(event: Any) -> list[Any]:
    """A ``Samples`` event as shown: ``[step, prompts, texts, answer]``, the prompts and texts
    cut for display and ``answer`` the first text on one line, cut short (JSON-ready). "" is
    a generation of nothing at all."""
    prompts = [clip(str(p), PROMPT_CHARS, middle=True) for p in event.prompts]
    texts = [clip(_shown(str(t)), TEXT_CHARS) for t in event.texts]
    first = " ".join(_shown(str(event.texts[0])).split()) if event.texts else ""
    return [int(event.step), prompts, texts, clip(first, ANSWER_CHARS)]


def samples_html(history: Any) -> str:
    """The latest sample generations of ``history`` (each prompt muted, its generation bold)
    and the first prompt's answer at each evaluation; "" when there are none (a classifier)."""
    esc = html.escape
    samples = list(_get(history, "samples", None) or [])
    if not samples:
        return ""
    step, prompts, texts, _ = sample_row(samples[-1])
    parts = [
        "<div class='labkit-samples' style='margin-top:8px'>",
        f"<div style='color:#666'>sample generations at step {step:,}</div>",
    ]
    for prompt, text in zip(prompts, texts):
        said = (
            f"<div style='font-weight:600;white-space:pre-wrap'>{esc(text)}</div>"
            if text
            else "<div style='color:#888;font-style:italic'>(nothing generated)</div>"
        )
        parts.append(
            "<div style='margin:4px 0;padding:2px 8px;border-left:3px solid #ddd'>"
            f"<div style='color:#666;white-space:pre-wrap'>{esc(prompt)}</div>{said}</div>"
        )
    first = samples[0].prompts[0] if samples[0].prompts else None
    answers = [sample_row(s) for s in samples if s.prompts and s.prompts[0] == first]
    if len(answers) >= 2:
        shown = answers[-ANSWERS_SHOWN:]
        earlier = len(answers) - len(shown)
        parts.append(
            "<div style='color:#666;margin-top:4px'>the first prompt's answer at each "
            f"evaluation{f' ({earlier} earlier not shown)' if earlier else ''}:</div>"
            "<div style='font-size:12px'>"
        )
        parts.extend(
            f"<div><span style='color:#666'>step {s:,}:</span> {esc(answer) or '–'}</div>"
            for s, _, _, answer in shown
        )
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(obj, name, default)
    except Exception:  # noqa: BLE001 - a half-built run must still render
        return default


def duration(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12s`` (rounded, as the widgets' ``duration``); a dash when
    unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {sec:02d}s" if m else f"{sec}s"


def _chart_alt(history: Any, metric: str) -> str:
    """The loss chart in words, for where its image is not shown."""
    losses = [v for v in history.column("loss") if v is not None]
    if not losses:
        return "loss chart: no steps yet"
    text = (
        f"loss chart: {len(losses)} steps, training loss from {fmt(losses[0])} to {fmt(losses[-1])}"
    )
    last = history.last_eval
    if last is not None:
        shown = pick_metric(history.evals, metric)
        extra = f", validation {shown} {fmt(last.metrics[shown])}" if shown in last.metrics else ""
        text += f"; last evaluation at step {last.step}{extra}"
    return text


def run_html(run: Any) -> str:
    """A static summary of ``run``: status, progress, loss chart, last metrics, error."""
    esc = html.escape
    history = _get(run, "history")
    status = str(_get(run, "status", "?"))
    color = STATUS_COLORS.get(status, "#555")
    step = _get(run, "step", 0) or 0
    total = _get(run, "total_steps") or (_get(history, "total_steps") if history else None)
    name = str(_get(run, "name", "") or "labkit run")
    parts = [
        "<div class='labkit-run' style='font-family:system-ui,-apple-system,Segoe UI,"
        "sans-serif;font-size:13px;line-height:1.45;max-width:680px;color:#222'>",
        "<div style='margin-bottom:6px'>",
        f"<b>{esc(name)}</b> <span style='display:inline-block;padding:1px 8px;"
        f"border-radius:9px;background:{color};color:#fff;font-size:12px'>"
        f"{esc(status_label(status))}</span> ",
    ]
    progress = f"step {step:,}" + (f" / {total:,}" if total else "")
    facts = [progress]
    last = _get(history, "last_step") if history is not None else None
    if last:
        facts.append(f"epoch {last['epoch']:.2f}")
        if last.get("samples_per_s"):
            facts.append(f"{last['samples_per_s']:.1f} samples/s")
    # seconds since the run began (the "time" column is the wall clock, for the ETA)
    elapsed = [e for e in history.column("elapsed") if e is not None] if last else []
    if elapsed:
        facts.append(f"{duration(elapsed[-1])} elapsed")
    model = _get(run, "model")
    device = _get(model, "device") if model is not None else None
    if device is not None:
        facts.append(str(device))
    parts.append(esc(" · ".join(facts)) + "</div>")
    error = _get(run, "error") or (
        history.end.error if history is not None and history.end else None
    )
    if error and status in ENDED_STATUSES and status != "finished":
        parts.append(
            "<div style='border-left:4px solid #c5221f;background:#fce8e6;"
            f"padding:6px 10px;margin:6px 0;white-space:pre-wrap'>{esc(str(error))}"
            "</div>"
        )
    if history is not None:
        config = _get(run, "config")
        metric = str(_get(config, "metric", "") or "")
        shown = metric if metric != "loss" else ""
        svg = loss_chart_svg(history, metric=shown)
        parts.append(as_image(svg, _chart_alt(history, shown)))
    metrics = _get(run, "metrics") or (
        history.last_eval.metrics if history is not None and history.last_eval else {}
    )
    if metrics:
        cells = "".join(
            f"<td style='padding:2px 12px 2px 0'><span style='color:#666'>{esc(str(k))}</span> "
            f"<b>{esc(fmt(float(v)) if isinstance(v, (int, float)) else str(v))}</b></td>"
            for k, v in metrics.items()
        )
        parts.append(
            f"<table style='border-collapse:collapse;margin-top:4px'><tr>"
            f"<td style='padding:2px 12px 2px 0;color:#666'>last evaluation</td>"
            f"{cells}</tr></table>"
        )
    if history is not None:
        parts.append(samples_html(history))
    checkpoints = list(_get(run, "checkpoints") or [])
    if checkpoints:
        parts.append(
            f"<div style='color:#666;margin-top:4px'>{len(checkpoints)} checkpoint"
            f"{'s' if len(checkpoints) != 1 else ''}, last: "
            f"<code>{esc(str(checkpoints[-1]))}</code></div>"
        )
    if status not in ENDED_STATUSES:
        parts.append(
            "<div style='color:#888;margin-top:4px'>snapshot taken while the run was "
            f"{esc(status)}; display the run again for the latest state</div>"
        )
    parts.append("</div>")
    return "".join(parts)
