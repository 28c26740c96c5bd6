"""Interactive views of attention: ``AttentionView`` (head view + model view) and
``AttentionDiffView`` (heads ranked by how much they changed).

Only small things travel as traits (tokens, flags, uint8 thumbnails). The weights of a layer are
sent when the front end asks for them, as fp16 buffers: dense [heads, T, T] up to
``DENSE_MAX`` tokens, else each row's ``SPARSE_K`` strongest links (uint16 indices + fp16
weights), which is all the head view draws for long inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from labkit.render import heatmap as _heatmap
from labkit.ui._base import LabkitWidget, asset

if TYPE_CHECKING:
    from labkit.inspect.attention.diff import AttentionDiff
    from labkit.inspect.attention.result import AttentionResult

__all__ = [
    "DENSE_MAX",
    "SPARSE_K",
    "AttentionDiffView",
    "AttentionView",
    "view_for_attention",
    "view_for_attention_diff",
]

DENSE_MAX = 256  # longest input whose layers are sent whole
SPARSE_K = 32  # links kept per row for longer inputs
THUMB = 24  # model-view thumbnails are pooled to at most THUMB x THUMB
DIFF_MAX = 128  # diff heatmaps are pooled to at most DIFF_MAX x DIFF_MAX


def layer_payload(weights: np.ndarray, layer: int) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to {type: "layer"}: ``weights`` float32 [heads, T, T] as fp16 buffers."""
    heads, tokens = weights.shape[0], weights.shape[-1]
    msg: dict[str, Any] = {"type": "layer", "layer": layer, "heads": heads, "tokens": tokens}
    if tokens <= DENSE_MAX:
        msg["format"] = "dense"
        return msg, [np.ascontiguousarray(weights, dtype=np.float16).tobytes()]
    k = min(SPARSE_K, tokens)
    part = np.argpartition(-weights, k - 1, axis=-1)[..., :k]
    vals = np.take_along_axis(weights, part, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    idx = np.take_along_axis(part, order, axis=-1)
    vals = np.take_along_axis(vals, order, axis=-1)
    msg.update(format="topk", k=k)
    return msg, [idx.astype(np.uint16).tobytes(), vals.astype(np.float16).tobytes()]


def thumbnails(weights: np.ndarray, size: int = THUMB) -> tuple[int, bytes]:
    """(S, uint8 [layers, heads, S, S] bytes): each head pooled and scaled by its own maximum."""
    s = min(weights.shape[-1], size)
    out = np.empty((*weights.shape[:2], s, s), dtype=np.uint8)
    for li in range(weights.shape[0]):
        for hi in range(weights.shape[1]):
            out[li, hi] = _heatmap.to_levels(_heatmap.pool(weights[li, hi], s))
    return s, out.tobytes()


class AttentionView(LabkitWidget):
    """Head view and model view of an :class:`~labkit.AttentionResult`.

    ``layer`` and ``selected_heads`` are positions in ``layers`` / ``heads`` (the model's
    indices of the kept ones); ``top_k`` is how many links per token the head view draws.
    """

    _esm = asset("attention_view.js")
    _css = asset("attention_view.css")

    model_name = t.Unicode("").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    special = t.List(t.Bool()).tag(sync=True)
    layers = t.List(t.Int()).tag(sync=True)
    heads = t.List(t.Int()).tag(sync=True)
    roles = t.List(t.List(t.Unicode())).tag(sync=True)
    causal = t.Bool(False).tag(sync=True)
    thumb_size = t.Int(0).tag(sync=True)
    thumbs = t.Bytes(b"").tag(sync=True)
    mode = t.Enum(("head", "model"), default_value="head").tag(sync=True)
    layer = t.Int(0).tag(sync=True)
    selected_heads = t.List(t.Int()).tag(sync=True)
    top_k = t.Int(8).tag(sync=True)

    def __init__(self, result: AttentionResult, **kwargs: Any) -> None:
        size, thumbs = thumbnails(result.weights)
        n = len(result.tokens)
        kwargs.setdefault("top_k", 8 if n <= 512 else 4)
        super().__init__(
            model_name=result.model_name,
            tokens=list(result.tokens),
            special=[bool(x) for x in result.special],
            layers=list(result.layers),
            heads=list(result.heads),
            roles=[list(r) for r in result.summary.roles],
            causal=result.causal,
            thumb_size=size,
            thumbs=thumbs,
            selected_heads=list(range(len(result.heads))),
            **kwargs,
        )
        self._result = result
        self.on_msg(self._on_msg)

    @t.validate("layer")
    def _valid_layer(self, proposal: Any) -> int:
        value = int(proposal["value"])
        n = len(self._trait_values.get("layers") or []) or 1
        return min(max(value, 0), n - 1)

    @property
    def result(self) -> AttentionResult:
        return self._result

    def layer_message(self, layer: int) -> tuple[dict[str, Any], list[bytes]]:
        """(content, buffers) answering a request for the ``layer``-th kept layer."""
        return layer_payload(self._result.weights[layer], layer)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "layer":
            return
        layer = content.get("layer")
        if not isinstance(layer, int) or not 0 <= layer < len(self._result.layers):
            return
        msg, buffers = self.layer_message(layer)
        self.send(msg, buffers)


class AttentionDiffView(LabkitWidget):
    """Heads ranked by change (Jensen-Shannon divergence) with before/after maps of one head.

    ``selected`` is [layer position, head position]; it starts at the most changed head.
    ``captions`` names the two sides (the diff's ``captions``: its labels, plus the model
    names when they differ); ``name_a`` / ``name_b`` are the two model names.
    """

    _esm = asset("attention_diff.js")
    _css = asset("attention_diff.css")

    name_a = t.Unicode("").tag(sync=True)
    name_b = t.Unicode("").tag(sync=True)
    captions = t.List(t.Unicode(), default_value=["before", "after"]).tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    layers = t.List(t.Int()).tag(sync=True)
    heads = t.List(t.Int()).tag(sync=True)
    jsd = t.List(t.List(t.Float())).tag(sync=True)
    selected = t.List(t.Int(), default_value=[0, 0]).tag(sync=True)

    def __init__(self, diff: AttentionDiff, **kwargs: Any) -> None:
        top_layer, top_head, _ = diff.ranked(1)[0]
        kwargs.setdefault("selected", [diff.layers.index(top_layer), diff.heads.index(top_head)])
        super().__init__(
            name_a=diff.a.model_name,
            name_b=diff.b.model_name,
            captions=list(diff.captions),
            tokens=list(diff.tokens),
            layers=list(diff.layers),
            heads=list(diff.heads),
            jsd=[[round(float(v), 6) for v in row] for row in diff.jsd],
            **kwargs,
        )
        self._diff = diff
        self.on_msg(self._on_msg)

    @property
    def diff(self) -> AttentionDiff:
        return self._diff

    def head_message(self, layer: int, head: int) -> tuple[dict[str, Any], list[bytes]]:
        """(content, buffers) with both maps of one head (pooled to ``size`` rows; pooled row g
        starts at token ``edges[g]``) and its change per token."""
        a = _heatmap.pool(self._diff.a.weights[layer, head], DIFF_MAX)
        b = _heatmap.pool(self._diff.b.weights[layer, head], DIFF_MAX)
        rows = self._diff.row_jsd[layer, head]
        edges = _heatmap.edges(len(self._diff.tokens), DIFF_MAX)
        msg = {
            "type": "head",
            "layer": layer,
            "head": head,
            "size": int(a.shape[0]),
            "edges": [int(x) for x in edges],
        }
        return msg, [
            a.astype(np.float16).tobytes(),
            b.astype(np.float16).tobytes(),
            rows.astype(np.float16).tobytes(),
        ]

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "head":
            return
        layer, head = content.get("layer"), content.get("head")
        if not (
            isinstance(layer, int)
            and isinstance(head, int)
            and 0 <= layer < len(self._diff.layers)
            and 0 <= head < len(self._diff.heads)
        ):
            return
        msg, buffers = self.head_message(layer, head)
        self.send(msg, buffers)


def view_for_attention(result: AttentionResult) -> AttentionView:
    """The interactive view ``labkit.ui.view_for`` builds for an AttentionResult."""
    return AttentionView(result)


def view_for_attention_diff(diff: AttentionDiff) -> AttentionDiffView:
    """The interactive view ``labkit.ui.view_for`` builds for an AttentionDiff."""
    return AttentionDiffView(diff)
