"""Display hook shared by results and runs: static HTML always, the live view when possible.

Core objects (``Run``, ``AttentionResult``, ...) stay free of UI imports. Their
``_repr_mimebundle_`` asks ``labkit.ui`` — only when a Jupyter kernel is running and the UI
extra is installed — for an interactive widget, and always adds static ``text/html``: a front
end with the widget manager shows the live view, while nbviewer, GitHub and a notebook reopened
without its kernel fall back to the static snapshot.

A live bundle also carries ``LIVE_MIME``, the marker labkit's JupyterLab extension
(``jupyterlab/``) renders: the live view while the kernel holds the widget's model, the static
snapshot otherwise — JupyterLab itself would show "Error displaying widget: model not found" in a
reopened notebook. Front ends without the extension ignore the marker.

The core computes every bundle here and hands the UI what it needs; the UI never imports back.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["LIVE_MIME", "ipython_display", "live_marker", "mimebundle"]

# the marker of a labkit output with both a live view and a static snapshot (the same string is
# in jupyterlab/src/index.js; tests/test_labextension.py holds the two together)
LIVE_MIME = "application/vnd.labkit.view+json"


def live_marker(kind: str) -> dict[str, Any]:
    """The ``LIVE_MIME`` entry of a bundle showing a labkit ``kind`` of object (``"Run"``,
    ``"AttentionResult"``, ``"App"``...) both live and as a snapshot."""
    return {LIVE_MIME: {"version": 1, "view": kind}}


def _ui() -> ModuleType:
    """``labkit.ui``: the one place where the core looks up the optional UI.

    Found at call time through importlib, never by an import statement, so no import of a core
    module leads into the UI (the UI imports the core, not the reverse). ``labkit.ui`` itself
    imports nothing heavy; the ImportError of a missing ui extra (anywidget, ipywidgets)
    comes from the functions called on it.
    """
    return importlib.import_module("labkit.ui")


def _static(obj: Any) -> dict[str, Any]:
    """The static snapshot of ``obj``: ``text/plain`` and ``text/html``."""
    return {"text/plain": repr(obj), "text/html": obj._repr_html_()}


def _with_widget(obj: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """``bundle`` plus the widget view of ``obj`` when a kernel can show one."""
    if "ipykernel" not in sys.modules:  # plain Python, a terminal, a report: static only
        return bundle
    live = None
    with contextlib.suppress(ImportError):  # the ui extra (anywidget, ipywidgets) is missing
        live = _ui().widget_bundle(obj)
    if not live:
        return bundle
    return {**bundle, **live, **live_marker(type(obj).__name__)}


def mimebundle(obj: Any, html: str, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """``text/plain`` + static ``text/html`` (+ the widget view when a kernel can show one)."""
    bundle = _with_widget(obj, {"text/plain": repr(obj), "text/html": html})
    if include:
        bundle = {k: v for k, v in bundle.items() if k in include}
    if exclude:
        bundle = {k: v for k, v in bundle.items() if k not in exclude}
    return bundle


def ipython_display(obj: Any) -> None:
    """``_ipython_display_`` of a run or a generation stream (IPython is loaded by then): shown
    through ``labkit.ui``, which replaces the saved output's static part with ``_static(obj)``
    when it ends (a run's history records its ``TrainEnd``; a stream calls its ``on_end``)."""
    history = getattr(obj, "history", None)
    running = not getattr(obj, "done", True)
    until = getattr(obj, "on_end", None) if history is None else None
    _ui().display(
        _with_widget(obj, _static(obj)),
        follow=history if running and history is not None else None,
        until=until if running else None,
        final=lambda: _static(obj),
    )
