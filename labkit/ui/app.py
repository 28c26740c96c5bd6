"""``labkit.App()``: the whole lab as one widget — Model | Data | Train | Attention | Explain |
Compare | Compress for a classifier; Model | Data | Train | Generate | Attention | Explain | Compare for a
causal language model; Model | Data | Train | Fill-mask | Attention for a masked language model;
Model | Data | Train | Predict | Attention | Explain for an image classifier.

Thin by design: standard ipywidgets controls for the forms (they work with ipywidgets 7.7.1 on
Colab and 8 elsewhere), labkit's own views for results (``labkit.ui.view_for``), and one
status line of our own. Every button calls one public ``labkit`` function, on a worker thread so
the page stays responsive; a ``LabkitError`` becomes a message in the status line, never a
traceback. While a run trains, the status line follows its state (running, pausing…, paused,
stopping…, then how it ended), in the words of its panel's badge, as the badge changes.

The tabs follow the loaded model's ``task``: this module is the frame every task shares (the
status line, loading a model and data, training, attention, the worker thread and the locks,
the snapshot) and the classifier's Explain and Compare; a causal LM's own tabs live in
``labkit.ui.app_lm``, a masked LM's in ``labkit.ui.app_mlm``, an image classifier's in
``labkit.ui.app_vision``. Loading a model of another task rebuilds the tab set; the data loaded
for each task is kept for it.

Layout (``labkit.ui._form``): labels are sized to their text, rows wrap, buttons fit their
text, so nothing is cut off from a narrow window (~700 px) to a wide one.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import html
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import traitlets

from labkit.inspect.attribution.options import METHODS
from labkit.ui._base import LabkitWidget, asset
from labkit.ui._form import button as _button
from labkit.ui._form import field as _field
from labkit.ui._form import fit as _fit
from labkit.ui._form import form as _form
from labkit.ui._form import label_row as _label_row
from labkit.ui._form import labelled as _labelled
from labkit.ui._form import layout as _layout
from labkit.ui._form import text_area

if TYPE_CHECKING:
    import ipywidgets as W

    from labkit.inspect.attribution.result import AttributionResult
    from labkit.ui.app_lm import LMTabs
    from labkit.ui.app_mlm import MLMTabs
    from labkit.ui.app_vision import VisionTabs
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["App", "AppStatus", "Comparison"]

DEFAULT_MODEL = "offline default: all-MiniLM-L6-v2"
DEFAULT_LM = "offline LM: SmolLM2-135M-Instruct"
DEFAULT_MLM = "offline masked LM: all-MiniLM-L6-v2"
DEFAULT_VIT = "offline ViT from config (28x28 digits)"
DEFAULT_DATA = "offline default: Rotten Tomatoes snippets"
OTHER_MODEL = "other: type a hub name or folder below"
OTHER_MLM = "other masked LM: type a hub name or folder below"
# name -> hub name; None: an offline default (OFFLINE); "": the name typed below
MODEL_PRESETS: dict[str, str | None] = {
    DEFAULT_MODEL: None,
    DEFAULT_LM: None,
    DEFAULT_MLM: None,
    DEFAULT_VIT: None,
    "distilbert-base-uncased (hub)": "distilbert-base-uncased",
    "bert-base-uncased (hub)": "bert-base-uncased",
    "roberta-base (hub)": "roberta-base",
    "google/vit-base-patch16-224 (hub)": "google/vit-base-patch16-224",
    OTHER_MODEL: "",
    OTHER_MLM: "",
}
# an offline preset -> the labkit.demo function that makes its model
OFFLINE = {DEFAULT_MODEL: "model", DEFAULT_LM: "lm", DEFAULT_MLM: "mlm", DEFAULT_VIT: "vit"}
# presets whose model names no classes of the Labels field: language models, and the digits ViT
# (labels "0"..."9" of its own)
NO_LABELS = frozenset({DEFAULT_LM, DEFAULT_MLM, OTHER_MLM, DEFAULT_VIT})
TEXT_LABELS = "negative,positive"  # the Labels field's first value
VISION_HUB = frozenset(
    {"google/vit-base-patch16-224 (hub)"}
)  # checkpoints with labels of their own
# tasks whose models train fully by default: a masked LM's head and a ViT from a config start fresh
_FULL_BY_DEFAULT = frozenset({"masked-lm", "image-classification"})
# name -> (hub dataset, text column, label column)
DATA_PRESETS: dict[str, tuple[str, str, str] | None] = {
    DEFAULT_DATA: None,
    "rotten_tomatoes (hub)": ("rotten_tomatoes", "text", "label"),
    "imdb (hub)": ("imdb", "text", "label"),
    "sst2 (hub)": ("stanfordnlp/sst2", "sentence", "label"),
    "other: hub name, file path or upload below": ("", "text", "label"),
}
EXAMPLE = "a gorgeous, witty, seductive movie"
TITLES = {
    "classification": "finetune, inspect and explain transformer classifiers",
    "causal-lm": "prompt, finetune, inspect and explain causal language models",
    "masked-lm": "fill masks, pretrain further and inspect masked language models",
    "image-classification": "train, inspect and explain image classifiers (vision transformers)",
}
# what each task calls "the model before training" in the tab that shows it
_BEFORE_SHOWN_IN = {"masked-lm": "Fill-mask"}


class AppStatus(LabkitWidget):
    """The App's status line: a message of kind info, busy, ok or error, and a progress bar."""

    _esm = asset("app_status.js")
    _css = asset("app_status.css")
    message = traitlets.Unicode("").tag(sync=True)
    kind = traitlets.Unicode("info").tag(sync=True)
    progress = traitlets.Float(-1.0).tag(sync=True)


def _lr_text(value: float) -> str:
    """1e-3, 5e-5, 2.5e-4: a learning rate as people write it."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _megabytes(hf: Any) -> float:
    """The size of a model's parameters and buffers, MB."""
    tensors = [*hf.parameters(), *hf.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def _run_state(run: Any) -> str:
    """A run's state in the words its panel's badge uses (``labkit.render.run.status_label``):
    pending, running, pausing…, paused, stopping…, or how it ended. ``…`` marks a request the
    run answers at the next step boundary."""
    from labkit.render.run import status_label

    return status_label(str(run.status))


def _run_message(run: Any) -> tuple[str, str]:
    """(message, kind) of the status line for ``run`` as it is now."""
    from labkit.events import ENDED_WELL

    state, step = _run_state(run), int(run.step)
    messages = {
        "pending": ("Training starting…", "busy"),
        "running": (
            "Training running: the panel below updates live; Stop, Pause and Save work while "
            "it runs.",
            "busy",
        ),
        "pausing…": ("Training pausing…: it holds at the end of this step.", "busy"),
        "paused": (
            f"Training paused at step {step}: Resume or Stop it in the panel below.",
            "info",
        ),
        "stopping…": ("Training stopping…: saving a checkpoint, then stopping.", "busy"),
        "finished": (f"Training finished: {step} steps.", "ok"),
    }
    if state in messages:
        return messages[state]
    error = f": {run.error}" if run.error else f" at step {step}."
    return f"Training {state}{error}", "ok" if run.status in ENDED_WELL else "error"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """What the Compare tab shows: one text under the model before and after finetuning.

    ``before`` / ``after`` are the two ``Prediction``s; ``attention`` the ``AttentionDiff``;
    ``explained_before`` / ``explained_after`` explain the after-model's label on one shared
    colour scale (``scale``); ``how`` says what "before" is (a kept copy or the adapter off).
    """

    text: str
    before: Any
    after: Any
    attention: Any
    explained_before: Any
    explained_after: Any
    scale: float
    how: str


class App(W.VBox):
    """The lab in one widget. ``model`` and ``data`` may be given to start with them loaded.

    Each tab's work is also one library call: Model -> ``labkit.load_model`` /
    ``labkit.demo.model`` / ``labkit.demo.lm``, Data -> ``labkit.load_data`` /
    ``labkit.demo.data`` / ``labkit.demo.instructions``, Train -> ``labkit.finetune``,
    Attention -> ``labkit.attention``, Explain -> ``labkit.explain``, Compare -> ``predict`` +
    ``labkit.attention_diff`` + ``labkit.explain`` under both models, Compress ->
    ``labkit.prune_heads`` / ``quantize`` / ``shrink`` + ``distill`` / ``export_onnx``, each
    measured by ``labkit.compare_models``' ``ModelComparison.add``. ``task`` is the task whose
    tabs show (the loaded model's); a causal LM's Generate, Explain and Compare are ``lm``'s
    (``labkit.ui.app_lm``): Generate -> ``Model.stream``, Compare -> ``Model.generate`` +
    ``labkit.explain`` under both models. A masked LM's Fill-mask is ``mlm``'s
    (``labkit.ui.app_mlm``): ``Model.fill_mask``, after training also under the model before
    it; an image classifier's Predict, Attention and Explain are ``vision``'s
    (``labkit.ui.app_vision``): ``Model.predict``, ``labkit.attention`` and ``labkit.explain``
    of the image picked from the data's test split or uploaded.
    """

    def __init__(
        self, *, model: Any = None, data: Any = None, output_dir: str | None = None, **kwargs: Any
    ) -> None:
        self.model = model
        self.data = data
        # a copy of the weights from before full finetuning (for Compare); LoRA needs none:
        # "before" is then the model with its adapter turned off
        self.base: Any = None
        self.run: Any = None
        self.comparison: Comparison | None = None  # the last one the Compare tab showed
        self.output_dir = output_dir
        self.status = AppStatus()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # held while Compare has the LoRA adapter off, and by the Explain view's recomputes:
        # nothing else may run on the model then
        self._model_lock = threading.RLock()
        self._said = threading.Lock()
        self._run_said = threading.Lock()  # the run's state -> the status line, one at a time
        self._run_message: tuple[str, str] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.explain_view: Any = None
        self._displays: list[Any] = []  # the display handles whose snapshot follows the App
        self.explain_method = METHODS[0]  # what the next Explain uses (the view's last pick)
        # the task whose tabs show: the model's, else the data's; each task's own tabs are made
        # the first time they are needed
        self.task = _task_of(model, data)
        self._lm: LMTabs | None = None
        self._mlm: MLMTabs | None = None
        self._vision: VisionTabs | None = None
        self._data_kept: dict[str, Any] = {}  # the data loaded for the other task, kept for it
        self.tabs = W.Tab()
        self._pages = {
            "Model": self._model_tab(),
            "Data": self._data_tab(),
            "Train": self._train_tab(),
            "Attention": self._attention_tab(),
            "Explain": self._explain_tab(),
            "Compare": self._compare_tab(),
            "Compress": self._compress_tab(),  # a classifier's (labkit.ui.app_compress)
        }
        self.heading = W.HTML()
        super().__init__([self.heading, self.status, self.tabs], **kwargs)
        self.add_class("labkit-app")
        self._show_tabs()
        self._show_model()
        self._show_data()
        if model is not None and data is not None:
            name, source = getattr(model, "name", "model"), getattr(data, "source", "") or "data"
            self._say(f"Ready: {name} and {source} are loaded. Train, or pick a tab.", "ok")
        else:
            self._say("Load a model and data to begin (the offline defaults need no hub).")

    # -- display: the live App while the kernel holds it, its snapshot in the saved file --------
    def __repr__(self) -> str:
        name = getattr(self.model, "name", None) or "no model"
        source = getattr(self.data, "source", None) or ("data" if self.data else "no data")
        return f"labkit App ({name}, {source})"

    def snapshot_html(self) -> str:
        """The App as static HTML (escaped): the status line, the model, the data, the last run,
        for a causal LM the last generation, for a masked LM the last fill-mask answers, for an
        image classifier the picked image, its prediction, attention and explanation, and the
        last comparison. What a saved notebook shows where the widget cannot run (nbviewer,
        GitHub, a notebook reopened without its kernel)."""
        e = html.escape
        h = "<div style='font-weight:600;margin:10px 0 4px'>{}</div>".format
        parts = [
            "<div class='labkit-app-snapshot' style='font-family:system-ui,-apple-system,Segoe UI,"
            "sans-serif;font-size:13px;line-height:1.45;max-width:960px'>",
            "<div><b style='font-size:15px'>labkit App</b> <span style='color:#666'>— a saved "
            "view: run the cell to use the App</span></div>",
            f"<div style='margin:4px 0;color:#444'>{e(self.status.message)}</div>",
            h("Model"),
            self.model._repr_html_() if self.model is not None else "<i>No model loaded.</i>",
            h("Data"),
            _html_of(self.data) if self.data is not None else "<i>No data loaded.</i>",
        ]
        if self.run is not None:
            parts += [h("Training"), self.run._repr_html_()]
        if self.task == "causal-lm":
            parts += self.lm.snapshot_parts(h)
        elif self.task == "masked-lm":
            parts += self.mlm.snapshot_parts(h)
        elif self.task == "image-classification":
            parts += self.vision.snapshot_parts(h)
        c = self.comparison
        if c is not None and self.task == "classification":
            parts += [
                h(f"Compare: “{e(c.text[:80])}”"),
                _comparison_table_html(c),
                c.attention._repr_html_(),
                c.explained_before._repr_html_(),
                c.explained_after._repr_html_(),
            ]
        shrunk = self.compress.comparison
        if shrunk is not None and self.task == "classification":
            parts += [h("Compress"), shrunk._repr_html_()]
        return "".join(parts) + "</div>"

    def _bundle(self) -> dict[str, Any]:
        from labkit.render.display import live_marker
        from labkit.ui._base import view_bundle

        return {
            "text/plain": repr(self),
            "text/html": self.snapshot_html(),
            **view_bundle(self),
            **live_marker("App"),
        }

    def _ipython_display_(self) -> None:
        """Shown with a display id, so that its saved snapshot can follow the App."""
        from IPython.display import display

        handle = display(self._bundle(), raw=True, display_id=True)
        if handle is not None:
            self._displays.append(handle)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self._bundle()

    def _refresh_snapshot(self) -> None:
        """Give every display of the App the snapshot of now (the live view stays as it is
        where labkit's JupyterLab extension runs; other front ends draw the view again)."""
        bundle = self._bundle() if self._displays else None
        for handle in list(self._displays):
            try:
                handle.update(bundle, raw=True)
            except Exception:  # noqa: BLE001 - a closed front end must not break the App
                self._displays.remove(handle)

    # -- plumbing ------------------------------------------------------------------------------
    def _say(self, message: str, kind: str = "info", progress: float = -1.0) -> None:
        # workers, the run's watcher and the kernel all say things: one message at a time
        with self._said, self.status.hold_sync():
            self.status.message, self.status.kind, self.status.progress = message, kind, progress

    def _work(self, busy: str, job: Callable[[], Any], done: Callable[[Any], str]) -> None:
        """Run ``job`` on a worker thread; ``done(result)`` returns the success message."""
        from labkit._errors import LabkitError

        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._say("Still working on the last request; wait for it to finish.", "error")
                return

            def target() -> None:
                self._say(busy, "busy")
                try:
                    result = job()
                    self._say(done(result), "ok")
                except LabkitError as exc:
                    self._say(str(exc), "error")
                except Exception as exc:  # noqa: BLE001 - the app shows it, the kernel survives
                    self._say(f"Unexpected {type(exc).__name__}: {exc}", "error")
                # the saved view says how the request ended, not "working on it" (done() may
                # have refreshed it before its message was the status line's)
                if self._displays:
                    self._refresh_snapshot()

            from labkit._utils.threads import release_idle_pool

            release_idle_pool()  # this thread's idle OpenMP workers would slow the job's ops
            self._thread = threading.Thread(target=target, name="labkit-app", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> App:
        """Block until the current background request has finished (for scripts and tests)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self

    def _need(self, *, model: bool = True, data: bool = False) -> None:
        from labkit._errors import InputError

        if model and self.model is None:
            raise InputError("No model loaded yet: open the Model tab and press Load.")
        if data and self.data is None:
            raise InputError("No data loaded yet: open the Data tab and press Load.")

    # -- the tabs of the model's task ----------------------------------------------------------
    @property
    def lm(self) -> LMTabs:
        """The causal-LM tabs (Generate, Explain, Compare, and the LM rows of Train and
        Attention), made the first time they are needed."""
        if self._lm is None:
            from labkit.ui.app_lm import LMTabs

            self._lm = LMTabs(self)
        return self._lm

    @property
    def mlm(self) -> MLMTabs:
        """The masked-LM tabs (Fill-mask, and the mask probability in Train), made the first
        time they are needed."""
        if self._mlm is None:
            from labkit.ui.app_mlm import MLMTabs

            self._mlm = MLMTabs(self)
        return self._mlm

    @property
    def vision(self) -> VisionTabs:
        """The image classifier's tabs (Predict with its image picker, Attention and Explain
        over the picked image), made the first time they are needed."""
        if self._vision is None:
            from labkit.ui.app_vision import VisionTabs

            self._vision = VisionTabs(self)
        return self._vision

    def _show_tabs(self) -> None:
        """The tab set of ``self.task``: a classifier's seven tabs, a causal LM's seven, a
        masked LM's five or an image classifier's six."""
        p = self._pages
        train_rows, attention_rows = self._train_rows, self._attention_rows
        *settings, start = train_rows[:-1]
        common = [("Model", p["Model"]), ("Data", p["Data"]), ("Train", p["Train"])]
        if self.task == "causal-lm":
            lm = self.lm
            train_rows = [*settings, *lm.train_rows, start, train_rows[-1]]
            attention_rows = [attention_rows[0], lm.attention_row, *attention_rows[2:]]
            pages = [
                *common,
                ("Generate", lm.generate_page),
                ("Attention", p["Attention"]),
                ("Explain", lm.explain_page),
                ("Compare", lm.compare_page),
            ]
        elif self.task == "masked-lm":
            mlm = self.mlm
            train_rows = [*settings, *mlm.train_rows, start, train_rows[-1]]
            pages = [*common, ("Fill-mask", mlm.page), ("Attention", p["Attention"])]
        elif self.task == "image-classification":
            v = self.vision
            pages = [
                *common,
                ("Predict", v.predict_page),
                ("Attention", v.attention_page),
                ("Explain", v.explain_page),
            ]
        else:
            pages = [(title, p[title]) for title in p]
        p["Train"].children = train_rows
        p["Attention"].children = attention_rows
        self.tabs.children = [page for _, page in pages]
        for i, (title, _) in enumerate(pages):
            self.tabs.set_title(i, title)
        # ipywidgets 8 keeps the index of a tab that may no longer exist: the Model tab, where
        # the model that changed the tab set was loaded
        self.tabs.selected_index = 0
        self.heading.value = f"<b style='font-size:15px'>labkit</b> — {TITLES[self.task]}"
        self.data_preset.options = list(self._data_presets())
        self.data_preset.value = next(iter(self._data_presets()))
        images = self.task == "image-classification"
        # a language model's data has no label column; images have no text column (load_data
        # reads the "image" column), and come from a folder or a dataset: the Predict tab
        # uploads single images
        language = self.task in ("causal-lm", "masked-lm")
        self.data_label.layout.display = "none" if language else None
        self.data_upload.layout.display = "none" if images else None
        self.data_text.layout.display = "none" if images else None
        self.data_source.placeholder = (
            "folder of class subfolders, or a hub dataset"
            if images
            else "hub name or file: .csv .json .jsonl .parquet"
        )
        # a masked LM's head and a ViT built from a config start fresh: they train fully
        self.train_mode.value = "full" if self.task in _FULL_BY_DEFAULT else "LoRA"

    def _set_task(self, task: str) -> None:
        """Show the tabs of ``task`` (a model of that task was loaded): the data loaded for the
        other task is kept for it, and comes back when a model of that task does."""
        if task == self.task:
            return
        if self.data is not None:
            self._data_kept[self.task] = self.data
        self.data = self._data_kept.pop(task, None)
        self.task = task
        self._show_tabs()
        self._show_data()

    def _data_presets(self) -> dict[str, tuple[str, str, str] | None]:
        if self.task == "causal-lm":
            from labkit.ui.app_lm import LM_DATA_PRESETS

            return LM_DATA_PRESETS
        if self.task == "masked-lm":
            from labkit.ui.app_mlm import MLM_DATA_PRESETS

            return MLM_DATA_PRESETS
        if self.task == "image-classification":
            from labkit.ui.app_vision import VISION_DATA_PRESETS

            return VISION_DATA_PRESETS
        return DATA_PRESETS

    # -- Model ---------------------------------------------------------------------------------
    def _model_tab(self) -> W.VBox:
        self.model_preset = W.Dropdown(
            options=list(MODEL_PRESETS),
            value=DEFAULT_MODEL,
        )
        self.model_name = W.Text(
            placeholder="hub name or folder, e.g. bert-base-uncased",
        )
        self.model_labels = W.Text(
            value=TEXT_LABELS,
            placeholder="empty: the model's own labels",
        )
        self.model_load = _button("Load model", button_style="primary", icon="download")
        self.model_info = W.HTML()
        self.model_preset.observe(self._on_preset, names="value")
        self.model_name.observe(self._on_model_name, names="value")
        self.model_load.on_click(lambda _: self.load_model())
        return W.VBox(
            [
                _labelled("Model", self.model_preset),
                _labelled("Name / path", self.model_name),
                _labelled("Labels", self.model_labels),
                self.model_load,
                self.model_info,
            ]
        )

    def _on_preset(self, change: dict[str, Any]) -> None:
        name = MODEL_PRESETS.get(change["new"])
        if name:
            self.model_name.value = name
        elif name is None:
            self.model_name.value = ""
        # a language model has no labels, the digits ViT its own ten
        self.model_labels.disabled = change["new"] in NO_LABELS
        vision = change["new"] in VISION_HUB
        if vision and self.model_labels.value == TEXT_LABELS:
            self.model_labels.value = ""  # a hub ViT keeps its own labels unless others are typed
        elif not vision and not self.model_labels.value.strip():
            self.model_labels.value = TEXT_LABELS

    def _on_model_name(self, change: dict[str, Any]) -> None:
        """A typed name that is not the chosen preset's makes the preset read "other" (or
        "other masked LM" while that is chosen), so the dropdown never names a model other than
        the one Load will load."""
        chosen = self.model_preset.value
        if change["new"].strip() != (MODEL_PRESETS.get(chosen) or ""):
            self.model_preset.value = OTHER_MLM if chosen == OTHER_MLM else OTHER_MODEL

    def load_model(self) -> None:
        """Load the model chosen in the Model tab (in the background). An offline preset is
        its ``labkit.demo`` function (``model``, ``lm``, ``mlm``, ``vit``); a hub name or folder
        loads as what its checkpoint is (``labkit.load_model``, task auto): a causal LM as one,
        a vision checkpoint as an image classifier, anything else as a classifier, each
        classifier with the Labels field's names (empty: the checkpoint's own). "other masked
        LM" loads the name as a masked LM (``task="masked-lm"``). The tabs follow the loaded
        model's task."""
        import labkit

        chosen = self.model_preset.value
        preset = MODEL_PRESETS.get(chosen)
        name = self.model_name.value.strip()
        labels = [x.strip() for x in self.model_labels.value.split(",") if x.strip()] or None
        offline = OFFLINE.get(chosen) if preset is None and not name else None

        def job() -> Any:
            if offline is not None:
                return getattr(labkit.demo, offline)()
            if chosen == OTHER_MLM:
                return labkit.load_model(name, task="masked-lm")
            source = name or str(preset)
            task = _checkpoint_task(source)
            # the Labels field names a classifier's classes: a causal LM loads without them,
            # and a checkpoint whose kind cannot be read before loading keeps its own
            kept = labels if task in ("classification", "image-classification") else None
            return labkit.load_model(source, labels=kept)

        def done(model: Any) -> str:
            self.model, self.base, self.run, self.comparison = model, None, None, None
            self._set_task(model.task)
            if offline == "vit":
                self._use_vit_training()
            self._show_model()
            self._refresh_snapshot()
            what = {
                "causal-lm": " (a causal LM)",
                "masked-lm": " (a masked LM)",
                "image-classification": " (an image classifier)",
            }.get(model.task, "")
            return f"Model loaded: {model.name}{what} on {model.device}."

        busy = "Loading the model…"
        if offline == "lm":
            from labkit.demo import LM_NAME

            busy = (
                f"Loading {LM_NAME}… The first time, it is converted from its GGUF file into "
                "your cache folder (about a minute); later loads take seconds."
            )
        self._work(busy, job, done)

    def _use_vit_training(self) -> None:
        """The Train tab's epochs, learning rate and batch size for the offline ViT: the ones
        it is measured with from scratch on the digits (``labkit.vision.demo.VIT_TRAINING``)."""
        from labkit.vision.demo import VIT_TRAINING

        self.train_mode.value = "full"
        self.train_epochs.value = float(VIT_TRAINING["epochs"])
        self.train_lr.value = float(VIT_TRAINING["lr"])
        self.train_batch.value = int(VIT_TRAINING["batch_size"])

    def _show_model(self) -> None:
        m = self.model
        self.model_info.value = "<i>No model loaded.</i>" if m is None else m._repr_html_()
        self._show_train_mode()
        if self.task == "causal-lm":
            self.lm.show_model(m)
        elif self.task == "masked-lm":
            self.mlm.show_model(m)
        elif self.task == "image-classification":
            self.vision.show_model(m)

    # -- Data ----------------------------------------------------------------------------------
    def _data_tab(self) -> W.VBox:
        self.data_preset = W.Dropdown(
            options=list(DATA_PRESETS),
            value=DEFAULT_DATA,
        )
        self.data_source = W.Text(
            placeholder="hub name or file: .csv .json .jsonl .parquet",
        )
        self.data_upload = W.FileUpload(
            accept=".csv,.tsv,.json,.jsonl,.parquet",
            multiple=False,
            description="Upload file",
            layout=_layout(width="auto", flex="none", align_self="flex-start"),
        )
        self.data_text = W.Text(
            value="text", description="Text column", style=_fit(), layout=_field("18em")
        )
        self.data_label = W.Text(
            value="label", description="Label column", style=_fit(), layout=_field("18em")
        )
        self.data_load = _button("Load data", button_style="primary", icon="table")
        self.data_info = W.HTML()
        self.data_preset.observe(self._on_data_preset, names="value")
        self.data_load.on_click(lambda _: self.load_data())
        return W.VBox(
            [
                _labelled("Data", self.data_preset),
                _labelled("Source", self.data_source),
                self.data_upload,
                _label_row(self.data_text, self.data_label),
                self.data_load,
                self.data_info,
            ]
        )

    def _on_data_preset(self, change: dict[str, Any]) -> None:
        preset = self._data_presets().get(change["new"])
        if preset is not None:
            self.data_source.value, self.data_text.value, self.data_label.value = preset

    def _uploaded(self, upload: W.FileUpload | None = None) -> tuple[str, bytes] | None:
        """(file name, bytes) of ``upload``'s file (default: the Data tab's), for ipywidgets 7
        (dict) and 8 (tuple) alike."""
        value = (upload if upload is not None else self.data_upload).value
        if not value:
            return None
        if isinstance(value, dict):  # ipywidgets 7: {name: {"content": bytes, ...}}
            name, item = next(iter(value.items()))
            return name, bytes(item["content"])
        item = value[0]
        return item["name"], bytes(item["content"])

    def load_data(self) -> None:
        """Load the data chosen in the Data tab (in the background): labelled text for a
        classifier; for a causal LM (``task="causal-lm"``) a text column (language modelling)
        or prompt + response columns (instruction tuning); for a masked LM a text column; for
        an image classifier labelled images (a folder of class subfolders, or a dataset with
        an image column). The offline presets are ``labkit.demo.data`` / ``instructions`` /
        ``corpus`` / ``images``."""
        import labkit

        task = self.task
        lm = task in ("causal-lm", "masked-lm")
        preset = self._data_presets().get(self.data_preset.value)
        source = self.data_source.value.strip()
        upload = self._uploaded()
        text, label = self.data_text.value.strip(), self.data_label.value.strip()
        columns: dict[str, Any] = {
            "classification": {"text": text, "label": label},
            "causal-lm": {"text": text, "task": task},
            "masked-lm": {"text": text, "task": task},
            "image-classification": {"label": label, "task": task},
        }[task]
        offline = {
            "classification": "data",
            "causal-lm": "instructions",
            "masked-lm": "corpus",
            "image-classification": "images",
        }[task]

        def job() -> Any:
            if upload is not None:
                name, payload = upload
                suffix = os.path.splitext(name)[1] or ".csv"
                folder = tempfile.mkdtemp(prefix="labkit-upload-")
                path = os.path.join(folder, f"upload{suffix}")
                with open(path, "wb") as fh:
                    fh.write(payload)
                return labkit.load_data(path, **columns)
            if preset is None and not source:
                return getattr(labkit.demo, offline)()
            if not source:
                from labkit._errors import InputError

                where = (
                    "a folder of class subfolders or a hub dataset"
                    if task == "image-classification"
                    else "a hub name or a file"
                )
                raise InputError(f"Type the data's source in the Source field first: {where}.")
            return labkit.load_data(source, **columns)

        def done(data: Any) -> str:
            self.data = data
            self._show_data()
            self._refresh_snapshot()
            sizes = ", ".join(f"{k} {len(v):,}" for k, v in data.splits.items())
            if lm:
                return f"Data loaded: {sizes}; {data.kind} data ({', '.join(data.columns)})."
            if task == "image-classification":
                h, w = data.image_size
                return (
                    f"Data loaded: {sizes}; {len(data.labels)} labels, images {h}x{w}x"
                    f"{data.channels}. Pick one in the Predict tab."
                )
            return f"Data loaded: {sizes}; labels {', '.join(data.labels)}."

        self._work("Loading the data…", job, done)

    def _show_data(self) -> None:
        d = self.data
        if self.task == "image-classification":
            self.data_info.value = self.vision.show_data(d)  # its picker follows the data
            return
        if d is None:
            self.data_info.value = "<i>No data loaded.</i>"
            return
        if self.task == "causal-lm":
            self.data_info.value = self.lm.show_data(d)
            return
        if self.task == "masked-lm":
            self.data_info.value = self.mlm.show_data(d)
            return
        e = html.escape
        rows = d.train.select(range(min(6, len(d.train))))
        body = "".join(
            f"<tr><td>{e(d.labels[lab])}</td><td>{e(t[:160])}</td></tr>"
            for t, lab in zip(rows["text"], rows["label"])
        )
        self.data_info.value = (
            f"{d._repr_html_()}<table class='labkit-preview'><thead><tr>"
            f"<th>label</th><th>text</th></tr></thead><tbody>{body}</tbody>"
            "</table>"
        )

    # -- Train ---------------------------------------------------------------------------------
    def _train_tab(self) -> W.VBox:
        self.train_mode = W.ToggleButtons(
            options=["LoRA", "full"],
            value="LoRA",
            description="Finetune",
            style=_form(),
            # ipywidgets 8 draws this as a block, its label on a line of its own
            layout=_layout(display="flex", flex_flow="row wrap", align_items="center"),
        )
        self.train_rank = W.BoundedIntText(
            value=8, min=1, max=256, description="LoRA rank", style=_form(), layout=_field("18em")
        )
        self.train_lr = W.FloatText(
            value=0.0,
            description="Learning rate",
            style=_form(),
            layout=_field("18em"),
            tooltip="0 = labkit's default for the chosen mode (shown next to the field)",
        )
        self.train_lr_auto = W.Label(layout=_layout(flex="none"))  # "auto (1e-3 for LoRA)"
        self.train_epochs = W.BoundedFloatText(
            value=1.0, min=0.01, max=100, description="Epochs", style=_form(), layout=_field("18em")
        )
        self.train_batch = W.BoundedIntText(
            value=32,
            min=1,
            max=4096,
            description="Batch size",
            style=_form(),
            layout=_field("18em"),
        )
        self.train_steps = W.BoundedIntText(
            value=0,
            min=0,
            max=10_000_000,
            description="Max steps",
            tooltip="0 = use epochs",
            style=_form(),
            layout=_field("18em"),
        )
        self.train_note = W.HTML()  # what Compare will keep of the model before training
        self.train_start = _button("Start training", button_style="success", icon="play")
        self.train_box = W.VBox()
        self.train_start.on_click(lambda _: self.start_training())
        self.train_mode.observe(lambda _: self._show_train_mode(), names="value")
        self.train_lr.observe(lambda _: self._show_train_mode(), names="value")
        # the settings, then Start and the run's panel; a causal LM's own rows (its sample
        # prompts) go before Start (_show_tabs)
        self._train_rows = [
            self.train_mode,
            self.train_note,
            self.train_rank,
            _label_row(self.train_lr, self.train_lr_auto),
            self.train_epochs,
            self.train_batch,
            self.train_steps,
            self.train_start,
            self.train_box,
        ]
        return W.VBox(self._train_rows)

    def _show_train_mode(self) -> None:
        """The learning rate "0" will use, and what Compare (a masked LM's Fill-mask) keeps,
        for the chosen mode."""
        from labkit.train.config import DEFAULT_LR_FULL, DEFAULT_LR_LORA

        lora = self.train_mode.value == "LoRA"
        self.train_rank.disabled = not lora
        default = (
            f"{_lr_text(DEFAULT_LR_LORA)} for LoRA"
            if lora
            else f"{_lr_text(DEFAULT_LR_FULL)} for full finetuning"
        )
        self.train_lr_auto.value = (
            f"auto ({default})" if not self.train_lr.value else f"(0 = auto: {default})"
        )
        m = self.model
        tab = _BEFORE_SHOWN_IN.get(self.task, "Compare")
        if not _keeps_before(self.task):
            note = (
                "Full finetuning trains every weight (a model built from a config starts from "
                "random ones); LoRA trains a small adapter on a pretrained model."
            )
        elif lora or (m is not None and m.lora):
            note = (
                f"{tab} shows the model before training by turning the LoRA adapter off: "
                "no copy of the weights is kept."
            )
        elif self.base is not None:
            note = f"{tab} keeps the copy of the pretrained weights made at the first training."
        else:
            size = "" if m is None else f" ({_megabytes(m.hf):,.0f} MB)"
            note = (
                f"Full finetuning changes every weight, so for {tab} the App keeps one copy of "
                f"the weights{size} as they are before training (the tokenizer is shared)."
            )
        self.train_note.value = f"<small>{html.escape(note)}</small>"

    def _lora_argument(self) -> Any:
        """What ``finetune(lora=...)`` gets for the Train tab's mode and rank."""
        if self.train_mode.value != "LoRA":
            return False
        from labkit.train.lora import lora_config

        rank = int(self.train_rank.value)
        return True if rank == 8 else lora_config(self.model.base, r=rank)

    def start_training(self) -> None:
        """Start ``labkit.finetune`` with the Train tab's settings and show its live panel."""
        import labkit
        from labkit import LabkitError
        from labkit.ui import view_for

        if not self._model_lock.acquire(blocking=False):
            self._say(
                "The model is busy (a comparison, an explanation or a generation): press "
                "Start again when it is done.",
                "error",
            )
            return
        try:
            self._need(data=True)
            if self.run is not None and not self.run.done:
                raise labkit.TrainingError("A run is in progress: stop it in its panel first.")
            lora = self._lora_argument()
            # a causal LM's sample prompts and how often it evaluates (and shows them); a
            # masked LM's mask probability
            extra: dict[str, Any] = {}
            if self.task == "causal-lm":
                extra = self.lm.train_arguments()
            elif self.task == "masked-lm":
                extra = self.mlm.train_arguments()
            name = _run_name(self.model, self.data, lora)
            keep = _keeps_before(self.task)
            if keep and lora is False and not self.model.lora and self.base is None:
                # full finetuning changes every weight: keep them for Compare / Fill-mask (LoRA
                # needs no copy: its "before" is the model with the adapter off)
                self.base = _weights_copy(self.model)
            self.run = labkit.finetune(
                self.model,
                self.data,
                lora=lora,
                epochs=float(self.train_epochs.value),
                max_steps=int(self.train_steps.value) or None,
                lr=float(self.train_lr.value) or None,
                batch_size=int(self.train_batch.value),
                output_dir=self.output_dir,
                name=name,
                **extra,
            )
        except LabkitError as exc:
            self._say(str(exc), "error")
            return
        finally:
            self._model_lock.release()
        self.train_start.disabled = True  # until the run ends: a second Start could only fail
        self.comparison = None
        if self._lm is not None:
            self._lm.comparison = None  # it showed the model before this run
        panel = view_for(self.run)
        self.train_box.children = [panel] if panel is not None else []
        self._follow(self.run, panel)

    # -- the run's state in the status line ---------------------------------------------------
    def _follow(self, run: Any, panel: Any) -> None:
        """Keep the status line on ``run``'s state: the words of its panel's badge, whenever
        they change (a Stop shows "stopping…" in both at once), and the end."""
        if self._unwatch is not None:
            self._unwatch()
        self._run_message = None
        unsubscribe = run.history.subscribe(self._on_run_event)

        def on_badge(_change: Any) -> None:
            self._show_run(run)

        if panel is not None:
            panel.observe(on_badge, names=["status_label"])

        def unwatch() -> None:
            unsubscribe()
            if panel is not None:
                panel.unobserve(on_badge, names=["status_label"])

        self._unwatch = unwatch
        self._show_run(run)

    def _show_run(self, run: Any) -> None:
        """Say ``run``'s state when it changed since last said (other messages stay until it
        changes again)."""
        with self._run_said:
            if run is not self.run:
                return
            said = _run_message(run)
            if said != self._run_message:
                self._run_message = said
                self._say(*said)

    def _on_run_event(self, event: Any) -> None:
        # on the training thread: a failure here must never reach the run (its wait() would
        # raise for a run that finished)
        try:
            self._after_run_event(event)
        except Exception:
            import logging

            logging.getLogger("labkit").warning("the App could not show a run event", exc_info=True)

    def _after_run_event(self, event: Any) -> None:
        from labkit.events import TrainEnd

        run = self.run
        if run is None:
            return
        if isinstance(event, TrainEnd):
            self.train_start.disabled = False
            self.model_info.value = self.model._repr_html_()  # now with LoRA attached
            self._show_train_mode()
            if self._vision is not None and self.task == "image-classification":
                self._vision.trained()  # the prediction shown was the model's before the run
        self._show_run(run)
        if isinstance(event, TrainEnd):
            self._refresh_snapshot()  # the run's final state, and the status line saying so

    # -- Generate (a causal LM's tab: labkit.ui.app_lm) ----------------------------------------
    def generate(self) -> None:
        """Stream ``model.stream(prompt, ...)`` with the Generate tab's settings into its live
        view (causal LMs; Stop ends it within a token)."""
        self.lm.generate()

    def stop_generation(self) -> None:
        """Stop the generation the Generate tab is streaming; returns at once."""
        if self._lm is not None:
            self._lm.stop()

    # -- Attention -----------------------------------------------------------------------------
    def _attention_tab(self) -> W.VBox:
        self.attention_text = text_area(EXAMPLE)
        self.attention_go = _button("Show attention", button_style="primary", icon="eye")
        self.attention_box = W.VBox()
        self.attention_go.on_click(lambda _: self.show_attention())
        # a causal LM's row puts "use the last generation" next to the button (_show_tabs)
        self._attention_rows = [self.attention_text, self.attention_go, self.attention_box]
        return W.VBox(self._attention_rows)

    def show_attention(self) -> None:
        """``labkit.attention(model, text)`` in the Attention tab (a masked LM's too); for an
        image classifier, ``labkit.attention(model, image)`` of the picked image
        (``labkit.ui.app_vision``)."""
        import labkit
        from labkit.ui import view_for

        if self.task == "image-classification":
            self.vision.show_attention()
            return
        text = self.attention_text.value

        def job() -> Any:
            self._need()
            with self._model_lock:  # not while the Explain view recomputes on the model
                return labkit.attention(self.model, text)

        def done(result: Any) -> str:
            self.attention_box.children = [view_for(result)]
            return f"Attention of {len(result.tokens)} tokens: hover a token, pick layers/heads."

        self._work("Computing attention…", job, done)

    # -- Explain -------------------------------------------------------------------------------
    def _explain_tab(self) -> W.VBox:
        # one set of controls: the text and Explain here; the label to explain, the method and
        # AOPC are the view's own pickers, which recompute at once
        self.explain_text = text_area(EXAMPLE)
        self.explain_go = _button("Explain", button_style="primary", icon="search")
        self.explain_hint = W.HTML(
            "<small>Explains the predicted label; pick another label or method in the view "
            "below.</small>"
        )
        self.explain_box = W.VBox()
        self.explain_go.on_click(lambda _: self.show_explanation())
        return W.VBox(
            [self.explain_text, _label_row(self.explain_go, self.explain_hint), self.explain_box]
        )

    def show_explanation(self) -> None:
        """``labkit.explain(model, text, method=...)`` in the Explain tab.

        The method is the one picked last in the view (``explain_method``); the label is the
        one picked there when the text is the same, else the predicted one. For a causal LM,
        the Explain tab's prompt, target and method (``labkit.ui.app_lm``); for an image
        classifier, the picked image with the Explain tab's method and target
        (``labkit.ui.app_vision``).
        """
        import labkit

        if self.task == "causal-lm":
            self.lm.explain()
            return
        if self.task == "image-classification":
            self.vision.explain()
            return

        text, method = self.explain_text.value, self.explain_method
        shown = self.explain_view
        target = shown.target if shown is not None and shown.text == text else None

        def job() -> Any:
            self._need()
            with self._model_lock:
                return labkit.explain(self.model, text, target=target, method=method)

        def done(result: Any) -> str:
            from labkit.ui.attribution_view import AttributionView

            if self.explain_view is not None:
                self.explain_view.unobserve(self._on_explain_view, names=["busy", "method"])
            view = AttributionView.from_result(result, lock=self._model_lock)
            view.observe(self._on_explain_view, names=["busy", "method"])
            self.explain_view = view
            self.explain_box.children = [view]
            return f"Explained '{result.target}' with {result.method}."

        self._work("Computing attributions…", job, done)

    def _on_explain_view(self, change: dict[str, Any]) -> None:
        """The view's own recomputes, in the status line; its method is the next Explain's."""
        view = change["owner"]
        if view is not self.explain_view:
            return
        if change["name"] == "method":
            self.explain_method = view.method
        elif view.busy:
            self._say(f"Computing attributions ({view.method.replace('_', ' ')})…", "busy")
        elif view.error:
            self._say(view.error, "error")
        else:
            self._say(f"Explained '{view.target}' with {view.method}.", "ok")

    # -- Compress (a classifier's tab: labkit.ui.app_compress) ---------------------------------
    def _compress_tab(self) -> W.VBox:
        from labkit.ui.app_compress import CompressTab

        self.compress = CompressTab(self)
        return self.compress.page

    # -- Compare -------------------------------------------------------------------------------
    def _compare_tab(self) -> W.VBox:
        self.compare_text = text_area(EXAMPLE)
        self.compare_go = _button("Compare before / after", button_style="primary", icon="columns")
        self.compare_box = W.VBox()
        self.compare_go.on_click(lambda _: self.compare())
        return W.VBox([self.compare_text, self.compare_go, self.compare_box])

    @contextlib.contextmanager
    def _before(self) -> Iterator[tuple[Any, str]]:
        """(the model as it was before training, what that is), for the block's duration: the
        copy kept at full finetuning, or the model itself with its LoRA adapter turned off
        (peft's ``disable_adapter``: no copy)."""
        from labkit._errors import InputError

        if self.base is not None:
            yield self.base, "the copy of the weights kept when full finetuning started"
            return
        model = self.model
        if not model.lora:
            raise InputError(
                "Nothing to compare yet: train the model in the Train tab first (the "
                "model before training is kept for this comparison)."
            )
        with model.hf.disable_adapter():  # the caller holds the model lock, training checked
            yield model, "the pretrained weights, with the LoRA adapter turned off"

    def compare(self) -> None:
        """The same text under the model before and after finetuning, side by side; the two
        explanations on one colour scale. For a causal LM, the same prompt's greedy
        generation and its explanation under each (``labkit.ui.app_lm``)."""
        import labkit
        from labkit.inspect.attribution import shared_scale

        if self.task == "causal-lm":
            self.lm.compare()
            return

        text = self.compare_text.value

        def job() -> Comparison:
            self._need()
            with self._model_lock:  # nothing else of the App's runs on the model meanwhile
                return compare_now()

        def compare_now() -> Comparison:
            from labkit._errors import InputError

            after = self.model
            if after.is_training:
                # the weights move under a run (and Compare may turn a LoRA adapter off)
                raise InputError(
                    "A run is training this model: Compare when it has ended (or stop it)."
                )
            p1 = after.predict([text])[0]
            a1 = labkit.attention(after, text)
            e1 = labkit.explain(after, text, target=p1.label)
            with self._before() as (before, how):
                p0 = before.predict([text])[0]
                a0 = labkit.attention(before, text)
                e0 = labkit.explain(before, text, target=p1.label)
            # static views: a recompute of one side alone would leave the shared scale (and,
            # under LoRA, run with the adapter on); a classifier's explanations, so
            # AttributionResults
            e0, e1 = (
                dataclasses.replace(cast("AttributionResult", e), model=None) for e in (e0, e1)
            )
            top = shared_scale(e0, e1)
            return Comparison(
                text=text,
                before=p0,
                after=p1,
                attention=labkit.attention_diff(a0, a1),
                explained_before=e0.with_scale(top),
                explained_after=e1.with_scale(top),
                scale=top,
                how=how,
            )

        def done(c: Comparison) -> str:
            self.comparison = c
            self.compare_box.children = _comparison_widgets(c)
            self._refresh_snapshot()
            return "Compared the model before and after finetuning."

        self._work("Comparing before and after…", job, done)


def _run_name(model: Any, data: Any, lora: Any) -> str:
    """A run's title: finetune's own (the model and the method) and the data it learns from."""
    from labkit.train.config import FinetuneConfig
    from labkit.train.run import default_name

    source = str(getattr(data, "source", "") or "").rstrip("/\\")
    return (
        f"{default_name(model, FinetuneConfig(lora=lora))} · {os.path.basename(source) or 'data'}"
    )


def _task_of(model: Any, data: Any) -> str:
    """The task whose tabs the App shows: the model's, else the data's (images are an
    ``ImageData``; language-model data an ``LMData``: a masked LM's when it is the masked-LM
    corpus preset's, else a causal LM's), else a classifier's."""
    if model is not None:
        return str(model.task)
    from labkit.lm.data import LMData
    from labkit.vision.data import ImageData

    if isinstance(data, ImageData):
        return "image-classification"
    if isinstance(data, LMData):
        from labkit.ui.app_mlm import is_mlm_corpus

        return "masked-lm" if is_mlm_corpus(data) else "causal-lm"
    return "classification"


def _keeps_before(task: str) -> bool:
    """Whether full finetuning keeps a copy of the weights for a tab that shows the model
    before training (Compare; a masked LM's Fill-mask): an image classifier has none."""
    return task != "image-classification"


def _html_of(obj: Any) -> str:
    """``obj``'s own static HTML, or its escaped ``repr`` when it has none."""
    shown = getattr(obj, "_repr_html_", None)
    return shown() if callable(shown) else f"<pre>{html.escape(repr(obj))}</pre>"


def _checkpoint_task(source: str) -> str:
    """What ``labkit.load_model(source)`` (task auto, no labels) loads, read from the
    checkpoint's config before its weights (``labkit.model.resolve_task``): "causal-lm",
    "image-classification" (a vision config) or "classification", or "unknown" when there is
    no config to read (an adapter folder, a hub name that cannot be reached: the load itself
    then decides, or says what is wrong)."""
    from transformers import AutoConfig

    from labkit._utils.checkpoint import read_meta
    from labkit._utils.quiet import hf_quiet
    from labkit.model import TASKS, resolve_task

    folder = os.path.expanduser(source)
    saved = read_meta(folder).get("task") if os.path.isdir(folder) else None
    if saved in TASKS:  # what labkit saved it as (a masked LM's checkpoint)
        return str(saved)
    try:
        with hf_quiet():
            config = AutoConfig.from_pretrained(folder)
    except Exception:  # noqa: BLE001 - any failure: load_model gives the real error
        return "unknown"
    return resolve_task("auto", config, None)


def _weights_copy(model: Any) -> Any:
    """A ``Model`` with a copy of ``model``'s weights, sharing its tokenizer (training never
    changes a tokenizer): what full finetuning needs kept for Compare."""
    from labkit.model import Model

    return Model(
        hf=copy.deepcopy(model.hf),
        tokenizer=model.tokenizer,
        labels=model.labels,
        device=model.device,
        name=model.name,
        max_length=model.max_length,
        task=model.task,
    )


def _comparison_table_html(c: Comparison) -> str:
    """Each label's probability before and after, and the two predictions."""
    e = html.escape
    p0, p1 = c.before, c.after
    rows = "".join(
        f"<tr><td>{e(lab)}</td><td>{p0.probs[lab]:.3f}</td><td>{p1.probs[lab]:.3f}</td></tr>"
        for lab in p1.probs
    )
    return (
        f"<table class='labkit-compare'><thead><tr><th>label</th>"
        f"<th>before</th><th>after</th></tr></thead><tbody>{rows}</tbody>"
        f"</table><p>before: <b>{e(p0.label)}</b> → after: <b>{e(p1.label)}</b>"
        f"<br><small>before = {e(c.how)}.</small></p>"
    )


def _comparison_widgets(c: Comparison) -> list[W.Widget]:
    from labkit.ui import view_for

    e = html.escape
    table = W.HTML(_comparison_table_html(c))
    side = _layout(flex="1 1 320px", min_width="0")
    sides = W.HBox(
        [
            W.VBox([W.HTML("<b>before</b>"), view_for(c.explained_before)], layout=side),
            W.VBox([W.HTML("<b>after</b>"), view_for(c.explained_after)], layout=side),
        ],
        layout=_layout(flex_flow="row wrap", grid_gap="8px 24px"),
    )
    label = e(c.explained_after.target)
    return [
        table,
        W.HTML("<b>Attention heads that changed most</b>"),
        view_for(c.attention),
        W.HTML(
            f"<b>Attributions for '{label}'</b> <small>both on one colour scale, "
            f"±{c.scale:.2g}, so a weaker explanation looks weaker</small>"
        ),
        sides,
    ]
