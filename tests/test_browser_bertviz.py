"""bertviz's views offline, in a real Chromium: the HTML of ``to_bertviz`` is opened from a file
with every network request aborted (and the context offline), and the views must still draw
(require.js, d3 and jQuery are inlined) without one request, page error or injected script."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import labkit

pytestmark = pytest.mark.browser

TEXT = "the movie was not good at all"
PWN = "<img src=x onerror=window.__pwned=1>"
PWN2 = "</script><script>window.__pwned=2</script>"


def _result(tiny_model: Any, *, hostile: bool = False) -> Any:
    result = labkit.attention(tiny_model, TEXT)
    if not hostile:
        return result
    tokens = list(result.tokens)
    tokens[2], tokens[4] = PWN, PWN2
    return dataclasses.replace(result, tokens=tuple(tokens))


def _open_offline(page: Any, tmp_path: Path, *views: Any) -> list[str]:
    """Open the views' HTML as a local file with the network cut off; return every request
    the page attempted other than for the file itself (each one was aborted)."""
    body = "".join(f"<div class='case'>{view.html}</div>" for view in views)
    path = tmp_path / "bertviz.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>",
        encoding="utf-8",
    )
    url = path.as_uri()
    attempted: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            attempted.append(r.request.url)
            r.abort()

    page.on("request", lambda req: req.url != url and attempted.append(req.url))
    page.context.route("**/*", route)
    page.context.set_offline(True)
    page.goto(url)
    return attempted


def _wait(page: Any, attempted: list[str], condition: str) -> None:
    """Wait until ``condition`` holds; if it never does, say what the page asked for and threw."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=15_000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"the view did not draw ({condition}) offline; requests it attempted: "
            f"{sorted(set(attempted))}; page errors: {page.console_errors}"
        ) from None


def _svg_texts(page: Any, root: str = "") -> list[str]:
    return page.evaluate(
        f"[...document.querySelectorAll('{root} #vis svg text')].map((t) => t.textContent)"
    )


def test_head_view_renders_offline(page, tiny_model, tmp_path):
    result = _result(tiny_model)
    attempted = _open_offline(page, tmp_path, result.to_bertviz("head"))
    t = len(result.tokens)
    lines = len(result.heads) * t * t
    _wait(
        page, attempted, f"document.querySelectorAll('#vis svg #attention line').length === {lines}"
    )
    options = page.evaluate("[...document.querySelectorAll('#layer option')].map((o) => o.value)")
    assert options == [str(layer) for layer in result.layers]
    assert set(result.tokens) <= set(_svg_texts(page))
    # picking another layer draws a new SVG from the inlined payload, still without a request
    page.evaluate("document.querySelector('#vis svg').dataset.old = '1'")
    page.locator("#layer").select_option(str(result.layers[-1]))
    _wait(
        page,
        attempted,
        "!document.querySelector('#vis svg').dataset.old && "
        f"document.querySelectorAll('#vis svg #attention line').length === {lines}",
    )
    assert attempted == []
    assert page.console_errors == []
    assert page.evaluate("typeof window.$ === 'undefined' && typeof window.jQuery === 'undefined'")


def test_model_view_renders_offline(page, tiny_model, tmp_path):
    result = _result(tiny_model)
    attempted = _open_offline(page, tmp_path, result.to_bertviz("model", layers=1, heads=[0, 2]))
    _wait(
        page, attempted, "document.querySelectorAll('#vis svg [id^=attn_background_]').length === 2"
    )
    assert page.locator("#vis svg line").count() > 0
    assert {"Layers", "Heads", "1", "0", "2"} <= set(_svg_texts(page))
    assert attempted == []
    assert page.console_errors == []


def test_neuron_view_renders_offline(page, tiny_model, tmp_path):
    result = _result(tiny_model)
    attempted = _open_offline(page, tmp_path, result.to_bertviz("neuron"))
    _wait(page, attempted, "document.querySelectorAll('#vis svg text').length > 0")
    options = page.evaluate("document.querySelectorAll('#layer option').length")
    assert options == len(result.layers)
    assert attempted == []
    assert page.console_errors == []


def test_three_views_on_one_page_and_hostile_tokens(page, tiny_model, tmp_path):
    """As in a notebook: each view inlines require.js, jQuery and d3 again; tokens that are
    HTML or close the script stay text."""
    result = _result(tiny_model, hostile=True)
    views = [result.to_bertviz(kind) for kind in ("head", "model", "neuron")]
    attempted = _open_offline(page, tmp_path, *views)
    _wait(
        page,
        attempted,
        "document.querySelectorAll('.case:nth-child(1) #vis svg #attention line').length > 0 && "
        "document.querySelectorAll('.case:nth-child(2) #vis svg [id^=attn_background_]').length "
        f"=== {len(result.layers) * len(result.heads)} && "
        "document.querySelectorAll('.case:nth-child(3) #vis svg text').length > 0",
    )
    for case in (1, 3):
        texts = _svg_texts(page, f".case:nth-child({case})")
        assert PWN in texts and PWN2 in texts, case
    assert page.locator("body img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert attempted == []  # an <img src=x> that got parsed would have asked for x
    assert page.console_errors == []


def _not_jupyters(errors: list[tuple[str, str]]) -> list[str]:
    """The page errors not thrown from Jupyter's own bundles (Notebook 7.6 throws "Cannot read
    properties of undefined (reading 'schema')" in notebook_core.js with no output at all)."""
    return [
        msg for msg, stack in errors if "/static/" not in (stack.split("\n    at ")[1:] or [""])[0]
    ]


@pytest.mark.slow
@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_views_render_in_jupyter_offline(chromium, tmp_path, app):
    """JupyterLab 4 and Notebook 7 with every request off the loopback aborted: the head and
    model views of one notebook draw from their inlined libraries."""
    import os

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tests import _tiny
    from tests._jupyter import app_missing, jupyter_server, open_notebook, run_all, write_notebook

    if app_missing(app):
        pytest.fail(f"Jupyter {app} is missing (make install-dev installs it): {app_missing(app)}")
    folder = _tiny.build("bert", tmp_path / "tiny-bert")
    setup = (
        f"import labkit\nresult = labkit.attention(labkit.load_model({str(folder)!r}, "
        f"device='cpu'), {TEXT!r})"
    )
    write_notebook(
        tmp_path / "bertviz.ipynb",
        [setup, "result.to_bertviz('head')", "result.to_bertviz('model')"],
    )
    env = {
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with jupyter_server(tmp_path, app=app, env=env) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        attempted: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith(server.url + "/"):
                r.continue_()
            else:
                attempted.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        errors: list[tuple[str, str]] = []
        page.on("pageerror", lambda e: errors.append((str(e), e.stack or "")))
        try:
            open_notebook(page, server, "bertviz.ipynb")
            run_all(page)
            try:
                page.wait_for_function(
                    "document.querySelectorAll('.jp-OutputArea #vis svg #attention line').length > 0"
                    " && document.querySelectorAll("
                    "'.jp-OutputArea #vis svg [id^=attn_background_]').length > 0",
                    timeout=120_000,
                )
            except PlaywrightTimeout:
                raise AssertionError(
                    f"bertviz did not draw in Jupyter {app}; requests: {attempted}; "
                    f"page errors: {errors}\n{server.log_tail()}"
                ) from None
            assert page.locator(".jp-OutputArea #layer option").count() == 2
            assert attempted == []
            assert _not_jupyters(errors) == []
        finally:
            context.close()
