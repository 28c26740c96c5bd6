"""``Prediction``: a classifier's answer for one input (a text or an image): a leaf module, so
every task's predict can make one without importing ``labkit.model``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prediction"]


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one input: the top ``label`` and ``probs`` (label -> probability).

    ``text`` is the text classified; for an image, a short description of it (``"image 3
    (28x28)"``)."""

    text: str
    label: str
    probs: dict[str, float]

    @property
    def score(self) -> float:
        """Probability of the predicted label."""
        return self.probs[self.label]
