"""Views of an AttributionResult: static HTML, captum's record, the widget (no browser), the CLI."""

from __future__ import annotations

import json
import struct
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
    assert view.result.method == "occlusion" and view.delta is None and view.n_steps is None
    expected = explain(tiny_model, r.text, method="occlusion", target=r.target)
    np.testing.assert_allclose(_floats(view.scores), expected.scores, rtol=1e-5, atol=1e-9)
    other = "negative" if r.target == "positive" else "positive"
    view.busy = True
    view.target = other
    assert view.result.target == other and not view.busy
    view.faithfulness = True
    assert view.comprehensiveness is not None and view.result.comprehensiveness is not None


def test_a_failed_recompute_shows_the_error_and_keeps_the_result(tiny_model):
    from labkit.ui.attribution_view import AttributionView

    r = explain(tiny_model, "great fun")
    view = AttributionView.from_result(r)
    view.method = "integrated_gradient"
    assert "Did you mean 'integrated_gradients'" in view.error
    assert view.method == "integrated_gradients" and view.result is r and not view.busy


def test_result_without_a_model_is_shown_but_not_recomputed(tiny_model):
    import dataclasses

    from labkit.ui.attribution_view import AttributionView

    r = dataclasses.replace(explain(tiny_model, "great fun"), model=None)
    view = AttributionView.from_result(r)
    assert not view.interactive
    view.method = "saliency"
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
