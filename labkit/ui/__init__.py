"""labkit.ui: the only Python that knows about widgets (anywidget + plain ES modules).

Thin classes: traits, the front-end file they load, ``from_*`` constructors. No computation
lives here. Imported lazily, like the top-level package.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module
_LAZY: dict[str, str] = {
    "RunPanel": "labkit.ui.panel",
    "LossChart": "labkit.ui.panel",
    "AttentionView": "labkit.ui.attention_view",
    "AttentionDiffView": "labkit.ui.attention_view",
    "AttributionView": "labkit.ui.attribution_view",
    "App": "labkit.ui.app",
}

# core type name -> (module, factory function name) building its interactive view
_VIEWS: dict[str, tuple[str, str]] = {
    "Run": ("labkit.ui.panel", "view_for_run"),
    "AttentionResult": ("labkit.ui.attention_view", "view_for_attention"),
    "AttentionDiff": ("labkit.ui.attention_view", "view_for_attention_diff"),
    "AttributionResult": ("labkit.ui.attribution_view", "view_for_attribution"),
}

__all__ = [*_LAZY, "view_for", "widget_bundle"]


def view_for(obj: Any) -> Any | None:
    """The interactive widget for a labkit object (Run, AttentionResult, ...), or None."""
    target = _VIEWS.get(type(obj).__name__)
    if target is None:
        return None
    module = importlib.import_module(target[0])
    return getattr(module, target[1])(obj)


def widget_bundle(obj: Any) -> dict[str, Any] | None:
    """The widget-view mime entry for ``obj``'s interactive view, or None when it has none."""
    widget = view_for(obj)
    return None if widget is None else widget.widget_bundle()


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'labkit.ui' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
