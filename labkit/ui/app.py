"""``labkit.App()``: the whole lab as one widget — Model | Data | Train | Attention | Explain |
Compare.

Thin by design: standard ipywidgets controls for the forms (they work with ipywidgets 7.7.1 on
Colab and 8 elsewhere), labkit's own views for results (``labkit.ui.view_for``), and one
status line of our own. Every button calls one public ``labkit`` function, on a worker thread so
the page stays responsive; a ``LabkitError`` becomes a message in the status line, never a
traceback.
"""

from __future__ import annotations

import copy
import html
import os
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import traitlets

from labkit.ui._base import LabkitWidget, asset

if TYPE_CHECKING:
    import ipywidgets as W
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["App", "AppStatus"]

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


def _wide() -> dict[str, str]:
    """Room for a form label such as "Learning rate" (ipywidgets cuts labels at 90px)."""
    return {"description_width": "100px"}


def _label_row(*children: W.Widget) -> W.HBox:
    return W.HBox(list(children), layout=_layout(align_items="center", flex_flow="row wrap"))


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
        self.base: Any = None  # the model as it was before the last training (for Compare)
        self.run: Any = None
        self.output_dir = output_dir
        self.status = AppStatus()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
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

    # -- plumbing ------------------------------------------------------------------------------
    def _say(self, message: str, kind: str = "info", progress: float = -1.0) -> None:
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
            description="Model",
            style=_wide(),
            layout=_layout(width="420px"),
        )
        self.model_name = W.Text(
            placeholder="hub name or local folder, e.g. distilbert-base-uncased",
            description="Name / path",
            style=_wide(),
            layout=_layout(width="420px"),
        )
        self.model_labels = W.Text(
            value="negative,positive",
            description="Labels",
            style=_wide(),
            layout=_layout(width="420px"),
        )
        self.model_load = W.Button(
            description="Load model", button_style="primary", icon="download"
        )
        self.model_info = W.HTML()
        self.model_preset.observe(self._on_preset, names="value")
        self.model_name.observe(self._on_model_name, names="value")
        self.model_load.on_click(lambda _: self.load_model())
        return W.VBox(
            [
                self.model_preset,
                self.model_name,
                self.model_labels,
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
            self.model, self.base, self.run = model, None, None
            self._show_model()
            return f"Model loaded: {model.name} on {model.device}."

        self._work("Loading the model…", job, done)

    def _show_model(self) -> None:
        m = self.model
        if m is None:
            self.model_info.value = "<i>No model loaded.</i>"
        else:
            self.model_info.value = m._repr_html_()
            self.explain_target.options = ["predicted label", *m.labels]

    # -- Data ----------------------------------------------------------------------------------
    def _data_tab(self) -> W.VBox:
        self.data_preset = W.Dropdown(
            options=list(DATA_PRESETS),
            value=DEFAULT_DATA,
            description="Data",
            layout=_layout(width="420px"),
        )
        self.data_source = W.Text(
            placeholder="hub name (rotten_tomatoes) or file path (.csv, .json, .jsonl, .parquet)",
            description="Source",
            layout=_layout(width="420px"),
        )
        self.data_upload = W.FileUpload(
            accept=".csv,.tsv,.json,.jsonl,.parquet", multiple=False, description="Upload file"
        )
        self.data_text = W.Text(value="text", description="Text column")
        self.data_label = W.Text(value="label", description="Label column")
        self.data_load = W.Button(description="Load data", button_style="primary", icon="table")
        self.data_info = W.HTML()
        self.data_preset.observe(self._on_data_preset, names="value")
        self.data_load.on_click(lambda _: self.load_data())
        return W.VBox(
            [
                self.data_preset,
                self.data_source,
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
            options=["LoRA", "full"], value="LoRA", description="Finetune", style=_wide()
        )
        self.train_rank = W.BoundedIntText(
            value=8, min=1, max=256, description="LoRA rank", style=_wide()
        )
        self.train_lr = W.FloatText(
            value=0.0,
            description="Learning rate",
            style=_wide(),
            tooltip="0 = labkit's default (1e-3 LoRA, 5e-5 full)",
        )
        self.train_epochs = W.BoundedFloatText(
            value=1.0, min=0.01, max=100, description="Epochs", style=_wide()
        )
        self.train_batch = W.BoundedIntText(
            value=32, min=1, max=4096, description="Batch size", style=_wide()
        )
        self.train_steps = W.BoundedIntText(
            value=0,
            min=0,
            max=10_000_000,
            description="Max steps",
            tooltip="0 = use epochs",
            style=_wide(),
        )
        self.train_start = W.Button(
            description="Start training", button_style="success", icon="play"
        )
        self.train_box = W.VBox()
        self.train_start.on_click(lambda _: self.start_training())
        return W.VBox(
            [
                self.train_mode,
                _label_row(self.train_rank, self.train_lr),
                _label_row(self.train_epochs, self.train_batch, self.train_steps),
                self.train_start,
                self.train_box,
            ]
        )

    def start_training(self) -> None:
        """Start ``labkit.finetune`` with the Train tab's settings and show its live panel."""
        import labkit
        from labkit import LabkitError
        from labkit.ui import view_for

        try:
            self._need(data=True)
            if self.run is not None and not self.run.done:
                raise labkit.TrainingError("A run is in progress: stop it in its panel first.")
            lora: Any = False
            if self.train_mode.value == "LoRA":
                from labkit.train.lora import lora_config

                lora = (
                    True
                    if self.train_rank.value == 8
                    else lora_config(self.model.base, r=int(self.train_rank.value))
                )
            if not self.model.lora:  # keep the pretrained weights for Compare
                self.base = copy.deepcopy(self.model)
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
        self.train_start.disabled = True  # until the run ends: a second Start could only fail
        panel = view_for(self.run)
        self.train_box.children = [panel] if panel is not None else []
        self._say(
            "Training started: the panel below updates live; Stop, Pause and Save work "
            "while it runs.",
            "busy",
        )
        self.run.history.subscribe(self._on_run_event)

    def _on_run_event(self, event: Any) -> None:
        from labkit.events import ENDED_WELL, TrainEnd

        if isinstance(event, TrainEnd):
            self.train_start.disabled = False
            self.model_info.value = self.model._repr_html_()  # now with LoRA attached
            kind = "ok" if event.status in ENDED_WELL else "error"
            extra = f": {event.error}" if event.error else "."
            self._say(f"Training {event.status}{extra}", kind)

    # -- Attention -----------------------------------------------------------------------------
    def _text_area(self) -> W.Textarea:
        return W.Textarea(
            value=EXAMPLE, placeholder="Type a text", layout=_layout(width="640px", height="60px")
        )

    def _attention_tab(self) -> W.VBox:
        self.attention_text = self._text_area()
        self.attention_go = W.Button(
            description="Show attention", button_style="primary", icon="eye"
        )
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
            return labkit.attention(self.model, text)

        def done(result: Any) -> str:
            self.attention_box.children = [view_for(result)]
            return f"Attention of {len(result.tokens)} tokens: hover a token, pick layers/heads."

        self._work("Computing attention…", job, done)

    # -- Explain -------------------------------------------------------------------------------
    def _explain_tab(self) -> W.VBox:
        from labkit.inspect.attribution.api import METHODS

        self.explain_text = self._text_area()
        self.explain_method = W.Dropdown(
            options=list(METHODS), value=METHODS[0], description="Method"
        )
        self.explain_target = W.Dropdown(options=["predicted label"], description="Explain")
        self.explain_go = W.Button(description="Explain", button_style="primary", icon="search")
        self.explain_box = W.VBox()
        self.explain_go.on_click(lambda _: self.show_explanation())
        return W.VBox(
            [
                self.explain_text,
                _label_row(self.explain_method, self.explain_target),
                self.explain_go,
                self.explain_box,
            ]
        )

    def show_explanation(self) -> None:
        """``labkit.explain(model, text, target=..., method=...)`` in the Explain tab."""
        import labkit
        from labkit.ui import view_for

        text, method = self.explain_text.value, self.explain_method.value
        target = (
            None if self.explain_target.value == "predicted label" else self.explain_target.value
        )

        def job() -> Any:
            self._need()
            return labkit.explain(self.model, text, target=target, method=method)

        def done(result: Any) -> str:
            self.explain_box.children = [view_for(result)]
            return f"Explained '{result.target}' with {result.method}."

        self._work("Computing attributions…", job, done)

    # -- Compare -------------------------------------------------------------------------------
    def _compare_tab(self) -> W.VBox:
        self.compare_text = self._text_area()
        self.compare_go = W.Button(
            description="Compare before / after", button_style="primary", icon="columns"
        )
        self.compare_box = W.VBox()
        self.compare_go.on_click(lambda _: self.compare())
        return W.VBox([self.compare_text, self.compare_go, self.compare_box])

    def _before(self) -> Any:
        """The model as it was before training: a kept copy, or the base under a LoRA adapter."""
        from labkit._errors import InputError

        if self.base is not None:
            return self.base
        raise InputError(
            "Nothing to compare yet: train the model in the Train tab first (the "
            "model before training is kept for this comparison)."
        )

    def compare(self) -> None:
        """The same text under the model before and after finetuning, side by side."""
        import labkit
        from labkit.ui import view_for

        text = self.compare_text.value

        def job() -> Any:
            self._need()
            before = self._before()
            after = self.model
            p0, p1 = before.predict([text])[0], after.predict([text])[0]
            diff = labkit.attention_diff(
                labkit.attention(before, text), labkit.attention(after, text)
            )
            e0 = labkit.explain(before, text, target=p1.label)
            e1 = labkit.explain(after, text, target=p1.label)
            return p0, p1, diff, e0, e1

        def done(out: Any) -> str:
            p0, p1, diff, e0, e1 = out
            e = html.escape
            rows = "".join(
                f"<tr><td>{e(lab)}</td><td>{p0.probs[lab]:.3f}</td><td>{p1.probs[lab]:.3f}</td>"
                f"</tr>"
                for lab in p1.probs
            )
            table = W.HTML(
                f"<table class='labkit-compare'><thead><tr><th>label</th>"
                f"<th>before</th><th>after</th></tr></thead><tbody>{rows}</tbody>"
                f"</table><p>before: <b>{e(p0.label)}</b> → after: "
                f"<b>{e(p1.label)}</b></p>"
            )
            side = W.HBox(
                [
                    W.VBox([W.HTML("<b>before</b>"), view_for(e0)]),
                    W.VBox([W.HTML("<b>after</b>"), view_for(e1)]),
                ]
            )
            self.compare_box.children = [
                table,
                W.HTML("<b>Attention heads that changed most</b>"),
                view_for(diff),
                W.HTML(f"<b>Attributions for '{e(p1.label)}'</b>"),
                side,
            ]
            return "Compared the model before and after finetuning."

        self._work("Comparing before and after…", job, done)
