"""Display a run so that its saved output ends up with the final static snapshot.

An output's ``text/html`` is fixed when it is displayed. A run displayed while it trains is
therefore displayed with a display id, and when the run ends its output is updated in place:
same live widget, new static snapshot (final chart and metrics) for nbviewer, GitHub and a
notebook reopened without its kernel.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display as ipython_display

__all__ = ["display"]


def display(obj: Any) -> None:
    """Show ``obj`` (a Run or a result) with its live view and static HTML."""
    from labkit.render.display import mimebundle

    bundle = mimebundle(obj, obj._repr_html_())
    handle = ipython_display(bundle, raw=True, display_id=True)
    history = getattr(obj, "history", None)
    if handle is None or history is None or getattr(obj, "done", True):
        return

    def on_event(event: Any) -> None:
        if type(event).__name__ != "TrainEnd":
            return
        unsubscribe()
        final = dict(bundle)
        final["text/html"] = obj._repr_html_()
        final["text/plain"] = repr(obj)
        handle.update(final, raw=True)

    unsubscribe = history.subscribe(on_event)
    if getattr(obj, "done", False):  # ended between the check and the subscription
        on_event(type("TrainEnd", (), {})())
