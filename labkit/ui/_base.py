"""Where the front-end files are, and the base class of labkit's widgets.

The ES modules and CSS live in ``widgets/`` at the top of the repository. The wheel carries them
as ``labkit/_widgets``; an editable install reads them from the repository. No file is fetched
from the network.

A widget sends its module joined after :func:`prelude`: ``widgets/_common.js`` (the helpers the
modules share, plain declarations) and one ``const PALETTE = {...};`` line holding the colours
``labkit.render`` draws with, so each helper and each colour is written once.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from labkit._utils.optional import require

# the ui extra: a missing library is a MissingDependencyError naming it (ipywidgets first, since
# anywidget imports it)
ipywidgets = require("ipywidgets", extra="ui", feature="labkit's widgets (labkit.ui, labkit.App)")
require("anywidget", extra="ui", feature="labkit's widgets (labkit.ui, labkit.App)")

import anywidget  # noqa: E402  (checked above)

__all__ = [
    "COMMON",
    "LabkitWidget",
    "asset",
    "esm",
    "ipywidgets",
    "palette",
    "prelude",
    "view_bundle",
    "widgets_dir",
]

COMMON = "_common.js"  # the helpers every widget module is sent after


@cache
def widgets_dir() -> Path:
    """The folder holding the widgets' ``.js`` and ``.css`` files."""
    packaged = Path(str(files("labkit"))) / "_widgets"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "widgets"
    if repo.is_dir():
        return repo
    raise FileNotFoundError(
        f"labkit's front-end files are missing: looked in {packaged} and {repo}. Reinstall labkit."
    )


def asset(name: str) -> str:
    """The text of one front-end file, e.g. ``asset("run_panel.js")``."""
    return (widgets_dir() / name).read_text(encoding="utf-8")


def palette() -> dict[str, Any]:
    """The colours of ``labkit.render``, as the front end gets them (``PALETTE``).

    RGB triples (0..255): ``attention`` and ``change`` are the dark ends of the white-to-colour
    ramps of attention weights and of their change; ``toward`` and ``against`` colour attribution
    scores, the strongest at ``opacity`` (0..1). ``chart``: the loss chart's series colours
    (``raw`` loss, its ``ema``, ``val`` loss, the watched ``metric``) and its geometry (``pad``
    between the frame and the data, the markers' radius ``dot``, px); ``status``: the run
    status badge's colour by status.
    """
    from labkit.render import attribution, heatmap, svgchart
    from labkit.render import run as run_view

    return {
        "attention": list(heatmap.BLUE),
        "change": list(heatmap.RED),
        "toward": list(attribution.TOWARD),
        "against": list(attribution.AGAINST),
        "opacity": attribution.OPACITY,
        "chart": {
            "raw": run_view.RAW,
            "ema": run_view.SMOOTH,
            "val": run_view.VAL,
            "metric": run_view.METRIC,
            "pad": svgchart.PAD,
            "dot": svgchart.DOT_R,
        },
        "status": dict(run_view.STATUS_COLORS),
    }


@cache
def prelude() -> str:
    """What every widget module is sent after: ``_common.js``, then ``const PALETTE = {...};``."""
    return f"{asset(COMMON)}\nconst PALETTE = {json.dumps(palette())};\n"


def esm(name: str) -> str:
    """The ``_esm`` text a widget sends for the module ``widgets/<name>``: prelude, then module."""
    return _joined(asset(name))


def _joined(module: str) -> str:
    return module if module.startswith(prelude()) else prelude() + module


class LabkitWidget(anywidget.AnyWidget):
    """Base of labkit's widgets; subclasses set ``_esm = asset(...)`` and ``_css = asset(...)``.

    A subclass's own ``_esm`` text is replaced, when the class is made, by :func:`esm`'s join:
    the module then finds the shared helpers and ``PALETTE`` declared ahead of it.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        module = cls.__dict__.get("_esm")
        if isinstance(module, str):
            cls._esm = _joined(module)
        super().__init_subclass__(**kwargs)

    def widget_bundle(self) -> dict[str, Any]:
        """The Jupyter widget-view mime entry (works with ipywidgets 7 and 8)."""
        return view_bundle(self)


def view_bundle(widget: Any) -> dict[str, Any]:
    """The Jupyter widget-view mime entry of any widget (works with ipywidgets 7 and 8)."""
    return {
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": widget.model_id,
        }
    }
