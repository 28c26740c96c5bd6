"""``GenerationView``: a :class:`~labkit.lm.GenerationStream` live, with a Stop button.

Deltas, not the whole text: the text never travels as a trait. A background thread sends what
is new as ``{"type": "text", "start": s, "text": t}`` ("from offset ``s`` the text is ``t``"),
at most once every ``interval`` seconds however fast tokens come, together with the facts as
traits (``length`` the characters sent so far, ``n_tokens``, ``tokens_per_s``, ``status``). A
view keeps what it holds up to ``start`` and writes ``t`` after it, so a message seen twice
changes nothing and a correction of the end (the decoder's final word) replaces it; when it
sees a gap (``start`` beyond what it holds, or ``length`` ahead of it: a message lost before
its listener existed, a page reload) it asks ``{"type": "sync", "have": n}`` and is answered
with the text from ``n`` (``"reply": true``).

From the view: ``sync`` and ``{"type": "control", "action": "stop"}``, which calls
``stream.stop()`` (it sets an event and returns: the kernel never waits on the generation).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
import weakref
from typing import Any

import traitlets as t

from labkit.render.generation import FINISH_WORDS
from labkit.ui._base import LabkitWidget, asset

__all__ = ["GenerationView", "view_for_stream"]


def _common_prefix(a: str, b: str) -> int:
    """Characters ``a`` and ``b`` share from their start."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class GenerationView(LabkitWidget):
    """The prompt (muted), the text growing as it is generated (a caret while it runs), the
    status, tokens so far, tokens/s, and at the end the finish reason; Stop ends the stream.

    ``GenerationView(stream)`` follows the stream until it ends (or display the stream
    itself in a notebook).
    """

    _esm = asset("generation_view.js")
    _css = asset("generation_view.css")

    prompt = t.Unicode("", help="the prompt as given").tag(sync=True)
    length = t.Int(0, help="characters of generated text sent so far (read-only)").tag(sync=True)
    status = t.Unicode("running", help="running, done, stopped or failed").tag(sync=True)
    stop_requested = t.Bool(False, help="Stop was pressed; the stream ends after a token").tag(
        sync=True
    )
    n_tokens = t.Int(0, help="tokens generated so far").tag(sync=True)
    max_new_tokens = t.Int(0).tag(sync=True)
    tokens_per_s = t.Float(0.0).tag(sync=True)
    finish_reason = t.Unicode("", help="eos, length, stop or cancelled; '' while running").tag(
        sync=True
    )
    finish_label = t.Unicode("", help="the finish reason in words").tag(sync=True)
    error = t.Unicode("", help="why the generation failed").tag(sync=True)
    _key = t.Unicode().tag(sync=True)

    def __init__(self, stream: Any, *, interval: float = 0.05) -> None:
        super().__init__(
            prompt=str(stream.prompt),
            max_new_tokens=int(stream.max_new_tokens),
            _key=uuid.uuid4().hex,
        )
        self.stream = stream
        self.interval = float(interval)
        self._lock = threading.RLock()
        self._sent = ""  # the text the views have been told about (sync replies stop here)
        self._wake = threading.Event()
        self._closed = False
        self.updates = 0  # text messages sent (for tests and benchmarks)
        self.on_msg(self._on_msg)
        self._unsubscribe = stream.subscribe(self._on_piece)
        self._unsubscribe_end = stream.on_end(lambda _s: self._wake.set())
        with self._lock, self.hold_sync():
            self._tick()
        self._thread: threading.Thread | None = None
        if not stream.done:
            self._thread = threading.Thread(
                target=self._loop, name="labkit-generation-view", daemon=True
            )
            self._thread.start()

    # -- streaming -----------------------------------------------------------------------------
    def _on_piece(self, piece: str) -> None:
        self._wake.set()  # on the generation thread: nothing more, a token costs the same

    def _loop(self) -> None:
        while not self._closed:
            # a new piece, Stop, the end or close; a second at most, for tokens/s
            self._wake.wait(1.0)
            self._wake.clear()
            ended = self.stream.done
            try:
                with self._lock, self.hold_sync():
                    self._tick()
            except Exception:  # a view problem must never reach the generation
                self.log.warning("labkit generation view update failed", exc_info=True)
            if ended:
                break
            time.sleep(self.interval)  # at most one update per interval however fast tokens come
        self._thread = None

    def flush(self) -> None:
        """Send what is new now (the background thread does this every ``interval`` s)."""
        with self._lock, self.hold_sync():
            self._tick()

    def _tick(self) -> None:
        """One update: the new text as one message, then the facts (lock held)."""
        s = self.stream
        done = s.done  # read first: the text read after it is then the final one
        text = s.text
        if text != self._sent:
            start = (
                len(self._sent) if text.startswith(self._sent) else _common_prefix(text, self._sent)
            )
            self.send({"type": "text", "start": start, "text": text[start:], "reply": False})
            self._sent = text
            self.updates += 1
        self.length = len(self._sent)
        self.n_tokens = int(s.n_tokens)
        self.tokens_per_s = float(s.tokens_per_s)
        self.stop_requested = bool(s.stop_requested)
        if done:
            reason = str(s.finish_reason or "")
            self.finish_reason, self.finish_label = reason, FINISH_WORDS.get(reason, reason)
            self.error = str(s.error or "")
        # "running" until the end is read above, so the end's facts come with its status
        self.status = str(s.status) if done else "running"

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            self._handle(content if isinstance(content, dict) else {})
        except Exception:  # never raise into the kernel from a button or a sync
            self.log.warning("labkit generation view message failed", exc_info=True)

    def _handle(self, content: dict[str, Any]) -> None:
        kind = content.get("type")
        if kind == "sync":
            with self._lock:
                have = min(max(0, int(content.get("have") or 0)), len(self._sent))
                self.send({"type": "text", "start": have, "text": self._sent[have:], "reply": True})
        elif kind == "control" and content.get("action") == "stop":
            self.stop()

    def stop(self) -> None:
        """Press Stop: the stream ends after the token being made; returns at once."""
        self.stream.stop()
        with self._lock:
            self.stop_requested = True
        self._wake.set()

    def close(self) -> None:
        """Stop following the stream and close the widget (its views go blank)."""
        self._closed = True
        self._wake.set()
        self._unsubscribe()
        self._unsubscribe_end()
        super().close()


# one view per stream, so displaying a stream again opens another view of the same widget
_VIEWS: weakref.WeakKeyDictionary[Any, GenerationView] = weakref.WeakKeyDictionary()


def view_for_stream(stream: Any) -> GenerationView:
    """The live view of ``stream`` (shared by every display of the same stream)."""
    view = None
    with contextlib.suppress(TypeError):
        view = _VIEWS.get(stream)
    if view is None or view.comm is None:
        view = GenerationView(stream)
        with contextlib.suppress(TypeError):
            _VIEWS[stream] = view
    return view
