"""Display a run so that its saved output ends up with the final static snapshot.

An output's ``text/html`` is fixed when it is displayed. A run displayed while it trains is
therefore displayed with a display id, and when the run ends its output is updated in place:
same live widget, new static snapshot (final chart and metrics) for nbviewer, GitHub and a
notebook reopened without its kernel. The core (``labkit.render.display``) computes both
bundles; this module only shows them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.display import display as ipython_display

from labkit.events import TrainEnd

if TYPE_CHECKING:
    from labkit.history import MetricHistory

__all__ = ["display"]


def display(
    bundle: dict[str, Any],
    *,
    follow: MetricHistory | None = None,
    until: Callable[[Callable[[Any], None]], Callable[[], None]] | None = None,
    final: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Show the mime ``bundle``; replace its static entries with ``final()`` (``text/plain``
    and ``text/html``) once ``follow``, a history, records its ``TrainEnd``, or once the
    object whose ``on_end`` is ``until`` ends (``until(fn)`` calls ``fn`` once at the end, at
    once if it has ended, and returns the function that unsubscribes: a generation stream).
    """
    handle = ipython_display(bundle, raw=True, display_id=True)
    if handle is None or final is None or (follow is None and until is None):
        return
    snapshot = _FinalSnapshot(handle, bundle, final)
    if until is not None:
        snapshot.unsubscribe = until(lambda _obj: snapshot.send())
        return
    assert follow is not None
    snapshot.unsubscribe = follow.subscribe(snapshot)
    if follow.end is not None:  # ended before the subscription
        snapshot.send()


class _FinalSnapshot:
    """A history listener that updates one displayed output once, at the ``TrainEnd``."""

    def __init__(
        self, handle: Any, bundle: dict[str, Any], final: Callable[[], dict[str, Any]]
    ) -> None:
        self.handle, self.bundle, self.final = handle, bundle, final
        self.unsubscribe: Callable[[], None] = lambda: None  # set once subscribed
        self._lock = threading.Lock()
        self._sent = False

    def __call__(self, event: Any) -> None:
        if isinstance(event, TrainEnd):
            self.send()

    def send(self) -> None:
        # the TrainEnd listener (training thread) and the check after subscribing may both
        # see the end: only the first one updates
        with self._lock:
            if self._sent:
                return
            self._sent = True
        self.unsubscribe()
        self.handle.update({**self.bundle, **self.final()}, raw=True)
