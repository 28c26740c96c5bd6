"""The comparison widget in a real browser: widgets/compare_view.js against a fake model fed with
what a real CompareView sends for 10 runs of 10,000 steps."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

import labkit as lk
from tests._browser import screenshot, widget_page
from tests.test_compare_runs import write_run

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "</script><script>window.__pwned=1</script>"
TRAITS = (
    "runs",
    "metric",
    "metric_names",
    "x_axis",
    "log_scale",
    "hidden",
    "finals",
    "config",
    "live",
    "_key",
)

# deliver one "series" message: its content and its buffers (base64) as the kernel sends them
EMIT = """([content, blobs]) => {
  const views = blobs.map((b64) => {
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new DataView(bytes.buffer);
  });
  window.__model.emit(content, views);
}"""


def view_payload(folders: list[Path]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(state, series message, its buffers as base64) of a CompareView of ``folders``."""
    from labkit.ui.compare_view import CompareView

    view = CompareView(lk.compare_runs(folders))
    state = {name: getattr(view, name) for name in TRAITS}
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    view.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    view._on_msg(view, {"type": "sync", "have": {}}, [])
    view.close()
    content, blobs = sent[0]
    return state, content, [base64.b64encode(b).decode() for b in blobs]


@pytest.fixture(scope="module")
def ten_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("cmp10")
    return [
        write_run(
            root / f"r{i}",
            name=HOSTILE if i == 3 else f"lr {i}",
            steps=10_000,
            lr=10 ** -(i % 5 + 2),
            rate=0.0004 * (i + 1),
            evals_every=1_000,
            seconds_per_step=0.05 * (1 + i),
            config={"sample_prompts": [SCRIPT]} if i == 3 else None,
        )
        for i in range(10)
    ]


def test_ten_long_runs_render_toggle_hover_and_escape(page, ten_runs) -> None:
    state, content, blobs = view_payload(ten_runs)
    widget_page(page, "compare_view", state)
    sent = page.evaluate("window.__model.sent.map((s) => s.msg)")
    assert sent == [{"type": "sync", "have": {}}]  # it asks for the curves at once
    page.evaluate(EMIT, [content, blobs])
    page.wait_for_function("document.querySelector('.labkit-cmp-svg').dataset.runs === '10'")
    assert page.locator(".labkit-cmp-smooth").count() == 10
    assert page.locator(".labkit-cmp-raw").count() == 10
    assert page.locator(".labkit-cmp-val").count() == 100  # 10 evaluations each
    points = int(page.get_attribute(".labkit-cmp-svg", "data-points"))
    assert 10 * 500 < points <= 10 * 1_000
    keys = page.locator(".labkit-cmp-key")
    assert keys.count() == 10
    assert keys.nth(3).inner_text().startswith(HOSTILE)  # shown as text
    assert page.locator(".labkit-cmp img").count() == 0
    assert SCRIPT in page.inner_text(".labkit-cmp-config")  # a config value, as text
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__model.get('metric')") == "accuracy"
    assert page.locator(".labkit-cmp-metric-svg .labkit-cmp-mline").count() == 10
    assert page.locator(".labkit-cmp-finals tbody tr").count() == 10
    assert "lr" in page.inner_text(".labkit-cmp-config")
    screenshot(page, "compare_10x10000")

    keys.nth(0).click()  # the legend hides a run
    assert page.evaluate("window.__model.get('hidden')") == [0]
    page.wait_for_function("document.querySelector('.labkit-cmp-svg').dataset.runs === '9'")
    assert keys.nth(0).get_attribute("aria-pressed") == "false"
    page.check(".labkit-cmp-toolbar input[type=checkbox]")  # log scale
    assert page.evaluate("window.__model.get('log_scale')") is True
    page.wait_for_function(
        "[...document.querySelectorAll('.labkit-cmp-axes text')].some((t) => "
        "t.textContent === 'loss (log)')"
    )
    box = page.locator(".labkit-cmp-plot .labkit-cmp-svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    readout = page.locator(".labkit-cmp-readout")
    readout.wait_for(state="visible")
    assert page.locator(".labkit-cmp-readout .labkit-cmp-row").count() == 9
    assert "val loss" in readout.inner_text() and "accuracy" in readout.inner_text()
    page.select_option(".labkit-cmp-x", "time")  # aligned by seconds since each start
    assert page.evaluate("window.__model.get('x_axis')") == "time"
    page.wait_for_function(
        "[...document.querySelectorAll('.labkit-cmp-axes text')].some((t) => "
        "t.textContent === 'seconds since the run began')"
    )
    screenshot(page, "compare_10x10000_time_log")
    assert page.blocked == [] and page.console_errors == []


def test_a_run_without_steps_says_so_in_the_legend(page, tmp_path) -> None:
    a = write_run(tmp_path / "a", name="a", steps=50, evals_every=10)
    fresh = write_run(tmp_path / "b", name="fresh", steps=0, ended=False)
    state, content, blobs = view_payload([a, fresh])
    widget_page(page, "compare_view", state)
    page.evaluate(EMIT, [content, blobs])
    page.wait_for_function("document.querySelector('.labkit-cmp-svg').dataset.runs === '2'")
    assert page.locator(".labkit-cmp-key").nth(1).inner_text().startswith("fresh")
    assert page.locator(".labkit-cmp-key").nth(1).locator(".labkit-cmp-nosteps").count() == 1
    assert page.locator(".labkit-cmp-smooth").count() == 2  # an empty path for the fresh run
    # the fresh run grew: the trait says so, and the view asks for what it lacks
    grown = [dict(r) for r in state["runs"]]
    grown[1] = {**grown[1], "steps": 5, "version": grown[1]["version"] + 1}
    page.evaluate("(runs) => window.__model.set('runs', runs)", grown)
    page.wait_for_function("window.__model.sent.length === 2")
    versions = {str(i): r["version"] for i, r in enumerate(state["runs"])}
    assert page.evaluate("window.__model.sent[1].msg") == {"type": "sync", "have": versions}
    # the legend is redrawn on the next frame
    page.wait_for_function("document.querySelectorAll('.labkit-cmp-nosteps').length === 0")
    assert page.console_errors == []


def test_static_snapshot_in_chromium_shows_hostile_text_as_text(page, ten_runs) -> None:
    html = lk.compare_runs(ten_runs[:4])._repr_html_()
    page.set_content(f"<!doctype html><meta charset='utf-8'><body>{html}</body>")
    page.wait_for_function("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    assert page.locator("img").count() == 2  # the two charts, as SVG data images
    text = page.inner_text("body")
    assert HOSTILE in text and SCRIPT in text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("script").count() == 0
