"""bertviz glue without a browser: the views carry require.js, d3 and jQuery inline (the copies
in labkit/render/vendor, as its README lists them), name no CDN, and keep a trimmed, escaped
payload. tests/test_browser_bertviz.py renders them in Chromium with the network cut off."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import labkit
from labkit import LabkitError
from labkit.render import bertviz as bv

VENDOR = Path(bv.__file__).resolve().parent / "vendor"
TEXT = "the movie was not good at all"
# Hosts that the inlined code names without fetching: XML namespaces, licence and comment links,
# require.js's error-page links in its messages.
NOT_FETCHED = {
    "www.w3.org",
    "d3js.org",
    "github.com",
    "requirejs.org",
    "dev.jquery.com",
    "connect.microsoft.com",
    "webkit.org",
}


class _Tags(HTMLParser):
    """The elements with their attributes, and each script's text, as a browser splits them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    tags.close()
    return tags


def _bertviz_script(html: str) -> str:
    """The last inline script: bertviz's own, with the JSON payload."""
    return html.rsplit('<script type="text/javascript">', 1)[1]


@pytest.mark.parametrize("kind", ["head", "model", "neuron"])
def test_views_are_self_contained(tiny_model, kind):
    view = labkit.attention(tiny_model, TEXT).to_bertviz(kind)
    html = view.html
    assert "cdnjs" not in html
    assert "cdnjs" not in repr(view) and "inlined" in repr(view)
    tags = _parse(html)
    linked = [(tag, attrs) for tag, attrs in tags.tags if {"src", "href"} & set(attrs)]
    assert linked == []
    # require.js, jQuery, d3, then bertviz's script (the neuron view sets its params first)
    assert len(tags.scripts) == (5 if kind == "neuron" else 4)
    assert tags.scripts[0].lstrip().startswith("/** vim") and "RequireJS 2.3.6" in tags.scripts[0]
    assert "jQuery v2.0.0" in tags.scripts[1] and "d3js.org v5.7.0" in tags.scripts[2]
    assert "requirejs(['jquery', 'd3']" in tags.scripts[-1]
    assert "require.config(" not in tags.scripts[-1]  # bertviz's CDN paths are gone
    hosts = {urlsplit(url).hostname for url in re.findall(r"https?://[^\s\"'<>)]+", html)}
    assert hosts <= NOT_FETCHED


def test_payload_is_still_trimmed_and_escaped(tiny_model):
    import torch
    from bertviz import head_view

    result = labkit.attention(tiny_model, TEXT)
    tokens = list(result.tokens)
    tokens[1] = "</script><script>alert(1)</script>"
    tokens[2] = "<!--<script>"
    result = dataclasses.replace(result, tokens=tuple(tokens))
    view = result.to_bertviz("head")
    raw = head_view(
        [torch.from_numpy(result.weights[i][None]) for i in range(len(result.layers))],
        list(result.tokens),
        html_action="return",
    ).data
    # the libraries add ~400 KB; bertviz's script with the weights is still smaller than its own
    assert len(_bertviz_script(view.html)) < len(_bertviz_script(raw))
    assert len(view.html) - len(bv._vendor_html()) < len(raw)
    tags = _parse(view.html)
    assert len(tags.scripts) == 4 and "<\\/script><script>alert(1)<\\/script>" in tags.scripts[-1]
    assert "<\\!--<script>" in tags.scripts[-1]


def test_inline_js_cannot_end_its_script():
    source = 'a = "</script>" + "</SCRIPT >" + "<!-- x"; b = /<\\/script/; c = "</div>";'
    inlined = bv._inline_js(source)
    assert inlined == (
        'a = "<\\/script>" + "<\\/SCRIPT >" + "<\\!-- x"; b = /<\\/script/; c = "</div>";'
    )
    tags = _parse(f"<script>{inlined}</script><p>after</p>")
    assert tags.scripts == [inlined] and tags.tags[-1][0] == "p"
    # the shipped files hold none of these, so they are inlined byte for byte
    for file, _name, _after in bv._VENDOR:
        source = (VENDOR / file).read_text(encoding="utf-8")
        assert bv._inline_js(source) == source


def test_vendor_files_are_the_ones_the_readme_lists():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w.-]+\.js)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.M))
    assert set(rows) == {file for file, _name, _after in bv._VENDOR}
    for file, sha in rows.items():
        assert hashlib.sha256((VENDOR / file).read_bytes()).hexdigest() == sha, file
        licence = VENDOR / file.replace(".min.js", ".LICENSE.txt").replace(".js", ".LICENSE.txt")
        assert licence.is_file() and licence.name in readme, licence


def test_changed_bertviz_html_is_refused_with_advice():
    with pytest.raises(LabkitError, match=r"require\.min\.js.*bertviz>=1\.4,<1\.5"):
        bv._offline("<div id='vis'></div><script>requirejs(['d3'], f)</script>")
    with pytest.raises(LabkitError, match=r"require\.config"):
        bv._without_cdn_config("requirejs(['jquery', 'd3'], function ($, d3) {});")
