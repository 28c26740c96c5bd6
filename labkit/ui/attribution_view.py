"""``AttributionView``: an explanation's tokens coloured on a diverging scale, live.

The view holds traits only. Choosing another target label or method in the front end sets the
``target``/``method`` traits; the kernel side then asks the core (``labkit.explain``) for a new
:class:`~labkit.AttributionResult` and copies it into the traits. Scores travel as one binary
float32 buffer; tokens are plain strings that the front end writes with ``textContent``.
"""

from __future__ import annotations

import sys
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
    faithfulness = t.Bool(False, help="compute AOPC on recompute").tag(sync=True)
    interactive = t.Bool(False, help="whether target/method can be recomputed").tag(sync=True)
    busy = t.Bool(False, help="a recompute is running").tag(sync=True)
    error = t.Unicode("", help="why the last recompute failed").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._result: Any = None
        self._applying = False

    @classmethod
    def from_result(cls, result: Any) -> AttributionView:
        """The view of an :class:`~labkit.AttributionResult` (interactive when it has a model)."""
        from labkit.inspect.attribution.api import METHODS

        view = cls(methods=list(METHODS))
        view._apply(result)
        return view

    def _apply(self, result: Any) -> None:
        self._result = result
        self._applying = True
        try:
            with self.hold_sync():
                self.text = result.text
                self.tokens = list(result.tokens)
                self.special = [bool(x) for x in result.special] or [False] * len(result.tokens)
                self.spaces = [bool(x) for x in result.spaces] or [True] * len(result.tokens)
                self.scores = _float32(result.scores)
                self.labels = list(result.probs)
                self.probs = [float(p) for p in result.probs.values()]
                self.target = result.target
                self.method = result.method
                self.delta = result.delta
                steps = (
                    result.options.get("n_steps")
                    if result.method == "integrated_gradients"
                    else None
                )
                self.n_steps = None if steps is None else int(steps)
                self.comprehensiveness = result.comprehensiveness
                self.sufficiency = result.sufficiency
                self.faithfulness = result.comprehensiveness is not None
                self.interactive = result.model is not None
                self.error = ""
                self.busy = False
        finally:
            self._applying = False

    @t.observe("target", "method", "faithfulness")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self._applying or self._result is None or self._result.model is None:
            return
        from labkit._errors import LabkitError
        from labkit.inspect.attribution.api import explain, method_options

        old = self._result
        try:
            keep = method_options(self.method)
            options = {
                k: v
                for k, v in old.options.items()
                if k in keep and k in ("baseline", "output", "memory_budget", "embeddings")
            }
            result = explain(
                old.model,
                old.text,
                target=self.target,
                method=self.method,
                faithfulness=self.faithfulness,
                **options,
            )
        except LabkitError as exc:
            self._applying = True
            try:
                with self.hold_sync():
                    self.error = str(exc)
                    self.busy = False
                    # back to what is shown, so the pickers never claim an unexplained choice
                    self.target, self.method = old.target, old.method
            finally:
                self._applying = False
            return
        self._apply(result)

    @property
    def result(self) -> Any:
        """The :class:`~labkit.AttributionResult` shown now."""
        return self._result


def view_for_attribution(result: Any) -> AttributionView:
    """Factory used by ``labkit.ui.view_for`` for an ``AttributionResult``."""
    return AttributionView.from_result(result)
