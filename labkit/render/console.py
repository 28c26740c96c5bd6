"""A console progress bar for runs without a notebook front end (terminal, scripts, ``labkit train``).

It reads the run's ``MetricHistory`` events (record, then render) and writes to a text stream,
standard error by default. On a terminal a tqdm bar (tqdm comes with transformers) redraws in
place at most every ``min_interval`` seconds, with evaluations and checkpoints printed above it;
into a file or a pipe (CI logs) it writes the same text as plain lines, one about every tenth of
the run, so logs stay short and free of carriage returns.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

from tqdm import tqdm

from labkit.events import EvalEnd, Event, Samples, Saved, StepEnd, TrainEnd
from labkit.history import MetricHistory

__all__ = ["ConsoleProgress", "wanted"]

# No {remaining} or {rate}: the ETA is MetricHistory.eta, the one the live panel shows, and it
# comes with the other stats in the postfix.
_FORMAT = "step {n}/{total_fmt} [{bar:24}] {percentage:3.0f}%{postfix}"
_ASCII = ".#"  # empty, full: "#####..................."


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: the bar only moves with the run's events


def wanted() -> bool:
    """A console bar is wanted when no Jupyter kernel (and so no live panel) is attached."""
    return "ipykernel" not in sys.modules


class ConsoleProgress:
    """Renders step/eval/save/end events on ``stream``.

    Subscribe it to a run's history, ``history.subscribe(ConsoleProgress(history=history))``,
    and its ETA is ``history.eta()`` and the time the run took is the history's elapsed time.
    Called with bare events, it keeps a history of its own. ``name`` (``Run.name``) says which
    run the last line is about.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        history: MetricHistory | None = None,
        min_interval: float = 0.25,
        name: str = "",
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.name = name
        self.history = history if history is not None else MetricHistory()
        self._records = history is None
        self._bar: _Bar | None = None
        self._last_tenth = -1
        self._start: float | None = None

    def __call__(self, event: Event) -> None:
        if self._records:
            self.history.record(event)
        with contextlib.suppress(OSError, ValueError):  # a closed stream must not break training
            self._render(event)

    def _line(self, text: str) -> None:
        """A line of its own; on a terminal, printed above the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _render(self, event: Event) -> None:
        if isinstance(event, StepEnd):
            self._step(event)
        elif isinstance(event, EvalEnd):
            shown = " ".join(
                f"{k} {v:.4f}" for k, v in event.metrics.items() if isinstance(v, float | int)
            )
            self._line(f"eval at step {event.step}: {shown}")
        elif isinstance(event, Samples):
            for prompt, text in zip(event.prompts, event.texts):
                # one line each: the prompt's end (an instruction's question) and the answer
                self._line(f"  {_one_line(prompt)[-60:]!r} -> {_one_line(text)[:100]!r}")
        elif isinstance(event, Saved):
            self._line(f"saved checkpoint {event.path}")
        elif isinstance(event, TrainEnd):
            if self._bar is not None:
                self._bar.close()  # draws the last state, whatever the throttle held back
                self._bar = None
            took = ""
            start = self.history.start_time
            if event.time and start is not None:  # the run's own clock: from its start
                took = f" in {tqdm.format_interval(max(0.0, event.time - start))}"
            elif self._start is not None:  # bare events without times: since the first seen
                took = f" in {tqdm.format_interval(time.monotonic() - self._start)}"
            error = f": {event.error}" if event.error else ""
            who = f"run {self.name}:" if self.name else "run"
            self._line(f"{who} {event.status} at step {event.step}{took}{error}")

    def _stats(self, event: StepEnd, total: int | None) -> str:
        stats = [f"loss {event.loss:.4f}", f"lr {event.lr:.2e}"]
        if event.samples_per_s:
            stats.append(f"{event.samples_per_s:.1f} samples/s")
        eta = self.history.eta(total)
        if eta is not None:
            stats.append(f"eta {tqdm.format_interval(eta)}")
        return ", ".join(stats)

    def _step(self, event: StepEnd) -> None:
        if self._start is None:
            self._start = time.monotonic()
        total = event.total_steps or None
        if not self.tty:  # a line about every tenth of the run; nothing to format in between
            tenth = int(10 * event.step / total) if total else event.step // 50
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                elapsed = time.monotonic() - self._start
                meter = tqdm.format_meter(
                    event.step,
                    total,
                    elapsed,
                    ascii=_ASCII,
                    bar_format=_FORMAT,
                    postfix=self._stats(event, total),
                )
                self._line(meter)
            return
        postfix = self._stats(event, total)
        bar = self._bar
        if bar is None:
            bar = self._bar = _Bar(
                total=total,
                initial=event.step,  # a resumed run starts past step 0
                postfix=postfix,
                file=self.stream,
                mininterval=self.min_interval,
                miniters=1,
                ascii=_ASCII,
                bar_format=_FORMAT,
                dynamic_ncols=True,  # cut to the terminal's width, also after a resize
            )
        bar.total = total
        bar.set_postfix_str(postfix, refresh=False)
        bar.update(event.step - bar.n)  # redraws when min_interval has passed
        if total and event.step >= total:
            bar.refresh()  # the last step always shows


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
