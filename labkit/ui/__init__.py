"""labkit.ui: the only Python that knows about widgets (anywidget + plain ES modules).

Thin classes: traits, the front-end file they load, ``from_*`` constructors. No computation
lives here. Imported lazily, like the top-level package. The core reaches this package in one
place, ``labkit.render.display``, and calls :func:`widget_bundle` and :func:`display`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# public name -> module
_LAZY: dict[str, str] = {
    "RunPanel": "labkit.ui.panel",
    "LossChart": "labkit.ui.panel",
    "AttentionView": "labkit.ui.attention_view",
    "AttentionDiffView": "labkit.ui.attention_view",
    "ImageAttentionView": "labkit.ui.image_view",
    "ImageAttributionView": "labkit.ui.image_view",
    "AttributionView": "labkit.ui.attribution_view",
    "GenerationAttributionView": "labkit.ui.generation_attribution_view",
    "GenerationView": "labkit.ui.generation_view",
    "CompareView": "labkit.ui.compare_view",
    "CompressView": "labkit.ui.compress_view",
    "App": "labkit.ui.app",
    # show a bundle; update its static part with the final snapshot when a run ends (IPython)
    "display": "labkit.ui._live",
}

# "module:Class" of a core type -> (module, factory function name) building its interactive view.
# Matched with isinstance; a class is looked up in sys.modules only, so nothing heavy is imported
# to find a view (an object's class is loaded whenever the object exists).
_VIEWS: dict[str, tuple[str, str]] = {
    "labkit.train.run:Run": ("labkit.ui.panel", "view_for_run"),
    "labkit.runs.loaded:RecordedRun": ("labkit.ui.panel", "view_for_run"),
    # an image's attention gets the view over the image, a text's the head/model view
    "labkit.inspect.attention.result:AttentionResult": (
        "labkit.ui.image_view",
        "view_for_image_attention",
    ),
    "labkit.inspect.attention.diff:AttentionDiff": (
        "labkit.ui.attention_view",
        "view_for_attention_diff",
    ),
    "labkit.inspect.attribution.result:AttributionResult": (
        "labkit.ui.attribution_view",
        "view_for_attribution",
    ),
    "labkit.vision.attribution_result:ImageAttribution": (
        "labkit.ui.image_view",
        "view_for_image_attribution",
    ),
    "labkit.inspect.attribution.generation_result:GenerationAttribution": (
        "labkit.ui.generation_attribution_view",
        "view_for_generation_attribution",
    ),
    "labkit.lm.stream:GenerationStream": ("labkit.ui.generation_view", "view_for_stream"),
    "labkit.runs.compare:RunComparison": ("labkit.ui.compare_view", "view_for_comparison"),
    "labkit.compress.compare:ModelComparison": (
        "labkit.ui.compress_view",
        "view_for_model_comparison",
    ),
}

__all__ = [*_LAZY, "view_for", "widget_bundle"]


def _loaded_class(key: str) -> type | None:
    """The class named by ``"module:Class"`` if its module is imported, else None."""
    module, _, name = key.partition(":")
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def view_for(obj: Any) -> Any | None:
    """The interactive widget for a labkit object (Run, AttentionResult, ...), or None."""
    for key, (module, factory) in _VIEWS.items():
        cls = _loaded_class(key)
        if cls is not None and isinstance(obj, cls):
            return getattr(importlib.import_module(module), factory)(obj)
    return None


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
