"""Issue #16 item 4 figures: ``lk.compare_runs`` on 10 runs x 10,000 steps (synthetic records).

What a view receives (the widget's state plus its first series message, as JSON + binary
buffers, against the runs' step columns as JSON arrays), the static HTML's size, the time to
read the records and build the comparison and its views, and the time from loading the
harness page in Chromium to the chart drawn.

    python benchmarks/bench_compare.py [--quick]
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "compare"
RUNS, STEPS = 10, 10_000


def _records(root: Path) -> list[Path]:
    from tests.test_compare_runs import write_run

    return [
        write_run(
            root / f"run-{i}",
            name=f"lr {i}",
            steps=STEPS,
            lr=10 ** -(i % 5 + 2),
            rate=0.0004 * (i + 1),
            evals_every=500,
        )
        for i in range(RUNS)
    ]


def _view(folders: list[Path]) -> tuple[Any, dict[str, Any], dict[str, Any], list[bytes]]:
    """(comparison, widget state, first series message, its buffers)."""
    import labkit as lk
    from labkit.ui.compare_view import CompareView
    from tests.test_browser_compare import TRAITS

    comparison = lk.compare_runs(folders)
    view = CompareView(comparison)
    state = {name: getattr(view, name) for name in TRAITS}
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    view.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    view._on_msg(view, {"type": "sync", "have": {}}, [])
    view.close()
    content, buffers = sent[0]
    return comparison, state, content, buffers


def _first_paint(state: dict[str, Any], content: dict[str, Any], buffers: list[bytes]) -> float:
    """Milliseconds from loading the harness page to the chart of every run drawn."""
    from playwright.sync_api import sync_playwright

    from tests._browser import CHROMIUM, CHROMIUM_ARGS, widget_page
    from tests.test_browser_compare import EMIT

    blobs = [base64.b64encode(b).decode() for b in buffers]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        t0 = time.perf_counter()
        widget_page(page, "compare_view", state)
        page.evaluate(EMIT, [content, blobs])
        page.wait_for_function(
            f"document.querySelector('.labkit-cmp-svg').dataset.runs === '{RUNS}'"
        )
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
        ms = (time.perf_counter() - t0) * 1000
        browser.close()
    return ms


def unavailable() -> str | None:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return "the ui extra (anywidget) is not installed"
    return None


def run(quick: bool = False) -> list[dict]:
    import labkit as lk
    from tests._browser import browser_missing

    repeat = 2 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="labkit-bench-compare-"))
    folders = _records(root)
    builds, views = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        comparison = lk.compare_runs(folders)
        comparison.curves()
        builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        comparison, state, content, buffers = _view(folders)
        views.append(time.perf_counter() - t0)
    payload = len(json.dumps(state)) + len(json.dumps(content)) + sum(map(len, buffers))
    steps = [r.history.steps_since(0) for r in comparison.runs]
    as_json = sum(len(json.dumps({k: c[k] for k in ("step", "elapsed", "loss")})) for c in steps)
    t0 = time.perf_counter()
    page = comparison._repr_html_()
    html_s = time.perf_counter() - t0
    row = {"benchmark": NAME, "baseline": None, "ratio": None}
    rows = [
        {
            **row,
            "figure": f"widget payload, {RUNS} runs x {STEPS:,} steps (state + first message)",
            "value": payload,
            "unit": "B",
            "baseline": as_json,
            "ratio": payload / as_json,
            "goal": "bounded (~1,000 points a run), far below the JSON of every step (baseline)",
        },
        {
            **row,
            "figure": "static HTML (_repr_html_)",
            "value": len(page),
            "unit": "B",
            "goal": "a few hundred kB at most",
        },
        {
            **row,
            "figure": f"read {RUNS} records + build the curves",
            "value": statistics.median(builds) * 1000,
            "unit": "ms",
            "goal": "well under 1 s a run",
        },
        {
            **row,
            "figure": "read the records, build the widget, answer its first sync",
            "value": statistics.median(views) * 1000,
            "unit": "ms",
            "goal": "well under 1 s",
        },
        {
            **row,
            "figure": "build the static HTML",
            "value": html_s * 1000,
            "unit": "ms",
            "goal": "well under 1 s",
        },
    ]
    if not browser_missing():
        paint = [_first_paint(state, content, buffers) for _ in range(1 if quick else 3)]
        rows.append(
            {
                **row,
                "figure": "Chromium: harness page load -> chart drawn",
                "value": statistics.median(paint),
                "unit": "ms",
                "goal": "well under 1 s",
            }
        )
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import print_table

    print_table(run(quick="--quick" in sys.argv))
