"""A streamed generation in a real browser: the front-end module against a fake model (fast),
and in JupyterLab a tiny LM streaming token by token, Stop pressed mid-way, and the final text
still there after save, close and reopen."""

from __future__ import annotations

import json
import pathlib
import sys
import time
import urllib.request

import pytest

from tests._browser import screenshot, widget_page

pytestmark = pytest.mark.browser

STATE = {
    "prompt": "<img src=x onerror=window.__pwned=1> tell me",
    "length": 0,
    "status": "running",
    "stop_requested": False,
    "n_tokens": 0,
    "max_new_tokens": 64,
    "tokens_per_s": 0.0,
    "finish_reason": "",
    "finish_label": "",
    "error": "",
    "_key": "g1",
}


def _text(page) -> str:
    return page.evaluate("document.querySelector('.labkit-gen-text').textContent")


def _sent(page) -> list[dict]:
    return page.evaluate("window.__model.sent.map((s) => s.msg)")


def test_view_keeps_deltas_asks_for_a_gap_and_writes_text_as_text(page) -> None:
    widget_page(page, "generation_view", STATE)
    assert _sent(page) == []  # nothing to ask for yet
    assert page.inner_text(".labkit-gen-prompt") == STATE["prompt"]
    assert page.evaluate("window.__pwned") is None
    emit = "(m) => window.__model.emit(m)"
    page.evaluate(emit, {"type": "text", "start": 0, "text": "Hello <b>", "reply": False})
    page.wait_for_function("document.querySelector('.labkit-gen-text').textContent.length === 9")
    page.evaluate(emit, {"type": "text", "start": 6, "text": "<b>world", "reply": False})  # overlap
    page.wait_for_function("document.querySelector('.labkit-gen-text').dataset.length === '14'")
    assert _text(page) == "Hello <b>world" and page.locator(".labkit-gen-text b").count() == 0
    page.evaluate(emit, {"type": "text", "start": 20, "text": "later", "reply": False})  # a gap
    page.wait_for_function("window.__model.sent.length === 1")
    assert _sent(page) == [{"type": "sync", "have": 14}]
    assert _text(page) == "Hello <b>world"  # nothing after the gap is written out of order
    page.evaluate(emit, {"type": "text", "start": 14, "text": ", and more later", "reply": True})
    page.wait_for_function("document.querySelector('.labkit-gen-text').dataset.length === '30'")
    # the kernel says it has sent more than this page holds: the page asks again
    page.evaluate("window.__model.set('length', 40)")
    page.wait_for_function("window.__model.sent.length === 2")
    assert _sent(page)[-1] == {"type": "sync", "have": 30}
    assert page.is_visible(".labkit-gen-caret")
    page.evaluate(
        """() => { const m = window.__model; m.set('n_tokens', 7); m.set('tokens_per_s', 12.5); }"""
    )
    page.wait_for_function(
        "document.querySelector('.labkit-gen-facts').textContent.includes('12.5 tokens/s')"
    )
    assert "7 / 64 tokens" in page.inner_text(".labkit-gen-facts")
    assert page.blocked == [] and page.console_errors == []


def test_stop_answers_at_once_then_the_kernels_words_and_the_end(page) -> None:
    widget_page(page, "generation_view", {**STATE, "n_tokens": 3, "tokens_per_s": 9.0})
    assert page.inner_text(".labkit-gen-status") == "running"
    assert not page.is_disabled(".labkit-gen-stop")
    page.click(".labkit-gen-stop")
    assert page.inner_text(".labkit-gen-status") == "stopping…"  # before any answer
    assert page.is_disabled(".labkit-gen-stop")
    assert [m for m in _sent(page) if m["type"] == "control"] == [
        {"type": "control", "action": "stop"}
    ]
    page.evaluate(
        """() => { const m = window.__model; m.set('status', 'stopped');
                   m.set('finish_reason', 'cancelled'); m.set('finish_label', 'cancelled'); }"""
    )
    page.wait_for_function(
        "document.querySelector('.labkit-gen-status').dataset.status === 'stopped'"
    )
    assert page.is_hidden(".labkit-gen-caret")
    assert page.inner_text(".labkit-gen-facts") == "3 tokens · 9.00 tokens/s · finished: cancelled"
    page.evaluate("window.__model.set('error', 'RuntimeError: <script>x</script>')")
    page.wait_for_function("!document.querySelector('.labkit-gen-error').hidden")
    assert page.inner_text(".labkit-gen-error") == "RuntimeError: <script>x</script>"
    screenshot(page, "generation_view_fake_model")
    assert page.console_errors == []


# -- the whole thing in JupyterLab --------------------------------------------------------------

CELL = """import json, pathlib, time, labkit as lk
lm = lk.load_model({model!r}, device="cpu")
# slow enough to press Stop mid-way: a few ms per forward pass, and no end-of-sequence token
lm.hf.register_forward_pre_hook(lambda module, args: time.sleep(0.04))
stream = lm.stream("<img src=x onerror=window.__pwned=1> a gorgeous movie", max_new_tokens=900)
stream.on_end(lambda s: pathlib.Path("stream.json").write_text(json.dumps(
    {{"status": s.status, "text": s.text, "n_tokens": s.n_tokens}})))
stream"""

_LENGTH = "Number(document.querySelector('.labkit-gen-text')?.dataset.length || 0)"


def _shut_down_kernels(server) -> None:
    """What File > Close and Shut Down does to the kernel (the page is left alone)."""
    for session in server.api("sessions"):
        req = urllib.request.Request(
            f"{server.url}/api/sessions/{session['id']}",
            method="DELETE",
            headers={"Authorization": f"token {server.token}"},
        )
        urllib.request.urlopen(req, timeout=10).close()


def _wait_file(path: pathlib.Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the kernel's file, with a deadline
    return json.loads(path.read_text())


@pytest.mark.slow
def test_jupyter_streams_a_generation_stops_it_and_reopens_with_the_final_text(
    chromium, tmp_path: pathlib.Path
) -> None:
    from tests import _tiny
    from tests._jupyter import (
        app_missing,
        jupyter_server,
        kernel_env,
        open_notebook,
        run_all,
        write_notebook,
    )

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    folder = _tiny.build_lm("llama", tmp_path / "tiny-lm", max_positions=1024)
    write_notebook(tmp_path / "stream.ipynb", [CELL.format(model=str(folder)), "1 + 1"])
    with jupyter_server(tmp_path, app="lab", env=kernel_env()) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            open_notebook(page, server, "stream.ipynb")
            run_all(page)
            # tokens appear as they are made: the text grows between two looks
            page.wait_for_function(f"() => {_LENGTH} > 0", timeout=90_000)
            first = page.evaluate(f"() => {_LENGTH}")
            page.wait_for_function(f"() => {_LENGTH} > {first}", timeout=30_000)
            assert page.inner_text(".labkit-gen-status") == "running"
            assert page.is_visible(".labkit-gen-caret")
            clicked = time.monotonic()
            page.click(".labkit-gen-stop")
            page.wait_for_function(
                "() => ['stopping…', 'stopped'].includes("
                "document.querySelector('.labkit-gen-status').textContent)",
                timeout=2_000,
            )
            page.wait_for_selector(".labkit-gen-status[data-status='stopped']", timeout=30_000)
            stopped = time.monotonic() - clicked
            print(f"\nStop: the stream ended {stopped:.2f} s after the click")
            end = _wait_file(tmp_path / "stream.json")
            assert end["status"] == "stopped" and 0 < end["n_tokens"] < 900
            page.wait_for_function(f"() => {_LENGTH} === {len(end['text'])}", timeout=10_000)
            assert (
                page.evaluate("document.querySelector('.labkit-gen-text').textContent")
                == end["text"]
            )
            assert page.is_hidden(".labkit-gen-caret") and page.is_disabled(".labkit-gen-stop")
            assert "finished: cancelled" in page.inner_text(".labkit-gen-facts")
            screenshot(page, "generation_view_jupyter_stopped")
            # the saved output holds the final snapshot (the stream updated it at its end)
            html = ""
            deadline = time.monotonic() + 30
            while "stopped" not in html and time.monotonic() < deadline:
                page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
                saved = json.loads((tmp_path / "stream.ipynb").read_text())
                outs = [
                    o
                    for c in saved["cells"]
                    for o in c.get("outputs", [])
                    if "application/vnd.labkit.view+json" in o.get("data", {})
                ]
                html = "".join(str(o["data"].get("text/html", "")) for o in outs)
                time.sleep(0.3)  # polling the saved file, with a deadline
            assert len(outs) == 1 and "stopped" in html, html[:400]
            # close and shut down, then open it again: a new kernel, no widget model
            _shut_down_kernels(server)
            page.close()
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            open_notebook(page, server, "stream.ipynb")
            page.wait_for_function(
                "() => { const o = document.querySelector('.labkit-output');"
                " return !!o && o.dataset.labkitShows === 'snapshot'; }",
                timeout=60_000,
            )
            snapshot = page.inner_text(".labkit-output .labkit-snapshot")
            assert "Error displaying widget" not in page.inner_text("body")
            assert "stopped" in snapshot and f"{end['n_tokens']} tokens" in snapshot
            text = page.evaluate(
                "document.querySelector('.labkit-snapshot .labkit-generation-text').textContent"
            )
            assert text == end["text"]
            assert "<img src=x onerror=window.__pwned=1>" in snapshot  # the prompt, as text
            assert page.evaluate("window.__pwned") is None
            screenshot(page, "generation_view_jupyter_reopened")
            assert not [e for e in errors if "labkit" in e or "generation_view" in e], errors
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            screenshot(page, "generation_view_jupyter_failure")
            raise
        finally:
            context.close()
