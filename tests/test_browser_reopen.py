"""A saved notebook reopens with every labkit output readable (issue 14, item 1).

Run All, wait for the live views, save, shut the kernel down, open the notebook again: JupyterLab
alone shows "Error displaying widget: model not found" for each widget output, although the file
holds each output's static snapshot. labkit's JupyterLab extension (jupyterlab/, installed with
the package) shows the snapshot there, and the live view while the kernel holds the model. In
JupyterLab 4 and Notebook 7.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.request

import pytest

from tests._browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the run, an attention view, an explanation and a diff: one cell each, every output live
CELLS = [
    """import labkit as lk
model = lk.load_model({model!r}, labels=["negative", "positive"], device="cpu")
data = lk.load_data({rows!r}, labels=["negative", "positive"])
run = lk.finetune(model, data, max_steps=12, batch_size=8, eval_every=6, output_dir="out")
run""",
    "run.wait(); TEXT = 'a <img src=x onerror=window.__pwned=1> fine film'\n"
    "before = lk.attention(model, TEXT); before",
    "lk.explain(model, TEXT, method='saliency')",
    "lk.attention_diff(before, lk.attention(model, TEXT))",
    "app = lk.App(model=model, data=data); app",
]
LIVE = len(CELLS)  # labkit outputs in the notebook

_SHOWS = """() => [...document.querySelectorAll('.labkit-output')]
  .filter((el) => el.offsetParent !== null || el.closest('.jp-Cell'))
  .map((el) => el.dataset.labkitShows || '')"""


def _shut_down_kernels(server) -> None:
    """What File > Close and Shut Down does to the kernel (the page is left alone)."""
    for session in server.api("sessions"):
        req = urllib.request.Request(
            f"{server.url}/api/sessions/{session['id']}",
            method="DELETE",
            headers={"Authorization": f"token {server.token}"},
        )
        urllib.request.urlopen(req, timeout=10).close()


def _wait_shows(page, want: str, n: int, timeout: float = 120_000) -> list[str]:
    page.wait_for_function(
        f"() => {{ const s = ({_SHOWS})(); return s.length >= {n} && "
        f"s.every((x) => x === {want!r}); }}",
        timeout=timeout,
    )
    return page.evaluate(_SHOWS)


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_a_saved_notebook_reopens_with_its_snapshots(chromium, tmp_path: pathlib.Path, app):
    from tests._jupyter import (
        app_missing,
        jupyter_server,
        kernel_env,
        open_notebook,
        run_all,
        write_tiny_notebook,
    )

    if app_missing(app):
        pytest.fail(f"Jupyter {app} is missing (make install-dev installs it): {app_missing(app)}")
    write_tiny_notebook(tmp_path / "reopen.ipynb", CELLS, rows=24)
    with jupyter_server(tmp_path, app=app, env=kernel_env()) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            # 1. while the kernel lives: every labkit output is its live view
            open_notebook(page, server, "reopen.ipynb")
            run_all(page)
            page.wait_for_selector(
                ".labkit-panel .labkit-status[data-status='finished']", timeout=120_000
            )
            assert _wait_shows(page, "live", LIVE) == ["live"] * LIVE
            screenshot(page, f"reopen_{app}_live")
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                timeout=30_000,
            )
            saved = json.loads((tmp_path / "reopen.ipynb").read_text())
            outputs = [o for c in saved["cells"] for o in c.get("outputs", [])]
            marked = [o for o in outputs if "application/vnd.labkit.view+json" in o.get("data", {})]
            assert len(marked) == LIVE, [sorted(o.get("data", {})) for o in outputs]
            assert all("text/html" in o["data"] for o in marked)
            # 2. close and shut down, then open it again: a new kernel, no widget models
            _shut_down_kernels(server)
            page.close()
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            open_notebook(page, server, "reopen.ipynb")
            assert _wait_shows(page, "snapshot", LIVE) == ["snapshot"] * LIVE
            body = page.inner_text("body")
            assert "Error displaying widget" not in body
            # the static DOM: the run's final state with its chart, the views' snapshots
            run_html = page.inner_text(".labkit-output .labkit-snapshot .labkit-run")
            assert "finished" in run_html and "step 12" in run_html
            chart = ".labkit-output .labkit-snapshot .labkit-run img.labkit-chart"
            assert page.locator(chart).count() == 1
            assert page.evaluate(f"document.querySelector({chart!r}).naturalWidth") > 0
            snapshots = page.locator(".labkit-output .labkit-snapshot")
            assert snapshots.count() == LIVE
            for i in range(LIVE):
                assert snapshots.nth(i).inner_text().strip(), f"snapshot {i} is empty"
            assert "<img src=x onerror=window.__pwned=1>" in body  # the token, as text
            assert page.evaluate("window.__pwned") is None
            assert "labkit App" in page.inner_text(
                ".labkit-output .labkit-snapshot .labkit-app-snapshot"
            )
            screenshot(page, f"reopen_{app}_snapshot")
            # 3. opened where no kernel can start (its kernelspec is not installed here): no
            # widget manager ever answers, and the snapshots show all the same
            _shut_down_kernels(server)
            page.close()
            saved = json.loads((tmp_path / "reopen.ipynb").read_text())
            # neither its name nor its language matches a kernel here: nothing starts
            saved["metadata"]["kernelspec"] = {
                "name": "no-such-kernel",
                "display_name": "No such kernel",
                "language": "no-such-language",
            }
            saved["metadata"].pop("language_info", None)
            (tmp_path / "nokernel.ipynb").write_text(json.dumps(saved))
            # the user's own notebook, trusted as a saved one is (an untrusted notebook shows
            # JupyterLab's sanitized text/html, never a widget)
            subprocess.run(
                [sys.executable, "-m", "jupyter", "trust", str(tmp_path / "nokernel.ipynb")],
                env=server.env,
                check=True,
                capture_output=True,
            )
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            # ?reset: JupyterLab would restore the last layout, reopen.ipynb in front
            page.goto(server.notebook_url("nokernel.ipynb") + "&reset")
            page.wait_for_function(
                """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                  return !!w && !!w.context && w.context.path === 'nokernel.ipynb'; }""",
                timeout=60_000,
            )
            assert _wait_shows(page, "snapshot", LIVE) == ["snapshot"] * LIVE
            assert "Error displaying widget" not in page.inner_text("body")
            no_kernel = (
                "() => !window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel"
            )
            assert page.evaluate(no_kernel)
            screenshot(page, f"reopen_{app}_no_kernel")
            assert not [e for e in errors if "labkit" in e], errors
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            screenshot(page, f"reopen_{app}_failure")
            raise
        finally:
            context.close()
