"""``labkit.App()``: the whole lab as one widget — Model | Data | Train | Attention | Explain |
Compare.

Thin by design: standard ipywidgets controls for the forms (they work with ipywidgets 7.7.1 on
Colab and 8 elsewhere), labkit's own views for results (``labkit.ui.view_for``), and one
status line of our own. Every button calls one public ``labkit`` function, on a worker thread so
the page stays responsive; a ``LabkitError`` becomes a message in the status line, never a
traceback. While a run trains, the status line follows its state (running, pausing…, paused,
stopping…, then how it ended), in the words of its panel's badge, as the badge changes.

Layout: labels are sized to their text (``description_width``), rows wrap, buttons fit their
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
from typing import TYPE_CHECKING, Any

import traitlets

from labkit.inspect.attribution.options import METHODS
from labkit.ui._base import LabkitWidget, asset

if TYPE_CHECKING:
    import ipywidgets as W
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["App", "AppStatus", "Comparison"]

DEFAULT_MODEL = "offline default: all-MiniLM-L6-v2"
DEFAULT_DATA = "offline default: Rotten Tomatoes snippets"
OTHER_MODEL = "other: type a hub name or folder below"
MODEL_PRESETS: dict[str, str | None] = {
    DEFAULT_MODEL: None,
    "distilbert-base-uncased (hub)": "distilbert-base-uncased",
    "bert-base-uncased (hub)": "bert-base-uncased",
    "roberta-base (hub)": "roberta-base",
    OTHER_MODEL: "",
}
# name -> (hub dataset, text column, label column)
DATA_PRESETS: dict[str, tuple[str, str, str] | None] = {
    DEFAULT_DATA: None,
    "rotten_tomatoes (hub)": ("rotten_tomatoes", "text", "label"),
    "imdb (hub)": ("imdb", "text", "label"),
    "sst2 (hub)": ("stanfordnlp/sst2", "sentence", "label"),
    "other: hub name, file path or upload below": ("", "text", "label"),
}
EXAMPLE = "a gorgeous, witty, seductive movie"


class AppStatus(LabkitWidget):
    """The App's status line: a message of kind info, busy, ok or error, and a progress bar."""

    _esm = asset("app_status.js")
    _css = asset("app_status.css")
    message = traitlets.Unicode("").tag(sync=True)
    kind = traitlets.Unicode("info").tag(sync=True)
    progress = traitlets.Float(-1.0).tag(sync=True)


def _layout(**kw: Any) -> W.Layout:
    return W.Layout(**kw)


# ipywidgets cuts a description at a fixed width (80-90px: "Label colu…") and gives every
# button the same 148px ("Compare befor…"). Labels get the room their text needs, buttons fit
# their text, wide fields shrink with the window and rows wrap instead of overflowing.
def _fit() -> dict[str, str]:
    """A description as wide as its text."""
    return {"description_width": "initial"}


def _form() -> dict[str, str]:
    """The labels of a stacked form: one width (in em, so it grows with the font), room for
    the longest ("Learning rate")."""
    return {"description_width": "8em"}


def _field(width: str = "36em") -> W.Layout:
    """A field that is ``width`` wide where there is room and shrinks with the window."""
    return _layout(width="100%", max_width=width)


def _labelled(text: str, widget: W.Widget, width: str = "30em") -> W.HBox:
    """``widget`` (up to ``width`` wide) with its label on its left, or above it when the row
    is too narrow for both: a long placeholder or option keeps the room it needs."""
    widget.layout = _layout(flex="1 1 18em", max_width=width, min_width="0")
    label = W.Label(text, layout=_layout(width="8em", flex="none"))
    return W.HBox([label, widget], layout=_layout(flex_flow="row wrap", align_items="center"))


def _button(description: str, **kw: Any) -> W.Button:
    """A button as wide as its text (not stretched across a column, not cut at 148px)."""
    layout = _layout(width="auto", flex="none", align_self="flex-start")
    return W.Button(description=description, layout=layout, **kw)


def _label_row(*children: W.Widget) -> W.HBox:
    return W.HBox(
        list(children),
        layout=_layout(align_items="center", flex_flow="row wrap", grid_gap="4px 16px"),
    )


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
    ``labkit.demo.model``, Data -> ``labkit.load_data`` / ``labkit.demo.data``, Train ->
    ``labkit.finetune``, Attention -> ``labkit.attention``, Explain -> ``labkit.explain``,
    Compare -> ``predict`` + ``labkit.attention_diff`` + ``labkit.explain`` under both models.
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
        self.tabs = W.Tab()
        pages = [
            ("Model", self._model_tab()),
            ("Data", self._data_tab()),
            ("Train", self._train_tab()),
            ("Attention", self._attention_tab()),
            ("Explain", self._explain_tab()),
            ("Compare", self._compare_tab()),
        ]
        self.tabs.children = [p for _, p in pages]
        for i, (title, _) in enumerate(pages):
            self.tabs.set_title(i, title)
        title = W.HTML(
            "<b style='font-size:15px'>labkit</b> — finetune, inspect and explain "
            "transformer classifiers"
        )
        super().__init__([title, self.status, self.tabs], **kwargs)
        self.add_class("labkit-app")
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
        """The App as static HTML (escaped): the status line, the model, the data, the last run
        and the last comparison. What a saved notebook shows where the widget cannot run
        (nbviewer, GitHub, a notebook reopened without its kernel)."""
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
            self.data._repr_html_() if self.data is not None else "<i>No data loaded.</i>",
        ]
        if self.run is not None:
            parts += [h("Training"), self.run._repr_html_()]
        c = self.comparison
        if c is not None:
            parts += [
                h(f"Compare: “{e(c.text[:80])}”"),
                _comparison_table_html(c),
                c.attention._repr_html_(),
                c.explained_before._repr_html_(),
                c.explained_after._repr_html_(),
            ]
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
            value="negative,positive",
            placeholder="label names, comma-separated",
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

    def _on_model_name(self, change: dict[str, Any]) -> None:
        """A typed name that is not the chosen preset's makes the preset read "other", so the
        dropdown never names a model other than the one Load will load."""
        if change["new"].strip() != (MODEL_PRESETS.get(self.model_preset.value) or ""):
            self.model_preset.value = OTHER_MODEL

    def load_model(self) -> None:
        """Load the model chosen in the Model tab (in the background)."""
        import labkit

        preset = MODEL_PRESETS.get(self.model_preset.value)
        name = self.model_name.value.strip()
        labels = [x.strip() for x in self.model_labels.value.split(",") if x.strip()] or None

        def job() -> Any:
            if preset is None and not name:
                return labkit.demo.model()
            return labkit.load_model(name or str(preset), labels=labels)

        def done(model: Any) -> str:
            self.model, self.base, self.run, self.comparison = model, None, None, None
            self._show_model()
            self._refresh_snapshot()
            return f"Model loaded: {model.name} on {model.device}."

        self._work("Loading the model…", job, done)

    def _show_model(self) -> None:
        m = self.model
        self.model_info.value = "<i>No model loaded.</i>" if m is None else m._repr_html_()
        self._show_train_mode()

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
        preset = DATA_PRESETS.get(change["new"])
        if preset is not None:
            self.data_source.value, self.data_text.value, self.data_label.value = preset

    def _uploaded(self) -> tuple[str, bytes] | None:
        """(file name, bytes) of the upload, for ipywidgets 7 (dict) and 8 (tuple) alike."""
        value = self.data_upload.value
        if not value:
            return None
        if isinstance(value, dict):  # ipywidgets 7: {name: {"content": bytes, ...}}
            name, item = next(iter(value.items()))
            return name, bytes(item["content"])
        item = value[0]
        return item["name"], bytes(item["content"])

    def load_data(self) -> None:
        """Load the data chosen in the Data tab (in the background)."""
        import labkit

        preset = DATA_PRESETS.get(self.data_preset.value)
        source = self.data_source.value.strip()
        upload = self._uploaded()
        text, label = self.data_text.value.strip(), self.data_label.value.strip()

        def job() -> Any:
            if upload is not None:
                name, payload = upload
                suffix = os.path.splitext(name)[1] or ".csv"
                folder = tempfile.mkdtemp(prefix="labkit-upload-")
                path = os.path.join(folder, f"upload{suffix}")
                with open(path, "wb") as fh:
                    fh.write(payload)
                return labkit.load_data(path, text=text, label=label)
            if preset is None and not source:
                return labkit.demo.data()
            return labkit.load_data(source, text=text, label=label)

        def done(data: Any) -> str:
            self.data = data
            self._show_data()
            self._refresh_snapshot()
            sizes = ", ".join(f"{k} {len(v):,}" for k, v in data.splits.items())
            return f"Data loaded: {sizes}; labels {', '.join(data.labels)}."

        self._work("Loading the data…", job, done)

    def _show_data(self) -> None:
        d = self.data
        if d is None:
            self.data_info.value = "<i>No data loaded.</i>"
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
        return W.VBox(
            [
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
        )

    def _show_train_mode(self) -> None:
        """The learning rate "0" will use, and what Compare keeps, for the chosen mode."""
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
        if lora or (m is not None and m.lora):
            note = (
                "Compare shows the model before training by turning the LoRA adapter off: "
                "no copy of the weights is kept."
            )
        elif self.base is not None:
            note = "Compare keeps the copy of the pretrained weights made at the first training."
        else:
            size = "" if m is None else f" ({_megabytes(m.hf):,.0f} MB)"
            note = (
                "Full finetuning changes every weight, so for Compare the App keeps one copy of "
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
                "The model is busy (a comparison or an explanation): press Start again when "
                "it is done.",
                "error",
            )
            return
        try:
            self._need(data=True)
            if self.run is not None and not self.run.done:
                raise labkit.TrainingError("A run is in progress: stop it in its panel first.")
            lora = self._lora_argument()
            if lora is False and not self.model.lora and self.base is None:
                # full finetuning changes every weight: keep them for Compare (LoRA needs no
                # copy: its "before" is the model with the adapter off)
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
            )
        except LabkitError as exc:
            self._say(str(exc), "error")
            return
        finally:
            self._model_lock.release()
        self.train_start.disabled = True  # until the run ends: a second Start could only fail
        self.comparison = None
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
        self._show_run(run)
        if isinstance(event, TrainEnd):
            self._refresh_snapshot()  # the run's final state, and the status line saying so

    # -- Attention -----------------------------------------------------------------------------
    def _text_area(self) -> W.Textarea:
        return W.Textarea(
            value=EXAMPLE,
            placeholder="Type a text",
            layout=_layout(width="100%", max_width="640px", height="60px"),
        )

    def _attention_tab(self) -> W.VBox:
        self.attention_text = self._text_area()
        self.attention_go = _button("Show attention", button_style="primary", icon="eye")
        self.attention_box = W.VBox()
        self.attention_go.on_click(lambda _: self.show_attention())
        return W.VBox([self.attention_text, self.attention_go, self.attention_box])

    def show_attention(self) -> None:
        """``labkit.attention(model, text)`` in the Attention tab."""
        import labkit
        from labkit.ui import view_for

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
        self.explain_text = self._text_area()
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
        one picked there when the text is the same, else the predicted one.
        """
        import labkit

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

    # -- Compare -------------------------------------------------------------------------------
    def _compare_tab(self) -> W.VBox:
        self.compare_text = self._text_area()
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
        explanations on one colour scale."""
        import labkit
        from labkit.inspect.attribution import shared_scale

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
            # under LoRA, run with the adapter on)
            e0, e1 = (dataclasses.replace(e, model=None) for e in (e0, e1))
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
