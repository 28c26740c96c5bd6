"""The panel in a real browser: the front-end module against a fake model (fast), and the whole
thing in JupyterLab on loopback with a real run of a tiny model (Stop from the page)."""

from __future__ import annotations

import json
import pathlib
import sys
import time

import pytest

from tests._browser import screenshot, widget_page
from tests._jupyter import kernel_env

pytestmark = pytest.mark.browser

STATE = {
    "_kind": "panel",
    "_key": "k1",
    "rows": 0,
    "n_evals": 0,
    "smoothing": 0.6,
    "log_scale": False,
    "window": 0,
    "metric": "",
    "status": "running",
    "ended": False,
    "step": 150,
    "total_steps": 400,
    "epoch": 0.75,
    "samples_per_s": 123.4,
    "eta_s": 95.0,
    "device": "cpu",
    "gpu_memory": "",
    "metrics": {"loss": 0.41, "accuracy": 0.83},
    "checkpoints": [],
    "error": "",
    "notice": "",
    "title": "tiny <b>bert</b>",
}

# deliver rows start..start+n (loss = 2/(1+0.02*step)) as the kernel does: one buffer a column
EMIT = """([start, n, evalsStart, evals, reply]) => {
  const step = new Float64Array(n), epoch = new Float32Array(n), loss = new Float32Array(n),
        lr = new Float32Array(n);
  for (let i = 0; i < n; i++) { const s = start + i + 1; step[i] = s; epoch[i] = s / 200;
    loss[i] = 2 / (1 + 0.02 * s); lr[i] = 1e-3; }
  window.__model.emit({type: "rows", start, n, cols: ["step", "epoch", "loss", "lr"],
                       evals_start: evalsStart, evals, reply},
                      [step, epoch, loss, lr].map((a) => new DataView(a.buffer)));
}"""


def _points(page) -> int:
    return int(page.get_attribute(".labkit-svg", "data-points"))


def _syncs(page) -> list[dict]:
    return page.evaluate("window.__model.sent.map((s) => s.msg).filter((m) => m.type === 'sync')")


def test_view_asks_for_history_keeps_new_points_and_resyncs_on_a_gap(page) -> None:
    widget_page(page, "run_panel", STATE)
    assert _syncs(page) == [{"type": "sync", "have": 0, "have_evals": 0}]  # asked at once
    page.evaluate(EMIT, [0, 100, 0, [[50, {"loss": 0.9, "accuracy": 0.7}]], True])
    page.wait_for_function("document.querySelector('.labkit-svg').dataset.points === '100'")
    page.evaluate(EMIT, [50, 100, 1, [], False])  # overlaps what it holds: keeps 100..149
    page.wait_for_function("document.querySelector('.labkit-svg').dataset.points === '150'")
    assert len(_syncs(page)) == 1
    page.evaluate(EMIT, [200, 10, 1, [], False])  # a gap: rows 150..199 were lost
    page.wait_for_function("window.__model.sent.filter((s) => s.msg.type === 'sync').length === 2")
    assert _syncs(page)[-1] == {"type": "sync", "have": 150, "have_evals": 1}
    assert _points(page) == 150  # nothing after the gap is drawn out of order
    page.evaluate(EMIT, [150, 60, 1, [[200, {"loss": 0.5, "accuracy": 0.8}]], True])
    page.wait_for_function("document.querySelector('.labkit-svg').dataset.points === '210'")
    assert page.locator(".labkit-val").count() == 2
    assert page.locator(".labkit-metric-point").count() == 2  # accuracy on the second axis
    assert page.blocked == [] and page.console_errors == []


def test_panel_shows_state_escapes_text_and_sends_controls(page) -> None:
    widget_page(page, "run_panel", {**STATE, "status": "failed", "ended": True})
    # set after rendering: the harness page inlines the state in a <script> ("</script>" ends it)
    page.evaluate("""window.__model.set('error', 'Boom <script>alert(1)</script>');
                     window.__model.set('checkpoints', ['/runs/<x>/checkpoint-10'])""")
    assert page.inner_text(".labkit-error") == "Boom <script>alert(1)</script>"
    assert page.locator(".labkit-error script").count() == 0
    assert page.inner_text(".labkit-title") == "tiny <b>bert</b>"
    assert page.is_disabled(".labkit-stop") and page.is_disabled(".labkit-save")
    page.evaluate(
        "window.__model.set('status', 'running'); window.__model.set('ended', false);"
        "window.__model.set('error', '')"
    )
    assert not page.is_disabled(".labkit-stop")
    facts = page.inner_text(".labkit-facts")
    assert "123 samples/s" in facts and "ETA 1m 35s" in facts and "cpu" in facts
    assert "step 150 / 400 (37%)" in page.inner_text(".labkit-progress-text")
    page.click(".labkit-stop")
    assert page.is_disabled(".labkit-stop")  # no double request while it stops
    page.evaluate("window.__model.set('status', 'paused')")
    assert page.inner_text(".labkit-pause") == "Resume"
    page.click(".labkit-pause")
    page.click(".labkit-save")
    sent = page.evaluate(
        "window.__model.sent.map((s) => s.msg).filter((m) => m.type === 'control')"
    )
    assert [m["action"] for m in sent] == ["stop", "resume", "save"]
    assert "accuracy" in page.inner_text(".labkit-metrics")
    assert page.inner_text(".labkit-checkpoints") == "1 checkpoint, last: /runs/<x>/checkpoint-10"


def test_chart_controls_hover_and_log_scale(page) -> None:
    widget_page(page, "run_panel", {**STATE, "_kind": "chart"})
    assert page.locator(".labkit-buttons").count() == 0  # a LossChart has no run controls
    page.evaluate(EMIT, [0, 5000, 0, [], True])
    page.wait_for_function("document.querySelector('.labkit-svg').dataset.points === '5000'")
    d = page.get_attribute(".labkit-raw", "d")
    assert 100 < d.count("L") < 5000  # drawn per pixel column, not per point
    box = page.locator(".labkit-svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".labkit-readout:not([hidden])")
    assert "step" in page.inner_text(".labkit-readout") and "loss" in page.inner_text(
        ".labkit-readout"
    )
    ticks = page.locator(".labkit-axes text").all_inner_texts()
    page.check(".labkit-field input[type=checkbox]")
    assert page.evaluate("window.__model.get('log_scale')") is True
    page.wait_for_function(
        f"JSON.stringify([...document.querySelectorAll('.labkit-axes text')]"
        f".map((t) => t.textContent)) !== {json.dumps(json.dumps(ticks))}"
    )
    page.select_option(".labkit-window", "1000")
    assert page.evaluate("window.__model.get('window')") == 1000
    page.evaluate("window.__model.set('window', 1000)")
    page.wait_for_function(
        "[...document.querySelectorAll('.labkit-axes text')].some((t) => t.textContent === '4500')"
    )
    screenshot(page, "loss_chart_fake_model")


def test_markers_at_the_last_step_and_the_axis_ends_are_drawn_whole(page) -> None:
    """Validation markers at the last step and at the loss axis' ends, and the metric's squares
    at 0 and 1, lie inside the plot frame (the clip) by their whole size, as drawn."""
    widget_page(page, "run_panel", STATE)
    # loss 2/(1+0.02 s) over steps 1..200 spans 0.4..1.96: the loss axis runs 0..2
    evals = [[1, {"loss": 0.0, "accuracy": 1.0}], [200, {"loss": 2.0, "accuracy": 0.0}]]
    page.evaluate(EMIT, [0, 200, 0, evals, True])
    page.wait_for_function("document.querySelectorAll('.labkit-val').length === 2")
    boxes = page.evaluate(
        """() => {
          const box = (e) => { const r = e.getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
          return {frame: box(document.querySelector('.labkit-frame')),
                  marks: [...document.querySelectorAll('.labkit-val, .labkit-metric-point')]
                    .map(box)};
        }"""
    )
    frame, marks = boxes["frame"], boxes["marks"]
    assert len(marks) == 4
    eps = 0.01
    for m in marks:
        assert m["right"] - m["left"] > 6  # a real marker, measured as laid out
        assert frame["left"] - eps <= m["left"] and m["right"] <= frame["right"] + eps, (m, frame)
        assert frame["top"] - eps <= m["top"] and m["bottom"] <= frame["bottom"] + eps, (m, frame)
    # and they sit at the frame's edges: the last step's markers next to its right side
    assert min(frame["right"] - m["right"] for m in marks) < 8
    assert min(m["top"] - frame["top"] for m in marks) < 8
    assert min(frame["bottom"] - m["bottom"] for m in marks) < 8
    screenshot(page, "loss_chart_markers_at_the_edges")


def _buttons(page) -> dict[str, bool]:
    """Which of Stop / Pause / Save are disabled."""
    return {name: page.is_disabled(f".labkit-{name}") for name in ("stop", "pause", "save")}


def test_badge_says_the_kernels_words_and_buttons_that_can_do_nothing_are_off(page) -> None:
    widget_page(page, "run_panel", STATE)
    assert _buttons(page) == {"stop": False, "pause": False, "save": False}
    assert "ETA 1m 35s" in page.inner_text(".labkit-facts")
    assert "soft loss" not in page.inner_text(".labkit-facts")  # a plain finetune has no parts
    page.evaluate("window.__model.set('loss_parts', {soft_loss: 0.2512, hard_loss: 0.5})")
    assert "soft loss 0.2512 · hard loss 0.5" in page.inner_text(".labkit-facts")
    page.evaluate(
        "window.__model.set('status', 'stopping'); window.__model.set('status_label', 'stopping…')"
    )
    assert page.inner_text(".labkit-status") == "stopping…"
    assert page.get_attribute(".labkit-status", "data-status") == "stopping"
    assert _buttons(page) == {"stop": True, "pause": True, "save": True}  # all wait for the end
    assert "ETA" not in page.inner_text(".labkit-facts")  # no ETA unless running
    page.evaluate(
        "window.__model.set('status', 'pausing'); window.__model.set('status_label', 'pausing…')"
    )
    assert page.inner_text(".labkit-status") == "pausing…"
    assert _buttons(page) == {"stop": False, "pause": True, "save": False}
    assert "ETA" not in page.inner_text(".labkit-facts")
    page.evaluate(
        "window.__model.set('status', 'paused'); window.__model.set('status_label', 'paused')"
    )
    assert page.inner_text(".labkit-status") == "paused"
    assert page.inner_text(".labkit-pause") == "Resume"
    assert _buttons(page) == {"stop": False, "pause": False, "save": False}
    page.evaluate(
        "window.__model.set('status', 'stopped'); window.__model.set('status_label', 'stopped');"
        "window.__model.set('ended', true)"
    )
    assert _buttons(page) == {"stop": True, "pause": True, "save": True}
    assert page.console_errors == []


# -- the whole thing in JupyterLab --------------------------------------------------------------

NOTEBOOK = [
    """import json, pathlib, labkit as lk
class StatusFile:
    def on_event(self, event, control):
        if type(event).__name__ == "TrainEnd":
            pathlib.Path("status.json").write_text(json.dumps({"status": event.status}))
model = lk.load_model({model!r}, labels=["negative", "positive"], device="cpu")
data = lk.load_data({rows!r}, labels=["negative", "positive"])
run = lk.finetune(model, data, max_steps=100_000, batch_size=8, eval_every=10,
                  output_dir="out", callbacks=[StatusFile()])
run""",
]


def _wait_points(page, more_than: int, timeout: float = 90_000) -> int:
    page.wait_for_function(
        f"() => {{ const s = document.querySelector('.labkit-panel .labkit-svg');"
        f" return s && Number(s.dataset.points) > {more_than}; }}",
        timeout=timeout,
    )
    return int(page.get_attribute(".labkit-panel .labkit-svg", "data-points"))


@pytest.mark.slow
@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_jupyter_live_panel_stop_saves_a_checkpoint(
    chromium, tmp_path: pathlib.Path, app: str
) -> None:
    """JupyterLab 4 and Notebook 7: points arrive, survive a reload, Stop saves and stops."""
    from tests._jupyter import (
        app_missing,
        jupyter_server,
        open_notebook,
        run_all,
        write_tiny_notebook,
    )

    if app_missing(app):
        pytest.fail(f"Jupyter {app} is missing (make install-dev installs it): {app_missing(app)}")
    write_tiny_notebook(tmp_path / "panel.ipynb", NOTEBOOK, rows=32)
    env = kernel_env()
    # JupyterLab 4.4+ and Notebook 7 send comm messages over kernel subshells. After a page
    # reload the new page sometimes addresses a subshell the kernel does not know ("Cannot
    # handle comm_msg ...: Unknown subshell_id" in the kernel log), and ipykernel drops every
    # comm message of that page: the view's request for the history, and clicks. That is
    # Jupyter's race (seen here in about 1 of 3 runs with Notebook 7, whose widgets restore
    # before its settings load, so turning subshells off does not always hold). This test is
    # about labkit's replay: subshells off, and one more reload when the kernel says so.
    no_subshells = {
        "@jupyterlab/apputils-extension/kernels-settings.jupyterlab-settings": {
            "commsOverSubshells": "disabled"
        }
    }
    with jupyter_server(tmp_path, app=app, env=env, settings=no_subshells) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            open_notebook(page, server, "panel.ipynb")
            run_all(page)
            seen = _wait_points(page, 5)
            page.wait_for_selector(".labkit-panel .labkit-val", timeout=60_000)  # an evaluation
            # a reloaded page (the saved output names the widget) asks for the whole history
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.reload()
            page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
            try:
                _wait_points(page, seen, timeout=45_000)
            except Exception:
                if "Unknown subshell_id" not in server.log_tail(100_000):
                    raise  # not Jupyter's race: labkit's replay failed
                page.reload()
                page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
                _wait_points(page, seen)
            clicked = time.monotonic()
            page.click(".labkit-panel .labkit-stop")
            # the badge answers the press at once, in the kernel's words
            page.wait_for_function(
                "() => ['stopping…', 'stopped'].includes("
                "document.querySelector('.labkit-panel .labkit-status').textContent)",
                timeout=2_000,
            )
            answered = time.monotonic() - clicked
            page.wait_for_selector(
                ".labkit-panel .labkit-status[data-status='stopped']", timeout=90_000
            )
            stopped = time.monotonic() - clicked
            # a figure for the notes, not a limit: the stop waits for the step and the checkpoint
            print(
                f"\n[{app}] Stop: badge answered in {answered:.2f} s, stopped after {stopped:.2f} s"
            )
            status_file = tmp_path / "status.json"
            deadline = time.monotonic() + 30
            while not status_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # polling for the kernel's file, with a deadline
            assert json.loads(status_file.read_text()) == {"status": "stopped"}
            checkpoints = sorted((tmp_path / "out").glob("checkpoint-*"))
            assert checkpoints, "Stop did not leave a checkpoint"
            assert "checkpoint" in page.inner_text(".labkit-panel .labkit-checkpoints")
            assert page.is_disabled(".labkit-panel .labkit-stop")
            screenshot(page, f"run_panel_jupyter_{app}")
            assert not [e for e in errors if "labkit" in e or "run_panel" in e], errors
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            screenshot(page, f"run_panel_jupyter_{app}_failure")
            raise
        finally:
            context.close()


@pytest.mark.slow
def test_saved_notebook_holds_the_final_snapshot(chromium, tmp_path: pathlib.Path) -> None:
    """A run displayed while training: when it ends, its saved output holds the final static
    snapshot (status and SVG chart) next to the live view, for nbviewer and GitHub."""
    from tests import _tiny
    from tests._jupyter import app_missing, jupyter_server, open_notebook, run_all, write_notebook

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    folder = _tiny.build("bert", tmp_path / "tiny-bert")
    cell = (
        "import labkit as lk\n"
        f"model = lk.load_model({str(folder)!r}, labels=['negative', 'positive'], device='cpu')\n"
        f"data = lk.load_data({_tiny.toy_rows(16)!r}, labels=['negative', 'positive'])\n"
        "run = lk.finetune(model, data, max_steps=30, batch_size=8, output_dir='out')\n"
        "run"
    )
    write_notebook(tmp_path / "snap.ipynb", [cell, "1 + 1"])
    env = kernel_env()
    with jupyter_server(tmp_path, app="lab", env=env) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        try:
            open_notebook(page, server, "snap.ipynb")
            run_all(page)
            page.wait_for_selector(
                ".labkit-panel .labkit-status[data-status='finished']", timeout=120_000
            )
            html = ""
            deadline = time.monotonic() + 30
            while "finished" not in html and time.monotonic() < deadline:
                page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
                saved = json.loads((tmp_path / "snap.ipynb").read_text())
                outs = [
                    o
                    for c in saved["cells"]
                    for o in c.get("outputs", [])
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                ]
                html = "".join(str(o["data"].get("text/html", "")) for o in outs)
                time.sleep(0.3)  # polling the saved file, with a deadline
            assert len(outs) == 1
            assert "finished" in html and "data:image/svg+xml" in html, html[:400]
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            screenshot(page, "run_panel_snapshot_failure")
            raise
        finally:
            context.close()
