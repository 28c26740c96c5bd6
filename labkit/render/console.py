"""A console progress bar for runs without a notebook front end (terminal, scripts, ``labkit train``).

It reads the run's ``MetricHistory`` events (record, then render) and writes to a text stream,
standard error by default. On a terminal the bar redraws in place at most a few times a second;
into a file or a pipe it writes a line about every tenth of the run, so logs stay short.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

from labkit.events import EvalEnd, Event, Saved, StepEnd, TrainEnd

__all__ = ["ConsoleProgress", "wanted"]

_WIDTH = 24


def wanted() -> bool:
    """A console bar is wanted when no Jupyter kernel (and so no live panel) is attached."""
    return "ipykernel" not in sys.modules


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ConsoleProgress:
    """Renders step/eval/save/end events as a progress bar on ``stream``."""

    def __init__(self, stream: TextIO | None = None, *, min_interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self._last_draw = 0.0
        self._last_decile = -1
        self._start: float | None = None
        self._first_step: int | None = None
        self._open_line = False

    def __call__(self, event: Event) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed stream must not break training
            self._render(event)

    def _line(self, text: str) -> None:
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _render(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, StepEnd):
            if self._start is None:
                self._start, self._first_step = now, event.step - 1
            total = event.total_steps or 0
            frac = event.step / total if total else 0.0
            done = int(_WIDTH * min(frac, 1.0))
            bar = "#" * done + "." * (_WIDTH - done)
            steps_here = event.step - (self._first_step or 0)
            eta = ""
            if total and steps_here > 0:
                per_step = (now - self._start) / steps_here
                eta = f" eta {_clock(per_step * (total - event.step))}"
            speed = f" {event.samples_per_s:.1f} samples/s" if event.samples_per_s else ""
            text = (
                f"step {event.step}/{total or '?'} [{bar}] {frac:4.0%} "
                f"loss {event.loss:.4f} lr {event.lr:.2e}{speed}{eta}"
            )
            if self.tty:
                last = event.step == total
                if last or now - self._last_draw >= self.min_interval:
                    self.stream.write("\r" + text.ljust(100))
                    self.stream.flush()
                    self._open_line = True
                    self._last_draw = now
            else:
                decile = int(frac * 10) if total else event.step // 50
                if decile != self._last_decile:
                    self._last_decile = decile
                    self._line(text)
        elif isinstance(event, EvalEnd):
            shown = " ".join(
                f"{k} {v:.4f}" for k, v in event.metrics.items() if isinstance(v, float | int)
            )
            self._line(f"eval at step {event.step}: {shown}")
        elif isinstance(event, Saved):
            self._line(f"saved checkpoint {event.path}")
        elif isinstance(event, TrainEnd):
            took = f" in {_clock(now - self._start)}" if self._start is not None else ""
            error = f": {event.error}" if event.error else ""
            self._line(f"run {event.status} at step {event.step}{took}{error}")
