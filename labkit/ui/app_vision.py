"""The image classifier's tabs of ``labkit.App``: Predict (an image picker and its prediction),
Attention and Explain over the picked image.

``labkit.ui.app`` keeps the frame (status line, model and data loading, the worker thread and
the locks, the snapshot) and shows these when the loaded model's ``task`` is
``"image-classification"``: Model | Data | Train | Predict | Attention | Explain. One image is
*picked* at a time: one of the data's test split (validation when it has none), by its index or
from a strip of thumbnails, or an uploaded image file. Each button is one library call on the
App's worker thread, under the App's model lock:

* Predict -> ``Model.predict(image)``: the label, each label's probability, and whether it is
  the image's own;
* Attention -> ``labkit.attention(model, image)``, drawn over the image by its view (the class
  token's attention, any patch's, each layer and head, rollout);
* Explain -> ``labkit.explain(model, image, method=...)``: integrated gradients or occlusion
  as an overlay with a legend, for the predicted label; the view's own label picker explains
  another (it recomputes, and the status line follows it).

The thumbnails and the picked image are inline PNGs (``labkit.render.image_data``): nothing is
fetched. Every text shown goes through ``html.escape`` or a view that writes ``textContent``.
"""

from __future__ import annotations

import dataclasses
import html
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import traitlets

from labkit.ui._base import LabkitWidget, asset
from labkit.ui._form import button, field, fit, hint, label_row, labelled, layout

if TYPE_CHECKING:
    import ipywidgets as W
    import numpy as np

    from labkit.ui.app import App
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = [
    "IMAGE_TYPES",
    "STRIP",
    "VISION_DATA",
    "VISION_DATA_PRESETS",
    "VISION_FOLDER",
    "ImageStrip",
    "Picked",
    "VisionTabs",
]

VISION_DATA = "offline: MNIST digits (5,000)"
VISION_FOLDER = "folder of class subfolders"
# name -> (folder or hub dataset, image column, label column); None: labkit.demo.images
VISION_DATA_PRESETS: dict[str, tuple[str, str, str] | None] = {
    VISION_DATA: None,
    VISION_FOLDER: ("", "image", "label"),
}
STRIP = 16  # thumbnails in the picker's strip
IMAGE_TYPES = ".png,.jpg,.jpeg,.bmp,.gif,.webp,.tif,.tiff"
_THUMB_MAX = 64  # a thumbnail's longest side, pixels (larger images are subsampled)
_SHOWN_PX = 168  # the picked image is drawn this wide (pixelated when enlarged)
_TOP = 5  # labels listed under a prediction


class ImageStrip(LabkitWidget):
    """A row of thumbnails: ``thumbs`` PNG bytes, ``captions`` their texts (each image's label);
    a click sets ``selected``, the clicked one's place in the row (-1: none)."""

    _esm = asset("app_image_strip.js")
    _css = asset("app_image_strip.css")
    thumbs = traitlets.List(traitlets.Bytes()).tag(sync=True)
    captions = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)


@dataclasses.dataclass(frozen=True, eq=False)
class Picked:
    """The image the Predict, Attention and Explain tabs work on: ``image`` uint8 [H, W, C],
    ``what`` where it came from ("test image 12", "upload cat.png"), ``label`` its own label
    when the data names it (else None)."""

    image: np.ndarray
    what: str
    label: str | None = None


def _png(image: np.ndarray, longest: int | None = None) -> bytes:
    """PNG bytes of a uint8 [H, W, C] image, subsampled to at most ``longest`` pixels a side."""
    from labkit.render.heatmap import image_png

    if longest is not None:
        step = -(-max(image.shape[:2]) // longest)  # ceil: the fewest rows/columns skipped
        if step > 1:
            image = image[::step, ::step]
    return image_png(image)


def image_html(image: np.ndarray, caption: str) -> str:
    """``image`` as an inline PNG about 168 px wide (pixelated when enlarged), captioned
    (``caption`` is escaped here)."""
    from labkit.render.heatmap import data_uri

    h, w = image.shape[:2]
    scale = _SHOWN_PX / max(h, w)
    shown_w, shown_h = round(w * scale), round(h * scale)
    src = data_uri(_png(image, longest=512))
    return (
        "<figure style='margin:0;display:inline-block;text-align:center'>"
        f"<img src='{src}' width='{shown_w}' height='{shown_h}' alt='{html.escape(caption)}' "
        "style='image-rendering:pixelated;border:1px solid #d0d7de'>"
        f"<figcaption><small>{html.escape(caption)}</small></figcaption></figure>"
    )


def prediction_html(prediction: Any, label: str | None, *, stale: bool = False) -> str:
    """The predicted label, whether it is the image's own, and the top labels' probabilities
    as bars (every name escaped)."""
    e = html.escape
    probs = sorted(prediction.probs.items(), key=lambda kv: -kv[1])[:_TOP]
    rows = "".join(
        f"<tr><td><code>{e(name)}</code></td><td style='white-space:nowrap'>"
        "<span style='display:inline-block;height:0.8em;background:#4e79a7;"
        f"width:{100 * p:.1f}px;margin-right:4px'></span>{100 * p:.1f}%</td></tr>"
        for name, p in probs
    )
    verdict = ""
    if label is not None:
        right = prediction.label == label
        verdict = (
            f" <span style='color:{'#1a7f37' if right else '#cf222e'}'>"
            f"{'✓ right' if right else '✗ wrong'}: it is {e(label)}</span>"
        )
    note = (
        "<div><small>(from before the last training run: press Predict again)</small></div>"
        if stale
        else ""
    )
    return (
        f"<div><b>Prediction: {e(prediction.label)}</b> "
        f"({100 * prediction.probs[prediction.label]:.1f}%){verdict}</div>{note}"
        f"<table class='labkit-prediction'>{rows}</table>"
    )


def _image_of(ds: Any, index: int) -> np.ndarray:
    """Row ``index`` of an ImageData split as a uint8 [H, W, C] array."""
    from labkit.vision.data import image_block

    return image_block(ds, [index])[0]


def _view(result: Any) -> W.Widget:
    """The interactive view of a result, or its static HTML where it has none."""
    from labkit.ui import view_for

    view = view_for(result)
    return view if view is not None else W.HTML(result._repr_html_())


class VisionTabs:
    """An image classifier's widgets in the App (``app.vision``) and what their buttons do.

    ``picked`` is the :class:`Picked` image; ``prediction`` the model's ``Prediction`` for it,
    ``attended`` its ``AttentionResult`` and ``explained`` its ``ImageAttribution`` (each None
    until made, and cleared when another image is picked or another model loaded).
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.picked: Picked | None = None
        self.prediction: Any = None
        self.stale = False  # the prediction shown is from before the last run
        self.attended: Any = None
        self.explained: Any = None
        self._split: Any = None  # the split the picker shows (test, else validation)
        self._split_name = ""
        self._labels: tuple[str, ...] = ()
        self._start = 0  # the first index the strip shows
        self._picking = False  # the index field is being set by pick(): its observer waits
        self.predict_page = self._predict_tab()
        self.attention_page = self._attention_tab()
        self.explain_page = self._explain_tab()

    # -- the model and the data the App loaded -------------------------------------------------
    def show_model(self, model: Any) -> None:
        """A model was loaded (or none is): what the tabs showed was the one before's."""
        self.prediction = self.attended = None
        self.stale = False
        self.attention_box.children = []
        self._show_explained(None)
        self._show_picked()

    def show_data(self, data: Any) -> str:
        """The Data tab's preview of image data (``ImageData``'s own: each class's first
        images); the picker shows its test split (else validation) and picks its first image.
        ``data`` None: no data, an empty picker."""
        from labkit.vision.data import ImageData

        if not isinstance(data, ImageData):
            self._split, self._labels = None, ()
            self._show_strip()
            if self.picked is not None and self.picked.label is not None:
                self.picked = None  # it was the last data's (an upload stays)
                self._show_picked()
            if data is None:
                return "<i>No data loaded.</i>"
            shown = data._repr_html_() if hasattr(data, "_repr_html_") else html.escape(repr(data))
            return (
                f"{shown}<p><b>An image classifier learns from labelled images</b>: load a "
                "folder of class subfolders, or the offline digits, here.</p>"
            )
        self._split_name = "test" if data.test is not None else "validation"
        self._split, self._labels = data.splits[self._split_name], data.labels
        count = len(self._split)
        self._start = 0
        self._set_index(lambda: setattr(self.index, "max", max(count - 1, 0)))
        if count:
            # no prediction yet: this runs on the App's worker (the load's), which is busy
            self.pick(0, predict=False)
        self._show_strip()
        return str(data._repr_html_())

    def trained(self) -> None:
        """A run ended: the prediction shown is the model's from before it."""
        if self.prediction is not None:
            self.stale = True
            self._show_picked()

    # -- Predict: the picker -------------------------------------------------------------------
    def _predict_tab(self) -> W.VBox:
        self.index = W.BoundedIntText(
            value=0, min=0, max=0, description="Image #", style=fit(), layout=field("11em")
        )
        self.earlier = button("◀", tooltip="the previous images")
        self.later = button("▶", tooltip="the next images")
        self.strip_note = W.Label()
        self.strip = ImageStrip()
        self.upload = W.FileUpload(
            accept=IMAGE_TYPES,
            multiple=False,
            description="Upload image",
            layout=layout(width="auto", flex="none", align_self="flex-start"),
        )
        self.predict_go = button("Predict", button_style="primary", icon="play")
        self.picked_box = W.HTML()
        self.index.observe(self._on_index, names="value")
        self.strip.observe(self._on_strip, names="selected")
        self.earlier.on_click(lambda _: self._page(-1))
        self.later.on_click(lambda _: self._page(+1))
        self.upload.observe(lambda _: self._on_upload(), names="value")
        self.predict_go.on_click(lambda _: self.predict())
        return W.VBox(
            [
                hint(
                    "Pick an image of the data's test split: click a thumbnail or type its "
                    "number; or upload an image file. The Attention and Explain tabs work on "
                    "the image picked here."
                ),
                label_row(self.index, self.earlier, self.later, self.strip_note),
                self.strip,
                label_row(self.upload, self.predict_go),
                self.picked_box,
            ]
        )

    def _show_strip(self) -> None:
        """The strip's thumbnails from ``_start``, and which of them is picked."""
        ds = self._split
        if ds is None or not len(ds):
            self.strip.thumbs, self.strip.captions, self.strip.selected = [], [], -1
            self.strip_note.value = "No image data loaded: load some in the Data tab."
            self.earlier.disabled = self.later.disabled = True
            return
        from labkit.vision.data import image_block

        count = len(ds)
        end = min(self._start + STRIP, count)
        rows = list(range(self._start, end))
        images = image_block(ds, rows)
        ids = ds.select(rows)["label"]
        with self.strip.hold_sync():
            self.strip.thumbs = [_png(im, _THUMB_MAX) for im in images]
            self.strip.captions = [f"{i}: {self._labels[int(k)]}" for i, k in zip(rows, ids)]
            index = int(self.index.value)
            self.strip.selected = index - self._start if self._start <= index < end else -1
        self.strip_note.value = f"images {self._start}–{end - 1} of {count:,} ({self._split_name})"
        self.earlier.disabled = self._start == 0
        self.later.disabled = end >= count

    def _page(self, step: int) -> None:
        ds = self._split
        if ds is None:
            return
        last = max(len(ds) - 1, 0) // STRIP * STRIP
        self._start = min(max(self._start + step * STRIP, 0), last)
        self._show_strip()

    def _set_index(self, change: Callable[[], Any]) -> None:
        """Make ``change`` to the index field without its observer picking an image."""
        self._picking = True
        try:
            change()
        finally:
            self._picking = False

    def _on_index(self, change: dict[str, Any]) -> None:
        if not self._picking:
            self.pick(int(change["new"]))

    def _on_strip(self, change: dict[str, Any]) -> None:
        chosen = int(change["new"])
        if chosen >= 0 and self._start + chosen != self.index.value:
            self.index.value = self._start + chosen  # picks it (the index's observer)

    def pick(self, index: int, *, predict: bool = True) -> None:
        """Pick image ``index`` of the picker's split (the strip follows), then predict it."""
        ds = self._split
        if ds is None or not 0 <= index < len(ds):
            return
        self._set_index(lambda: setattr(self.index, "value", index))
        if not self._start <= index < self._start + STRIP:
            self._start = index // STRIP * STRIP
        self._show_strip()
        label = self._labels[int(ds[index]["label"])]
        image = _image_of(ds, index)
        self._set_picked(Picked(image, f"{self._split_name} image {index}", label), predict)

    def _on_upload(self) -> None:
        """An uploaded image file becomes the picked image (an unreadable one is named in the
        status line)."""
        from labkit._errors import LabkitError
        from labkit.vision.pixels import as_image

        got = self.app._uploaded(self.upload)
        if got is None:
            return
        name, payload = got
        base = os.path.basename(name) or "upload"
        with tempfile.TemporaryDirectory(prefix="labkit-upload-") as folder:
            path = os.path.join(folder, base)
            with open(path, "wb") as fh:
                fh.write(payload)
            try:
                image = as_image(path, what=f"the uploaded file {base!r}")
            except LabkitError as exc:
                self.app._say(str(exc).replace(path, base), "error")
                return
        self.strip.selected = -1
        self._set_picked(Picked(image, f"upload {base}"), True)

    def _set_picked(self, picked: Picked, predict: bool) -> None:
        self.picked = picked
        self.prediction, self.stale = None, False
        # what the other tabs showed was the last image's
        self.attended = None
        self.attention_box.children = []
        self._show_explained(None)
        self._show_picked()
        if predict:
            self.predict()

    def _show_picked(self) -> None:
        p = self.picked
        if p is None:
            self.picked_box.value = "<i>No image picked.</i>"
            self.attention_image.value = self.explain_image.value = ""
            return
        caption = p.what + (f" (label {p.label})" if p.label is not None else "")
        shown = image_html(p.image, caption)
        if self.prediction is not None:
            answer = prediction_html(self.prediction, p.label, stale=self.stale)
        elif self.app.model is None:
            answer = "<i>Load a model in the Model tab to predict it.</i>"
        else:
            answer = "<i>Press Predict for the model's answer.</i>"
        self.picked_box.value = (
            "<div style='display:flex;flex-wrap:wrap;gap:8px 24px;align-items:flex-start'>"
            f"<div>{shown}</div><div style='min-width:200px'>{answer}</div></div>"
        )
        small = f"<div style='line-height:1.4'><small>The picked image: {html.escape(caption)} "
        small += "(pick another in the Predict tab).</small></div>"
        self.attention_image.value = self.explain_image.value = small

    # -- the buttons ---------------------------------------------------------------------------
    def _ready(self, what: str, picked: Picked | None) -> tuple[Any, np.ndarray]:
        """(the App's image classifier, the picked image) for ``what``; refused without
        either, and while a run trains the model (its weights move, and a pass would switch it
        out of training mode under the run)."""
        from labkit._errors import InputError

        app = self.app
        app._need()
        model = app.model
        model.require_task("image-classification", what)
        if picked is None:
            raise InputError(
                f"No image picked: load image data in the Data tab and pick one in the Predict "
                f"tab (or upload one there), then {what}."
            )
        if model.is_training:
            raise InputError(
                f"A run is training this model: {what} when it has ended (or stop it). Its "
                "panel shows the accuracy at each evaluation."
            )
        return model, picked.image

    def predict(self) -> None:
        """``model.predict(image)`` of the picked image, shown under it."""
        app = self.app
        picked = self.picked
        if app.model is None or picked is None:
            self._show_picked()
            return

        def job() -> Any:
            with app._model_lock:  # one piece of the App's work on the model at a time
                model, image = self._ready("predict", picked)
                return model.predict(image)[0]

        def done(prediction: Any) -> str:
            if self.picked is picked:
                self.prediction, self.stale = prediction, False
                self._show_picked()
                app._refresh_snapshot()
            p = prediction.probs[prediction.label]
            right = (
                ""
                if picked.label is None
                else (
                    " (right)" if prediction.label == picked.label else f" (it is {picked.label})"
                )
            )
            return f"{picked.what}: predicted {prediction.label} ({p:.1%}){right}."

        app._work("Predicting…", job, done)

    def _attention_tab(self) -> W.VBox:
        self.attention_image = W.HTML()
        self.attention_go = button("Show attention", button_style="primary", icon="eye")
        self.attention_box = W.VBox()
        self.attention_go.on_click(lambda _: self.app.show_attention())
        return W.VBox(
            [
                self.attention_image,
                label_row(
                    self.attention_go,
                    hint(
                        "Every head's attention over the image's patches: the class token's "
                        "first; click a patch for its own, or pick rollout."
                    ),
                ),
                self.attention_box,
            ]
        )

    def _still_picked(self, picked: Any, what: str) -> None:
        """Raise ``InputError`` when another image was picked while ``what`` was computed for
        ``picked``: its result would show under the wrong image."""
        from labkit._errors import InputError

        if self.picked is not picked:
            now = self.picked.what if self.picked is not None else "no image"
            was = picked.what if picked is not None else "the image"
            raise InputError(
                f"{what} of {was} arrived after {now} was picked, so they are not shown: "
                "press the button again for the picked image."
            )

    def show_attention(self) -> None:
        """``labkit.attention(model, image)`` of the picked image, in its view."""
        import labkit

        app = self.app
        picked = self.picked

        def job() -> Any:
            with app._model_lock:
                model, image = self._ready("show attention", picked)
                return labkit.attention(model, image)

        def done(result: Any) -> str:
            self._still_picked(picked, "the attention")
            self.attended = result
            self.attention_box.children = [_view(result)]
            app._refresh_snapshot()
            layers, heads, t = result.weights.shape[:3]
            rows, cols = result.grid
            return (
                f"Attention of {picked.what if picked else 'the image'}: {layers} layers x "
                f"{heads} heads over {rows}x{cols} patches and {t - rows * cols} special "
                "token(s). Click a patch, or pick a layer, a head or rollout."
            )

        app._work("Computing attention…", job, done)

    def _explain_tab(self) -> W.VBox:
        from labkit.vision.explain import IMAGE_METHODS

        self.explain_image = W.HTML()
        self.method = W.Dropdown(options=list(IMAGE_METHODS), value=IMAGE_METHODS[0])
        self.explain_go = button("Explain", button_style="primary", icon="search")
        self.explain_box = W.VBox()
        self.explain_view: Any = None  # the view in explain_box (its label picker recomputes)
        self.explain_go.on_click(lambda _: self.app.show_explanation())
        return W.VBox(
            [
                self.explain_image,
                labelled("Method", self.method, "18em"),
                label_row(
                    self.explain_go,
                    hint(
                        "Which pixels pushed the model toward the label (green) or away from "
                        "it (red). Explains the predicted label; pick another in the view."
                    ),
                ),
                self.explain_box,
            ]
        )

    def _show_explained(self, view: Any) -> None:
        """Show ``view`` (None: nothing) in the Explain tab, its recomputes in the status line."""
        old = self.explain_view
        if old is not None and hasattr(old, "busy"):
            old.unobserve(self._on_explain_view, names=["busy"])
        self.explain_view = view
        self.explain_box.children = [view] if view is not None else []
        if view is None:
            self.explained = None
        elif hasattr(view, "busy"):
            view.observe(self._on_explain_view, names=["busy"])

    def _on_explain_view(self, change: dict[str, Any]) -> None:
        """The view explains another label (its picker): busy, then done or its error."""
        view = change["owner"]
        if view is not self.explain_view:
            return
        app = self.app
        if view.busy:
            app._say(f"Computing attributions for '{view.target}' ({view.method})…", "busy")
        elif view.error:
            app._say(view.error, "error")
        else:
            self.explained = view.result
            app._say(self._explained_message(view.result), "ok")
            app._refresh_snapshot()

    def _explained_message(self, result: Any) -> str:
        from labkit.render.summary import sig

        p = self.picked
        delta = "" if result.delta is None else f", completeness error {sig(result.delta)}"
        return (
            f"Explained '{result.target}' ({result.probability:.1%}) for "
            f"{p.what if p else 'the image'} with {result.method}{delta}."
        )

    def explain(self) -> None:
        """``labkit.explain(model, image, method=...)`` of the picked image: the label picked
        last in the view (for this image), else the predicted one."""
        import labkit

        app = self.app
        picked = self.picked
        shown = self.explain_view
        method = self.method.value
        target = getattr(shown, "target", None) or None

        def job() -> Any:
            with app._model_lock:
                model, image = self._ready("explain", picked)
                return labkit.explain(model, image, target=target, method=method)

        def done(result: Any) -> str:
            from labkit.ui.image_view import ImageAttributionView

            self._still_picked(picked, "the attributions")
            self._show_explained(ImageAttributionView(result, lock=self.app._model_lock))
            self.explained = result
            app._refresh_snapshot()
            return self._explained_message(result)

        app._work("Computing attributions…", job, done)

    # -- the saved notebook --------------------------------------------------------------------
    def snapshot_parts(self, heading: Callable[[str], str]) -> list[str]:
        """The picked image and its prediction, and the last attention and explanation of it,
        as static HTML (escaped), each under ``heading(title)``."""
        p = self.picked
        if p is None:
            return []
        e = html.escape
        caption = p.what + (f" (label {p.label})" if p.label is not None else "")
        parts = [heading(f"Predict: {e(p.what)}"), image_html(p.image, caption)]
        if self.prediction is not None:
            parts.append(prediction_html(self.prediction, p.label, stale=self.stale))
        if self.attended is not None:
            parts += [heading("Attention"), self.attended._repr_html_()]
        if self.explained is not None:
            parts += [heading("Explain"), self.explained._repr_html_()]
        return parts
