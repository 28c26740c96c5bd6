"""What ``labkit.explain(vit, image)`` returns: :class:`ImageAttribution`, plain data with shapes.
A leaf: ``labkit.vision.explain`` and ``labkit.render.image`` import it; it imports neither."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["ImageAttribution"]


@dataclass(frozen=True, eq=False)
class ImageAttribution:
    """How much each pixel (and each patch) pushed an image classifier toward ``target``.

    ``image`` is the uint8 [H, W, C] image as the model saw it (after its processor resized
    it). ``scores`` float32 [H, W], summed over channels, in units of the target's
    probability (or logit, ``options["output"]``): positive toward ``target``, negative away.
    ``patch_scores`` float32 [rows, cols] are their sums over each patch of ``grid``
    (``patch_size`` pixels each). Integrated gradients: the scores add up to f(image) -
    f(baseline), and ``delta`` is the completeness error |sum(scores) - (f(image) -
    f(baseline))|. Occlusion: a patch's scores sum to how much the output drops when that
    window is replaced by the baseline (``delta`` None). ``probs`` maps each label to the
    model's probability; ``options`` holds what was used (``baseline``, ``n_steps``,
    ``window``, ``output``).

    ``scale`` is for display only: the |score| drawn at full colour (None: the largest one).
    ``model`` is the model explained (None in a copy kept for display only).
    """

    image: np.ndarray
    scores: np.ndarray
    patch_scores: np.ndarray
    grid: tuple[int, int]
    patch_size: tuple[int, int]
    target: str
    probs: dict[str, float]
    method: str
    delta: float | None
    options: dict[str, Any] = field(default_factory=dict)
    model_name: str = ""
    scale: float | None = None
    model: Model | None = field(default=None, repr=False)
    # the image as given (before the processor resized or cropped it): what explaining another
    # label starts from, so the new scores sit on the same pixels as these
    given: np.ndarray | None = field(default=None, repr=False)

    @property
    def predicted(self) -> str:
        """The label with the highest probability."""
        return max(self.probs, key=self.probs.__getitem__)

    @property
    def probability(self) -> float:
        """The model's probability of ``target``."""
        return self.probs[self.target]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.probs)

    @property
    def display_scale(self) -> float:
        """The |score| drawn at full colour: ``scale``, else the largest |score| (1.0 if 0)."""
        if self.scale is not None:
            return self.scale
        top = float(np.abs(self.scores).max()) if self.scores.size else 0.0
        return top if top > 0 and math.isfinite(top) else 1.0

    def with_scale(self, top: float) -> ImageAttribution:
        """A copy drawn with ±``top`` at full colour (scores unchanged): put two explanations
        on one scale with ``a.with_scale(max(a.display_scale, b.display_scale))``."""
        if isinstance(top, bool) or not isinstance(top, int | float) or not top > 0:
            raise InputError(f"scale must be a positive number, got {top!r}.")
        return dataclasses.replace(self, scale=float(top))

    def top_patches(self, k: int = 5) -> list[tuple[tuple[int, int], float]]:
        """The ``k`` patches with the highest summed score, as ((row, col), score)."""
        cols = self.grid[1]
        order = np.argsort(-self.patch_scores.ravel(), kind="stable")[:k]
        return [((int(i) // cols, int(i) % cols), float(self.patch_scores.flat[i])) for i in order]

    def __repr__(self) -> str:
        delta = "" if self.delta is None else f", delta={self.delta:.2g}"
        h, w = self.scores.shape
        return (
            f"ImageAttribution(target={self.target!r} p={self.probability:.3f}, "
            f"method={self.method!r}, scores float32 [{h}x{w}], patches "
            f"{self.grid[0]}x{self.grid[1]}{delta}, top={self.top_patches(1)})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.image import image_attribution_html

        return image_attribution_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from labkit.render.display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)
