"""``AttributionView``: an explanation's tokens coloured on a diverging scale, live.

The view holds traits only. Choosing another target label or method in the front end sets the
``target``/``method`` traits; the view then asks the core (``labkit.explain``) for a new
:class:`~labkit.AttributionResult` on a worker thread of its own (the trait change returns at
once, so a training panel's Stop is never held behind an explanation), shows ``busy`` meanwhile,
and copies the newest result into the traits; a result of an older request is dropped. Scores
travel as one binary float32 buffer; tokens are plain strings that the front end writes with
``textContent``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from array import array
from typing import Any

import traitlets as t

from labkit.ui._base import LabkitWidget, asset

__all__ = ["AttributionView", "view_for_attribution"]


def _float32(values: Any) -> bytes:
    arr = array("f", [float(v) for v in values])
    if sys.byteorder == "big":
        arr.byteswap()
    return arr.tobytes()


class AttributionView(LabkitWidget):
    """Coloured tokens with a legend, hover values, target/method pickers, delta and AOPC.

    Build it with ``AttributionView.from_result(result)`` (or display the result itself in a
    notebook). ``faithfulness = True`` recomputes with AOPC comprehensiveness and sufficiency.
    A recompute runs on the view's own worker thread: ``busy`` is true meanwhile, ``error`` says
    why one failed, and :meth:`wait` blocks until the newest has been shown.
    """

    _esm = asset("attribution_view.js")
    _css = asset("attribution_view.css")

    text = t.Unicode("", help="the explained text").tag(sync=True)
    tokens = t.List(t.Unicode(), help="tokens [T] as the model saw them").tag(sync=True)
    special = t.List(t.Bool(), help="[T] whether a token is special ([CLS], <s>, ...)").tag(
        sync=True
    )
    spaces = t.List(t.Bool(), help="[T] whether whitespace precedes a token").tag(sync=True)
    scores = t.Bytes(b"", help="[T] float32 little-endian scores").tag(sync=True)
    target = t.Unicode("", help="the explained label; set it to explain another").tag(sync=True)
    labels = t.List(t.Unicode(), help="the model's labels").tag(sync=True)
    probs = t.List(t.Float(), help="probability of each label, in labels order").tag(sync=True)
    method = t.Unicode("", help="attribution method; set it to recompute").tag(sync=True)
    methods = t.List(t.Unicode(), help="methods the picker offers").tag(sync=True)
    delta = t.Float(None, allow_none=True, help="completeness error, if any").tag(sync=True)
    n_steps = t.Int(None, allow_none=True, help="integrated-gradients steps used").tag(sync=True)
    comprehensiveness = t.Float(None, allow_none=True).tag(sync=True)
    sufficiency = t.Float(None, allow_none=True).tag(sync=True)
    scale = t.Float(
        None,
        allow_none=True,
        help="|score| drawn at full colour, shared with other results; None: its own largest",
    ).tag(sync=True)
    faithfulness = t.Bool(False, help="compute AOPC on recompute").tag(sync=True)
    interactive = t.Bool(False, help="whether target/method can be recomputed").tag(sync=True)
    busy = t.Bool(False, help="a recompute is running").tag(sync=True)
    error = t.Unicode("", help="why the last recompute failed").tag(sync=True)

    def __init__(self, *, lock: contextlib.AbstractContextManager[Any] | None = None, **kw: Any):
        super().__init__(**kw)
        self._result: Any = None
        # the thread copying a result into the traits: its own trait changes are not requests
        self._applying: int | None = None
        self._lock = lock  # held around each recompute (the App's, so its work never overlaps)
        self._requests = threading.RLock()
        self._pending: dict[str, Any] | None = None  # the newest request not started yet
        self._worker: threading.Thread | None = None

    @classmethod
    def from_result(
        cls, result: Any, *, lock: contextlib.AbstractContextManager[Any] | None = None
    ) -> AttributionView:
        """The view of an :class:`~labkit.AttributionResult` (interactive when it has a model).

        ``lock``, when given, is held around each recompute: the App passes the lock its own
        work on the model takes, so the two never run on the model at once.
        """
        from labkit.inspect.attribution.api import METHODS

        view = cls(methods=list(METHODS), lock=lock)
        view._apply(result)
        return view

    @contextlib.contextmanager
    def _copying(self) -> Any:
        """While open, trait changes made by this thread are the view's own, not requests."""
        self._applying = threading.get_ident()
        try:
            with self.hold_sync():
                yield
        finally:
            self._applying = None

    def _apply(self, result: Any) -> None:
        self._result = result
        with self._copying():
            self.text = result.text
            self.tokens = list(result.tokens)
            self.special = [bool(x) for x in result.special] or [False] * len(result.tokens)
            self.spaces = [bool(x) for x in result.spaces] or [True] * len(result.tokens)
            self.scores = _float32(result.scores)
            self.scale = result.scale
            self.labels = list(result.probs)
            self.probs = [float(p) for p in result.probs.values()]
            self.target = result.target
            self.method = result.method
            self.delta = result.delta
            steps = (
                result.options.get("n_steps") if result.method == "integrated_gradients" else None
            )
            self.n_steps = None if steps is None else int(steps)
            self.comprehensiveness = result.comprehensiveness
            self.sufficiency = result.sufficiency
            self.faithfulness = result.comprehensiveness is not None
            self.interactive = result.model is not None
            self.error = ""
            self.busy = False

    @t.observe("target", "method", "faithfulness")
    def _recompute(self, change: dict[str, Any]) -> None:
        """A new target, method or AOPC request: queued for the worker; returns at once."""
        if self._applying == threading.get_ident() or self._result is None:
            return
        if self._result.model is None:
            return
        request: dict[str, Any] = {
            "target": self.target,
            "method": self.method,
            "faithfulness": self.faithfulness,
        }
        request[change["name"]] = change["new"]  # the asked value, even if a copy overwrote it
        with self._requests:  # the worker sets these traits under the same lock
            self._pending = request
            start = self._worker is None
            if start:
                self._worker = threading.Thread(
                    target=self._drain, name="labkit-explain-view", daemon=True
                )
            with self.hold_sync():
                self.error, self.busy = "", True
        if start:
            from labkit._utils.threads import release_idle_pool

            release_idle_pool()  # this thread's idle OpenMP workers would slow the worker's ops
            assert self._worker is not None
            self._worker.start()

    def _drain(self) -> None:
        """The worker: compute the newest request until none is left; drop stale results."""
        try:
            while self._next():
                pass
        except BaseException as exc:
            with self._requests:  # a broken copy must not leave later requests unanswered
                self._worker = None
                with self.hold_sync():
                    self.error, self.busy = f"Unexpected {type(exc).__name__}: {exc}", False
            raise

    def _next(self) -> bool:
        """Compute the newest request and show it unless a newer one came meanwhile; False
        (and the worker is done) when there is none."""
        from labkit._errors import LabkitError

        with self._requests:
            request, self._pending = self._pending, None
            if request is None:
                self._worker = None
                return False
        result, error = None, ""
        try:
            with self._lock if self._lock is not None else contextlib.nullcontext():
                result = self._explain(self._result, **request)
        except LabkitError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the view, the kernel survives
            error = f"Unexpected {type(exc).__name__}: {exc}"
        with self._requests:
            if self._pending is None:  # else a newer request waits: this answer is stale
                if result is not None:
                    self._apply(result)
                else:
                    self._fail(error)
        return True

    @staticmethod
    def _explain(old: Any, *, target: str, method: str, faithfulness: bool) -> Any:
        from labkit.inspect.attribution.api import explain, method_options

        keep = method_options(method)
        options = {
            k: v
            for k, v in old.options.items()
            if k in keep and k in ("baseline", "output", "memory_budget", "embeddings")
        }
        return explain(
            old.model, old.text, target=target, method=method, faithfulness=faithfulness, **options
        )

    def _fail(self, error: str) -> None:
        """Show why the recompute failed; the pickers go back to what is shown, so they never
        claim an unexplained choice."""
        old = self._result
        with self._copying():
            self.error = error
            self.busy = False
            self.target, self.method = old.target, old.method
            self.faithfulness = old.comprehensiveness is not None

    def wait(self, timeout: float | None = None) -> AttributionView:
        """Block until every recompute asked for so far has been shown (scripts and tests)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self

    @property
    def result(self) -> Any:
        """The :class:`~labkit.AttributionResult` shown now."""
        return self._result


def view_for_attribution(result: Any) -> AttributionView:
    """Factory used by ``labkit.ui.view_for`` for an ``AttributionResult``."""
    return AttributionView.from_result(result)
