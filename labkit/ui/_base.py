"""Where the front-end files are, and the base class of labkit's widgets.

The ES modules and CSS live in ``widgets/`` at the top of the repository. The wheel carries them
as ``labkit/_widgets``; an editable install reads them from the repository. No file is fetched
from the network.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import anywidget

__all__ = ["LabkitWidget", "asset", "widgets_dir"]


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


class LabkitWidget(anywidget.AnyWidget):
    """Base of labkit's widgets; subclasses set ``_esm = asset(...)`` and ``_css = asset(...)``."""

    def widget_bundle(self) -> dict[str, Any]:
        """The Jupyter widget-view mime entry (works with ipywidgets 7 and 8)."""
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.model_id,
            }
        }
