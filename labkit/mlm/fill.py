"""Fill-mask: a masked LM's most likely tokens for each mask in a text.

``Model.fill_mask(text)`` calls :func:`fill_mask`. One forward pass scores every mask at once
(each mask is predicted with the others still masked, as Hugging Face's fill-mask pipeline
does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError
from labkit._utils.text import clean_text

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["Candidate", "Candidates", "MaskFills", "fill_mask"]

# what a user may type for a mask whatever the tokenizer's own mask token is
GENERIC_MASK = "[MASK]"
# sentencepiece / byte-level BPE pieces that start a word carry one of these
_WORD_START = ("Ġ", "▁")


@dataclass(frozen=True)
class Candidate:
    """One token for one mask: ``token`` as the vocabulary spells it readably (a WordPiece
    continuation keeps its ``##``: ``"##ing"``), ``token_id``, ``probability`` (softmax over the
    whole vocabulary, 0..1), and ``text``: the input with this mask filled in (a continuation
    joined to the word before it; any other masks left as they were)."""

    token: str
    token_id: int
    probability: float
    text: str


class Candidates(list[Candidate]):
    """The ``top_k`` candidates for one mask, most likely first (a list of :class:`Candidate`).

    ``text`` is the input (``[MASK]`` written as the tokenizer's mask token), ``mask`` which
    mask of it this is (0 = the first)."""

    def __init__(self, items: list[Candidate], *, text: str, mask: int = 0) -> None:
        super().__init__(items)
        self.text = text
        self.mask = mask

    def _repr_html_(self) -> str:
        from labkit.render.fill_mask import fill_mask_html

        return fill_mask_html([self])


class MaskFills(list[Candidates]):
    """One :class:`Candidates` list per mask of a text with several masks, in text order."""

    def __init__(self, items: list[Candidates], *, text: str) -> None:
        super().__init__(items)
        self.text = text

    def _repr_html_(self) -> str:
        from labkit.render.fill_mask import fill_mask_html

        return fill_mask_html(list(self))


def fill_mask(model: Model, text: str, *, top_k: int = 5) -> Candidates | MaskFills:
    """The ``top_k`` most likely tokens for each mask in ``text``.

    ``text`` holds the tokenizer's mask token (``model.tokenizer.mask_token``: BERT's
    ``[MASK]``, RoBERTa's ``<mask>``); ``[MASK]`` is accepted for any tokenizer and read as its
    own. One mask: a :class:`Candidates` list of ``top_k`` :class:`Candidate` (token,
    probability, filled text), most likely first; several masks: a :class:`MaskFills`, one
    such list per mask, in order. Both display as a table in a notebook.

    Raises ``InputError`` when the model is not a masked LM, ``text`` is not a string or holds
    no mask, ``top_k`` is not a whole number >= 1, or the text is longer than the model reads.
    """
    import torch

    model.require_task("masked-lm", "fill_mask")
    model.require_backend("fill_mask")
    tok = model.tokenizer
    mask_token = tok.mask_token
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a whole number >= 1, got {top_k!r}.")
    if not isinstance(text, str):
        raise InputError(
            f"text must be a string holding {mask_token!r}, got {type(text).__name__}."
        )
    text = clean_text(text)
    if mask_token != GENERIC_MASK:
        text = text.replace(GENERIC_MASK, mask_token)
    spans = [m.span() for m in re.finditer(re.escape(mask_token), text)]
    if not spans:
        also = "" if mask_token == GENERIC_MASK else f" ({GENERIC_MASK} works too)"
        raise InputError(
            f"text holds no mask token: write {mask_token!r}{also} where a word is missing, "
            f"e.g. 'a {mask_token} movie'. Found: {text!r:.80}"
        )
    ids = tok(text, truncation=False, verbose=False)["input_ids"]
    if len(ids) > model.max_length:
        raise InputError(
            f"text is {len(ids):,} tokens long, but {model.name!r} reads at most "
            f"{model.max_length:,}: shorten it around the mask."
        )
    positions = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
    if len(positions) != len(spans):  # a tokenizer that splits or merges its own mask token
        raise InputError(
            f"text has {len(spans)} mask(s) but the tokenizer read {len(positions)}: write "
            f"{mask_token!r} apart from the words around it."
        )
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode():
            out = model.hf(input_ids=torch.tensor([ids], device=model.device))
    finally:
        model.hf.train(was_training)
    logits = out.logits[0, positions].float()
    k = min(top_k, logits.shape[-1])
    probs, best = logits.softmax(-1).topk(k, dim=-1)
    marks_starts = _marks_word_starts(tok)
    lists = []
    for j, (start, end) in enumerate(spans):
        items = [
            _candidate(tok, int(i), float(p), text, start, end, marks_starts)
            for p, i in zip(probs[j].tolist(), best[j].tolist())
        ]
        lists.append(Candidates(items, text=text, mask=j))
    return lists[0] if len(lists) == 1 else MaskFills(lists, text=text)


def _marks_word_starts(tok: Any) -> bool:
    """Whether the tokenizer's pieces mark where a word starts (byte-level BPE's ``Ġ``,
    sentencepiece's ``▁``) rather than where one continues (WordPiece's ``##``)."""
    pieces = tok.convert_ids_to_tokens(tok("a b", add_special_tokens=False)["input_ids"])
    return any(str(p)[:1] in _WORD_START for p in pieces)


def _candidate(
    tok: Any,
    token_id: int,
    probability: float,
    text: str,
    start: int,
    end: int,
    marks_starts: bool,
) -> Candidate:
    """``token_id`` written into ``text[start:end]`` the way its tokenizer joins pieces."""
    piece = str(tok.convert_ids_to_tokens(token_id))
    before, after = text[:start], text[end:]
    if piece.startswith("##"):  # WordPiece: continues the word before the mask
        surface, glue, shown = piece[2:], True, piece
    else:
        decoded = tok.decode([token_id])
        surface = decoded.strip()
        shown = surface or piece
        # byte-level BPE / sentencepiece mark a word's start; a piece without the mark
        # continues the word before it
        glue = marks_starts and piece[:1] not in _WORD_START
        if not glue and decoded[:1] == " " and before and not before[-1].isspace():
            surface = " " + surface
    if glue:
        before = before.rstrip()
    return Candidate(
        token=shown, token_id=token_id, probability=probability, text=before + surface + after
    )
