"""Glue to bertviz's own head, model and neuron views, with a trimmed and escaped payload.

bertviz writes every weight as JSON text (``tensor.tolist()`` of float32 prints ~20 digits) and
loads require.js, d3 and jQuery from cdnjs.cloudflare.com: its views need that CDN and stay blank
offline. Here the weights are rounded to a few digits first (float64 round-trips to short
decimals), only the chosen layers and heads are included, and ``</`` inside the inline script is
escaped so a token such as ``</script><img ...>`` cannot break out of it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from labkit._errors import ConfigError, InputError
from labkit._utils.optional import require

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult

__all__ = ["CDN_URLS", "BertvizView", "build"]

# What bertviz's HTML loads from the network (the views are blank without it).
CDN_URLS = (
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min.js",
)
_REQUIRE = f'<script src="{CDN_URLS[0]}"></script>'
_SCRIPT_OPEN = '<script type="text/javascript">'
_NEURON_TYPES = {"bert", "roberta", "distilbert", "gpt2", "xlm-roberta", "camembert"}

BertvizKind = Literal["head", "model", "neuron"]


@dataclass(frozen=True)
class BertvizView:
    """bertviz's HTML for one view. Shown by Jupyter as ``text/html``; needs the CDN above."""

    kind: str
    html: str

    def __repr__(self) -> str:
        return (
            f"BertvizView({self.kind!r}, {len(self.html):,} bytes of HTML; loads require.js, "
            "d3 and jQuery from cdnjs.cloudflare.com)"
        )

    def _repr_html_(self) -> str:
        return self.html


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
        feature="AttentionResult.to_bertviz (the result's own view needs neither it nor a CDN)",
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
    return BertvizView(kind=kind, html=_escape_script(out.data))


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
    vis_html = f"""
        <div id="{params["root_div_id"]}" style="padding:8px;font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;">
          <span style="user-select:none">
            <span class="dropdown-label">Layer: </span><select id="layer"></select>
            <span class="dropdown-label">Head: </span> <select id="att_head"></select>
          </span>
          <div id='vis'></div>
        </div>"""
    html = (
        f"{_REQUIRE}{vis_html}\n{_SCRIPT_OPEN}\nwindow.bertviz_params = {payload}\n</script>\n"
        f"{_SCRIPT_OPEN}\n{vis_js}\n</script>\n"
    )
    return BertvizView(kind="neuron", html=html)
