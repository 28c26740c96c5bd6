"""The App's Compress tab (classifiers): prune, quantize, distill and export the loaded model,
with the trade-off table growing as each result arrives.

Each button is library calls on the App's worker thread, under the App's model lock, the
status line saying what is being done (and measured) while the kernel stays free:

* Prune heads -> ``labkit.head_importance(model, data, split="validation")`` then
  ``labkit.prune_heads(model, fraction=..., importance=...)`` (the heads are not chosen on the
  split the table scores);
* Quantize -> ``labkit.quantize(model)`` (a CPU int8 copy);
* Distill -> ``labkit.shrink(model, layers=k)`` then ``labkit.distill(model, student, data,
  max_steps=n)``, whose run panel shows in the tab;
* Export ONNX -> ``labkit.export_onnx(model, folder)`` then ``labkit.load_model(folder)``
  (predicting through onnxruntime).

Each adds one row to a :class:`~labkit.compress.compare.ModelComparison` shown by
``labkit.ui.compress_view``; its first row is the App's model as it is (loaded or finetuned),
measured before the first compressed copy. Loading another model, training it, or changing
how many texts are measured starts a new table. A ``LabkitError`` is the App's red status line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.ui._form import button, field, fit, hint, label_row, layout
from labkit.ui.compress_view import CompressView

if TYPE_CHECKING:
    import ipywidgets as W

    from labkit.compress.compare import ModelComparison
    from labkit.model import Model
    from labkit.ui.app import App
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["BATCH_SIZES", "CompressTab"]

BATCH_SIZES = (1, 32)  # the latencies the table shows

Say = Callable[[str], None]


class CompressTab:
    """The Compress tab of ``app`` (``app.compress``); ``page`` is its widget."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.comparison: ModelComparison | None = None
        self.run: Any = None  # the last distillation
        self._exported: Any = None  # the last export (its path and parity), for the message
        self._key: tuple[Any, ...] | None = None  # what the comparison's first row measured
        w = "16em"
        self.examples = W.BoundedIntText(
            value=256,
            min=8,
            max=1_000_000,
            description="Texts measured",
            style=fit(),
            layout=field(w),
        )
        self.repeats = W.BoundedIntText(
            value=3, min=1, max=100, description="Timing repeats", style=fit(), layout=field(w)
        )
        self.fraction = W.BoundedFloatText(
            value=0.3,
            min=0.0,
            max=0.95,
            step=0.05,
            description="Fraction of heads",
            style=fit(),
            layout=field(w),
        )
        self.prune_go = button("Prune heads", icon="scissors")
        self.quantize_go = button("Quantize (int8, CPU)", icon="compress")
        self.layers = W.BoundedIntText(
            value=2, min=1, max=96, description="Student layers", style=fit(), layout=field(w)
        )
        self.steps = W.BoundedIntText(
            value=200, min=1, max=10_000_000, description="Steps", style=fit(), layout=field(w)
        )
        self.distill_go = button("Distill", icon="graduation-cap")
        self.folder = W.Text(
            placeholder="folder to write, e.g. model-onnx",
            description="Folder",
            style=fit(),
            layout=field("28em"),
        )
        self.overwrite = W.Checkbox(
            value=False, description="replace it", indent=False, layout=layout(width="auto")
        )
        self.export_go = button("Export ONNX", icon="download")
        self.measure_go = button("Measure the model again", icon="refresh")
        self.run_box = W.VBox()
        self.view = CompressView()
        self.prune_go.on_click(lambda _: self.prune())
        self.quantize_go.on_click(lambda _: self.quantize())
        self.distill_go.on_click(lambda _: self.distill())
        self.export_go.on_click(lambda _: self.export())
        self.measure_go.on_click(lambda _: self.measure())
        self.page = W.VBox(
            [
                hint(
                    "Each button makes a smaller or faster copy of the model and adds its row "
                    "to the table: the first row is the model as it is now (loaded or "
                    "finetuned), measured on the data's test split (else validation)."
                ),
                label_row(self.examples, self.repeats, self.measure_go),
                label_row(self.fraction, self.prune_go),
                label_row(self.quantize_go),
                label_row(self.layers, self.steps, self.distill_go),
                label_row(self.folder, self.overwrite, self.export_go),
                self.run_box,
                self.view,
            ]
        )

    # -- the buttons ---------------------------------------------------------------------------
    def measure(self) -> None:
        """Start a new table with the App's model as it is now as its first row."""

        def job(model: Model, say: Say) -> tuple[str, None]:
            self._key = None  # measured again, even when nothing changed
            return self._first_name(), None

        self._start("Measuring the model…", job)

    def prune(self) -> None:
        """``labkit.prune_heads``: the least important heads, by importance on validation."""
        import labkit

        fraction = float(self.fraction.value)

        def job(model: Model, say: Say) -> tuple[str, Model]:
            say(f"Measuring head importance on the validation split, then pruning {fraction:.0%}…")
            # not on the split the table scores: the heads kept are not chosen on its texts
            importance = labkit.head_importance(model, self.app.data, split="validation")
            pruned = labkit.prune_heads(model, fraction=fraction, importance=importance)
            return f"pruned {fraction:.0%}", pruned

        self._start("Pruning heads…", job)

    def quantize(self) -> None:
        """``labkit.quantize(model)``: a CPU int8 copy."""
        import labkit

        def job(model: Model, say: Say) -> tuple[str, Model]:
            say("Quantizing to int8…")
            return "int8", labkit.quantize(model)

        self._start("Quantizing…", job)

    def distill(self) -> None:
        """``labkit.shrink(model, layers=k)``, then ``labkit.distill`` into it for ``steps``
        steps (its panel shows below); the student's row is added when the run ends."""
        import labkit
        from labkit.events import ENDED_WELL
        from labkit.ui import view_for

        layers, steps = int(self.layers.value), int(self.steps.value)

        def job(model: Model, say: Say) -> tuple[str, Model]:
            say(f"Making a {layers}-layer student from the model's own layers…")
            student = labkit.shrink(model, layers=layers)
            run = labkit.distill(
                model,
                student,
                self.app.data,
                max_steps=steps,
                # a folder of its own: the Train tab's run (and its checkpoints) stays as it is
                output_dir=_distill_folder(self.app.output_dir, layers),
                name=f"distill into {layers} layers",
            )
            self.run = run
            panel = view_for(run)
            self.run_box.children = [panel] if panel is not None else []
            say(f"Distilling into {layers} layers ({steps} steps): the panel below follows it.")
            run.wait()
            if run.status not in ENDED_WELL:
                from labkit._errors import TrainingError

                raise TrainingError(f"The distillation ended {run.status}: {run.error or ''}")
            return f"distilled {layers} layers", student

        self._start("Distilling…", job)

    def export(self) -> None:
        """``labkit.export_onnx(model, folder)``, then the exported folder, loaded, as a row."""
        import os

        import labkit
        from labkit._errors import ConfigError

        folder, overwrite = self.folder.value.strip(), bool(self.overwrite.value)

        def job(model: Model, say: Say) -> tuple[str, Model]:
            if not folder:
                raise ConfigError("Type the folder to export to in the Folder field first.")
            if not overwrite and os.path.exists(os.path.expanduser(folder)):
                raise ConfigError(
                    f"{folder} already exists: tick 'replace it' to replace an earlier export "
                    "(only once the new one has passed its check), or type another folder."
                )
            say(f"Exporting to ONNX in {folder} (and checking it against torch)…")
            done = labkit.export_onnx(model, folder, overwrite=overwrite)
            self._exported = done
            say("Loading the exported graph with onnxruntime…")
            return "onnx", labkit.load_model(done.path, device="cpu")

        self._start("Exporting…", job)

    # -- plumbing ------------------------------------------------------------------------------
    def _start(self, busy: str, make: Callable[[Model, Say], tuple[str, Any]]) -> None:
        """On the App's worker: ``make(model, say)`` -> (name, new model or None), then the
        model's own row when the table is new, then the new model's row."""
        app = self.app

        def say(text: str) -> None:
            app._say(text, "busy")

        def job() -> tuple[str, ModelComparison]:
            from labkit._errors import InputError

            app._need(data=True)
            with app._model_lock:  # nothing else of the App's runs on the model meanwhile
                model = app.model
                if model.is_training:
                    raise InputError(
                        "A run is training this model: compress it when the run has ended "
                        "(or stop it)."
                    )
                if self.comparison is None or self._key is None:
                    # the data's labelled split is checked before the long work, not after it
                    from labkit.compress.compare import start_comparison

                    start_comparison(app.data, batch_sizes=BATCH_SIZES, max_examples=8)
                # the copy first: a bad setting fails before anything is measured
                name, made = make(model, say)
                comparison = self._comparison(model, say)
                if made is not None:
                    name = _unique(name, comparison.names)
                    comparison.add(name, made, progress=say)
                return name, comparison

        def done(result: tuple[str, ModelComparison]) -> str:
            message = said(result)
            # the saved view gets the table with the status line saying what was added (a
            # snapshot taken before it kept "int8: latency at batch 32…" in a reopened notebook)
            app._say(message, "ok")
            app._refresh_snapshot()
            return message

        def said(result: tuple[str, ModelComparison]) -> str:
            name, comparison = result
            row = next(r for r in comparison.rows if r.name == name)
            first = comparison.rows[0]
            if row is first:
                return f"Measured {name!r}: {row.accuracy:.1%} accuracy on {row.examples:,} texts."
            b = comparison.plot_batch
            extra = ""
            exported = self._exported
            if name.startswith("onnx") and exported is not None:
                extra = (
                    f" Exported to {exported.path}; worst probability difference from torch "
                    f"{exported.max_prob_diff:.1e}."
                )
                self._exported = None
            return (
                f"Added {name!r}: accuracy {row.accuracy:.1%} ({first.accuracy:.1%} before), "
                f"{row.speedup[b]:.2f}× the speed at batch {b}, "
                f"{row.size_bytes / max(first.size_bytes, 1):.0%} of the size.{extra}"
            )

        app._work(busy, job, done)

    def _first_name(self) -> str:
        return "finetuned" if self.app.run is not None else "loaded"

    def _comparison(self, model: Model, say: Say) -> ModelComparison:
        """The comparison the next row joins: the current one while it measured this model as
        it is (same model, run, data and settings), else a new one with the model as its
        first row."""
        from labkit.compress.compare import start_comparison

        app = self.app
        examples, repeats = int(self.examples.value), int(self.repeats.value)
        key = (id(model), id(app.run), id(app.data), examples, repeats)
        if self.comparison is not None and key == self._key:
            return self.comparison
        comparison = start_comparison(
            app.data, batch_sizes=BATCH_SIZES, repeats=repeats, max_examples=examples
        )
        self.view.show(comparison)
        name = self._first_name()
        say(f"Measuring the {name} model first (the table's reference row)…")
        comparison.add(name, model, progress=say)
        self.comparison, self._key = comparison, key
        return comparison


def _unique(name: str, taken: list[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… when the table has it already."""
    if name not in taken:
        return name
    k = 2
    while f"{name} ({k})" in taken:
        k += 1
    return f"{name} ({k})"


def _distill_folder(root: str | None, layers: int) -> str | None:
    """A new folder under the App's ``output_dir`` for one distillation (None: finetune's
    default, a new folder per run)."""
    if root is None:
        return None
    import os
    import time

    return os.path.join(root, f"distill-{layers}-layers-{time.strftime('%Y%m%d-%H%M%S')}")
