"""Display hook shared by results and runs: static HTML always, the live view when possible.

Core objects (``Run``, ``AttentionResult``, ...) stay free of UI imports. Their
``_repr_mimebundle_`` asks ``labkit.ui`` — only when a Jupyter kernel is running and the UI
extra is installed — for an interactive widget, and always adds static ``text/html``: a front
end with the widget manager shows the live view, while nbviewer, GitHub and a notebook reopened
without its kernel fall back to the static snapshot.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["ipython_display", "mimebundle"]


def _widget_bundle(obj: Any) -> dict[str, Any] | None:
    if "ipykernel" not in sys.modules:  # plain Python, a terminal, a report: static only
        return None
    try:
        ui = importlib.import_module("labkit.ui")
        return ui.widget_bundle(obj)
    except ImportError:  # the ui extra (anywidget, ipywidgets) is not installed
        return None


def mimebundle(obj: Any, html: str, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """``text/plain`` + static ``text/html`` (+ the widget view when a kernel can show one)."""
    bundle: dict[str, Any] = {"text/plain": repr(obj), "text/html": html}
    live = _widget_bundle(obj)
    if live:
        bundle.update(live)
    if include:
        bundle = {k: v for k, v in bundle.items() if k in include}
    if exclude:
        bundle = {k: v for k, v in bundle.items() if k not in exclude}
    return bundle


def ipython_display(obj: Any) -> None:
    """``_ipython_display_`` of a run: shown through ``labkit.ui`` so that the saved output is
    updated with the final snapshot when the run ends (IPython is loaded by then)."""
    importlib.import_module("labkit.ui._live").display(obj)
