"""The static snapshot of a run (nbviewer, GitHub, a notebook reopened without its kernel) and
the small SVG chart builder it uses."""

from __future__ import annotations

import base64
import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from labkit.events import EvalEnd, Saved
from labkit.render.run import loss_chart_svg, run_html
from labkit.render.svgchart import Series, ema, line_chart, log_ticks, nice_ticks
from tests.test_panel import Run


def _svg(html: str) -> ET.Element:
    """The chart of a run's snapshot: an SVG image as a data URI (sanitizers that strip inline
    SVG, in untrusted notebooks and on GitHub, keep it), well-formed XML."""
    match = re.search(
        r"<img class='labkit-chart' alt='([^']*)'[^>]* src='data:image/svg\+xml;base64,([^']+)'",
        html,
    )
    assert match, "no chart image"
    assert match.group(1).startswith("loss chart")  # what it shows, where images are off
    return ET.fromstring(base64.b64decode(match.group(2)).decode("utf-8"))


def _points(path_d: str) -> int:
    return len(re.findall(r"[ML]", path_d))


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 1.0), (0.013, 0.0171), (3, 99_000), (-2.5, 7.1), (5.0, 5.0)]
)
def test_nice_ticks_are_round_and_cover_the_range(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 11
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced
    mantissa = steps.pop() / 10 ** math.floor(math.log10(ticks[1] - ticks[0]))
    assert round(mantissa, 6) in (1, 2, 5)
    assert all(min(lo, hi) - 1 <= t <= max(lo, hi) + 1 for t in ticks)


def test_log_ticks_use_decades_and_fill_short_ranges() -> None:
    assert log_ticks(0.001, 10) == [0.001, 0.01, 0.1, 1, 10]
    assert log_ticks(0.2, 0.9) == [0.2, 0.5]
    assert log_ticks(-1, 1) == []
    narrow = log_ticks(0.0198, 0.0247)  # no 1/2/5 value inside: round linear values
    assert len(narrow) >= 2 and all(0.0198 <= t <= 0.0247 for t in narrow)


def test_ema_is_debiased_and_keeps_gaps() -> None:
    out = ema([2.0, None, 2.0, float("nan"), 4.0], 0.9)
    assert out[0] == pytest.approx(2.0)  # no pull towards zero at the start
    assert out[1] is None and out[3] is None
    assert 2.0 < out[4] < 4.0  # type: ignore[operator]
    assert ema([1.0, 5.0], 0.0) == [1.0, 5.0]
    with pytest.raises(ValueError, match="smoothing"):
        ema([1.0], 1.0)


def test_line_chart_breaks_lines_at_gaps_and_escapes_labels() -> None:
    svg = line_chart(
        [1, 2, 3, 4], [Series("<b>a</b>", [1.0, None, 2.0, 3.0])], y_label="x<y", title="t&t"
    )
    root = ET.fromstring(svg)
    d = next(e for e in root.iter("{http://www.w3.org/2000/svg}path")).get("d")
    assert d.count("M") == 2  # the gap starts a new segment
    assert "<b>" not in svg and "&lt;b&gt;a&lt;/b&gt;" in svg and "x&lt;y" in svg


def test_line_chart_without_data_says_so() -> None:
    svg = line_chart([], [Series("loss", [])])
    assert "no data yet" in svg
    ET.fromstring(svg)


def test_long_histories_stay_small() -> None:
    run = Run(total=100_000)
    run.steps(100_000)
    svg = loss_chart_svg(run.history)
    paths = [e.get("d") for e in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}path")]
    assert paths and all(_points(d) <= 800 for d in paths)
    assert len(svg) < 60_000


def test_snapshot_of_a_finished_run_has_chart_metrics_and_checkpoints() -> None:
    run = Run(total=60)
    run.steps(60)
    run.history.record(EvalEnd(step=30, metrics={"loss": 0.7, "accuracy": 0.6, "f1": 0.55}))
    run.history.record(EvalEnd(step=60, metrics={"loss": 0.5, "accuracy": 0.8, "f1": 0.79}))
    run.history.record(Saved(step=60, path="/runs/x/checkpoint-60"))
    run.end("finished")
    html = run_html(run)
    svg = _svg(html)
    circles = list(svg.iter("{http://www.w3.org/2000/svg}circle"))
    assert len([c for c in circles if c.get("r") == "3.5"]) >= 4  # 2 val loss + 2 f1 (config)
    assert "val f1" in ET.tostring(svg, encoding="unicode")  # the chosen metric, second axis
    assert "validation f1 0.79" in html  # and in the chart's alt text
    assert "finished" in html and "step 60 / 60" in html
    assert "0.79" in html and "checkpoint-60" in html
    assert "<script" not in html and "<style" not in html
    assert "display the run again" not in html


def test_snapshot_escapes_everything_and_shows_the_error() -> None:
    run = Run(total=10)
    run.model.name = "<img src=x onerror=alert(1)>"
    run.steps(3)
    run.history.record(EvalEnd(step=3, metrics={"<i>m</i>": 0.5}))
    run.end("failed", error="ValueError: </div><script>alert(1)</script>")
    html = run_html(run)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<i>m</i>" not in html and "&lt;i&gt;m&lt;/i&gt;" in html
    assert "failed" in html


def test_snapshot_of_a_run_that_has_not_started() -> None:
    run = Run(total=10)
    html = run_html(run)
    assert "pending" in html and "display the run again" in html
    assert "no data yet" in ET.tostring(_svg(html), encoding="unicode")


SVG = "{http://www.w3.org/2000/svg}"


def _frame(root: ET.Element) -> tuple[float, float, float, float]:
    """The plot area: the frame rectangle drawn around it (x0, y0, x1, y1)."""
    (rect,) = [r for r in root.iter(f"{SVG}rect") if r.get("stroke") == "#ccc"]
    x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
    return x, y, x + float(rect.get("width", 0)), y + float(rect.get("height", 0))


def test_markers_at_the_last_step_and_the_axis_ends_are_drawn_whole() -> None:
    """Validation points at the last step and at the top/bottom of both axes stay inside the
    plot area by their whole radius (they were cut in half at the right edge)."""
    run = Run(total=60)
    run.steps(60)  # training loss 2/(1 + 0.05 step): 1.90 .. 0.5, the loss axis is 0.5 .. 2
    run.history.record(EvalEnd(step=1, metrics={"loss": 2.0, "accuracy": 0.6, "f1": 0.6}))
    run.history.record(EvalEnd(step=60, metrics={"loss": 0.5, "accuracy": 1.0, "f1": 1.0}))
    root = ET.fromstring(loss_chart_svg(run.history, metric="accuracy"))
    _, _, width, height = (float(v) for v in root.get("viewBox", "").split())
    x0, y0, x1, y1 = _frame(root)
    markers = [c for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None]
    assert len(markers) == 4  # 2 validation losses + 2 accuracies
    for c in root.iter(f"{SVG}circle"):  # every dot, the legend's too, inside the picture
        cx, cy, r = (float(c.get(k, 0)) for k in ("cx", "cy", "r"))
        assert cx - r >= 0 and cx + r <= width and cy - r >= 0 and cy + r <= height
    edges = {"left": False, "right": False, "top": False, "bottom": False}
    for c in markers:
        cx, cy, r = (float(c.get(k, 0)) for k in ("cx", "cy", "r"))
        where = c.find(f"{SVG}title").text  # type: ignore[union-attr]
        assert x0 <= cx - r and cx + r <= x1, f"{where}: x {cx}±{r} outside {x0}..{x1}"
        assert y0 <= cy - r and cy + r <= y1, f"{where}: y {cy}±{r} outside {y0}..{y1}"
        edges["left"] |= cx - r - x0 < 8
        edges["right"] |= x1 - cx - r < 8
        edges["top"] |= cy - r - y0 < 8
        edges["bottom"] |= y1 - cy - r < 8
    assert all(edges.values()), edges  # the markers do sit at the plot's four edges


def test_snapshot_names_the_run_and_counts_seconds_from_its_start() -> None:
    run = Run(total=60)
    run.name = "tiny-bert · LoRA r=8"  # type: ignore[attr-defined]
    run.history.mark_start(1000.0)
    run.steps(60, t0=1000.0, dt=0.5)  # the first step ends at 1000.5, the last at 1030
    html = run_html(run)
    assert "<b>tiny-bert · LoRA r=8</b>" in html
    assert "30s elapsed" in html  # from the start, not from the first step's end (29s)


# -- a causal LM's sample generations ----------------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>"
QUESTION = "Review: a gorgeous, witty movie. Is this review positive or negative?"


def _lm_run(answers: list[str], *, prompts: tuple[str, ...] = (QUESTION, "2 + 2 =")) -> Run:
    """A fake run of a causal LM: one evaluation and one Samples every 10 steps."""
    from labkit.events import Samples

    run = Run(total=10 * len(answers))
    run.config.metric = "loss"
    for i, answer in enumerate(answers):
        run.steps(10)
        step = 10 * (i + 1)
        run.history.record(EvalEnd(step=step, metrics={"loss": 2.0 / (i + 1), "perplexity": 7.4}))
        run.history.record(Samples(step=step, prompts=prompts, texts=(answer, f"{i}")))
    return run


def test_snapshot_shows_the_latest_samples_and_how_the_first_answer_changed() -> None:
    run = _lm_run(["neg", "negative", "positive"])
    run.end("finished")
    html = run_html(run)
    assert "sample generations at step 30" in html
    # the prompt muted, its generation bold, both keeping their line breaks
    assert f"<div style='color:#666;white-space:pre-wrap'>{QUESTION}</div>" in html
    assert "<div style='font-weight:600;white-space:pre-wrap'>positive</div>" in html
    assert "<div style='font-weight:600;white-space:pre-wrap'>2</div>" in html
    assert ">negative</div>" not in html  # only the latest generations in full
    answers = re.findall(r"step (\d+):</span> ([^<]*)</div>", html)
    assert answers == [("10", "neg"), ("20", "negative"), ("30", "positive")]
    assert "<script" not in html and "<style" not in html


def test_snapshot_samples_are_escaped_and_long_ones_cut() -> None:
    long_prompt = "Review: " + "very " * 300 + "good. Is this review positive or negative?"
    long_text = "positive " * 200
    run = _lm_run([HOSTILE, long_text], prompts=(long_prompt, f"{HOSTILE}</div>"))
    html = run_html(run)
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;/div&gt;" in html  # the second prompt
    assert "step 10:</span> &lt;img src=x onerror=alert(1)&gt;</div>" in html  # an answer
    shown_prompt, _ = re.findall(r"color:#666;white-space:pre-wrap'>([^<]*)</div>", html)
    assert len(shown_prompt) < 200 < len(long_prompt)
    # cut in the middle: the instruction's question at its end stays
    assert shown_prompt.startswith("Review: very") and shown_prompt.endswith("negative?")
    assert "…" in shown_prompt
    (shown_text, _) = re.findall(r"font-weight:600;white-space:pre-wrap'>([^<]*)</div>", html)
    assert shown_text.endswith("…") and len(shown_text) < len(long_text)


def test_snapshot_lists_the_last_answers_of_a_long_run() -> None:
    run = _lm_run([f"answer {i}" for i in range(12)])
    html = run_html(run)
    answers = re.findall(r"step (\d+):</span>", html)
    assert answers == [str(10 * i) for i in range(5, 13)]  # the last eight evaluations
    assert "(4 earlier not shown)" in html
    one = run_html(_lm_run(["only one"]))
    assert "sample generations at step 10" in one and "step 10:</span>" not in one


def test_a_classifier_snapshot_has_no_samples() -> None:
    run = Run(total=20)
    run.steps(20)
    run.history.record(EvalEnd(step=20, metrics={"loss": 0.5, "accuracy": 0.8}))
    run.end("finished")
    html = run_html(run)
    assert "labkit-samples" not in html and "sample generations" not in html
    assert "answer at each evaluation" not in html


def test_snapshot_shows_white_space_answers_visibly() -> None:
    run = _lm_run([" negative\n", "\n\n"])
    html = run_html(run)
    assert "<div style='font-weight:600;white-space:pre-wrap'>↵↵</div>" in html  # latest
    answers = re.findall(r"step (\d+):</span> ([^<]*)</div>", html)
    assert answers == [("10", "negative"), ("20", "↵↵")]  # not a blank: the model wrote that
