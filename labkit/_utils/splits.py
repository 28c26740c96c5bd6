"""``Splits``: what every labkit data type (``TextData``, ``LMData``, ``ImageData``) gives of its
``splits``: ``train`` and ``validation`` (always there), ``test`` (None when absent) and their
sizes for a repr."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

__all__ = ["Splits"]


class Splits:
    """A mixin for a dataclass with a ``splits`` field (a ``datasets.DatasetDict``)."""

    splits: DatasetDict

    @property
    def train(self) -> Dataset:
        return self.splits["train"]

    @property
    def validation(self) -> Dataset:
        return self.splits["validation"]

    @property
    def test(self) -> Dataset | None:
        return self.splits.get("test")

    def split_sizes(self) -> str:
        """``"train=4,000, validation=500, test=500"``."""
        return ", ".join(f"{k}={len(v):,}" for k, v in self.splits.items())
