"""``Run``: one finetuning run on a background thread, steerable from any thread.

A notebook cell that blocks also blocks widget messages, so training runs on its own thread and
``labkit.finetune`` returns at once. The run records every event in ``run.history``; the live
panel, the console bar and reports read from there.

Two sides, one module: users hold the :class:`Run` (steering and facts); the engine
(``labkit.train.finetune`` and its ``Trainer`` bridge) holds a :class:`RunDriver`, the only way
a run's state moves. Nothing outside this module touches a run's private fields.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import TrainingError
from labkit._utils import checkpoint as _checkpoint
from labkit._utils.device import is_out_of_memory
from labkit.events import ENDED_STATUSES, Control, Event, Status, StepEnd, TrainEnd
from labkit.history import MetricHistory
from labkit.metrics import lower_is_better

if TYPE_CHECKING:
    from labkit.compress.onnx import ExportedPath
    from labkit.lm.evaluate import LMMetrics
    from labkit.metrics import Metrics
    from labkit.mlm.evaluate import MLMMetrics
    from labkit.model import Model
    from labkit.runs.record import RecordWriter
    from labkit.train.config import FinetuneConfig
    from labkit.train.precision import PrecisionChoice

__all__ = ["Run", "RunDriver"]


class Run:
    """A finetuning run. Created by :func:`labkit.finetune`; training starts at once.

    Steer it with ``stop()`` (at the next step, after saving a checkpoint), ``pause()`` /
    ``resume()`` (held at the next step boundary) and ``save()`` (a checkpoint at the next step
    boundary, also while paused). Each is idempotent and never raises once the run has ended.
    ``wait()`` blocks until the end and re-raises the exception of a failed run.
    """

    def __init__(
        self, model: Model, config: FinetuneConfig, output_dir: str, callbacks: Sequence[Any] = ()
    ) -> None:
        self._model = model
        self._config = config
        self._output_dir = output_dir
        self._callbacks = tuple(callbacks)
        self._name = config.name or default_name(model, config)
        self.history = MetricHistory()
        self.control = Control()
        # moved only by this run's RunDriver, under _lock
        self._status: Status = "pending"
        self._error: str | None = None
        self._exc: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = 0
        self._total_steps: int | None = None
        self._early_stopped = False
        # what precision="auto" chose on a GPU and why (labkit.train.precision); None when
        # the precision was given, or on a CPU (fp32)
        self.precision: PrecisionChoice | None = None
        self._evaluation: Metrics | LMMetrics | MLMMetrics | None = None
        # the run's record on disk (labkit.runs.record), opened by the driver at the start;
        # None on ranks other than 0 of a multi-process run, and when it could not be opened
        self._writer: RecordWriter | None = None

    # -- steering (any thread) ------------------------------------------------------------------
    def stop(self) -> None:
        """End the run at the next step boundary, saving a checkpoint first (no evaluation is
        started for it). ``status`` says ``stopping`` at once, ``stopped`` once it has ended."""
        if self.done:
            return
        with self._lock:
            self.control.stop()
            if self._status not in ENDED_STATUSES:
                self._status = "stopping"
                self._note_status()
        self._mirror("stop")

    def pause(self) -> None:
        """Hold training at the next step boundary until :meth:`resume` (or :meth:`stop`).
        ``status`` says ``pausing`` at once, ``paused`` once training is held."""
        if self.done:
            return
        with self._lock:
            self.control.pause()
            if self._status == "running":
                self._status = "pausing"
                self._note_status()
        self._mirror("pause")

    def resume(self) -> None:
        with self._lock:
            self.control.resume()
            if self._status in ("pausing", "paused"):
                self._status = "running"
                self._note_status()
        self._mirror("resume")

    def _note_status(self) -> None:
        if self._writer is not None:
            self._writer.status(self._status, self._step)

    def _mirror(self, action: str) -> None:
        """Write a request made here (``stop``, ``pause``, ``resume``) to the run's control file
        too, so the file and the run agree: a later request from another process does not bring
        back a pause resumed here, and the sidebar reads the same state."""
        if self._writer is None:
            return
        from labkit.runs.control import request

        with contextlib.suppress(OSError):
            request(self._output_dir, action, run_id=self._writer.header["run_id"])

    def save(self) -> None:
        """Write a checkpoint at the next step boundary (right away when paused)."""
        if not self.done:
            self.control.save()

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends (or ``timeout`` seconds pass); re-raises a failed run's error."""
        self._done.wait(timeout)
        if self._done.is_set() and self._exc is not None:
            raise self._exc
        return self

    # -- facts ----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def status(self) -> Status:
        """pending, running, pausing (a pause requested, not yet held), paused, stopping (a stop
        requested: the checkpoint is being written), or once ended one of
        ``labkit.events.ENDED_STATUSES``: stopped, finished, diverged, out_of_memory or failed."""
        return self._status

    @property
    def error(self) -> str | None:
        """Why the run did not finish (None when it did or while it runs)."""
        return self._error

    @property
    def step(self) -> int:
        """Optimizer steps taken so far (counting those before a resume)."""
        return self._step

    @property
    def total_steps(self) -> int | None:
        return self._total_steps

    @property
    def evaluation(self) -> Metrics | LMMetrics | MLMMetrics | None:
        """The last full evaluation on the validation split (confusion matrix, per-label
        report, loss), None before the first."""
        return self._evaluation

    @property
    def early_stopped(self) -> bool:
        """Whether early stopping ended the run (``early_stopping=`` evaluations without gain)."""
        return self._early_stopped

    @property
    def name(self) -> str:
        """What the run is called: ``finetune(..., name=...)``, else the model and the method,
        e.g. ``all-MiniLM-L6-v2 · LoRA r=8`` or ``all-MiniLM-L6-v2 · full finetuning``; the
        panel's title and its snapshot's heading."""
        return self._name

    @property
    def model(self) -> Model:
        """The labkit ``Model`` being trained (updated in place; LoRA runs attach the adapter)."""
        return self._model

    @property
    def config(self) -> FinetuneConfig:
        return self._config

    @property
    def output_dir(self) -> str:
        return self._output_dir

    @property
    def run_id(self) -> str | None:
        """The id in the run's record header (``RecordedRun.run_id`` reads the same); None
        without a record."""
        return str(self._writer.header["run_id"]) if self._writer is not None else None

    @property
    def record(self) -> str | None:
        """The run's ``events.jsonl`` (``labkit.load_run(run.output_dir)`` reads it from any
        process); None on ranks other than 0, and when it could not be written."""
        return str(self._writer.path) if self._writer is not None else None

    @property
    def metrics(self) -> dict[str, float]:
        """The last evaluation on the validation split (loss, accuracy, precision, recall, f1)."""
        last = self.history.last_eval
        return dict(last.metrics) if last else {}

    @property
    def checkpoints(self) -> list[str]:
        """Complete checkpoint folders, oldest first (a save in progress is not listed)."""
        return _checkpoint.find(self._output_dir)

    @property
    def best_checkpoint(self) -> str | None:
        """The checkpoint with the best ``config.metric`` at its step, else the latest one."""
        return best_of(self.checkpoints, self.history, self._config.metric)

    # -- export ---------------------------------------------------------------------------------
    def export(
        self,
        path: str | Path,
        *,
        format: str = "safetensors",
        merge_lora: bool = True,
        overwrite: bool = False,
        texts: Sequence[str] | None = None,
        tolerance: float = 1e-4,
    ) -> ExportedPath:
        """Write the trained model to the folder ``path``; returns the path (a ``str``) with
        what the export's parity check found (``.max_prob_diff``, ``.texts_checked``, ...).

        ``format="safetensors"``: a folder that transformers loads as is. With LoRA and
        ``merge_lora=True`` the adapter is merged into a copy of the base weights, so
        ``AutoModelForSequenceClassification.from_pretrained(path)`` (a causal LM:
        ``AutoModelForCausalLM``) and ``transformers.pipeline("text-classification",
        model=path)`` (``"text-generation"``) need no peft. With ``merge_lora=False`` the
        adapter alone is written (``labkit.load_model`` reads it).
        ``format="onnx"``: :func:`labkit.export_onnx`'s folder (a classifier; LoRA always
        merged), which ``labkit.load_model`` runs with onnxruntime.

        Either way the written folder is loaded back and compared with the model on ``texts``
        (default: labkit's built-in held-out texts), one at a time and in padded batches: a
        softmax probability further apart than ``tolerance`` (at least 2e-2 for bf16/fp16
        weights, whose own rounding is that large) raises ``ModelLoadError`` and leaves
        nothing at ``path``. An existing ``path`` is refused unless ``overwrite=True``.
        """
        from labkit._errors import ConfigError

        if format not in ("safetensors", "onnx"):
            raise ConfigError(f"format must be 'safetensors' or 'onnx', got {format!r}.")
        if format == "onnx" and not merge_lora:
            raise ConfigError(
                "merge_lora=False writes the adapter alone, which only format='safetensors' "
                "can hold; an ONNX graph always has the adapter merged into its weights."
            )
        if not self.done:
            raise TrainingError(
                f"the run is {self.status}; call run.wait() (or run.stop() and "
                "run.wait()) before exporting."
            )
        if format == "onnx":
            from labkit.compress.onnx import ExportedPath, export_onnx

            done = export_onnx(
                self._model, path, overwrite=overwrite, texts=texts, tolerance=tolerance
            )
            return ExportedPath.of(done)
        return _export(
            self._model,
            Path(path),
            merge_lora=merge_lora,
            overwrite=overwrite,
            texts=texts,
            tolerance=tolerance,
        )

    # -- display --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        total = f"/{self._total_steps}" if self._total_steps else ""
        shown = ", ".join(
            f"{k}={v:.4f}" for k, v in self.metrics.items() if k in ("loss", "accuracy")
        )
        return (
            f"Run({self._name!r}, {self.status}, step {self._step}{total}"
            f"{', ' + shown if shown else ''}, output_dir={self._output_dir!r})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.run import run_html

        return run_html(self)

    def _ipython_display_(self) -> None:
        from labkit.render.display import ipython_display

        ipython_display(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


class RunDriver:
    """The engine's side of a :class:`Run`: the one way the run's state moves.

    ``labkit.finetune`` wraps each new run in a driver, builds the training job around it and
    calls :meth:`start`; the job runs on the run's own thread and is handed the driver (users
    and their callbacks get the ``Run`` and its ``Control``, never this). The invariants kept
    here: ``step`` follows the last ``StepEnd``; a status set by the engine changes nothing once
    the run has ended; an end the engine decides (:meth:`end`) is the one the run reports;
    ``TrainEnd`` is emitted exactly once, and only then is ``run.done`` true.
    """

    def __init__(self, run: Run) -> None:
        self.run = run

    def start(self, job: Callable[[RunDriver], None]) -> None:
        """Run ``job(driver)`` on a new thread; when it returns or raises, settle the final
        status, release the model for the next run and emit ``TrainEnd``."""
        from labkit._utils.threads import release_idle_pool

        # the caller's idle OpenMP workers would make the training thread's ops slower
        release_idle_pool()
        run = self.run
        self._open_record()
        run._thread = threading.Thread(
            target=self._main, args=(job,), name=f"labkit-run-{id(run):x}", daemon=False
        )
        run._thread.start()

    def _open_record(self) -> None:
        """Write the run's record and read its control file (rank 0 only); every rank takes
        rank 0's requests at each step (``labkit.runs.control.agree``)."""
        import warnings

        from labkit._errors import LabkitWarning
        from labkit.runs import control as _control
        from labkit.runs import registry
        from labkit.runs.record import RecordWriter, header_for

        run = self.run
        if int(os.environ.get("RANK", "0") or 0) == 0:
            header = header_for(run)
            watcher = _control.ControlFile(run.output_dir, run.control, header["run_id"])
            try:
                # the requests left by an earlier run here go first: none of this run's is lost
                Path(run.output_dir).mkdir(parents=True, exist_ok=True)
                watcher.reset()
                run._writer = RecordWriter(run.output_dir, header)
            except OSError as exc:
                warnings.warn(
                    f"labkit could not write the run record in {run.output_dir} ({exc}): the "
                    "run trains, but other processes and the sidebar cannot see or steer it.",
                    LabkitWarning,
                    stacklevel=4,
                )
            else:
                run.control.attach(watcher)
                registry.register(run.output_dir)
        run.control.attach(_control.agree)

    def mark_start(self) -> None:
        """Training begins now: the zero of ``run.history``'s ``elapsed``, recorded too (so a
        run read back from its record has the same ``elapsed``)."""
        run = self.run
        at = _now()
        run.history.mark_start(at)
        with run._lock:
            if run._writer is not None:
                run._writer.status("running", run._step, started=at)

    def progress(self, step: int, total_steps: int | None) -> None:
        """Optimizer steps taken (counting those before a resume) and the planned total (None
        while unknown)."""
        run = self.run
        with run._lock:
            run._step, run._total_steps = int(step), total_steps

    def set_status(self, status: Status) -> None:
        """``running`` or ``paused`` as the training loop sees it; ignored once the run has
        ended. A request still on its way wins: ``stopping`` after ``stop()`` whatever the loop
        reports, ``pausing`` for a ``running`` while a pause is requested, ``running`` for a
        ``paused`` once resumed."""
        run = self.run
        with run._lock:
            if run._status in ENDED_STATUSES:
                return
            if run.control.stop_requested:
                status = "stopping"
            elif status == "running" and run.control.paused:
                status = "pausing"
            elif status == "paused" and not run.control.paused:
                status = "running"  # resumed: the loop goes on at its next look
            run._status = status
            run._note_status()

    def emit(self, event: Event) -> None:
        """Record ``event`` in ``run.history`` (a ``StepEnd`` also moves ``run.step``), then hand
        it to the user's callbacks, on the training thread."""
        run = self.run
        if isinstance(event, StepEnd):
            self.progress(event.step, event.total_steps)
        run.history.record(event)
        if run._writer is not None:
            run._writer.event(event)
        for cb in run._callbacks:
            cb.on_event(event, run.control)

    def evaluated(self, metrics: Metrics | LMMetrics | MLMMetrics) -> None:
        """The full metrics of the evaluation just made (``run.evaluation``)."""
        self.run._evaluation = metrics

    def stopped_early(self) -> None:
        """Early stopping ended the training (``run.early_stopped``)."""
        self.run._early_stopped = True

    def end(self, status: Status, error: str | None) -> None:
        """An end the engine decided (``diverged``): the status and message the run reports once
        the job returns."""
        run = self.run
        with run._lock:
            run._status, run._error = status, error

    def _main(self, job: Callable[[RunDriver], None]) -> None:
        run = self.run
        try:
            job(self)
        except BaseException as exc:  # noqa: BLE001 - the run reports every way it can end
            with run._lock:
                if run._status not in ENDED_STATUSES:
                    oom = is_out_of_memory(exc)
                    run._status = "out_of_memory" if oom else "failed"
                    run._error = _oom_advice(exc) if oom else f"{type(exc).__name__}: {exc}"
                    if not oom:
                        run._exc = exc
        else:
            with run._lock:
                if run._status not in ENDED_STATUSES:
                    short = run._total_steps is None or run._step < run._total_steps
                    stopped = run.control.stop_requested and short
                    run._status = "stopped" if stopped else "finished"
        finally:
            run._model.release_training()
            try:
                self.emit(
                    TrainEnd(status=run._status, error=run._error, step=run._step, time=_now())
                )
            except BaseException as exc:  # noqa: BLE001 - a failing listener must not hang wait()
                if run._exc is None:
                    run._exc = exc
            finally:
                if run._writer is not None:
                    run._writer.close()
                run._done.set()


def best_of(checkpoints: Sequence[str], history: MetricHistory, metric: str) -> str | None:
    """Of ``checkpoints`` (oldest first), the one with the best ``metric`` evaluated at its step,
    else the latest; None when there is none."""
    if not checkpoints:
        return None
    scored = {e.step: e.metrics[metric] for e in history.evals if metric in e.metrics}
    ranked = [(scored[s], p) for p in checkpoints if (s := _checkpoint.step_of(p)) in scored]
    if not ranked:
        return checkpoints[-1]
    pick = min if lower_is_better(metric) else max
    return pick(ranked, key=lambda sp: sp[0])[1]


def model_label(model: Model) -> str:
    """The model's short name: the last part of its hub name or folder (``all-MiniLM-L6-v2``)."""
    return os.path.basename(str(getattr(model, "name", "") or "").rstrip("/\\")) or "model"


def default_name(model: Model, config: FinetuneConfig) -> str:
    """A run's name when none is given: the model, then what distinguishes the run, its method
    (``LoRA r=8``, ``AdaLoRA``, ``full finetuning``)."""
    lora = getattr(config, "lora", False)
    if lora is False:
        # a model that already carries an adapter keeps training that adapter
        method = "LoRA adapter" if getattr(model, "lora", False) else "full finetuning"
    elif lora is True:
        import inspect

        from labkit.train.lora import lora_config

        # lora=True is lora_config's defaults: its rank is read there, not repeated here
        method = f"LoRA r={inspect.signature(lora_config).parameters['r'].default}"
    else:
        from peft import AdaLoraConfig, LoraConfig  # a peft config was given: peft is loaded

        if isinstance(lora, AdaLoraConfig):
            method = "AdaLoRA"
        elif isinstance(lora, LoraConfig):
            method = f"LoRA r={lora.r}"
        else:  # another peft method: its own name (IA3, ...)
            method = str(
                getattr(getattr(lora, "peft_type", None), "value", "") or type(lora).__name__
            )
    return f"{model_label(model)} · {method}"


def _export(
    model: Model,
    path: Path,
    *,
    merge_lora: bool,
    overwrite: bool = False,
    texts: Sequence[str] | None = None,
    tolerance: float = 1e-4,
) -> ExportedPath:
    """Save ``model`` into ``path`` (written to a staging folder, loaded back and checked
    against ``model``, then renamed into place)."""
    import copy
    import shutil
    import time
    import warnings

    from labkit._errors import ModelLoadError
    from labkit._utils.quiet import hf_quiet
    from labkit.compress.onnx import (
        ExportedPath,
        check_tolerance,
        max_prob_diff,
        parity_texts,
        parity_tolerance,
        refuse_existing,
    )
    from labkit.model import load_model

    # an int8 copy's packed weights and an ONNX graph have no safetensors to write
    model.require_backend("a safetensors export", gradients=True)
    tolerance = parity_tolerance(check_tolerance(tolerance), model.dtype)
    checked = parity_texts(texts)
    path = refuse_existing(path, overwrite)
    start = time.perf_counter()
    staged = path.with_name(f"{_checkpoint.STAGING}-{path.name}")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        hf: Any = model.hf
        with hf_quiet():
            if model.lora and merge_lora:
                hf = copy.deepcopy(hf).merge_and_unload()  # a copy: the run keeps its adapter
            config = hf.config if not model.lora or merge_lora else model.base.config
            config.id2label = dict(enumerate(model.labels))
            config.label2id = {name: i for i, name in enumerate(model.labels)}
            hf.save_pretrained(staged, safe_serialization=True)
            model.tokenizer.save_pretrained(staged)
        del hf  # a merged copy goes before the folder is loaded back
        _checkpoint.write_labels(staged, model.labels, task=model.task)
        # read back as a user would (labkit.load_model: transformers, peft for an adapter)
        with hf_quiet(), warnings.catch_warnings():
            # peft reads an attribute transformers 5 deprecated, when it loads an adapter
            warnings.filterwarnings(
                "ignore",
                message="`is_gradient_checkpointing` is deprecated",
                category=FutureWarning,
            )
            reloaded = load_model(staged, task=model.task, device=model.device, dtype=model.dtype)
        diff = max_prob_diff(model, reloaded, checked, builtin=texts is None)
        del reloaded
        if diff > tolerance:
            raise ModelLoadError(
                f"the exported folder does not reproduce {model.name!r}: loaded back, its "
                f"probabilities differ by up to {diff:.2e} on {len(checked)} texts (tolerance "
                f"{tolerance:.0e}), so nothing was written to {path}. Raise tolerance= if the "
                "difference is acceptable."
            )
        size = sum(f.stat().st_size for f in staged.glob("*.safetensors"))
        final = _checkpoint.commit(staged, path)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return ExportedPath(
        final,
        file_format="safetensors",
        max_prob_diff=diff,
        texts_checked=len(checked),
        size_bytes=size,
        seconds=time.perf_counter() - start,
    )


def _now() -> float:
    import time

    return time.time()


def _oom_advice(exc: BaseException) -> str:
    where = "the GPU" if "CUDA" in str(exc) else "the machine"
    return (
        f"{where} ran out of memory ({(str(exc) or type(exc).__name__).splitlines()[0][:200]}). "
        "Try a smaller "
        "batch_size (with gradient_accumulation_steps to keep the effective batch), lora=True, "
        "a shorter max_length, or gradient_checkpointing=True. The model is still usable."
    )
