"""Static HTML of a run (placeholder until the panel's static snapshot lands)."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["run_html"]


def run_html(run: Any) -> str:
    """A static summary of ``run``: status and last metrics, escaped."""
    status = html.escape(str(getattr(run, "status", "?")))
    return f"<div class='labkit-run'>labkit run: {status}</div>"
