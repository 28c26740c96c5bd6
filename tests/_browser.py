"""Real-browser helpers: Debian's Chromium driven by Playwright, nothing downloaded.

``widget_page(page, "run_panel", state)`` renders one of our anywidget ES modules in a blank page
served from a fake origin (``http://labkit.test``) through request routing: the page gets the
module from ``widgets/`` as a widget sends it (``labkit.ui._base.esm``: the shared prelude, then
the module), its CSS, a small fake anywidget model, and nothing else. Any other request is
aborted and recorded in ``page.blocked`` so tests can assert that a view loads nothing from the
network. ``window.__model`` exposes the fake model: ``emit(msg, buffers)`` delivers a custom
message, ``sent`` lists the messages the view sent.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from labkit.ui._base import esm

CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
WIDGETS = Path(__file__).resolve().parents[1] / "widgets"
ORIGIN = "http://labkit.test"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def browser_missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


_FAKE_MODEL = r"""
class FakeModel {
  constructor(state) { this.state = state; this.handlers = {}; this.sent = []; this.saves = 0; }
  get(name) { return this.state[name]; }
  set(name, value) { this.state[name] = value; this._fire('change:' + name, value); }
  save_changes() { this.saves += 1; }
  on(event, cb) { (this.handlers[event] ||= []).push(cb); }
  off(event, cb) {
    if (!event) { this.handlers = {}; return; }
    this.handlers[event] = (this.handlers[event] || []).filter((h) => cb && h !== cb);
  }
  send(msg, callbacks, buffers) { this.sent.push({ msg, buffers: (buffers || []).length }); }
  emit(msg, buffers) { this._fire('msg:custom', msg, buffers || []); }
  _fire(event, ...args) { for (const h of this.handlers[event] || []) h(...args); }
}
"""


def _script_json(value: Any) -> str:
    """JSON that is safe inside an inline <script>: no "</" (ends the element) or "<!--"."""
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\!--")


def _page_html(module: str, state: dict[str, Any], buffers: dict[str, list[int]]) -> str:
    css = (
        f'<link rel="stylesheet" href="{ORIGIN}/{module}.css">'
        if (WIDGETS / f"{module}.css").exists()
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">{css}</head>
<body><div id="root" style="width:960px"></div>
<script type="module">
{_FAKE_MODEL}
const state = {_script_json(state)};
const bufs = {_script_json(buffers)};
for (const [k, v] of Object.entries(bufs)) state[k] = new DataView(new Uint8Array(v).buffer);
const model = new FakeModel(state);
window.__model = model;
try {{
  const mod = await import("{ORIGIN}/{module}.js");
  const widget = mod.default;
  if (widget.initialize) await widget.initialize({{ model }});
  window.__cleanup = await widget.render({{ model, el: document.getElementById("root") }});
  window.__rendered = true;
}} catch (err) {{ window.__error = String(err && err.stack || err); }}
</script></body></html>"""


def widget_page(
    page: Any,
    module: str,
    state: dict[str, Any],
    buffers: dict[str, bytes] | None = None,
    *,
    timeout: float = 10_000,
) -> Any:
    """Render ``widgets/<module>.js`` with ``state`` (binary traits in ``buffers``); wait for it."""
    blocked: list[str] = []
    page.blocked = blocked
    html = _page_html(module, state, {k: list(v) for k, v in (buffers or {}).items()})

    def route(r: Any) -> None:
        url = r.request.url
        if url == f"{ORIGIN}/" or url == f"{ORIGIN}/index.html":
            r.fulfill(status=200, content_type="text/html", body=html)
        elif url.startswith(ORIGIN + "/") and (WIDGETS / url[len(ORIGIN) + 1 :]).is_file():
            name = url[len(ORIGIN) + 1 :]
            if name.endswith(".js"):  # as the widget sends it: the shared prelude, then the module
                r.fulfill(status=200, content_type="text/javascript", body=esm(name))
            else:
                r.fulfill(status=200, content_type="text/css", body=(WIDGETS / name).read_text())
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function(
        "window.__rendered === true || window.__error !== undefined", timeout=timeout
    )
    error = page.evaluate("window.__error")
    if error:
        raise AssertionError(f"widget {module} failed to render: {error}")
    return page


def screenshot(page: Any, name: str) -> Path:
    """Save a PNG under artifacts/ (kept by CI as a test artefact) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
