"""Image views: ``ImageAttentionView`` (where a Vision Transformer's tokens look, drawn over the
image) and ``ImageAttributionView`` (an explanation's scores over the image).

Click a patch to see its attention (the class token's at first); pick a layer and a head, the
mean of the heads, or attention rollout. Small things travel as traits (the uint8 image, the
patch grid, the rollout as one fp16 buffer [T, T]); a layer's maps are sent as one fp16 buffer
[heads, T, T] when the front end asks for it (``{type: "layer", layer}``), as the text view's.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from labkit.render.image import GHOST
from labkit.ui._base import LabkitWidget, asset

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult
    from labkit.vision.attribution_result import ImageAttribution

__all__ = [
    "ImageAttentionView",
    "ImageAttributionView",
    "view_for_image_attention",
    "view_for_image_attribution",
]


class ImageAttentionView(LabkitWidget):
    """An image's attention over patches: ``layer`` is a position in ``layers`` or -1 for
    rollout, ``head`` a position in ``heads`` or -1 for their mean, ``query`` the token whose
    attention is drawn (0: the class token)."""

    _esm = asset("image_attention.js")
    _css = asset("image_attention.css")

    model_name = t.Unicode("").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    image = t.Bytes(b"", help="uint8 [height, width, channels], row-major").tag(sync=True)
    height = t.Int(0).tag(sync=True)
    width = t.Int(0).tag(sync=True)
    channels = t.Int(1).tag(sync=True)
    grid = t.List(t.Int(), default_value=[1, 1], help="[rows, cols] of patches").tag(sync=True)
    layers = t.List(t.Int()).tag(sync=True)
    heads = t.List(t.Int()).tag(sync=True)
    rollout = t.Bytes(b"", help="fp16 [T, T] attention rollout").tag(sync=True)
    ghost = t.Float(GHOST, help="share of the image's brightness under the overlay").tag(sync=True)
    layer = t.Int(-1).tag(sync=True)
    head = t.Int(-1).tag(sync=True)
    query = t.Int(0).tag(sync=True)

    def __init__(self, result: AttentionResult, **kwargs: Any) -> None:
        if result.image is None or result.grid is None:
            from labkit._errors import InputError

            raise InputError(
                "ImageAttentionView shows an image's attention (labkit.attention(vit, image)); "
                "this result is over text: display it as it is."
            )
        h, w, c = result.image.shape
        super().__init__(
            model_name=result.model_name,
            tokens=list(result.tokens),
            image=np.ascontiguousarray(result.image, dtype=np.uint8).tobytes(),
            height=h,
            width=w,
            channels=c,
            grid=list(result.grid),
            layers=list(result.layers),
            heads=list(result.heads),
            rollout=result.rollout().astype(np.float16).tobytes(),
            **kwargs,
        )
        self._result = result
        self.on_msg(self._on_msg)

    @property
    def result(self) -> AttentionResult:
        return self._result

    def layer_message(self, layer: int) -> tuple[dict[str, Any], list[bytes]]:
        """(content, buffers) answering a request for the ``layer``-th kept layer."""
        weights = self._result.weights[layer]
        msg = {
            "type": "layer",
            "layer": layer,
            "heads": int(weights.shape[0]),
            "tokens": int(weights.shape[-1]),
        }
        return msg, [np.ascontiguousarray(weights, dtype=np.float16).tobytes()]

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "layer":
            return
        layer = content.get("layer")
        if not isinstance(layer, int) or not 0 <= layer < len(self._result.layers):
            return
        msg, buffers = self.layer_message(layer)
        self.send(msg, buffers)


def view_for_image_attention(result: AttentionResult) -> Any:
    """The interactive view of an AttentionResult: over the image when it has one, else the
    text view (``labkit.ui.attention_view``)."""
    if result.image is None:
        from labkit.ui.attention_view import view_for_attention

        return view_for_attention(result)
    return ImageAttentionView(result)


class ImageAttributionView(LabkitWidget):
    """An image explanation over the image: ``mode`` ``"pixels"`` (the scores) or
    ``"patches"`` (their sums per patch). Setting ``target`` (the front end's label picker)
    explains that label instead, on a worker thread (``busy`` meanwhile, ``error`` says why one
    failed; :meth:`wait` blocks until the newest is shown); a result without its model is
    shown only (``interactive`` False)."""

    _esm = asset("image_attribution.js")
    _css = asset("image_attribution.css")

    model_name = t.Unicode("").tag(sync=True)
    image = t.Bytes(b"", help="uint8 [height, width, channels], row-major").tag(sync=True)
    height = t.Int(0).tag(sync=True)
    width = t.Int(0).tag(sync=True)
    channels = t.Int(1).tag(sync=True)
    grid = t.List(t.Int(), default_value=[1, 1], help="[rows, cols] of patches").tag(sync=True)
    scores = t.Bytes(b"", help="float32 [height, width], little-endian").tag(sync=True)
    patch_scores = t.Bytes(b"", help="float32 [rows, cols], little-endian").tag(sync=True)
    target = t.Unicode("").tag(sync=True)
    labels = t.List(t.Unicode()).tag(sync=True)
    probs = t.List(t.Float()).tag(sync=True)
    method = t.Unicode("").tag(sync=True)
    delta = t.Float(None, allow_none=True).tag(sync=True)
    mode = t.Enum(("pixels", "patches"), default_value="pixels").tag(sync=True)
    interactive = t.Bool(False).tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    error = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        result: ImageAttribution,
        *,
        lock: contextlib.AbstractContextManager[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        h, w, c = result.image.shape
        super().__init__(
            image=np.ascontiguousarray(result.image, dtype=np.uint8).tobytes(),
            height=h,
            width=w,
            channels=c,
            grid=list(result.grid),
            interactive=result.model is not None,
            **kwargs,
        )
        self._applying = False
        self._lock = lock  # held around each recompute (the App's: its work never overlaps)
        self._request = 0
        self._worker: threading.Thread | None = None
        self._apply(result)
        self.observe(self._on_target, names="target")

    @property
    def result(self) -> ImageAttribution:
        return self._result

    def _apply(self, result: ImageAttribution) -> None:
        self._result = result
        self._applying = True
        try:
            with self.hold_sync():
                self.model_name = result.model_name
                self.scores = np.ascontiguousarray(result.scores, dtype="<f4").tobytes()
                self.patch_scores = np.ascontiguousarray(result.patch_scores, dtype="<f4").tobytes()
                self.labels = list(result.probs)
                self.probs = [float(p) for p in result.probs.values()]
                self.method = result.method
                self.delta = result.delta
                self.target = result.target
                self.error = ""
                self.busy = False
        finally:
            self._applying = False

    def _on_target(self, change: Any) -> None:
        if self._applying or not self.interactive:
            return
        self._request += 1
        self.busy = True
        self._worker = threading.Thread(
            target=self._explain, args=(self._request, change["new"]), daemon=True
        )
        self._worker.start()

    def _explain(self, request: int, target: str) -> None:
        import labkit
        from labkit.vision.attribution_result import ImageAttribution

        old = self._result
        if old.model is None:
            return
        options = {k: v for k, v in old.options.items() if k != "n_steps"}
        try:
            if old.model.is_training:
                raise labkit.InputError(
                    f"{old.model.name!r} is training: explain another label once the run ends."
                )
            with self._lock if self._lock is not None else contextlib.nullcontext():
                source = old.given if old.given is not None else old.image
                new = labkit.explain(old.model, source, target=target, method=old.method, **options)
        except labkit.LabkitError as exc:
            if request == self._request:
                self.error, self.busy = str(exc), False
            return
        except Exception as exc:  # noqa: BLE001 - shown in the view, the kernel survives
            if request == self._request:
                self.error, self.busy = f"{type(exc).__name__}: {exc}", False
            return
        if request == self._request:  # a newer request replaces this one
            assert isinstance(new, ImageAttribution)
            self._apply(new)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the newest recompute has been shown (or ``timeout`` seconds)."""
        if self._worker is not None:
            self._worker.join(timeout)


def view_for_image_attribution(result: ImageAttribution) -> ImageAttributionView:
    """The interactive view ``labkit.ui.view_for`` builds for an ImageAttribution."""
    return ImageAttributionView(result)
