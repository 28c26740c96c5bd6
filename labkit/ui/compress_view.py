"""The live view of ``lk.compare_models``: the trade-off table and the accuracy/latency plot,
redrawn as each model's row arrives (``ModelComparison.add`` from any thread).

Plain ipywidgets HTML: the table and the SVG are the static renderer's own
(``labkit.render.compress``), so the notebook's saved snapshot and the live view show the same
figures; the plot's points carry a hover read-out (SVG ``<title>``). Every name is escaped
by the renderer.
"""

from __future__ import annotations

import contextlib
import html
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.compress.compare import ModelComparison, ModelRow
from labkit.render.compare import run_color, table_html
from labkit.render.compress import scatter_svg, table_note
from labkit.ui._base import view_bundle

if TYPE_CHECKING:
    import ipywidgets as W
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["CompressView", "view_for_model_comparison"]


class CompressView(W.VBox):
    """The table and plot of a :class:`~labkit.compress.compare.ModelComparison`, following
    its rows as they are added. ``show(other)`` follows another comparison (the App starts a
    new one when another model is loaded); ``None`` shows an empty table."""

    def __init__(self, comparison: ModelComparison | None = None, **kwargs: Any) -> None:
        self.heading = W.HTML()
        self.table = W.HTML()
        self.plot = W.HTML()
        super().__init__([self.heading, self.table, self.plot], **kwargs)
        self.add_class("labkit-compress-view")
        self.comparison: ModelComparison | None = None
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self.redraws = 0  # times the view was drawn (for tests)
        self.show(comparison)

    def show(self, comparison: ModelComparison | None) -> None:
        """Follow ``comparison`` (or none) from now on."""
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            self.comparison = comparison
            if comparison is not None:
                self._unsubscribe = comparison.subscribe(self._on_row)
        self.redraw()

    def _on_row(self, _row: ModelRow) -> None:
        # on the thread that measured the row: a view problem must never reach the comparison
        try:
            self.redraw()
        except Exception:
            import logging

            logging.getLogger("labkit").warning("the comparison view failed", exc_info=True)

    def redraw(self) -> None:
        """Draw the comparison as it is now."""
        with self._lock:
            c = self.comparison
            if c is None or not c.rows:
                self.heading.value = (
                    "<i>No models measured yet: each compressed copy adds a row here.</i>"
                )
                self.table.value = ""
                self.plot.value = ""
            else:
                n = len(c.rows)
                self.heading.value = (
                    f"<b>{n} model{'s' if n != 1 else ''} compared</b> <span style='color:#666'>"
                    f"on the {html.escape(c.split)} split</span>"
                )
                colors = [run_color(i) for i in range(n)]
                note = html.escape(table_note(c))
                self.table.value = (
                    f"{table_html(c.table(), colors=colors)}"
                    f"<div style='color:#666;font-size:12px;line-height:1.4'>{note}</div>"
                )
                self.plot.value = scatter_svg(c)
            self.redraws += 1

    def widget_bundle(self) -> dict[str, Any]:
        """The Jupyter widget-view mime entry (what ``labkit.ui.widget_bundle`` returns)."""
        return view_bundle(self)

    def close(self) -> None:
        """Stop following the comparison and close the widget."""
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
        super().close()


_VIEWS: weakref.WeakKeyDictionary[Any, CompressView] = weakref.WeakKeyDictionary()


def view_for_model_comparison(comparison: ModelComparison) -> CompressView:
    """The live view of ``comparison`` (shared by every display of it)."""
    view = None
    with contextlib.suppress(TypeError):
        view = _VIEWS.get(comparison)
    if view is None or view.comm is None:
        view = CompressView(comparison)
        with contextlib.suppress(TypeError):
            _VIEWS[comparison] = view
    return view
