"""The live training panel: ``LossChart`` (a chart of a ``MetricHistory``) and ``RunPanel`` (the
chart plus a run's status and its Stop / Pause / Save buttons).

Deltas, not arrays: the history itself is never a trait. A view asks for what it has not seen
(``{"type": "sync", "have": n, "have_evals": m}``) and the kernel answers with rows ``n..`` as
binary columns; after that, a background thread sends only the new rows, at most every
``interval`` seconds however fast steps come, so one update costs the same at step 10 and at
step 100,000. Every message carries its start index, so a view drops what it already holds and
asks again when it sees a gap (a message lost before its listener existed, a page reload, a
front end that reconnected): no point is lost or shown twice.

Messages from the kernel: ``{"type": "rows", "start", "n", "cols", "evals_start", "evals",
"samples_start", "samples", "reply"}`` with one buffer per column (``step`` float64,
``epoch``/``loss``/``lr`` float32, NaN for a missing value); ``samples`` are a causal LM's
sample generations (``labkit.render.run.sample_row``: ``[step, prompts, texts, answer]``,
cut for display), replayed like the evaluations. From the view: ``sync`` (``have``,
``have_evals``, ``have_samples``) and ``{"type": "control", "action": "stop" | "pause" |
"resume" | "save"}``.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
import uuid
import weakref
from array import array
from typing import Any

import traitlets as t

from labkit.events import ENDED_STATUSES, TrainEnd
from labkit.render.run import sample_row, status_label
from labkit.ui._base import LabkitWidget, asset

__all__ = ["LossChart", "RunPanel", "view_for_run"]

# (column, array typecode) sent for each step row: 8 + 3 * 4 = 20 bytes a row
COLUMNS: tuple[tuple[str, str], ...] = (("step", "d"), ("epoch", "f"), ("loss", "f"), ("lr", "f"))
_NAN = float("nan")


def encode_rows(cols: dict[str, list[Any]]) -> list[bytes]:
    """Little-endian binary columns (one buffer per entry of ``COLUMNS``); None -> NaN."""
    out = []
    for name, code in COLUMNS:
        arr = array(code, [_NAN if v is None else v for v in cols[name]])
        if sys.byteorder == "big":
            arr.byteswap()
        out.append(arr.tobytes())
    return out


def _eval_row(event: Any) -> list[Any]:
    metrics = {
        k: (v if isinstance(v, (int, float)) and math.isfinite(v) else None)
        for k, v in (event.metrics or {}).items()
    }
    return [int(event.step), metrics]


class LossChart(LabkitWidget):
    """Live chart of a ``MetricHistory``: raw and smoothed training loss, validation loss and
    one metric (second axis) as points, log scale, hover read-out and a recent-window zoom.

    ``LossChart(history)`` follows the history until its ``TrainEnd``; the view settings are
    traits a user may also set from Python.
    """

    _esm = asset("run_panel.js")
    _css = asset("run_panel.css")

    smoothing = t.Float(0.6, help="EMA smoothing of the training loss, in [0, 0.999]").tag(
        sync=True
    )
    log_scale = t.Bool(False, help="log10 loss axis").tag(sync=True)
    window = t.Int(0, help="show only the last `window` steps; 0 shows the whole run").tag(
        sync=True
    )
    metric = t.Unicode("", help="metric drawn on the second axis; '' picks accuracy").tag(sync=True)
    rows = t.Int(0, help="step rows streamed so far (read-only)").tag(sync=True)
    n_evals = t.Int(0, help="evaluations streamed so far (read-only)").tag(sync=True)
    n_samples = t.Int(0, help="sample generations streamed so far (read-only)").tag(sync=True)
    _kind = t.Unicode("chart").tag(sync=True)
    _key = t.Unicode().tag(sync=True)

    def __init__(
        self,
        history: Any = None,
        *,
        smoothing: float = 0.6,
        log_scale: bool = False,
        window: int = 0,
        metric: str = "",
        interval: float = 0.1,
    ) -> None:
        from labkit.history import MetricHistory

        super().__init__(
            smoothing=smoothing,
            log_scale=log_scale,
            window=window,
            metric=metric,
            _key=uuid.uuid4().hex,
        )
        self.history = history if history is not None else MetricHistory()
        self.interval = float(interval)
        self._lock = threading.RLock()
        self._sent = len(self.history)  # rows the views are told about (sync replies stop here)
        self._sent_evals = len(self.history.evals)
        self._sent_samples = len(self.history.samples)
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.updates = 0  # delta messages sent (for tests and benchmarks)
        self._unsubscribe = self.history.subscribe(self._on_event)
        self.on_msg(self._on_msg)
        self.rows, self.n_evals = self._sent, self._sent_evals
        self.n_samples = self._sent_samples
        if not self._ended():
            self._start()

    @t.validate("smoothing")
    def _check_smoothing(self, proposal: Any) -> float:
        value = float(proposal["value"])
        return min(max(value, 0.0), 0.999) if math.isfinite(value) else 0.6

    @t.validate("window")
    def _check_window(self, proposal: Any) -> int:
        return max(0, int(proposal["value"]))

    # -- streaming -----------------------------------------------------------------------------
    def _ended(self) -> bool:
        return self.history.end is not None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="labkit-panel", daemon=True)
        self._thread.start()

    def _on_event(self, event: Any) -> None:
        # on the training thread: nothing but a flag, so a step costs the same with a panel
        if isinstance(event, TrainEnd):
            self._wake.set()

    def _loop(self) -> None:
        next_at = 0.0
        while not self._closed:
            self._wake.wait(max(0.0, next_at - time.monotonic()))
            self._wake.clear()
            next_at = time.monotonic() + self.interval
            ended = self._ended()
            try:
                self._tick()
            except Exception:  # a view problem must never reach training
                self.log.warning("labkit panel update failed", exc_info=True)
            if ended:
                break
        self._thread = None

    def flush(self) -> None:
        """Send what is new now (the background thread does this every ``interval`` s)."""
        self._tick()

    def _tick(self) -> None:
        """One update: new rows and evaluations as one message, then the traits."""
        with self._lock:
            self._send_delta(reply=False)

    def _send_delta(
        self,
        *,
        reply: bool,
        have: int | None = None,
        have_evals: int | None = None,
        have_samples: int | None = None,
    ) -> None:
        """Send rows ``start.._sent`` (and evaluations, sample generations); called with
        ``self._lock`` held."""
        if reply:
            start = min(have or 0, self._sent)
            e_start = min(have_evals or 0, self._sent_evals)
            s_start = min(have_samples or 0, self._sent_samples)
            end, e_end, s_end = self._sent, self._sent_evals, self._sent_samples
        else:
            start, e_start, s_start = self._sent, self._sent_evals, self._sent_samples
            end, e_end = len(self.history), len(self.history.evals)
            s_end = len(self.history.samples)
            if end == start and e_end == e_start and s_end == s_start:
                return
        cols = self.history.steps_since(start, end)
        evals = [_eval_row(e) for e in self.history.evals[e_start:e_end]]
        samples = [sample_row(s) for s in self.history.samples_since(s_start, s_end)]
        content = {
            "type": "rows",
            "start": start,
            "n": end - start,
            "cols": [name for name, _ in COLUMNS],
            "evals_start": e_start,
            "evals": evals,
            "samples_start": s_start,
            "samples": samples,
            "reply": reply,
        }
        self.send(content, encode_rows(cols))
        if not reply:
            self._sent, self._sent_evals, self._sent_samples = end, e_end, s_end
            self.updates += 1
            with self.hold_sync():
                self.rows, self.n_evals, self.n_samples = end, e_end, s_end

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            self._handle(content if isinstance(content, dict) else {})
        except Exception:  # never raise into the kernel from a button or a sync
            self.log.warning("labkit panel message failed", exc_info=True)

    def _handle(self, content: dict[str, Any]) -> None:
        if content.get("type") == "sync":
            with self._lock:
                self._send_delta(
                    reply=True,
                    have=int(content.get("have") or 0),
                    have_evals=int(content.get("have_evals") or 0),
                    have_samples=int(content.get("have_samples") or 0),
                )

    def close(self) -> None:
        """Stop streaming and close the widget (its views go blank)."""
        self._closed = True
        self._wake.set()
        self._unsubscribe()
        super().close()


class RunPanel(LossChart):
    """The live panel of a ``Run``: the loss chart plus status, step / total, epoch, samples/s,
    ETA (``MetricHistory.eta``, the value the console bar shows), device (and GPU memory on
    CUDA), last evaluation metrics, a causal LM's sample generations (the latest, and the first
    prompt's answer at each evaluation), checkpoints, the error that ended the run, and Stop /
    Pause-Resume / Save-checkpoint buttons wired to the run.
    """

    status = t.Unicode("pending").tag(sync=True)
    status_label = t.Unicode("pending", help="the badge's words: stopping…").tag(sync=True)
    ended = t.Bool(False, help="the status is one of ENDED_STATUSES: no more steering").tag(
        sync=True
    )
    step = t.Int(0).tag(sync=True)
    total_steps = t.Int(0, help="0 while unknown").tag(sync=True)
    epoch = t.Float(0.0).tag(sync=True)
    samples_per_s = t.Float(0.0).tag(sync=True)
    eta_s = t.Float(-1.0, help="seconds left; -1 while unknown").tag(sync=True)
    device = t.Unicode("").tag(sync=True)
    gpu_memory = t.Unicode("", help="memory in use on the run's GPU; '' off GPU").tag(sync=True)
    loss_parts = t.Dict(
        help="the last step's loss parts (a distillation's soft_loss, hard_loss)"
    ).tag(sync=True)
    metrics = t.Dict(help="last evaluation").tag(sync=True)
    checkpoints = t.List(t.Unicode()).tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    notice = t.Unicode("", help="answer to the last button press").tag(sync=True)
    title = t.Unicode("", help="the run's name (Run.name)").tag(sync=True)
    record_dir = t.Unicode(
        "",
        help="the run's folder when it keeps a record ('' otherwise): in JupyterLab the "
        "buttons reach the run through labkit's server extension, so they answer while a cell "
        "keeps the kernel busy",
    ).tag(sync=True)
    record_id = t.Unicode("", help="the run id of the run's record header (with record_dir)").tag(
        sync=True
    )
    _kind = t.Unicode("panel").tag(sync=True)

    def __init__(
        self,
        run: Any,
        *,
        smoothing: float = 0.6,
        log_scale: bool = False,
        window: int = 0,
        metric: str = "",
        interval: float = 0.1,
    ) -> None:
        self.run = run
        self._gpu_at = 0.0
        self._saves_seen = 0
        self._notice_saves = -1  # saves recorded when "checkpoint requested" was answered
        config = getattr(run, "config", None)
        if not metric:
            chosen = str(getattr(config, "metric", "") or "")
            metric = "" if chosen == "loss" else chosen
        super().__init__(
            run.history,
            smoothing=smoothing,
            log_scale=log_scale,
            window=window,
            metric=metric,
            interval=interval,
        )
        model = getattr(run, "model", None)
        # Run.name says what distinguishes the run (two runs of one model in one notebook)
        self.title = str(getattr(run, "name", "") or getattr(model, "name", "") or "")
        self.device = str(getattr(model, "device", "") or "")
        if getattr(run, "record", None):
            import os

            self.record_dir = os.path.abspath(str(run.output_dir))
            self.record_id = str(getattr(run, "run_id", "") or "")
        with self.hold_sync():
            self._refresh()

    def _ended(self) -> bool:
        return self.history.end is not None and str(self.run.status) in ENDED_STATUSES

    def _tick(self) -> None:
        with self._lock, self.hold_sync():  # the new rows, then one state update
            self._send_delta(reply=False)
            self._refresh()

    def _refresh(self) -> None:
        """Copy the run's state into the traits (only changed values travel)."""
        run, history = self.run, self.history
        status = str(run.status)
        last = history.last_step
        step = int(getattr(run, "step", 0) or (last["step"] if last else 0))
        total = getattr(run, "total_steps", None) or history.total_steps or 0
        ended = status in ENDED_STATUSES
        if status != self.status and self._notice_saves < 0:
            self.notice = ""  # the new status answers the last request ("pausing…" -> "paused")
        n_saves = len(history.saves)
        if self._notice_saves >= 0 and (n_saves > self._notice_saves or ended):
            saved = history.saves[-1] if n_saves > self._notice_saves else None
            self.notice = f"saved checkpoint-{saved.step}" if saved else ""
            self._notice_saves = -1
        self.status, self.ended, self.step, self.total_steps = status, ended, step, int(total)
        self.status_label = status_label(status)
        if last:
            self.epoch = float(last["epoch"] or 0.0)
            self.samples_per_s = float(last["samples_per_s"] or 0.0)
            # a part's missing or non-finite value is recorded as None
            self.loss_parts = {
                k: float(last[k]) for k in history.loss_parts if last.get(k) is not None
            }
        eta = history.eta(int(total)) if status == "running" else None
        self.eta_s = -1.0 if eta is None else eta
        ev = history.last_eval
        metrics = dict(getattr(run, "metrics", None) or (ev.metrics if ev else {}))
        clean = {
            str(k): float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }
        if clean != self.metrics:
            self.metrics = clean
        if n_saves != self._saves_seen or (ended and self._saves_seen >= 0):
            # the run lists its checkpoint folders from disk: read it only when a save happened
            self._saves_seen = n_saves if not ended else -1
            saves = [str(s.path) for s in history.saves]
            paths = [str(p) for p in (getattr(run, "checkpoints", None) or saves)]
            if paths != self.checkpoints:
                self.checkpoints = paths
        error = getattr(run, "error", None) or (history.end.error if history.end else None)
        self.error = str(error) if error and ended else ""
        self._gpu(status)

    def _gpu(self, status: str) -> None:
        """GPU memory in use, read at most once a second, only when the run is on CUDA."""
        if not self.device.startswith("cuda") or time.monotonic() < self._gpu_at:
            return
        self._gpu_at = time.monotonic() + 1.0
        torch = sys.modules.get("torch")  # training on CUDA means torch is loaded
        if torch is None:
            return
        dev = torch.device(self.device)
        used = torch.cuda.memory_allocated(dev) / 2**30
        total = torch.cuda.get_device_properties(dev).total_memory / 2**30
        self.gpu_memory = f"{used:.1f} / {total:.0f} GiB"

    def _handle(self, content: dict[str, Any]) -> None:
        if content.get("type") != "control":
            super()._handle(content)
            return
        answer = self.control(str(content.get("action")))
        with self._lock, self.hold_sync():  # the new status ("stopping…") and the answer, at once
            self._refresh()
            self.notice = answer
        self._wake.set()

    def control(self, action: str) -> str:
        """Press a button: ``"stop"``, ``"pause"``, ``"resume"`` or ``"save"``.

        Never raises; returns (and shows) what happened. A request to a run that has ended is
        answered with a message instead.
        """
        run = self.run
        status = str(run.status)
        if action not in ("stop", "pause", "resume", "save"):
            return f"unknown action {action!r}"
        if status in ENDED_STATUSES:
            return f"the run has already ended ({status}); nothing to {action}"
        if status == "stopping" and action in ("pause", "resume", "save"):
            return f"the run is stopping (its checkpoint is being written); nothing to {action}"
        if action == "save":
            self._notice_saves = len(self.history.saves)
        try:
            getattr(run, action)()
        except Exception as exc:  # noqa: BLE001 - a button must not raise into the kernel
            self._notice_saves = -1
            return f"{action} failed: {type(exc).__name__}: {exc}"
        # the badge answers stop / pause / resume at once (stopping…, pausing…, running); the
        # notice says what happens next, and goes when the status changes again
        return {
            "stop": "saving a checkpoint, then stopping (no evaluation)",
            "pause": "holding at the next step",
            "resume": "",
            "save": "checkpoint requested: saved at the next step boundary",
        }[action]


# one panel per run, so displaying a run again opens another view of the same widget
_PANELS: weakref.WeakKeyDictionary[Any, RunPanel] = weakref.WeakKeyDictionary()


def view_for_run(run: Any) -> RunPanel:
    """The live panel of ``run`` (shared by every display of the same run). A run read from
    its record (``lk.load_run``) keeps reading it while it lasts, so its panel grows."""
    follow = getattr(run, "follow", None)
    if callable(follow) and not run.done:
        follow()
    panel = None
    with contextlib.suppress(TypeError):
        panel = _PANELS.get(run)
    if panel is None or panel.comm is None:
        panel = RunPanel(run)
        with contextlib.suppress(TypeError):  # a run that cannot be weakly referenced
            _PANELS[run] = panel
    return panel
