"""The live view of ``lk.compare_runs``: every run's loss on one chart, the chosen metric in a
second panel, the final metrics and the configuration fields that differ.

The curves never travel as traits. Each run has a ``version`` (in the ``runs`` trait) that grows
when its curve changes; the kernel sends the changed runs' curves as one custom message
(``{"type": "series", "runs": [{"index", "version", "n", "evals"}...], "reply"}`` with four
float32 buffers a run: ``step``, ``elapsed``, ``loss``, ``smooth``; NaN for a missing value),
each downsampled to at most ``labkit.runs.compare.MAX_POINTS`` points, so an update is bounded
whatever the length of the runs. A view that holds an older version than the trait says (a
message lost before it listened, a page reload) asks ``{"type": "sync", "have": {index:
version}}`` and gets what it lacks. While a run is live the kernel reads the runs about once a
second (``RecordedRun.refresh()``; a live ``Run`` records by itself).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
import weakref
from array import array
from typing import Any

import traitlets as t

from labkit.render.compare import run_color
from labkit.render.run import status_label
from labkit.runs.compare import RunComparison
from labkit.ui._base import LabkitWidget, asset

__all__ = ["CompareView", "view_for_comparison"]

COLUMNS = ("step", "elapsed", "loss", "smooth")  # one float32 buffer each, per run
_NAN = float("nan")


def _f32(values: list[Any]) -> bytes:
    arr = array("f", [_NAN if v is None else float(v) for v in values])
    if sys.byteorder == "big":
        arr.byteswap()
    return arr.tobytes()


class CompareView(LabkitWidget):
    """Live comparison of runs (``CompareView(lk.compare_runs([...]))``): hover read-out,
    a legend that hides and shows runs, log scale and step / time alignment."""

    _esm = asset("compare_view.js")
    _css = asset("compare_view.css")

    runs = t.List(
        t.Dict(), help="per run: label, color, status, status_label, steps, version (read-only)"
    ).tag(sync=True)
    metric = t.Unicode("", help="validation metric of the second panel; '' for none").tag(sync=True)
    metric_names = t.List(t.Unicode(), help="the metrics the runs recorded (read-only)").tag(
        sync=True
    )
    x_axis = t.Unicode("step", help="'step' or 'time' (seconds since each run began)").tag(
        sync=True
    )
    log_scale = t.Bool(False, help="log10 loss axis").tag(sync=True)
    hidden = t.List(t.Int(), help="indices of the runs not drawn").tag(sync=True)
    finals = t.Dict(help="final metrics table: columns, rows (read-only)").tag(sync=True)
    config = t.Dict(help="differing config fields: columns, rows, note (read-only)").tag(sync=True)
    live = t.Bool(False, help="some run is still going (read-only)").tag(sync=True)
    _key = t.Unicode().tag(sync=True)

    def __init__(self, comparison: RunComparison, *, interval: float = 1.0) -> None:
        self._closed = False
        self._wake = threading.Event()
        super().__init__(metric=comparison.metric, x_axis=comparison.x, _key=uuid.uuid4().hex)
        self.comparison = comparison
        self.interval = float(interval)
        self._lock = threading.RLock()
        self._versions: list[int] = [0] * len(comparison.runs)
        self._keys: list[Any] = [None] * len(comparison.runs)
        self._thread: threading.Thread | None = None
        self.updates = 0  # series messages sent (for tests and benchmarks)
        self.on_msg(self._on_msg)
        with self.hold_sync():
            self._update(send=False)
        if self.live:
            self._thread = threading.Thread(target=self._loop, name="labkit-compare", daemon=True)
            self._thread.start()

    @t.validate("x_axis")
    def _check_x(self, proposal: Any) -> str:
        return str(proposal["value"]) if proposal["value"] in ("step", "time") else "step"

    # -- updating ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.comparison.refresh()
                self.flush()
            except Exception:  # a view problem must never reach the runs
                self.log.warning("labkit comparison update failed", exc_info=True)
            if not self.live:
                break
        self._thread = None

    def flush(self) -> None:
        """Send what changed now (the background thread does this every ``interval`` s)."""
        with self._lock, self.hold_sync():
            self._update(send=True)

    def _update(self, *, send: bool) -> None:
        comp = self.comparison
        changed = []
        for i, run in enumerate(comp.runs):
            h = run.history
            key = (id(h), len(h), len(h.evals))
            if key != self._keys[i]:
                self._keys[i] = key
                self._versions[i] += 1
                changed.append(i)
        if changed and send:
            self._send_series(changed, reply=False)
        meta = []
        for i, run in enumerate(comp.runs):
            status = str(run.status)
            meta.append(
                {
                    "label": comp.labels[i],
                    "color": run_color(i),
                    "status": status,
                    "status_label": status_label(status),
                    "steps": len(run.history),
                    "version": self._versions[i],
                }
            )
        if meta != self.runs:
            self.runs = meta
        names = [n for n in comp.metric_names() if n != "loss"]
        if comp.metric and comp.metric not in names:
            names.append(comp.metric)
        if names != self.metric_names:
            self.metric_names = names
        finals = comp.finals()
        table = {"columns": finals.columns, "rows": finals.rows}
        if table != self.finals:
            self.finals = table
        diff = comp.config_diff()
        config = {"columns": diff.columns, "rows": diff.rows, "note": diff.note}
        if config != self.config:
            self.config = config
        self.live = comp.live

    def _send_series(self, indices: list[int], *, reply: bool) -> None:
        entries, buffers = [], []
        for i in indices:
            curve = self.comparison.curve(i)
            entries.append(
                {
                    "index": i,
                    "version": self._versions[i],
                    "n": len(curve.step),
                    "evals": [[s, at, m] for s, at, m in curve.evals],
                }
            )
            buffers += [
                _f32(curve.step),
                _f32(curve.elapsed),
                _f32(curve.loss),
                _f32(curve.smooth),
            ]
        self.send({"type": "series", "runs": entries, "reply": reply}, buffers)
        if not reply:
            self.updates += 1

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            if isinstance(content, dict) and content.get("type") == "sync":
                have = content.get("have") or {}
                with self._lock:
                    want = [
                        i
                        for i in range(len(self.comparison.runs))
                        if int(have.get(str(i), -1)) != self._versions[i]
                    ]
                    self._send_series(want, reply=True)
        except Exception:  # never raise into the kernel from a view's request
            self.log.warning("labkit comparison message failed", exc_info=True)

    def close(self) -> None:
        """Stop following the runs and close the widget."""
        self._closed = True
        self._wake.set()
        super().close()


_VIEWS: weakref.WeakKeyDictionary[Any, CompareView] = weakref.WeakKeyDictionary()


def view_for_comparison(comparison: RunComparison) -> CompareView:
    """The live view of ``comparison`` (shared by every display of it)."""
    view = None
    with contextlib.suppress(TypeError):
        view = _VIEWS.get(comparison)
    if view is None or view.comm is None:
        view = CompareView(comparison)
        with contextlib.suppress(TypeError):
            _VIEWS[comparison] = view
    return view
