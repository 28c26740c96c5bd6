"""The panel's Stop answers while a cell keeps the kernel busy (issue 16, item 2).

A widget's button reaches the kernel as a comm message, which the kernel reads only between
cells: during Run All, or while ``run.wait()`` blocks, Stop used to wait for the cell (here: for
ever, a 100,000-step run). A run keeps a record, so in JupyterLab and Notebook 7 the panel
steers it through its folder and labkit's server extension instead: the training thread reads
the control file at its next step.
"""

from __future__ import annotations

import pathlib

import pytest

from tests._browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    """import labkit as lk
model = lk.load_model({model!r}, labels=["negative", "positive"], device="cpu")
data = lk.load_data({rows!r}, labels=["negative", "positive"])
run = lk.finetune(model, data, max_steps=100_000, batch_size=8, output_dir="out")
run""",
    "run.wait(); print('waited:', run.status, 'at step', run.step)",
]


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_stop_answers_while_a_cell_blocks_the_kernel(chromium, tmp_path: pathlib.Path, app):
    from tests._jupyter import (
        app_missing,
        jupyter_server,
        kernel_env,
        open_notebook,
        write_tiny_notebook,
    )

    if app_missing(app):
        pytest.fail(f"Jupyter {app} is missing (make install-dev installs it): {app_missing(app)}")
    write_tiny_notebook(tmp_path / "stop.ipynb", CELLS, rows=24)
    with jupyter_server(tmp_path, app=app, env=kernel_env()) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            open_notebook(page, server, "stop.ipynb")
            # Run All, not awaited (its promise settles when the last cell ends)
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            panel = ".labkit-panel"
            page.wait_for_selector(
                f"{panel} .labkit-status[data-status='running']", timeout=120_000
            )
            # the first cell has returned and the second is running: run.wait() holds the
            # kernel's shell, and the run has taken a few steps
            page.wait_for_function(
                """() => {
                  const p = [...document.querySelectorAll('.jp-InputPrompt')].map((x) => x.textContent);
                  return p.length >= 2 && p[0].includes('[1]') && p[1].includes('[*]');
                }""",
                timeout=60_000,
            )
            page.wait_for_function(
                """() => {
                  const t = document.querySelector('.labkit-panel .labkit-progress-text');
                  return !!t && parseInt(t.textContent.replace(/^step /, ''), 10) >= 3;
                }""",
                timeout=60_000,
            )
            page.locator(f"{panel} button", has_text="Stop").click()
            page.wait_for_selector(
                f"{panel} .labkit-status[data-status='stopped']", timeout=120_000
            )
            page.wait_for_function(
                "() => document.body.innerText.includes('waited: stopped')", timeout=60_000
            )
            screenshot(page, f"panel_stop_{app}")
        finally:
            context.close()
    # the request went through the server (the kernel's shell was busy): its control file
    assert (tmp_path / "out" / "control.json").is_file()
    checkpoints = sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*"))
    assert checkpoints and checkpoints != ["checkpoint-1"], "Stop keeps the last checkpoint"
    assert not (tmp_path / "out" / "checkpoint-100000").exists()  # it stopped early
    assert not [e for e in errors if "labkit" in e], errors
