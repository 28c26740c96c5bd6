"""Sample generations while a causal LM trains: the same few prompts answered at each evaluation.

``SampleGenerations`` is a ``transformers.TrainerCallback``. Placed after labkit's ``Bridge`` (which
emits ``EvalEnd``), it continues its prompts greedily with the model being trained right after
each evaluation and emits a :class:`labkit.events.Samples`; the run records it in
``run.history.samples``, the live panel and the static snapshot show it. Watching the answers
change is what a loss curve alone cannot show.

It never ends a run: a generation that raises is logged (the ``labkit`` logger) and training
goes on. It does nothing once a stop was requested (the user asked to stop, not to wait), and a
stop pressed while it generates cuts the generation short (nothing is emitted then).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from labkit._errors import InputError
from labkit.events import Control, Event, Samples

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["SampleGenerations", "default_sample_prompts"]

_log = logging.getLogger("labkit")
# the first words of a text make a language-modelling sample prompt
PROMPT_WORDS = 8


class _StopFlag:
    """``Control.stop_requested`` as the ``is_set()`` that generation's ``cancel`` polls at
    each token."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def is_set(self) -> bool:
        return self._control.stop_requested


class SampleGenerations(TrainerCallback):
    """At each evaluation, continue ``prompts`` greedily with ``model`` and ``emit`` a
    :class:`~labkit.events.Samples` for the evaluation's step.

    ``model`` is the labkit ``Model`` whose ``hf`` the trainer trains (with LoRA, the adapter is
    active in what it generates); ``max_new_tokens`` bounds each answer (tokens) and ``chat``
    is :meth:`labkit.Model.generate`'s (``"auto"``: the chat template when the tokenizer has
    one). ``control``, the run's :class:`~labkit.events.Control`, tells it when a stop was
    requested. Settings are checked here, so a bad value fails before training starts. Only the
    main process generates (one set of samples per evaluation, whatever the number of ranks).
    """

    def __init__(
        self,
        model: Model,
        prompts: Sequence[str],
        emit: Callable[[Event], None],
        *,
        max_new_tokens: int = 32,
        chat: bool | str = "auto",
        control: Control | None = None,
    ) -> None:
        from labkit.lm.generate import check_generate_args

        model.require_task("causal-lm", "sample generations")
        if isinstance(prompts, str):
            raise InputError(
                f"prompts must be a list of strings, got one string ({prompts!r:.60}); "
                "wrap it in a list."
            )
        items = list(prompts)
        for i, p in enumerate(items):
            if not isinstance(p, str) or not p.strip():
                raise InputError(
                    f"prompts[{i}] is {p!r:.60}: each sample prompt must be a non-empty string."
                )
        check_generate_args(
            model, max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0, chat=chat, stop=None
        )
        self.model = model
        self.prompts: tuple[str, ...] = tuple(items)
        self.emit = emit
        self.max_new_tokens = max_new_tokens
        self.chat = chat
        self.control = control
        self.failures = 0  # generations that raised (each one logged)

    def _stopping(self) -> bool:
        return self.control is not None and self.control.stop_requested

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.prompts or self._stopping() or not state.is_world_process_zero:
            return
        texts = self.generate()
        if texts is not None and not self._stopping():
            self.emit(
                Samples(
                    step=int(state.global_step), prompts=self.prompts, texts=texts, time=time.time()
                )
            )

    def generate(self) -> tuple[str, ...] | None:
        """The greedy answers to the prompts now; None when generation failed (logged) or a stop
        cut it short."""
        cancel = _StopFlag(self.control) if self.control is not None else None
        try:
            # greedy, in inference mode; Model.generate puts the model in eval mode and back
            # into the mode it found it in (the trainer sets train mode at each step anyway)
            out = self.model.generate(
                list(self.prompts),
                max_new_tokens=self.max_new_tokens,
                temperature=0.0,
                chat=self.chat,
                cancel=cancel,
            )
        except Exception:  # noqa: BLE001 - samples are an aid: they must never end a run
            self.failures += 1
            _log.warning(
                "the sample generations failed; training goes on without them this time",
                exc_info=True,
            )
            return None
        if any(g.finish_reason == "cancelled" for g in out):
            return None
        return tuple(g.text for g in out)


def default_sample_prompts(data: Any, n: int = 3) -> list[str]:
    """The first ``n`` validation prompts of causal-LM ``data`` (a ``labkit.lm.data.LMData``):
    its ``prompt`` column for instruction data, else the first words of its ``text`` column.

    Empty and repeated entries are passed over; the train split stands in when there is no
    validation split. Returns fewer than ``n`` (or none) when the data has fewer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"n must be a whole number >= 0, got {n!r}.")
    split = _split(data, "validation")
    if split is None or len(split) == 0:
        split = _split(data, "train")
    if n == 0 or split is None:
        return []
    instruction = getattr(data, "kind", "text") == "instruction"
    column = "prompt" if instruction else "text"
    if column not in split.column_names:
        raise InputError(
            f"the data has no {column!r} column (its columns are {', '.join(split.column_names)}); "
            "pass sample prompts yourself."
        )
    out: list[str] = []
    # a few rows at a time: a large validation split is not read whole for three prompts
    for start in range(0, len(split), 64):
        for value in split[start : start + 64][column]:
            text = str(value or "").strip()
            if not instruction:
                text = " ".join(text.split()[:PROMPT_WORDS])
            if text and text not in out:
                out.append(text)
                if len(out) == n:
                    return out
    return out


def _split(data: Any, name: str) -> Any:
    try:
        return getattr(data, name, None)
    except KeyError:  # a DatasetDict-backed split that is not there
        return None
