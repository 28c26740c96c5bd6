"""Glue to bertviz's own head, model and neuron views: offline, with a trimmed and escaped payload.

bertviz writes every weight as JSON text (``tensor.tolist()`` of float32 prints ~20 digits), and
its HTML loads require.js, d3 5.7.0 and jQuery 2.0.0 from cdnjs.cloudflare.com: offline (or
behind a firewall) its views show an empty "Layer:" dropdown and ``require is not defined``.
Here the weights are rounded to a few digits first (float64 round-trips to short decimals), only
the chosen layers and heads are included, and ``</`` inside bertviz's inline script is escaped
so a token such as ``</script><img ...>`` cannot break out of it. The three libraries ship in
``labkit/render/vendor`` (versions, sources and licences in its README) and are inlined in
every view, which replaces bertviz's ``<script src>`` and its ``require.config`` CDN paths: the
HTML is self-contained and requests nothing from the network (~400 KB more per view).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from labkit._errors import ConfigError, InputError, LabkitError
from labkit._utils.optional import require

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["BertvizView", "build"]

_SCRIPT_OPEN = '<script type="text/javascript">'
_NEURON_TYPES = {
    "bert",
    "roberta",
    "distilbert",
    "gpt2",
    "xlm-roberta",
    "camembert",
    "llama",
    "mistral",
    "qwen2",
}

# What bertviz 1.4 loads from cdnjs, in the order the views need it: the file shipped in
# vendor/, the module name bertviz's scripts require (None: require.js itself), and what runs
# right after it. jQuery sets window.$ and window.jQuery: noConflict(true) puts back the page's
# own (Jupyter's classic notebook has one, with plugins).
_VENDOR = (
    ("require-2.3.6.js", None, ""),
    ("jquery-2.0.0.min.js", "jquery", "window.jQuery.noConflict(true);"),
    ("d3-5.7.0.min.js", "d3", ""),
)
# bertviz's HTML opens with <script src=".../require.min.js">, and each of its scripts starts by
# pointing require.js at the CDN: require.config({paths: {d3: 'https://...', jquery: '...'}});
_REQUIRE_TAG = re.compile(r'\A\s*<script src="[^"]*require[^"]*"></script>')
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{\s*paths:\s*\{[^{}]*\}\s*,?\s*\}\);")
# An inline script ends at "</script" in any case; "<!--" can make the parser skip that end.
_SCRIPT_BREAKERS = re.compile(r"</(script)|<!--", re.IGNORECASE)
# d3's define() is anonymous, which require.js refuses from an inline script ("mismatched
# anonymous define"): each library gets a define() that adds its module name, and no
# module/exports, so that its UMD header takes the AMD branch.
_NAMED_DEFINE = """(function (name) {
  var named = function () {
    var args = Array.prototype.slice.call(arguments);
    if (typeof args[0] !== "string") args.unshift(name);
    return define.apply(this, args);
  };
  named.amd = define.amd;
  return named;
})"""

BertvizKind = Literal["head", "model", "neuron"]


@dataclass(frozen=True)
class BertvizView:
    """bertviz's HTML for one view, with require.js, d3 and jQuery inlined: it loads nothing
    from the network. Shown by Jupyter as ``text/html``."""

    kind: str
    html: str

    def __repr__(self) -> str:
        return (
            f"BertvizView({self.kind!r}, {len(self.html):,} bytes of self-contained HTML; "
            "require.js, d3 and jQuery inlined)"
        )

    def _repr_html_(self) -> str:
        return self.html


def _inline_js(source: str) -> str:
    """``source`` made safe inside ``<script>``: ``</script`` and ``<!--`` written as ``<\\/script``
    and ``<\\!--``, which are the same characters in the strings and regular expressions where
    JavaScript can hold them."""
    return _SCRIPT_BREAKERS.sub(lambda m: "<\\/" + m[1] if m[1] else "<\\!--", source)


def _as_module(source: str, name: str, after: str) -> str:
    """``source`` run with a ``define`` that registers it with require.js as ``name``."""
    return (
        f"(function (define, module, exports) {{\n{source}\n{after}\n}}"
        f"({_NAMED_DEFINE}({json.dumps(name)})));"
    )


@cache
def _vendor_html() -> str:
    """require.js, then jQuery and d3 defined as the AMD modules bertviz's scripts require."""
    folder = resources.files("labkit.render").joinpath("vendor")
    parts = []
    for file, name, after in _VENDOR:
        source = _inline_js(folder.joinpath(file).read_text(encoding="utf-8"))
        if name is not None:
            source = _as_module(source, name, after)
        parts.append(f"<script>\n{source}\n</script>\n")
    return "".join(parts)


def _bertviz_changed(what: str) -> LabkitError:
    from importlib.metadata import version

    return LabkitError(
        f"bertviz {version('bertviz')}'s HTML has no {what}, which labkit replaces with its "
        "own copies of require.js, d3 and jQuery (so that the view needs no network). labkit "
        "supports bertviz 1.4: pip install 'bertviz>=1.4,<1.5'."
    )


def _without_cdn_config(js: str) -> str:
    """bertviz's script without its ``require.config`` CDN paths (the modules are inlined)."""
    js, found = _REQUIRE_CONFIG.subn("", js, count=1)
    if not found:
        raise _bertviz_changed("require.config({paths: ...}) block")
    return js


def _offline(html: str) -> str:
    """bertviz's returned HTML with the inlined libraries in place of the CDN."""
    html, found = _REQUIRE_TAG.subn("", html, count=1)
    if not found:
        raise _bertviz_changed('<script src=".../require.min.js"> tag')
    return _vendor_html() + _without_cdn_config(html)


def _escape_script(html: str) -> str:
    """Escape ``</`` and ``<!--`` inside the last inline script (bertviz's JSON payload)."""
    start = html.rfind(_SCRIPT_OPEN)
    end = html.rfind("</script>")
    if start < 0 or end < start:
        return html
    body = html[start + len(_SCRIPT_OPEN) : end]
    body = body.replace("</", "<\\/").replace("<!--", "<\\!--")
    return html[: start + len(_SCRIPT_OPEN)] + body + html[end:]


def _rounded(weights: np.ndarray, digits: int) -> Any:
    import torch

    # float64 so that .tolist() prints the short decimal (float32 -> 0.12300000339746475)
    return torch.from_numpy(np.round(weights.astype(np.float64), digits))


def _attention_list(
    result: AttentionResult, layers: list[int], heads: list[int], digits: int
) -> list[Any]:
    """bertviz's input: one [1, heads, T, T] tensor per model layer index up to the last chosen.

    Layers not chosen get a placeholder (bertviz only reads ``include_layers``); heads not kept
    are zeros, so bertviz's labels stay the model's own layer and head numbers.
    """
    t = len(result.tokens)
    n_heads = max(heads) + 1
    per_layer = {}
    for layer in layers:
        full = np.zeros((1, n_heads, t, t), dtype=np.float32)
        li = result.layers.index(layer)
        for head in heads:
            full[0, head] = result.weights[li, result.heads.index(head)]
        per_layer[layer] = _rounded(full, digits)
    filler = per_layer[layers[0]]
    return [per_layer.get(i, filler) for i in range(max(layers) + 1)]


def _pick(wanted: Any, kept: tuple[int, ...], what: str) -> list[int]:
    if wanted is None:
        return list(kept)
    chosen = [int(x) for x in ([wanted] if isinstance(wanted, int) else wanted)]
    missing = [x for x in chosen if x not in kept]
    if not chosen or missing:
        raise ConfigError(
            f"{what}={wanted!r}: this result keeps {what} {list(kept)}; choose "
            "among those (or compute the result with more)."
        )
    return sorted(set(chosen))


def _sentence_b_start(result: AttentionResult) -> int | None:
    if result.segments is None or result.pair is None:
        return None
    hits = np.flatnonzero(result.segments == 1)
    return int(hits[0]) if hits.size else None


def build(
    result: AttentionResult, kind: str, *, layers: Any = None, heads: Any = None, digits: int = 3
) -> BertvizView:
    """bertviz's ``kind`` view of ``result`` (see ``AttentionResult.to_bertviz``)."""
    if kind not in ("head", "model", "neuron"):
        raise ConfigError(f"kind must be 'head', 'model' or 'neuron', got {kind!r}.")
    if not isinstance(digits, int) or not 1 <= digits <= 8:
        raise ConfigError(f"digits must be an int from 1 to 8, got {digits!r}.")
    # bertviz loads IPython too: imported only when a bertviz view is asked for
    require(
        "bertviz",
        extra="bertviz",
        feature="AttentionResult.to_bertviz (the result's own view needs no bertviz)",
    )
    chosen_layers = _pick(layers, result.layers, "layers")
    chosen_heads = _pick(heads, result.heads, "heads")
    if kind == "neuron":
        return _neuron(result, chosen_layers, chosen_heads, digits)
    attention = _attention_list(result, chosen_layers, chosen_heads, digits)
    tokens = list(result.tokens)
    b_start = _sentence_b_start(result)
    if kind == "head":
        from bertviz import head_view

        out = head_view(
            attention,
            tokens,
            sentence_b_start=b_start,
            layer=chosen_layers[0],
            heads=chosen_heads,
            include_layers=chosen_layers,
            html_action="return",
        )
    else:
        from bertviz import model_view

        out = model_view(
            attention,
            tokens,
            sentence_b_start=b_start,
            include_layers=chosen_layers,
            include_heads=chosen_heads,
            html_action="return",
        )
    return BertvizView(kind=kind, html=_offline(_escape_script(out.data)))


def _neuron(
    result: AttentionResult, layers: list[int], heads: list[int], digits: int
) -> BertvizView:
    """The neuron view (query and key vectors); bertviz numbers the chosen layers 0, 1, ..."""
    if result.queries is None or result.keys is None:
        raise InputError(
            f"the neuron view needs each head's query and key vectors, which labkit captures "
            f"for {', '.join(sorted(_NEURON_TYPES))} models; this result comes from a "
            f"{result.model_type or 'unknown'} model. Use to_bertviz('head') or 'model'."
        )
    from bertviz.neuron_view import format_special_chars

    li = [result.layers.index(x) for x in layers]
    hi = [result.heads.index(x) for x in heads]

    def pick(a: np.ndarray) -> list[Any]:
        return np.round(a[np.ix_(li, hi)].astype(np.float64), digits).tolist()

    tokens = format_special_chars(list(result.tokens))
    params = {
        "attention": {
            "all": {
                "attn": pick(result.weights),
                "queries": pick(result.queries),
                "keys": pick(result.keys),
                "left_text": tokens,
                "right_text": tokens,
            }
        },
        "default_filter": "all",
        "root_div_id": f"bertviz-{uuid.uuid4().hex}",
        "bidirectional": not result.causal,
        "display_mode": "light",
        "layer": 0,
        "head": 0,
    }
    payload = json.dumps(params).replace("<", "\\u003c")  # no "</script>" inside the script
    vis_js = resources.files("bertviz").joinpath("neuron_view.js").read_text(encoding="utf-8")
    vis_js = _without_cdn_config(vis_js)
    vis_html = f"""
        <div id="{params["root_div_id"]}" style="padding:8px;font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;">
          <span style="user-select:none">
            <span class="dropdown-label">Layer: </span><select id="layer"></select>
            <span class="dropdown-label">Head: </span> <select id="att_head"></select>
          </span>
          <div id='vis'></div>
        </div>"""
    html = (
        f"{_vendor_html()}{vis_html}\n{_SCRIPT_OPEN}\nwindow.bertviz_params = {payload}\n</script>\n"
        f"{_SCRIPT_OPEN}\n{vis_js}\n</script>\n"
    )
    return BertvizView(kind="neuron", html=html)
