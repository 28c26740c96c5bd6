"""What ``labkit.explain`` returns for a causal LM: :class:`GenerationAttribution`.

A leaf: the explaining code (``generation``), the static view (``labkit.render``) and the live
one (``labkit.ui``) import it; it imports none of them at module level.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit.inspect.attribution.result import _check_scale

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["GenerationAttribution"]


@dataclass(frozen=True, eq=False)
class GenerationAttribution:
    """How much each prompt token drove each generated token, by one method.

    ``tokens`` [P] are the prompt's tokens as the tokenizer names them (``Ġ``/``▁`` markers
    included) and ``target_tokens`` [N] the explained continuation's; ``pieces`` [P] /
    ``target_pieces`` [N] are the same tokens as text for display (``spaces`` [P] says whether
    whitespace precedes a prompt token). Only the user's prompt tokens are features: when
    ``chat`` is true the prompt was wrapped in the tokenizer's chat template, whose own tokens
    (role markers, a default system prompt) stayed fixed and are not listed.

    ``scores`` float32 [N, P]: ``scores[i, j]`` is how much prompt token ``j`` raised (positive)
    or lowered (negative) the log-probability of target token ``i`` given the prompt and the
    target tokens before it (teacher forcing, nats). ``sequence_scores`` float32 [P] is the
    same for the log-probability of the whole target (the sum of the rows).
    ``target_logprobs`` float32 [N] are the target tokens' log-probabilities under the model and
    ``logprob`` their sum. ``delta`` float32 [N] is, for integrated gradients, each row's
    completeness error ``|sum(scores[i]) - (log p_i - baseline_logprobs[i])|`` (nats), where
    ``baseline_logprobs`` [N] are the log-probabilities with every prompt token replaced by the
    baseline token; None for the other methods. ``generated`` says whether the target is the
    model's own greedy continuation (no ``target=`` given). ``options`` holds the options used.

    ``scale`` is for display only: the |score| drawn at full colour. None draws the token rows
    and the matrix on their largest |score| and the sequence row on its own; :meth:`with_scale`
    puts several results on one scale (before / after finetuning).
    """

    prompt: str
    target: str
    tokens: tuple[str, ...]
    target_tokens: tuple[str, ...]
    scores: np.ndarray
    sequence_scores: np.ndarray
    target_logprobs: np.ndarray
    method: str
    delta: np.ndarray | None
    chat: bool
    options: dict[str, Any] = field(default_factory=dict)
    pieces: tuple[str, ...] = ()
    spaces: tuple[bool, ...] = ()
    target_pieces: tuple[str, ...] = ()
    target_special: tuple[bool, ...] = ()
    token_ids: tuple[int, ...] = ()
    target_ids: tuple[int, ...] = ()
    baseline_logprobs: np.ndarray | None = field(default=None, repr=False)
    generated: bool = False
    model_name: str = ""
    model: Model | None = field(default=None, repr=False)
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            object.__setattr__(self, "scale", _check_scale(self.scale))

    @property
    def logprob(self) -> float:
        """Log-probability of the whole target (nats): the sum of ``target_logprobs``."""
        return float(np.sum(self.target_logprobs, dtype=np.float64))

    @property
    def perplexity(self) -> float:
        """exp(mean negative log-probability) of the target tokens."""
        n = len(self.target_logprobs)
        return math.exp(-self.logprob / n) if n else math.nan

    @property
    def shape(self) -> tuple[int, int]:
        """(target tokens N, prompt tokens P): the shape of ``scores``."""
        return (len(self.target_tokens), len(self.tokens))

    def row(self, i: int | None = None) -> np.ndarray:
        """Scores float32 [P] of target token ``i`` (negatives count back); None: the sequence
        row."""
        if i is None:
            return self.sequence_scores
        n = len(self.target_tokens)
        if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
            raise InputError(
                f"row {i!r} is out of range: the target has {n} tokens (0..{n - 1}); pass "
                "None for the whole target."
            )
        return self.scores[i]

    def top(self, k: int = 5, *, row: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` prompt tokens with the highest scores for target token ``row`` (None:
        the whole target), as (piece, score)."""
        values = self.row(row)
        names = self.pieces or self.tokens
        order = np.argsort(-values, kind="stable")[: max(0, int(k))]
        return [(names[j], float(values[j])) for j in order]

    def with_scale(self, top: float) -> GenerationAttribution:
        """A copy drawn on a colour scale whose ends are ±``top`` (scores unchanged)."""
        return dataclasses.replace(self, scale=_check_scale(top))

    def __repr__(self) -> str:
        worst = (
            ""
            if self.delta is None or not len(self.delta)
            else (f", delta<={float(np.max(self.delta)):.2g}")
        )
        top = ", ".join(repr(t) for t, _ in self.top(3))
        text = self.target if len(self.target) <= 40 else self.target[:39] + "…"
        return (
            f"GenerationAttribution(target={text!r}, logprob={self.logprob:.3f}, "
            f"method={self.method!r}, {len(self.target_tokens)} x {len(self.tokens)} "
            f"tokens{worst}, top=[{top}])"
        )

    def _repr_html_(self) -> str:
        from labkit.render.generation_attribution import generation_attribution_html

        return generation_attribution_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
