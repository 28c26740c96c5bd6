"""``GenerationStream``: one prompt's generation on a background thread, readable as it grows.

A notebook cell that blocks also blocks widget messages, so a streamed generation runs on a
thread of its own and :func:`stream` returns at once: a Stop button (or ``stream.stop()`` from
any thread) then reaches it between two tokens. Everything a caller can get wrong is checked
before the thread starts (:func:`labkit.lm.generate.prepare`), so bad settings raise at the
call, and a prompt cut to fit the context warns there. A failure on the thread is kept
(``status == "failed"``, ``error``) and raised by :meth:`GenerationStream.wait`; it never
vanishes with the thread.

Readers: ``text`` (so far), ``n_tokens``, ``tokens_per_s``, ``status``, :meth:`subscribe`
(each new piece of text, on the generation thread: the live view and ``labkit generate`` use
it) and :meth:`on_end`. In a notebook the stream shows as a live view whose saved output is
the final text (``labkit.ui.generation_view``); in a terminal ``str`` / ``repr`` give the text
so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from labkit._errors import ConfigError, GenerationError, TrainingError
from labkit.lm.generate import (
    GENERATE_SETTINGS,
    Generation,
    Prepared,
    check_prompt,
    prepare,
    run_prepared,
)

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["STREAM_STATUSES", "GenerationStream", "stream"]

StreamStatus = Literal["running", "done", "stopped", "failed"]
# running until the end; then done (eos, length or a stop string), stopped (stop()) or failed
STREAM_STATUSES: tuple[StreamStatus, ...] = ("running", "done", "stopped", "failed")

Listener = Callable[[str], None]
EndListener = Callable[["GenerationStream"], None]


class GenerationStream:
    """A generation running on its own thread. Created by :func:`stream` (``Model.stream``).

    ``stop()`` ends it after the token being made (it returns at once); ``wait()`` blocks until
    the end and re-raises the error of a failed generation; ``generation`` is the final
    :class:`~labkit.lm.Generation` (finish reason ``cancelled`` after a stop).
    """

    def __init__(self, model: Model, plan: Prepared) -> None:
        self._model = model
        self._plan = plan
        self.prompt = plan.prompts[0]
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._listeners: list[Listener] = []
        self._end_listeners: list[EndListener] = []
        self._text = ""
        self._n_tokens = 0
        self._status: StreamStatus = "running"
        self._generation: Generation | None = None
        self._exc: BaseException | None = None
        self._error: str | None = None
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        from labkit._utils.threads import release_idle_pool

        # the caller's idle OpenMP workers would slow the generation thread's ops down
        release_idle_pool()
        self._started = time.perf_counter()
        self._thread = threading.Thread(
            target=self._main, name=f"labkit-generate-{id(self):x}", daemon=True
        )
        self._thread.start()

    # -- steering (any thread) ------------------------------------------------------------------
    def stop(self) -> None:
        """End the generation after the token being made; returns at once, never raises.
        ``status`` says ``stopped`` once it has ended (``done`` if it ended on its own first)."""
        self._cancel.set()

    @property
    def stop_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> GenerationStream:
        """Block until the generation ends (or ``timeout`` seconds pass); re-raises the error of
        a failed generation."""
        self._done.wait(timeout)
        if self._done.is_set() and self._exc is not None:
            raise self._exc
        return self

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(piece)`` with each new piece of text, in order, on the generation thread;
        the pieces join to :attr:`text`. Returns the function that unsubscribes. An exception
        in ``fn`` ends the generation as ``failed`` with that error."""
        with self._lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return unsubscribe

    def on_end(self, fn: EndListener) -> Callable[[], None]:
        """Call ``fn(stream)`` once when the generation ends (at once if it has ended), on the
        thread that ends it. Returns the function that unsubscribes."""
        with self._lock:
            ended = self._done.is_set()
            if not ended:
                self._end_listeners.append(fn)
        if ended:
            fn(self)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._end_listeners:
                    self._end_listeners.remove(fn)

        return unsubscribe

    # -- facts ----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def status(self) -> StreamStatus:
        """``running``, then ``done`` (ended on its own: eos, max_new_tokens or a stop string),
        ``stopped`` (by :meth:`stop`) or ``failed`` (see :attr:`error`)."""
        return self._status

    @property
    def error(self) -> str | None:
        """Why the generation failed (``Type: message``); None unless ``status == "failed"``."""
        return self._error

    @property
    def text(self) -> str:
        """The generated text so far (the final text once done)."""
        return self._text

    @property
    def n_tokens(self) -> int:
        """Tokens generated so far."""
        return self._n_tokens

    @property
    def elapsed(self) -> float:
        """Seconds since the generation started (until its end once done)."""
        return (self._ended or time.perf_counter()) - self._started

    @property
    def tokens_per_s(self) -> float:
        """Tokens generated per second so far (the prompt's processing included)."""
        elapsed = self.elapsed
        return self._n_tokens / elapsed if elapsed > 0 and self._n_tokens else 0.0

    @property
    def max_new_tokens(self) -> int:
        return self._plan.max_new_tokens

    @property
    def finish_reason(self) -> str | None:
        """The final generation's finish reason (eos, length, stop, cancelled); None before."""
        return self._generation.finish_reason if self._generation is not None else None

    @property
    def generation(self) -> Generation:
        """The final :class:`~labkit.lm.Generation` (tokens, log-probabilities, finish reason).

        Raises ``GenerationError`` while the generation runs (call :meth:`wait` first) and when it
        failed (the cause attached).
        """
        if self._generation is not None:
            return self._generation
        if not self.done:
            raise GenerationError(
                f"the generation is still running ({self._n_tokens} tokens so far); call "
                "stream.wait() first, or stream.stop() and then stream.wait()."
            )
        raise GenerationError(
            f"the generation failed, so it has no result: {self._error}"
        ) from self._exc

    # -- the generation thread ------------------------------------------------------------------
    def _on_token(self, row: int, piece: str) -> None:
        with self._lock:
            self._n_tokens += 1
            if piece:
                self._text += piece
            listeners = list(self._listeners) if piece else []
        for fn in listeners:
            fn(piece)

    def _main(self) -> None:
        status: StreamStatus = "failed"
        try:
            # held for the whole generation: an inspection that hooks the model's layers
            # (explain, attention) or swaps its weights waits instead of catching this
            # thread's forward passes in its hooks
            with self._model.weights_held():
                (gen,) = run_prepared(
                    self._model, self._plan, on_token=self._on_token, cancel=self._cancel
                )
            with self._lock:
                self._generation = gen
                self._text = gen.text  # the decoder's final word (the pieces join to it)
                self._n_tokens = len(gen.token_ids)
            status = "stopped" if gen.finish_reason == "cancelled" else "done"
        except BaseException as exc:  # noqa: BLE001 - a failure is kept, never lost with the thread
            self._exc = exc
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._ended = time.perf_counter()
                self._status = status
                self._done.set()
                listeners, self._end_listeners = self._end_listeners, []
            for fn in listeners:
                try:
                    fn(self)
                except Exception as exc:  # noqa: BLE001 - a failing listener must not hide the end
                    if self._exc is None:
                        self._exc = exc
                        self._error = f"{type(exc).__name__}: {exc}"

    # -- display --------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        facts = f"{self._status}, {self._n_tokens} tokens"
        if self.finish_reason:
            facts += f", {self.finish_reason}"
        if self._error:
            facts += f", {self._error}"
        return f"{self._text}\n[{facts}]" if self._text else f"[{facts}]"

    def _repr_html_(self) -> str:
        from labkit.render.generation import stream_html

        return stream_html(self)

    def _ipython_display_(self) -> None:
        from labkit.render.display import ipython_display

        ipython_display(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def stream(model: Model, prompt: str, **settings: Any) -> GenerationStream:
    """What :meth:`labkit.Model.stream` does: check ``settings`` (``Model.generate``'s) and the
    prompt, then start generating on a background thread; returns the stream at once."""
    model.require_task("causal-lm", "stream")
    unknown = sorted(set(settings) - set(GENERATE_SETTINGS))
    if unknown:
        hint = (
            " (a stream has its own: stream.subscribe(fn) for the pieces, stream.stop())"
            if {"on_token", "cancel"} & set(unknown)
            else ""
        )
        raise ConfigError(
            f"stream() got unknown setting(s) {', '.join(unknown)}{hint}; the settings are "
            f"{', '.join(GENERATE_SETTINGS)}."
        )
    if model.is_training:
        raise TrainingError(
            f"a run is training {model.name!r}: a generation now would switch it to eval mode "
            "under the run. Wait for the run (run.wait()) or stop it (run.stop()) first."
        )
    # stacklevel: warnings.warn <- _fit_context <- prepare <- stream <- Model.stream <- caller
    plan = prepare(model, [check_prompt(prompt)], stacklevel=5, **settings)
    s = GenerationStream(model, plan)
    s._start()
    return s
