"""No script runs from data: script-shaped tokens, label names, model names and error messages go
through every view, every static ``_repr_html_`` and the HTML report, in Chromium; nothing
executes, nothing is fetched, and the payload is shown as the literal text it is."""

from __future__ import annotations

import base64
import dataclasses
import time
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import labkit
from labkit.events import EvalEnd, StepEnd, TrainEnd
from tests._browser import widget_page

pytestmark = pytest.mark.browser

P_IMG = '<img src=x onerror="window.__pwned=1">'
P_SCRIPT = "</script><script>window.__pwned=1</script>"
P_JS = "javascript:window.__pwned=1"
PAYLOADS = (P_IMG, P_SCRIPT, P_JS)
STATIC = "http://static.test/"
# attributes a browser follows as URLs (a javascript: value there runs when used)
URL_ATTRS = ("href", "src", "action", "formaction", "xlink:href", "data", "poster", "background")

_NO_HANDLERS = """([root, urlAttrs]) => {
  const bad = [];
  for (const e of (root || document).querySelectorAll('*')) {
    for (const a of e.attributes) {
      const url = urlAttrs.includes(a.name) && a.value.trim().toLowerCase().startsWith('javascript:');
      if (a.name.startsWith('on') || url) bad.push(e.tagName + ' ' + a.name);
    }
    if (e.tagName === 'SCRIPT' && root) bad.push('SCRIPT');
    if (e.tagName === 'IMG' && !e.getAttribute('src').startsWith('data:')) bad.push('IMG src');
  }
  return bad;
}"""

_EMIT = """([msg, bufs]) => window.__model.emit(msg, bufs.map((b) => {
  const s = atob(b); const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return new DataView(u.buffer);
}))"""


# -- data with payloads ---------------------------------------------------------------------
@pytest.fixture
def attn(tiny_model) -> Any:
    result = labkit.attention(tiny_model, "the movie was not good")
    tokens = list(result.tokens)
    tokens[1:4] = PAYLOADS
    return dataclasses.replace(result, tokens=tuple(tokens), model_name=P_IMG)


@pytest.fixture
def diff(attn) -> Any:
    other = dataclasses.replace(attn, model_name=P_SCRIPT, weights=attn.weights[:, ::-1].copy())
    return labkit.attention_diff(attn, other)


@pytest.fixture
def attribution(tiny_model) -> Any:
    result = labkit.explain(tiny_model, "the movie was not good", method="saliency")
    tokens = list(result.tokens)
    tokens[1:4] = PAYLOADS
    return dataclasses.replace(
        result,
        text=P_JS,
        tokens=tuple(tokens),
        probs={P_IMG: 0.25, P_SCRIPT: 0.75},
        target=P_SCRIPT,
    )


def _fake_run() -> Any:
    history = labkit.MetricHistory()
    for step in range(1, 21):
        history.record(StepEnd(step=step, epoch=step / 20, loss=1 / step, lr=1e-3))
    history.record(EvalEnd(step=20, metrics={P_IMG: 0.5, "accuracy": 0.75}))
    history.record(TrainEnd(status="failed", error=P_SCRIPT, step=20))
    return SimpleNamespace(
        history=history,
        status="failed",
        step=20,
        total_steps=40,
        error=f"{P_SCRIPT} {P_IMG}",
        model=SimpleNamespace(name=P_IMG, device="cpu"),
        metrics={P_IMG: 0.5, P_JS: 0.25},
        checkpoints=[P_JS],
        config=SimpleNamespace(metric=P_IMG),
    )


# -- checks ---------------------------------------------------------------------------------
def _settled(page: Any) -> None:
    """Wait until the page has no request in flight (an injected <img> would have fired)."""
    page.wait_for_load_state("networkidle")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")


def _assert_inert(page: Any, root: str, shown: tuple[str, ...]) -> None:
    _settled(page)
    assert page.evaluate("window.__pwned") is None
    text = page.evaluate(f"document.querySelector({root!r}).textContent")
    for payload in shown:
        assert payload in text, f"{payload!r} not shown literally"
    assert page.evaluate(_NO_HANDLERS, [page.query_selector(root), list(URL_ATTRS)]) == []


def _state(view: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    plain, buffers = {}, {}
    for key, value in view.get_state().items():
        if key.startswith("_") and key not in ("_kind", "_key"):
            continue
        if isinstance(value, bytes | memoryview):
            buffers[key] = bytes(value)
        else:
            plain[key] = value
    return plain, buffers


def _widget(page: Any, module: str, view: Any, **override: Any) -> Any:
    plain, buffers = _state(view)
    plain.update(override)
    return widget_page(page, module, plain, buffers)


def _serve(page: Any, reply: Any, until: str, timeout: float = 15.0) -> None:
    """Answer the view's requests with the Python widget's replies until ``until`` holds."""
    answered, deadline = 0, time.monotonic() + timeout
    while not page.evaluate(until):
        assert time.monotonic() < deadline, f"timed out waiting for {until}"
        page.wait_for_function(f"window.__model.sent.length > {answered} || ({until})")
        sent = page.evaluate("window.__model.sent.map((s) => s.msg)")
        for msg in sent[answered:]:
            content, bufs = reply(msg)
            page.evaluate(_EMIT, [content, [base64.b64encode(b).decode() for b in bufs]])
        answered = len(sent)


# -- every view in Chromium ---------------------------------------------------------------------
def test_attention_view(page, attn) -> None:
    from labkit.ui.attention_view import AttentionView

    view = AttentionView(attn)
    _widget(page, "attention_view", view)
    _serve(
        page,
        lambda m: view.layer_message(m["layer"]),
        "document.querySelector('#root').textContent.includes('javascript:')",
    )
    _assert_inert(page, "#root", PAYLOADS)
    page.evaluate("window.__model.set('mode', 'model')")
    _assert_inert(page, "#root", (P_IMG,))  # the model name stays in the title
    assert page.blocked == [] and page.console_errors == []


def test_attention_diff_view(page, diff) -> None:
    from labkit.ui.attention_view import AttentionDiffView

    view = AttentionDiffView(diff)
    _widget(page, "attention_diff", view)
    _serve(
        page,
        lambda m: view.head_message(m["layer"], m["head"]),
        "window.__model.sent.length > 0 && !document.querySelector('#root')"
        ".textContent.includes('loading')",
    )
    _assert_inert(page, "#root", (P_IMG, P_SCRIPT))
    assert page.blocked == [] and page.console_errors == []


def test_attribution_view(page, attribution) -> None:
    from labkit.ui.attribution_view import AttributionView

    view = AttributionView.from_result(attribution)
    _widget(page, "attribution_view", view, error=P_IMG)
    _assert_inert(page, "#root", PAYLOADS)
    assert page.blocked == [] and page.console_errors == []


def test_run_panel_and_loss_chart(page) -> None:
    from labkit.ui.panel import RunPanel, encode_rows

    run = _fake_run()
    panel = RunPanel(run)
    assert panel.error and panel.title == P_IMG
    _widget(page, "run_panel", panel, notice=P_JS)

    def reply(msg: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        cols = run.history.steps_since(0)
        evals = [[e.step, e.metrics] for e in run.history.evals]
        content = {
            "type": "rows",
            "start": 0,
            "n": len(cols["step"]),
            "cols": ["step", "epoch", "loss", "lr"],
            "evals_start": 0,
            "evals": evals,
            "reply": True,
        }
        return content, encode_rows(cols)

    _serve(page, reply, "document.querySelector('.labkit-svg')?.dataset.points === '20'")
    _assert_inert(page, "#root", PAYLOADS)
    panel.close()
    assert page.blocked == [] and page.console_errors == []


def test_app_status(page) -> None:
    from labkit.ui.app import AppStatus

    status = AppStatus(message=" | ".join(PAYLOADS), kind="error")
    _widget(page, "app_status", status)
    _assert_inert(page, "#root", PAYLOADS)
    page.evaluate("(m) => window.__model.set('message', m)", P_SCRIPT + P_IMG)
    _assert_inert(page, "#root", (P_SCRIPT + P_IMG,))
    assert page.blocked == [] and page.console_errors == []


# -- every static _repr_html_ and the report --------------------------------------------------------
class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text outside them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_no_markup_from_data(html: str, shown: tuple[str, ...] = ()) -> None:
    """No inline handler, script, javascript: URL or fetched image; payloads are text."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag != "script", "a <script> element"
        for name, value in attrs:
            assert not name.startswith("on"), f"inline handler {name}= on <{tag}>"
            v = (value or "").strip().lower()
            if name in URL_ATTRS:
                assert not v.startswith("javascript:"), f"<{tag} {name}={value!r}>"
            if tag == "img" and name == "src":
                assert v.startswith("data:"), f"<img src={value!r}> would be fetched"
    text = "".join(parser.text)
    for payload in shown:
        assert payload in text, f"{payload!r} not in the text"


def _static_htmls(tiny_model, attn, diff, attribution) -> dict[str, tuple[str, tuple[str, ...]]]:
    from labkit.inspect.attention.importance import HeadImportance
    from labkit.render.run import run_html

    model = labkit.Model.wrap(tiny_model.hf, tiny_model.tokenizer, labels=PAYLOADS[:2], name=P_JS)
    rows = [{"text": p, "label": lab} for p in PAYLOADS for lab in (P_IMG, P_JS)]
    data = labkit.load_data(rows * 3)
    importance = HeadImportance(
        scores=np.random.default_rng(0).random((2, 4), dtype=np.float32),
        model_name=P_SCRIPT,
        examples=8,
        normalized=True,
    )
    return {
        "Model": (model._repr_html_(), (P_IMG, P_SCRIPT, P_JS)),
        "TextData": (data._repr_html_(), (P_IMG, P_JS)),
        "AttentionResult": (attn._repr_html_(), PAYLOADS),
        "AttentionDiff": (diff._repr_html_(), (P_IMG, P_SCRIPT)),
        "AttributionResult": (attribution._repr_html_(), PAYLOADS),
        "Run": (run_html(_fake_run()), (P_IMG, P_SCRIPT, P_JS)),
        "HeadImportance": (importance._repr_html_(), (P_SCRIPT,)),
    }


def _load(page: Any, html: str) -> list[str]:
    """Serve ``html`` at a fake origin; returns the list of other requests (all aborted)."""
    requests: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == STATIC:
            r.fulfill(status=200, content_type="text/html", body=html)
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(STATIC)
    return requests


def test_static_reprs_in_python_and_chromium(page, tiny_model, attn, diff, attribution) -> None:
    pages = _static_htmls(tiny_model, attn, diff, attribution)
    for name, (html, shown) in pages.items():
        try:
            assert_no_markup_from_data(html, shown)
        except AssertionError as exc:
            raise AssertionError(f"{name}._repr_html_: {exc}") from None
    body = "".join(f"<section id='{name}'>{html}</section>" for name, (html, _) in pages.items())
    # no CSP here: escaping alone must keep the payloads inert
    blocked = _load(page, f"<!doctype html><html><body>{body}</body></html>")
    for name, (_, shown) in pages.items():
        _assert_inert(page, f"#{name}", shown)
    assert blocked == [] and page.console_errors == []


def _report_html(tiny_model, attn, diff, attribution) -> str:
    from labkit.render.report import Report

    rep = Report(P_IMG, subtitle=P_SCRIPT)
    rep.add_text(P_JS, "\n".join(PAYLOADS))
    rep.add_table(P_IMG, [{P_SCRIPT: P_JS, "n": 1, "x": 0.5}], note=P_IMG)
    for name, (html, _) in _static_htmls(tiny_model, attn, diff, attribution).items():
        rep.add_html(f"{name} {P_SCRIPT}", html)
    return rep.html()


@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "csp-removed"])
def test_report_in_chromium(page, tiny_model, attn, diff, attribution, csp) -> None:
    html = _report_html(tiny_model, attn, diff, attribution)
    assert_no_markup_from_data(html, PAYLOADS)
    if not csp:  # escaping, not only the CSP, keeps it inert
        start = html.index("<meta http-equiv='Content-Security-Policy'")
        html = html[:start] + html[html.index(">", start) + 1 :]
        assert "Content-Security-Policy" not in html
    blocked = _load(page, html)
    _assert_inert(page, "body", PAYLOADS)
    assert page.title() == P_IMG
    assert blocked == [] and page.console_errors == []


def test_demo_report_escapes_the_texts_it_inspects(tmp_path, tiny_model, page) -> None:
    from labkit.cli.demo_report import demo_report

    data = labkit.load_data(
        [{"text": p, "label": lab} for p in PAYLOADS for lab in ("negative", "positive")] * 3
    )
    metrics = tiny_model.evaluate(data)
    run = SimpleNamespace(_repr_html_=lambda: "<p>run</p>")
    path = demo_report(
        tmp_path / "r.html",
        model=tiny_model,
        data=data,
        before=metrics,
        after=metrics,
        run=run,
        texts=list(PAYLOADS),
    )
    html = path.read_text(encoding="utf-8")
    assert_no_markup_from_data(html, PAYLOADS)
    blocked = _load(page, html)
    _assert_inert(page, "body", PAYLOADS)
    assert blocked == []
