"""Views of an AttributionResult: static HTML, captum's record, the widget (no browser), the CLI."""

from __future__ import annotations

import json
import struct
import threading
import time
from html.parser import HTMLParser

import numpy as np
import pytest

import labkit
from labkit.inspect.attribution.api import explain

EVIL = ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=2">']
TEXT = f"great fun {EVIL[0]} and {EVIL[1]}"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)


def _parsed(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    return p


@pytest.fixture
def evil_model(tiny_dirs):
    """Label names that are markup too."""
    return labkit.load_model(tiny_dirs["bert"], labels=["<b>neg</b>", EVIL[1]], device="cpu")


def test_static_html_escapes_tokens_and_labels(evil_model):
    r = explain(evil_model, TEXT, faithfulness=True)
    assert any("<" in t for t in r.tokens)  # the markup really is in the tokens
    page = r._repr_html_()
    parsed = _parsed(page)
    assert set(parsed.tags) <= {"div", "span", "b"}
    assert not {a for a in parsed.attrs if a.startswith("on")}
    assert "<script" not in page and "<img" not in page
    assert "&lt;b&gt;neg&lt;/b&gt;" in page or "&lt;img" in page
    # one coloured span per token, each with a title holding its value
    assert page.count('class="labkit-token"') == len(r.tokens)
    assert "toward" in page and "against" in page  # the legend
    assert f"{r.delta:.4f}" in page and "comprehensiveness" in page


def test_mimebundle_has_text_and_static_html(tiny_model):
    r = explain(tiny_model, "great fun")
    bundle = r._repr_mimebundle_()
    assert bundle["text/html"] == r._repr_html_()
    assert "AttributionResult(target=" in bundle["text/plain"]
    assert set(r._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}


def test_to_captum_record_renders_escaped(evil_model):
    from captum.attr import visualization

    r = explain(evil_model, TEXT)
    rec = r.to_captum(true_label="<i>x</i>")
    assert isinstance(rec, visualization.VisualizationDataRecord)
    assert len(rec.raw_input_ids) == len(r.tokens)
    assert float(rec.word_attributions.abs().max()) == pytest.approx(1.0, abs=1e-6)
    assert rec.attr_class == "&lt;b&gt;neg&lt;/b&gt;" or rec.attr_class.startswith("&lt;img")
    markup = visualization.format_word_importances(rec.raw_input_ids, rec.word_attributions)
    assert "<script" not in markup and "<img" not in markup and "&lt;" in markup
    assert rec.true_class == "&lt;i&gt;x&lt;/i&gt;"


def test_dataset_summary_html_is_escaped(tiny_model):
    ds = labkit.explain_dataset(tiny_model, [TEXT, "great fun"], subset="all")
    page = ds._repr_html_()
    assert "<script" not in page and "<img" not in page
    assert set(_parsed(page).tags) <= {"div", "b", "table", "tr", "th", "td"}


# -- widget, trait level ----------------------------------------------------------------------------
def _floats(raw: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_view_for_gives_the_attribution_view(tiny_model):
    from labkit.ui import view_for
    from labkit.ui.attribution_view import AttributionView

    r = explain(tiny_model, "an excellent and moving film", faithfulness=True)
    view = view_for(r)
    assert isinstance(view, AttributionView)
    assert view.tokens == list(r.tokens)
    np.testing.assert_allclose(_floats(view.scores), r.scores, rtol=1e-6)
    assert view.target == r.target and view.labels == ["negative", "positive"]
    assert view.delta == pytest.approx(r.delta) and view.n_steps == 50
    assert view.comprehensiveness == pytest.approx(r.comprehensiveness)
    assert view.interactive and "occlusion" in view.methods


def test_switching_method_and_target_recomputes_through_explain(tiny_model):
    from labkit.ui.attribution_view import AttributionView

    r = explain(tiny_model, "an excellent and moving film")
    view = AttributionView.from_result(r)
    view.method = "occlusion"
    view.wait(60)
    assert view.result.method == "occlusion" and view.delta is None and view.n_steps is None
    expected = explain(tiny_model, r.text, method="occlusion", target=r.target)
    np.testing.assert_allclose(_floats(view.scores), expected.scores, rtol=1e-5, atol=1e-9)
    other = "negative" if r.target == "positive" else "positive"
    view.busy = True
    view.target = other
    view.wait(60)
    assert view.result.target == other and not view.busy
    view.faithfulness = True
    view.wait(60)
    assert view.comprehensiveness is not None and view.result.comprehensiveness is not None


@pytest.fixture
def gated_explain(monkeypatch):
    """labkit.explain as the view calls it, held until ``gate`` is set; ``calls`` lists the
    methods asked for, ``started`` is set when one is running."""
    from labkit.inspect.attribution import api

    real = api.explain
    gate, started, calls = threading.Event(), threading.Event(), []

    def held(model, text, **kw):
        calls.append(kw["method"])
        started.set()
        assert gate.wait(60)
        return real(model, text, **kw)

    monkeypatch.setattr(api, "explain", held)
    return gate, started, calls


def test_a_recompute_runs_off_the_kernel_thread(tiny_model, gated_explain):
    """The trait change returns at once (a training panel's Stop is never held behind an
    explanation); the view is busy meanwhile, and the result arrives."""
    from labkit.ui.attribution_view import AttributionView

    gate, started, calls = gated_explain
    r = explain(tiny_model, "an excellent and moving film")
    view = AttributionView.from_result(r)
    t0 = time.monotonic()
    view.method = "occlusion"  # what a pick in the front end does
    assert time.monotonic() - t0 < 1.0
    assert started.wait(10) and view.busy and view.result is r
    gate.set()
    view.wait(60)
    assert not view.busy and view.error == ""
    assert view.result.method == "occlusion" and calls == ["occlusion"]


def test_a_stale_result_never_overwrites_a_newer_one(tiny_model, gated_explain):
    from labkit.ui.attribution_view import AttributionView

    gate, started, calls = gated_explain
    r = explain(tiny_model, "an excellent and moving film")
    view = AttributionView.from_result(r)
    shown: list[str] = []
    view.observe(lambda c: shown.append(c["new"]), names="method")
    view.method = "occlusion"
    assert started.wait(10)  # occlusion is being computed...
    view.method = "saliency"  # ...when a newer pick arrives
    view.method = "gradient_x_input"  # and a newer one still: saliency is never started
    gate.set()
    view.wait(60)
    assert calls == ["occlusion", "gradient_x_input"]
    assert view.result.method == "gradient_x_input" and not view.busy
    assert shown == ["occlusion", "saliency", "gradient_x_input"]  # only the user's picks


def test_a_lock_is_held_around_each_recompute(tiny_model):
    """The App passes the lock its own work on the model takes: a recompute waits for it."""
    from labkit.ui.attribution_view import AttributionView

    lock = threading.RLock()
    r = explain(tiny_model, "great fun")
    view = AttributionView.from_result(r, lock=lock)
    with lock:
        view.method = "saliency"
        view.wait(0.3)
        assert view.busy and view.result is r
    view.wait(60)
    assert view.result.method == "saliency" and not view.busy


def test_the_view_carries_the_scale_and_a_recompute_draws_on_its_own(tiny_model):
    from labkit.ui.attribution_view import AttributionView

    r = explain(tiny_model, "great fun")
    view = AttributionView.from_result(r.with_scale(0.5))
    assert view.scale == 0.5
    assert AttributionView.from_result(r).scale is None
    view.method = "saliency"  # another method has scores of another size
    view.wait(60)
    assert view.result.scale is None and view.scale is None


def test_a_failed_recompute_shows_the_error_and_keeps_the_result(tiny_model):
    from labkit.ui.attribution_view import AttributionView

    r = explain(tiny_model, "great fun")
    view = AttributionView.from_result(r)
    view.method = "integrated_gradient"
    view.wait(60)
    assert "Did you mean 'integrated_gradients'" in view.error
    assert view.method == "integrated_gradients" and view.result is r and not view.busy


def test_result_without_a_model_is_shown_but_not_recomputed(tiny_model):
    import dataclasses

    from labkit.ui.attribution_view import AttributionView

    r = dataclasses.replace(explain(tiny_model, "great fun"), model=None)
    view = AttributionView.from_result(r)
    assert not view.interactive
    view.method = "saliency"
    view.wait(60)
    assert view.result is r


# -- command line -----------------------------------------------------------------------------------
def test_cli_explain_json_and_html(tiny_dirs, tmp_path, capsys):
    from labkit.cli import main

    out = tmp_path / "explained.html"
    code = main(
        [
            "explain",
            "--model",
            str(tiny_dirs["bert"]),
            "--json",
            "--method",
            "occlusion",
            "--target",
            "L1",
            "--html",
            str(out),
            "great fun",
            TEXT,
        ]
    )
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [x["text"] for x in lines] == ["great fun", TEXT]
    assert all(x["target"] == "L1" and x["method"] == "occlusion" for x in lines)
    assert len(lines[0]["tokens"]) == len(lines[0]["scores"])
    page = out.read_text()
    assert page.count('class="labkit-attribution"') == 2 and "<script" not in page


def test_cli_explain_text_output_and_errors(tiny_dirs, capsys):
    from labkit.cli import main

    assert main(["explain", "--model", str(tiny_dirs["bert"]), "--faithfulness", "great fun"]) == 0
    out = capsys.readouterr().out
    assert "integrated_gradients" in out and "completeness error" in out and "top:" in out
    assert main(["explain", "--model", str(tiny_dirs["bert"]), "--target", "nope", "x"]) == 1
    assert "unknown target label 'nope'" in capsys.readouterr().err
    assert main(["explain", "--model", str(tiny_dirs["bert"])]) == 1
