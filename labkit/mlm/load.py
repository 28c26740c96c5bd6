"""Loading a masked language model: ``AutoModelForMaskedLM``, quietly, with any head weights the
checkpoint lacks made from a seed and named in one warning.

``labkit.load_model(source, task="masked-lm")`` calls :func:`load_masked_lm` inside its own
error handling; the tokenizer and the device are its business.
"""

from __future__ import annotations

import warnings
from typing import Any

from labkit._errors import LabkitWarning

__all__ = ["fresh_head_keys", "load_masked_lm", "output_tied"]


def load_masked_lm(
    source: str,
    *,
    config: Any,
    dtype: Any,
    allow_pickle: bool,
    seed: int | None,
    trust_remote_code: bool,
    revision: str | None,
) -> Any:
    """The ``...ForMaskedLM`` model in ``source`` (a hub name or a folder), in ``dtype``.

    A checkpoint saved as an encoder only (a ``BertModel`` such as all-MiniLM-L6-v2) has no
    masked-LM head: its decoder is tied to the word embeddings, and the rest of the head (BERT:
    a dense layer, a LayerNorm and the output bias) starts fresh, made with ``seed``. One
    ``LabkitWarning`` then names what started fresh: fill-mask answers are poor until the model
    trains on text (``labkit.finetune(model, texts)``).
    """
    from transformers import AutoModelForMaskedLM

    from labkit._utils.quiet import hf_quiet
    from labkit._utils.seed import seeded

    with hf_quiet(), seeded(seed):
        hf, info = AutoModelForMaskedLM.from_pretrained(
            source,
            config=config,
            dtype=dtype,
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            revision=revision,
            output_loading_info=True,
        )
    fresh = fresh_head_keys(info)
    if fresh:
        tied = " (its decoder is tied to the word embeddings)" if output_tied(hf) else ""
        warnings.warn(
            f"{source!r} has no masked-LM head weights for {len(fresh)} tensor(s), which start "
            f"fresh{'' if seed is None else f' (seed={seed})'}: {', '.join(fresh[:6])}"
            f"{', ...' if len(fresh) > 6 else ''}{tied}. Fill-mask answers are poor until it "
            "trains on text: labkit.finetune(model, texts).",
            LabkitWarning,
            stacklevel=4,
        )
    return hf


def fresh_head_keys(info: dict[str, Any]) -> list[str]:
    """The weights ``from_pretrained`` made fresh (its ``missing_keys``), sorted."""
    return sorted(str(k) for k in info.get("missing_keys", ()) or ())


def output_tied(hf: Any) -> bool:
    """Whether the model's output projection shares its storage with the input embeddings."""
    inner = hf.get_base_model() if hasattr(hf, "get_base_model") else hf
    out, inp = inner.get_output_embeddings(), inner.get_input_embeddings()
    if out is None or inp is None:
        return False
    return bool(out.weight.data_ptr() == inp.weight.data_ptr())
