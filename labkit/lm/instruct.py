"""A classification task as instructions for a causal LM, and the LM's accuracy on it.

``instructions(data)`` turns labelled text into prompt/response pairs ("Review: ... Is this
review positive or negative?" -> "positive"); ``generative_accuracy(model, data)`` asks the model
each prompt, greedily, and counts the answers whose first word is the response's.
"""

from __future__ import annotations

import string
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, DataError

if TYPE_CHECKING:
    from labkit.data import TextData
    from labkit.lm.data import LMData
    from labkit.model import Model

__all__ = ["GenerativeAccuracy", "first_word", "generative_accuracy", "instructions"]

QUESTION = "Is this review positive or negative?"
TEMPLATE = "Review: {text}\n{question}"
# new tokens an answer may take beyond its own tokens (a leading space, a newline, a full stop)
_ANSWER_SLACK = 3


def instructions(data: TextData, *, question: str = QUESTION, template: str = TEMPLATE) -> LMData:
    """Labelled text as instruction data: each text becomes the prompt
    ``template.format(text=text, question=question)``, its label's name the response.

    Every split is kept (train, validation, test). ``template`` must hold ``{text}``; it may
    hold ``{question}``.
    """
    from datasets import DatasetDict

    from labkit.data import TextData
    from labkit.lm.data import LMData, lm_split

    if not isinstance(data, TextData):
        raise DataError(
            f"instructions needs labelled TextData (labkit.load_data(...) or "
            f"labkit.demo.data()), got {type(data).__name__}."
        )
    if not isinstance(question, str) or not isinstance(template, str):
        raise ConfigError("question and template must be strings.")
    if "{text}" not in template:
        raise ConfigError(
            f"template must hold {{text}} (where each text goes), got {template!r:.80}."
        )
    try:
        template.format(text="", question="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"template {template!r:.80} has a placeholder other than {{text}} and "
            f"{{question}} ({exc!r}); double other braces ({{{{ }}}}) to keep them as text."
        ) from exc
    splits = {}
    for name, ds in data.splits.items():
        prompts = [template.format(text=t, question=question) for t in ds["text"]]
        responses = [data.labels[int(i)] for i in ds["label"]]
        splits[name] = lm_split("instruction", {"prompt": prompts, "response": responses}, name)
    return LMData(
        splits=DatasetDict(splits),
        kind="instruction",
        source=f"{data.source or 'TextData'} as instructions",
    )


def first_word(text: str) -> str:
    """The first word of ``text``, lower-cased, without the punctuation around it ("" when
    there is none): ``" Positive."`` -> ``"positive"``."""
    for word in text.split():
        stripped = word.strip(string.punctuation + "“”‘’«»…").lower()
        if stripped:
            return stripped
    return ""


@dataclass(frozen=True)
class GenerativeAccuracy:
    """How often a causal LM's greedy answer starts with the expected response.

    ``accuracy`` = ``correct`` / ``n`` over the ``n`` prompts of ``split``. ``answers`` counts
    the answers by their first word (:func:`first_word`); ``unparseable`` is how many answers
    began with none of the responses' first words (neither "positive" nor "negative", say).
    """

    accuracy: float
    n: int
    correct: int
    unparseable: int
    answers: dict[str, int] = field(default_factory=dict)
    split: str = "test"

    def __str__(self) -> str:
        top = ", ".join(f"{k or '(nothing)'} {v}" for k, v in list(self.answers.items())[:5])
        return (
            f"generative accuracy {self.accuracy:.4f} ({self.correct}/{self.n}, {self.split}); "
            f"unparseable {self.unparseable}; answers: {top}"
        )

    def _repr_html_(self) -> str:
        from labkit.render.summary import _rows, sig

        rows = [
            ("accuracy", f"{sig(self.accuracy, 3)} ({self.correct:,}/{self.n:,})"),
            ("split", self.split),
            ("unparseable", f"{self.unparseable:,}"),
            *((f"answer: {k or '(nothing)'}", f"{v:,}") for k, v in self.answers.items()),
        ]
        return f"<table class='labkit-generative-accuracy'>{_rows(rows)}</table>"


def generative_accuracy(
    model: Model,
    data: LMData,
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 16,
) -> GenerativeAccuracy:
    """Ask ``model`` each prompt of ``data``'s ``split`` (the first ``limit`` of them) greedily,
    in the chat template when it has one (as finetuning showed them), and compare the first
    word of each answer with the response's.

    The answers are a few tokens long: the longest response's tokens and a little room for a
    leading space or a full stop.
    """
    from labkit.lm.data import LMData

    model.require_task("causal-lm", "generative_accuracy")
    if not isinstance(data, LMData) or data.kind != "instruction":
        raise DataError(
            "generative_accuracy needs instruction LMData (prompt/response columns), e.g. "
            f"labkit.lm.instructions(labelled_data); got {_describe(data)}."
        )
    if split not in data.splits:
        raise DataError(f"this LMData has no split {split!r}; it has {', '.join(data.splits)}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a whole number >= 1 or None, got {limit!r}.")
    ds = data.splits[split]
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    prompts, responses = list(ds["prompt"]), list(ds["response"])
    tok = model.tokenizer
    longest = max(len(tok(r, add_special_tokens=False)["input_ids"]) for r in set(responses))
    out = model.generate(
        prompts,
        max_new_tokens=longest + _ANSWER_SLACK,
        temperature=0.0,
        batch_size=batch_size,
    )
    expected = [first_word(r) for r in responses]
    known = set(expected)
    got = [first_word(g.text) for g in out]
    correct = sum(a == e for a, e in zip(got, expected))
    return GenerativeAccuracy(
        accuracy=correct / len(got),
        n=len(got),
        correct=correct,
        unparseable=sum(a not in known for a in got),
        answers=dict(Counter(got).most_common()),
        split=split,
    )


def _describe(data: Any) -> str:
    kind = getattr(data, "kind", None)
    return f"{type(data).__name__}" + (f" of kind {kind!r}" if kind else "")
