"""Static HTML of generations: each prompt and its continuation, escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.lm.generate import Generation

__all__ = ["generation_html"]


def generation_html(generations: Sequence[Generation]) -> str:
    """Prompt (muted) then the generated text, per generation; every text escaped."""
    rows = []
    for g in generations:
        rows.append(
            "<div class='labkit-generation' style='margin:4px 0'>"
            f"<span style='opacity:.65'>{escape(g.prompt)}</span> "
            f"<b style='white-space:pre-wrap'>{escape(g.text)}</b>"
            f"<span style='opacity:.55;font-size:.85em'> · {len(g.token_ids)} tokens, "
            f"{escape(g.finish_reason)}</span></div>"
        )
    return "".join(rows)
