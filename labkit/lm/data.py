"""``LMData``: text for a causal language model, in splits, validated at the door.

Two kinds: ``"text"`` (language modelling: a ``text`` column, every token is learned) and
``"instruction"`` (instruction tuning: ``prompt`` and ``response`` columns, only the response is
learned). ``labkit.load_data`` reads the source and calls :func:`lm_split` per split; this
module never reads files itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import DataError
from labkit._utils.splits import Splits
from labkit._utils.text import clean_text

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

__all__ = ["KINDS", "LMData", "columns_of", "lm_kind", "lm_split"]

# kind -> the columns an LMData split of that kind holds, in order
KINDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "instruction": ("prompt", "response"),
}


@dataclass(eq=False)
class LMData(Splits):
    """Text for a causal LM in splits (``datasets.DatasetDict``).

    ``kind`` is ``"text"`` (each split has a ``text`` column: language modelling) or
    ``"instruction"`` (``prompt`` and ``response`` columns: the model learns to answer the
    prompt with the response; loss on the response tokens only). ``train`` and ``validation``
    always exist; ``test`` is None when the source had no test split.
    """

    splits: DatasetDict
    kind: str
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"LMData kind must be one of {', '.join(KINDS)}, got {self.kind!r}.")

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns every split holds: ``("text",)`` or ``("prompt", "response")``."""
        return KINDS[self.kind]

    def __repr__(self) -> str:
        sizes = self.split_sizes()
        return f"LMData({self.source!r}, kind={self.kind!r}, {sizes})"

    def _repr_html_(self) -> str:
        from labkit.render.lm_data import lm_data_html

        return lm_data_html(self)


def columns_of(data: Any) -> tuple[str, ...]:
    """The column names of a split held as a Dataset or as plain columns ({name: list})."""
    return tuple(data) if isinstance(data, Mapping) else tuple(data.column_names)


def lm_kind(found: Sequence[str], text: str = "text") -> str | None:
    """``"instruction"`` when ``found`` has ``prompt`` and ``response``, ``"text"`` when it has
    ``text`` (the text column's name), None when neither.

    Raises ``DataError`` naming the missing column when only one of prompt/response is there.
    """
    have = [c for c in KINDS["instruction"] if c in found]
    if len(have) == 2:
        return "instruction"
    if have:
        missing = next(c for c in KINDS["instruction"] if c not in found)
        raise DataError(
            f"the data has a {have[0]!r} column but no {missing!r} column; columns found: "
            f"{list(found)}. Instruction data needs both 'prompt' and 'response' (rename the "
            f"columns that hold them), or a {text!r} column alone for language modelling."
        )
    return "text" if text in found else None


def lm_split(kind: str, columns: Mapping[str, Sequence[Any]], split: str) -> Dataset:
    """One split as a ``datasets.Dataset`` of the ``kind``'s columns, checked.

    ``columns`` maps each of ``KINDS[kind]`` to that split's values. Text: every value must be
    a string; empty ones (nothing but whitespace) are dropped, they hold nothing to learn.
    Instruction: prompts must be strings; responses must be non-empty strings (the only tokens
    the model learns from). A bad row is a ``DataError`` naming the split, the row and the
    column.
    """
    from datasets import Dataset, Features, Value

    names = KINDS[kind]
    values = {c: list(columns[c]) for c in names}
    for c in names:
        bad = [i for i, v in enumerate(values[c]) if not isinstance(v, str)]
        if bad:
            i = bad[0]
            raise DataError(
                f"split {split!r}: {len(bad)} row(s) have a {c!r} value that is not text "
                f"(row {i}: {values[c][i]!r:.40}). Drop or fill them before loading."
            )
        values[c] = [clean_text(v) for v in values[c]]
    if kind == "instruction":
        empty = [i for i, r in enumerate(values["response"]) if not r.strip()]
        if empty:
            raise DataError(
                f"split {split!r}: {len(empty)} row(s) have an empty 'response' (first at row "
                f"{empty[0]}); the response is what the model learns to write. Drop those rows "
                "or fill them."
            )
    else:
        values["text"] = [t for t in values["text"] if t.strip()]
    if not values[names[0]]:
        raise DataError(f"split {split!r} has no rows with text in {names[0]!r}.")
    features = Features({c: Value("string") for c in names})
    return Dataset.from_dict(values, features=features)
