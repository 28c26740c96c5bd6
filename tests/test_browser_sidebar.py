"""The "labkit runs" sidebar and the launcher card (issue 16), in JupyterLab 4 and Notebook 7.

A run started from a terminal (``labkit train`` in the server's folder) shows in the sidebar
while it trains; clicking it opens its live chart (labkit's anywidget panel, fed from the run's
record through the server extension), whose points grow; Stop, in the chart or in the sidebar,
ends it as "stopped" with a checkpoint on disk. The run's name is an HTML tag: it must show as
text everywhere. The launcher's "labkit" card makes a notebook whose first cell opens the lab,
and runs it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import _tiny
from tests._browser import screenshot
from tests._jupyter import app_missing, jupyter_server, kernel_env
from tests.test_panel import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = "<img src=x onerror=window.__xss=1>"
APP_CELL = "import labkit as lk\nlk.App()"
RUN = "runs/xss"  # the run's folder under the root: its id in the sidebar
POINTS = ".labkit-run-view svg.labkit-svg"


@contextlib.contextmanager
def _training(root: Path, out: str | Path = RUN) -> Iterator[subprocess.Popen[bytes]]:
    """``labkit train`` on a tiny BERT and a small csv in ``root``, writing its run to ``out``
    (relative to ``root``), with steps enough to watch (it runs until a test stops it)."""
    model = _tiny.build("bert", root / "tiny-bert")
    data = root / "reviews.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(_tiny.toy_rows(32))
    cmd = [
        sys.executable,
        "-m",
        "labkit",
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--labels",
        "negative,positive",
        "--device",
        "cpu",
        "--max-steps",
        "100000",
        "--batch-size",
        "4",
        "--eval-every",
        "100",
        "--no-progress",
        "--output-dir",
        str(out),
        "--name",
        XSS,
    ]
    log = root / "train.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env={**os.environ, **_env(root)}, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _env(root: Path) -> dict[str, str]:
    """The kernel environment with a registry of this test's own: the sidebar lists this
    test's runs, not every run the test session started."""
    return {**kernel_env(), "LABKIT_STATE_DIR": str(root / "labkit-state")}


def _open(chromium: Any, url: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(f"{e}\n{e.stack}"))
    page.goto(url)
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)")
    return page


def _points(page: Any) -> int:
    return int(page.get_attribute(POINTS, "data-points") or 0)


def _labkit_errors(page: Any) -> list[str]:
    """Uncaught errors raised in labkit's own front end (its files are served from
    .../labextensions/labkit-jupyterlab/)."""
    return [e for e in page.errors if "labkit-jupyterlab" in e]


def _row(run_id: str) -> str:
    return f'.labkit-runs-item[data-id="{run_id}"]'


def _assert_run_shows_as_text(page: Any, row: str) -> None:
    assert page.text_content(f"{row} .labkit-runs-name") == XSS
    assert page.locator(".labkit-runs img, .labkit-run-view img").count() == 0
    assert page.evaluate("() => window.__xss") is None


def _wait_stopped(
    page: Any, row: str, proc: subprocess.Popen[bytes], folder: Path, log: Path
) -> None:
    page.wait_for_selector(f'{row}[data-status="stopped"]', timeout=90_000)
    assert page.text_content(f"{row} .labkit-runs-badge") == "stopped"
    assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    saved = sorted(folder.glob("checkpoint-*"))
    assert saved and (saved[-1] / "config.json").is_file(), list(folder.iterdir())
    header = json.loads((folder / "events.jsonl").read_text().splitlines()[0])
    assert header["kind"] == "Run" and header["name"] == XSS


def test_jupyterlab_launcher_card_sidebar_chart_and_stop(chromium, tmp_path: Path) -> None:
    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    with _training(tmp_path) as proc, jupyter_server(tmp_path, env=_env(tmp_path)) as server:
        page = _open(chromium, f"{server.url}/lab?token={server.token}")
        row = _row(RUN)

        # the launcher card: a notebook in the launcher's folder whose first cell opens the lab
        card = page.locator('.jp-LauncherCard:has(.jp-LauncherCard-label :text-is("labkit"))')
        card.wait_for()
        shots = [screenshot(page, "sidebar-lab-launcher")]
        card.click()
        page.wait_for_function(
            """(src) => { const w = window.jupyterapp.shell.currentWidget;
              const cell = w && w.content && w.content.widgets && w.content.widgets[0];
              return !!cell && cell.model.sharedModel.source === src; }""",
            arg=APP_CELL,
        )
        path = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
        saved = json.loads((tmp_path / path).read_text())
        assert "".join(saved["cells"][0]["source"]) == APP_CELL
        assert saved["cells"][1]["cell_type"] == "markdown"
        assert "quickstart" in "".join(saved["cells"][1]["source"])

        # the sidebar lists the terminal's run; its name is text
        page.click('.lm-TabBar-tab[data-id="labkit-runs"]')
        page.wait_for_selector(f"{row}[data-status='running']", timeout=90_000)
        _assert_run_shows_as_text(page, row)
        assert page.text_content(f"{row} .labkit-runs-where") == RUN

        # clicking it opens the live chart, which grows as the run trains
        page.click(f"{row} .labkit-runs-name")
        page.wait_for_function(
            f"() => Number(document.querySelector('{POINTS}')?.dataset.points) > 0",
            timeout=60_000,
        )
        first = _points(page)
        page.wait_for_function(
            f"(n) => Number(document.querySelector('{POINTS}').dataset.points) > n",
            arg=first,
            timeout=60_000,
        )
        assert page.text_content(".labkit-run-view .labkit-title") == XSS
        spark = page.get_attribute(f"{row} .labkit-runs-spark path", "d") or ""
        assert spark.startswith("M") and "L" in spark  # a line through the loss so far

        # the cell the card ran has finished: the App is there (no error output)
        page.wait_for_function(
            """() => { const nb = [...window.jupyterapp.shell.widgets('main')]
                .find((w) => w.content && w.content.widgets);
              const cell = nb && nb.content.widgets[0];
              return !!cell && cell.model.executionCount !== null; }""",
            timeout=180_000,
        )
        outputs = page.evaluate(
            """() => { const nb = [...window.jupyterapp.shell.widgets('main')]
                .find((w) => w.content && w.content.widgets);
              return nb.content.widgets[0].model.outputs.toJSON(); }"""
        )
        assert outputs and all(o["output_type"] != "error" for o in outputs), outputs

        page.click(f"{row} .labkit-runs-name")  # the chart in front again for the pictures
        shots.append(screenshot(page, "sidebar-lab-light"))
        page.evaluate(
            "() => window.jupyterapp.commands.execute('apputils:change-theme',"
            " {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
        page.wait_for_timeout(500)  # the theme's stylesheet swaps in after the attribute
        shots.append(screenshot(page, "sidebar-lab-dark"))

        # the chart's Pause holds the terminal's run, Save writes a checkpoint while it waits,
        # Resume lets it go on; then Stop ends it: stopped, with a checkpoint written
        view = ".labkit-run-view"
        page.click(f"{view} .labkit-pause")
        page.wait_for_selector(f'{row}[data-status="paused"]', timeout=60_000)
        page.wait_for_selector(f'{view} .labkit-status[data-status="paused"]', timeout=30_000)
        assert page.inner_text(f"{view} .labkit-pause") == "Resume"
        page.wait_for_timeout(1500)  # the chart reads the last rows written before the hold
        held = _points(page)
        saved = set((tmp_path / RUN).glob("checkpoint-*/config.json"))
        page.click(f"{view} .labkit-save")
        wait_for(
            lambda: set((tmp_path / RUN).glob("checkpoint-*/config.json")) - saved,
            timeout=60,
            what="the checkpoint Save asked for",
        )
        page.wait_for_timeout(1500)  # a paused run takes no step, however often the chart reads
        assert _points(page) == held
        page.click(f"{view} .labkit-pause")  # now "Resume"
        page.wait_for_selector(f'{row}[data-status="running"]', timeout=60_000)
        page.wait_for_function(
            f"(n) => Number(document.querySelector('{POINTS}').dataset.points) > n",
            arg=held,
            timeout=60_000,
        )
        page.click(f"{view} .labkit-stop")
        _wait_stopped(page, row, proc, tmp_path / RUN, tmp_path / "train.log")
        page.wait_for_selector(
            '.labkit-run-view .labkit-status[data-status="stopped"]', timeout=30_000
        )
        _assert_run_shows_as_text(page, row)
        assert not _labkit_errors(page), page.errors
        assert all(p.is_file() for p in shots)


def test_notebook7_sidebar_shows_a_run_from_elsewhere_on_this_machine(
    chromium, tmp_path: Path
) -> None:
    """Notebook 7's tree page has the sidebar too. The run's folder is outside the server's
    root: it comes from labkit's registry of this machine's runs, as "this machine"."""
    if app_missing("notebook"):
        pytest.fail(f"Notebook 7 is missing (make install-dev): {app_missing('notebook')}")
    root, folder = tmp_path / "root", (tmp_path / "elsewhere" / "xss").resolve()
    root.mkdir()
    row = _row("machine/" + hashlib.sha1(str(folder).encode()).hexdigest()[:16])
    with (
        _training(tmp_path, folder) as proc,
        jupyter_server(root, app="notebook", env=_env(tmp_path)) as server,
    ):
        page = _open(chromium, f"{server.url}/tree?token={server.token}")
        # the sidebar is there on the tree page (a folded side panel until shown)
        page.wait_for_selector("#labkit-runs", state="attached")
        page.evaluate("() => window.jupyterapp.commands.execute('labkit:show-runs')")
        page.wait_for_selector(f"{row}[data-status='running']", timeout=90_000)
        _assert_run_shows_as_text(page, row)
        assert page.text_content(f"{row} .labkit-runs-where") == "this machine"

        # Notebook 7's pages hold one main widget: the chart opens in the right-hand panel
        page.click(f"{row} .labkit-runs-name")
        page.wait_for_function(
            f"() => Number(document.querySelector('{POINTS}')?.dataset.points) > 0",
            timeout=60_000,
        )
        screenshot(page, "sidebar-notebook7")

        # the sidebar's own Stop
        page.click(f"{row} .labkit-runs-stop")
        _wait_stopped(page, row, proc, folder, tmp_path / "train.log")
        assert page.is_hidden(f"{row} .labkit-runs-stop")
        _assert_run_shows_as_text(page, row)
        # (Notebook 7's tree page itself raises a TypeError when a side panel opens, from its
        # settings code; only labkit's own errors count here)
        assert not _labkit_errors(page), page.errors
