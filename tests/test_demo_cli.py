"""`labkit demo`, the main job, end to end (small): before/after, checkpoint, report."""

from __future__ import annotations

import contextlib
import io

import pytest

from labkit.cli import main

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    argv = ["demo", "--max-steps", "4", "--eval-rows", "32", "--output-dir", str(out)]
    with contextlib.redirect_stdout(printed):
        code = main([*argv, "--no-progress"])
    return code, out, printed.getvalue()


def test_demo_evaluates_trains_and_writes_a_checkpoint(demo_run):
    code, out, printed = demo_run
    assert code == 0
    assert (out / "checkpoint-4").is_dir()
    assert (out / "report.html").is_file()
    # --eval-rows: before and after are scored on the first 32 test texts
    assert "test=32" in printed
    assert printed.count("test split: accuracy=") == 3  # before; then before and after
    assert printed.count("(n=32)") == 3


def test_eval_rows_below_one_is_refused_before_any_work(tmp_path, capsys):
    code = main(["demo", "--eval-rows", "0", "--output-dir", str(tmp_path / "demo")])
    assert code == 1
    assert "--eval-rows must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


@pytest.mark.browser
def test_report_opens_offline_in_chromium_with_no_request(demo_run, page):
    _, out, _ = demo_run
    report = out / "report.html"
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
    assert headings[:3] == [
        "Accuracy before and after finetuning",
        "Training",
        "Classification report after finetuning",
    ]
    assert any(h.startswith("Attention for:") for h in headings)
    assert sum(h.startswith("Explanation:") for h in headings) == 3
    # the loss curve, an SVG image inline (a data URI, which the CSP allows)
    assert page.locator("section img[src^='data:image/svg+xml']").count() >= 1
    assert requests == [report.as_uri()]
    assert not page.console_errors
    csp = page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
    assert "default-src 'none'" in csp
