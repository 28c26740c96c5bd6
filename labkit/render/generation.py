"""Static HTML of generations: each prompt (muted) and its continuation, escaped.

What a saved notebook, nbviewer and GitHub show for a :class:`~labkit.lm.Generation` and for a
:class:`~labkit.lm.GenerationStream` (the text so far while it runs, the final text once it
has ended). Inline styles only, no script; every text goes through ``html.escape``. The
generated tokens are listed under the text, each with its log-probability on hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from labkit.render.run import STATUS_COLORS
from labkit.render.summary import sig

if TYPE_CHECKING:
    from labkit.lm.generate import Generation

__all__ = ["FINISH_WORDS", "generation_html", "stream_html", "token_label"]

# what each finish reason means, as the views say it
FINISH_WORDS = {
    "eos": "end of sequence",
    "length": "max_new_tokens reached",
    "stop": "stop string",
    "cancelled": "cancelled",
}
_BOX = (
    "font-family:sans-serif;font-size:13px;line-height:1.5;margin:4px 0;padding:2px 8px;"
    "border-left:3px solid #ddd"
)
_FACTS = "color:#777;font-size:12px"


def token_label(token: str) -> str:
    """A token as shown: the byte-level BPE (Ġ, Ċ) and SentencePiece (▁) markers as the
    characters they stand for (as the front end's ``pretty``), and a newline as ⏎."""
    return (
        token.replace("\u0120", " ")
        .replace("\u2581", " ")
        .replace("\u010a", "\n")
        .replace("\n", "⏎")
    )


def _tokens_html(g: Generation) -> str:
    """The generated tokens as chips, shaded by how unlikely each was, log-prob on hover."""
    if not g.tokens:
        return ""
    chips = []
    for tok, lp in zip(g.tokens, g.logprobs):
        p = math.exp(lp) if math.isfinite(lp) else 0.0
        title = f"{tok!r}: log-prob {sig(lp)} (p = {sig(p)})"
        chips.append(
            f"<span title='{escape(title)}' style='display:inline-block;margin:1px;padding:0 3px;"
            f"border-radius:3px;white-space:pre;background:rgba(255,152,0,{0.45 * (1 - p):.3f})'>"
            f"{escape(token_label(tok))}</span>"
        )
    return (
        f"<details style='{_FACTS}'><summary>tokens (hover for each log-prob; "
        f"shaded by improbability)</summary><div style='font-family:monospace'>"
        f"{''.join(chips)}</div></details>"
    )


def _facts(g: Generation) -> str:
    n = len(g.token_ids)
    parts = [f"{n:,} token{'s' if n != 1 else ''}"]
    parts.append(f"finished: {FINISH_WORDS.get(g.finish_reason, g.finish_reason)}")
    if g.logprobs:
        parts.append(f"log-prob {sig(g.logprob)}")
        parts.append(f"perplexity {sig(g.perplexity)}")
    return " · ".join(escape(p) for p in parts)


def _text_html(text: str, *, caret: bool = False) -> str:
    shown = (
        escape(text)
        if text
        else "<span style='color:#888;font-style:italic'>(nothing generated)</span>"
    )
    end = "<span style='color:#1a73e8'>▌</span>" if caret else ""
    return f"<div class='labkit-generation-text' style='white-space:pre-wrap'>{shown}{end}</div>"


def _block(prompt: str, body: str, facts: str, extra: str = "") -> str:
    return (
        f"<div class='labkit-generation' style='{_BOX}'>"
        f"<div class='labkit-generation-prompt' style='color:#666;white-space:pre-wrap'>"
        f"{escape(prompt)}</div>{body}<div style='{_FACTS}'>{facts}</div>{extra}</div>"
    )


def generation_html(generations: Sequence[Generation]) -> str:
    """Prompt (muted) then the generated text, per generation, with its token count, finish
    reason, log-probability and perplexity, and its tokens with their log-probabilities."""
    return "".join(
        _block(g.prompt, _text_html(g.text), _facts(g), _tokens_html(g)) for g in generations
    )


def _badge(status: str) -> str:
    # a stream's status in the run badge's colours (the live view reads them from PALETTE)
    colour = STATUS_COLORS.get("finished" if status == "done" else status, "#777")
    return (
        f"<span style='display:inline-block;padding:0 7px;border-radius:8px;color:#fff;"
        f"background:{colour}'>{escape(status)}</span>"
    )


def stream_html(stream: Any) -> str:
    """A :class:`~labkit.lm.GenerationStream` as it stands: while it runs, the prompt, the text
    so far and the tokens count; once ended, its final generation (or the error)."""
    status = str(stream.status)
    if status == "failed":
        error = (
            f"<div style='color:#c5221f;white-space:pre-wrap;font-family:monospace'>"
            f"{escape(str(stream.error))}</div>"
        )
        facts = f"{_badge(status)} after {stream.n_tokens:,} tokens"
        return _block(stream.prompt, _text_html(stream.text) + error, facts)
    if stream.done:
        g = stream.generation
        return _block(
            g.prompt, _text_html(g.text), f"{_badge(status)} {_facts(g)}", _tokens_html(g)
        )
    facts = (
        f"{_badge(status)} {stream.n_tokens:,} / {stream.max_new_tokens:,} tokens · "
        f"{sig(stream.tokens_per_s)} tokens/s"
    )
    return _block(stream.prompt, _text_html(stream.text, caret=True), facts)
