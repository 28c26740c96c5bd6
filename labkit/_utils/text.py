"""Checking and encoding user text: one place for validation, cleaning and truncation."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError, LabkitWarning

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerBase

__all__ = [
    "as_texts",
    "clean_text",
    "encode",
    "model_max_length",
    "pad_batch",
    "path_kind",
    "short",
]

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone UTF-16 surrogates (which no tokenizer can encode) with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def short(name: object, limit: int = 120) -> str:
    """``name`` as text, cut to ``limit`` characters for error messages."""
    text = str(name)
    return text if len(text) <= limit else f"{text[: limit - 21]}… ({len(text):,} characters)"


def path_kind(path: Path) -> str:
    """ "dir", "file" or "missing" — also for names the OS cannot take as paths (too long, NUL),
    which are simply not local paths."""
    try:
        if path.is_dir():
            return "dir"
        return "file" if path.exists() else "missing"
    except (OSError, ValueError):
        return "missing"


def as_texts(texts: str | Iterable[Any], *, what: str = "texts") -> list[str]:
    """A non-empty list of strings from one string or an iterable of strings.

    Raises ``InputError`` naming the first element that is not a string.
    """
    if isinstance(texts, str):
        return [clean_text(texts)]
    if texts is None or isinstance(texts, bytes | bytearray):
        raise InputError(
            f"{what} must be a string or a list of strings, got {type(texts).__name__}."
        )
    try:
        items = list(texts)
    except TypeError:
        raise InputError(
            f"{what} must be a string or a list of strings, got {type(texts).__name__}."
        ) from None
    if not items:
        raise InputError(f"{what} is empty: pass at least one string.")
    out = []
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InputError(
                f"{what}[{i}] is {type(t).__name__} ({t!r:.60}), not a string; "
                "convert it with str() or drop it."
            )
        out.append(clean_text(t))
    return out


def model_max_length(tokenizer: PreTrainedTokenizerBase, config: Any) -> int:
    """The longest input (in tokens) both the tokenizer and the position embeddings allow."""
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            # RoBERTa-style position ids start after the padding index
            offset = (
                (getattr(config, "pad_token_id", 0) or 0) + 1
                if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}
                else 0
            )
            limits.append(value - offset)
            break
    return min(limits) if limits else 512


def _filler_id(tokenizer: PreTrainedTokenizerBase) -> int:
    for name in ("eos_token_id", "bos_token_id", "sep_token_id", "pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def _no_empty_rows(tokenizer: PreTrainedTokenizerBase, enc: BatchEncoding) -> BatchEncoding:
    """Give a text that tokenized to nothing one token (eos/bos), so no row is length 0.

    Decoder tokenizers (GPT-2, Llama without bos) add no special tokens: an empty string would
    become a zero-length input, which the models cannot take.
    """
    import torch

    ids, mask = enc["input_ids"], enc["attention_mask"]
    empty = mask.sum(-1) == 0
    if not bool(empty.any()):
        return enc
    if ids.shape[1] == 0:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        enc["input_ids"] = ids = torch.full((ids.shape[0], 1), pad, dtype=ids.dtype)
        enc["attention_mask"] = mask = torch.zeros((ids.shape[0], 1), dtype=mask.dtype)
        for key in [k for k in enc if k not in ("input_ids", "attention_mask")]:
            enc[key] = torch.zeros((ids.shape[0], 1), dtype=enc[key].dtype)
    # right padding puts the free slot first; left padding puts it last
    col = 0 if getattr(tokenizer, "padding_side", "right") == "right" else ids.shape[1] - 1
    ids[empty, col] = _filler_id(tokenizer)
    mask[empty, col] = 1
    return enc


def pad_batch(tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]]) -> BatchEncoding:
    """Pad already tokenized rows (lists of ids) into tensors; no row ends up empty."""
    return _no_empty_rows(tokenizer, tokenizer.pad(list(rows), return_tensors="pt"))


def encode(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    pairs: Sequence[str] | None = None,
    padding: bool | str = True,
    return_tensors: str | None = "pt",
    stacklevel: int = 3,
) -> BatchEncoding:
    """Tokenize with truncation to ``max_length``; warn once when any text was cut."""
    args: tuple[Any, ...] = (list(texts),) if pairs is None else (list(texts), list(pairs))
    enc = tokenizer(
        *args,
        truncation=True,
        max_length=max_length,
        padding=padding,
        return_tensors=return_tensors,
    )
    if return_tensors == "pt":
        enc = _no_empty_rows(tokenizer, enc)
    lengths = (
        enc["attention_mask"].sum(-1).tolist()
        if return_tensors == "pt"
        else [len(ids) for ids in enc["input_ids"]]
    )
    at_limit = [i for i, n in enumerate(lengths) if n >= max_length]
    if at_limit:
        # Only texts that hit the limit can have been cut; check those without truncation.
        cut = 0
        for i in at_limit:
            one = (texts[i],) if pairs is None else (texts[i], pairs[i])
            full = tokenizer(*one, truncation=False, verbose=False)["input_ids"]
            cut += len(full) > max_length
        if cut:
            warnings.warn(
                f"{cut} of {len(texts)} text(s) were longer than the model's limit of {max_length} "
                f"tokens and were truncated to it.",
                LabkitWarning,
                stacklevel=stacklevel,
            )
    return enc
