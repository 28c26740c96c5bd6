"""``GenerationAttributionView``: a generation's explanation, live.

The prompt's tokens are coloured by the row of the answer token under the pointer, or the one
clicked (``selected``; -1, the default, is the whole answer's sequence row); the full
[answer x prompt] matrix is drawn as a heatmap whose rows can be clicked too. Display only: no
computation here. The scores travel as binary float32 buffers, every text as a plain string
that the front end writes with ``textContent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from labkit.ui._base import LabkitWidget, asset

if TYPE_CHECKING:
    from labkit.inspect.attribution.generation_result import GenerationAttribution

__all__ = ["GenerationAttributionView", "view_for_generation_attribution"]


def _float32(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


class GenerationAttributionView(LabkitWidget):
    """Prompt tokens coloured by the selected answer token, the answer, a legend, the matrix.

    Build it with ``GenerationAttributionView.from_result(result)`` (or display the result in
    a notebook). Hovering an answer token previews its row; a click keeps it (``selected``), a
    second click or "whole answer" goes back to the sequence row (-1).
    """

    _esm = asset("generation_attribution.js")
    _css = asset("generation_attribution.css")

    prompt = t.Unicode("", help="the prompt as given").tag(sync=True)
    target = t.Unicode("", help="the explained continuation's text").tag(sync=True)
    method = t.Unicode("", help="the attribution method").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    chat = t.Bool(False, help="the prompt was wrapped in the chat template").tag(sync=True)
    generated = t.Bool(False, help="the target is the model's greedy continuation").tag(sync=True)
    tokens = t.List(t.Unicode(), help="prompt tokens [P] as shown").tag(sync=True)
    spaces = t.List(t.Bool(), help="[P] whitespace before each prompt token").tag(sync=True)
    target_tokens = t.List(t.Unicode(), help="answer tokens [N] as shown").tag(sync=True)
    target_spaces = t.List(t.Bool(), help="[N] whitespace before each answer token").tag(sync=True)
    target_special = t.List(t.Bool(), help="[N] special tokens (end of sequence)").tag(sync=True)
    target_logprobs = t.List(t.Float(), help="[N] log-probability of each answer token").tag(
        sync=True
    )
    logprob = t.Float(0.0, help="log-probability of the whole answer").tag(sync=True)
    scores = t.Bytes(b"", help="[N, P] float32 little-endian, row-major").tag(sync=True)
    sequence_scores = t.Bytes(b"", help="[P] float32 little-endian").tag(sync=True)
    delta = t.List(t.Float(), help="[N] completeness errors (integrated gradients), else []").tag(
        sync=True
    )
    n_steps = t.Int(None, allow_none=True, help="integrated-gradients steps").tag(sync=True)
    scale = t.Float(
        None, allow_none=True, help="|score| drawn at full colour, shared; None: its own"
    ).tag(sync=True)
    selected = t.Int(-1, help="the answer token whose row colours the prompt; -1: all").tag(
        sync=True
    )

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._result: Any = None

    @classmethod
    def from_result(cls, result: GenerationAttribution) -> GenerationAttributionView:
        """The view of a :class:`~labkit.inspect.attribution.generation_result.GenerationAttribution`."""
        from labkit.render.generation_attribution import target_display

        spaces, shown = target_display(result)
        steps = result.options.get("n_steps") if result.method == "integrated_gradients" else None
        view = cls(
            prompt=result.prompt,
            target=result.target,
            method=result.method,
            model_name=result.model_name,
            chat=bool(result.chat),
            generated=bool(result.generated),
            tokens=list(result.pieces or result.tokens),
            spaces=[bool(s) for s in result.spaces] or [True] * len(result.tokens),
            target_tokens=shown,
            target_spaces=spaces,
            target_special=[bool(s) for s in result.target_special]
            or [False] * len(result.target_tokens),
            target_logprobs=[float(x) for x in result.target_logprobs],
            logprob=result.logprob,
            scores=_float32(result.scores),
            sequence_scores=_float32(result.sequence_scores),
            delta=[] if result.delta is None else [float(x) for x in result.delta],
            n_steps=None if steps is None else int(steps),
            scale=result.scale,
        )
        view._result = result
        return view

    @property
    def result(self) -> Any:
        """The result shown."""
        return self._result


def view_for_generation_attribution(result: Any) -> GenerationAttributionView:
    """Factory used by ``labkit.ui.view_for`` for a ``GenerationAttribution``."""
    return GenerationAttributionView.from_result(result)
