"""``load_model`` and ``Model``: a transformers model (a sequence classifier, a causal language
model, a masked language model or an image classifier: ``Model.task``), its tokenizer (or image
processor), label names and device.

What differs by task lives in a room of its own: generation, causal-LM data and training in
``labkit.lm``; fill-mask and masked-LM training in ``labkit.mlm``; images in ``labkit.vision``;
models built from a config or by hand in ``labkit.scratch``. This module only says which task a
model has and routes to it.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, InputError, ModelLoadError
from labkit._utils.device import pick_device, pick_dtype
from labkit._utils.hub import hub_unreachable
from labkit._utils.quiet import hf_quiet
from labkit._utils.seed import seeded
from labkit._utils.text import as_texts, encode, model_max_length, path_kind, short
from labkit.compress.heads import PRUNED_HEADS
from labkit.data import label_ids, labelled_split
from labkit.prediction import Prediction

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from labkit.data import TextData
    from labkit.lm.generate import Generation
    from labkit.lm.stream import GenerationStream
    from labkit.metrics import Metrics

__all__ = ["TASKS", "Model", "Prediction", "load_model"]

# what a Model can be
TASKS = ("classification", "causal-lm", "masked-lm", "image-classification")
# the tasks whose models name classes (labels=) and predict / evaluate as classifiers
CLASSIFIER_TASKS = ("classification", "image-classification")


_PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass(eq=False)
class Model:
    """A Hugging Face model with what labkit needs around it.

    ``hf`` is the ``transformers`` model (a ``peft.PeftModel`` when a LoRA adapter is attached),
    ``tokenizer`` its tokenizer (an image classifier's image processor: also ``processor``),
    ``task`` what it does (``"classification"``, ``"causal-lm"``, ``"masked-lm"`` or
    ``"image-classification"``), ``labels`` the class names in id order (empty for a language
    model),
    ``device`` where the weights live, ``name`` where it came from. Build one with
    :func:`load_model`, or wrap a model you already have with ``Model.wrap(hf_model,
    tokenizer)``.
    """

    hf: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    labels: tuple[str, ...]
    device: torch.device
    name: str
    max_length: int = 512
    task: str = "classification"
    # what runs the forward pass: "torch", "torch-int8" (labkit.quantize) or "onnxruntime" (a
    # folder labkit.export_onnx wrote); see require_backend
    backend: str = "torch"
    _training: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # held while explain holds half-precision weights in float32, and by finetune while it
    # takes _training: a run never starts on weights that are about to be swapped back
    _dtype_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def wrap(
        cls,
        hf: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        labels: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Model:
        """Wrap an already loaded HF model (weights stay on their device).

        The task comes from the model's class: a ``...ForCausalLM`` / ``...LMHeadModel`` is a
        causal LM, a ``...ForMaskedLM`` a masked LM, a ``...ForImageClassification`` an image
        classifier (``tokenizer`` is then its image processor), anything else a classifier.
        """
        config = hf.config
        task = task_of_module(hf)
        if task in ("causal-lm", "masked-lm"):
            if labels:
                kind = "a causal" if task == "causal-lm" else "a masked"
                raise ConfigError(
                    f"{type(_unwrap(hf)).__name__} is {kind} language model: it has no "
                    "labels. Load it with labkit.load_model(..., labels=[...]) to get a "
                    "classifier head instead."
                )
            _ensure_pad_token(hf, tokenizer)
            return cls(
                hf=hf,
                tokenizer=tokenizer,
                labels=(),
                device=next(hf.parameters()).device,
                name=name or getattr(config, "_name_or_path", "") or "model",
                max_length=model_max_length(tokenizer, config),
                task=task,
            )
        if labels is None:
            id2label: dict[Any, str] = dict(config.id2label or {})
            labels = [id2label[i] for i in range(int(config.num_labels or 0))]
        elif len(labels) != config.num_labels:
            raise ConfigError(
                f"labels has {len(labels)} names but the model has {config.num_labels} outputs."
            )
        device = next(hf.parameters()).device
        if task == "image-classification":
            return cls(
                hf=hf,
                tokenizer=tokenizer,
                labels=tuple(str(x) for x in labels),
                device=device,
                name=name or getattr(config, "_name_or_path", "") or "model",
                task=task,
            )
        _ensure_pad_token(hf, tokenizer)
        return cls(
            hf=hf,
            tokenizer=tokenizer,
            labels=tuple(str(x) for x in labels),
            device=device,
            name=name or getattr(config, "_name_or_path", "") or "model",
            max_length=model_max_length(tokenizer, config),
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Model:
        """An independent copy (weights and tokenizer copied; not training)."""
        import copy

        return Model(
            hf=copy.deepcopy(self.hf, memo),
            tokenizer=copy.deepcopy(self.tokenizer, memo),
            labels=self.labels,
            device=self.device,
            name=self.name,
            max_length=self.max_length,
            task=self.task,
            backend=self.backend,
        )

    # -- facts ---------------------------------------------------------------------------------
    @property
    def processor(self) -> Any:
        """What turns inputs into the model's tensors: the tokenizer, or an image classifier's
        image processor."""
        return self.tokenizer

    @property
    def lora(self) -> bool:
        """Whether a peft adapter (LoRA or similar) is attached."""
        return hasattr(self.hf, "peft_config")

    @property
    def base(self) -> PreTrainedModel:
        """The underlying transformers model (inside the peft wrapper when there is one)."""
        hf: Any = self.hf
        return hf.get_base_model() if self.lora else hf

    @property
    def num_parameters(self) -> int:
        # an int8 copy packs its Linear weights outside parameters(), an ONNX graph has none:
        # each records the count it was made from
        counted = getattr(self.hf, "labkit_num_parameters", None)
        if isinstance(counted, int):
            return counted
        return sum(p.numel() for p in self.hf.parameters())

    @property
    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.hf.parameters() if p.requires_grad)

    @property
    def is_training(self) -> bool:
        """True while a :class:`labkit.Run` trains this model."""
        return self._training.locked()

    # -- the model's own locks, for labkit's training engine and inspection passes ------------
    def claim_for_training(self) -> bool:
        """Take the model for one training run: False when another run has it. Waits for an
        inspection that holds the weights in another dtype (:meth:`weights_held`) to finish."""
        with self._dtype_guard:
            return self._training.acquire(blocking=False)

    def release_training(self) -> None:
        """Give the model back after the run that claimed it (:meth:`claim_for_training`)."""
        self._training.release()

    @contextmanager
    def weights_held(self) -> Iterator[None]:
        """While open, no training run can start on this model (it may swap its weights)."""
        with self._dtype_guard:
            yield

    @property
    def dtype(self) -> torch.dtype:
        import torch

        first = next(self.hf.parameters(), None)
        return first.dtype if first is not None else torch.float32

    def require_backend(self, what: str, *, gradients: bool = False) -> None:
        """Raise ``InputError`` when ``what`` needs the torch model this one is not.

        An ONNX model only predicts and evaluates; an int8 copy also shows attention, but has no
        gradients (training, attributions, head importance need float weights).
        """
        if self.backend == "torch" or (self.backend == "torch-int8" and not gradients):
            return
        if self.backend == "onnxruntime":
            found = "an ONNX graph run by onnxruntime (it predicts and evaluates only)"
        else:
            found = "an int8 copy (labkit.quantize): its packed weights have no gradients"
        raise InputError(
            f"{what} needs the model's float torch weights, but {self.name!r} is {found}. "
            f"Use the float model it was made from for {what}."
        )

    # -- inference -----------------------------------------------------------------------------
    def require_task(self, task: str, what: str) -> None:
        """Raise ``InputError`` naming this model's task when ``what`` needs another one."""
        if self.task == task:
            return
        hint = {
            "classification": "Load a classifier with labkit.load_model(name, labels=[...]).",
            "causal-lm": "Load a causal language model with labkit.load_model(name, "
            "task='causal-lm') (labkit.demo.lm() is the offline one).",
            "masked-lm": "Load a masked language model with labkit.load_model(name, "
            "task='masked-lm') (labkit.demo.mlm() is the offline one).",
            "image-classification": "Load an image classifier with labkit.load_model(name, "
            "task='image-classification'), or build one with labkit.from_config "
            "(labkit.demo.vit() is the offline one).",
        }.get(task, "")
        raise InputError(
            f"{what} needs a {task} model, but {self.name!r} is a {self.task} model. {hint}"
        )

    def generate(
        self,
        prompts: str | Iterable[str],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        chat: bool | str = "auto",
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        batch_size: int = 8,
        on_token: Any = None,
        cancel: Any = None,
    ) -> list[Generation]:
        """Continue each prompt; one :class:`labkit.lm.Generation` per prompt, in order.

        Greedy when ``temperature=0`` (the ids equal ``hf.generate(do_sample=False)``'s), else
        sampled with ``temperature`` and nucleus ``top_p`` (``seed`` makes it repeatable).
        ``chat="auto"`` wraps each prompt in the tokenizer's chat template when it has one
        (instruct models); True requires one, False never uses it. Generation ends at the
        model's end-of-sequence token, at ``max_new_tokens``, or just before the first of the
        ``stop`` strings. ``on_token(row, text_piece)`` is called once per token as it is made
        (``""`` while text is held back: half a character, or what may become a stop string),
        so a row's pieces join to its final text (a streaming view or a terminal uses it);
        once ``cancel`` (a ``threading.Event``) is set, the next token is every row's last.
        See :meth:`stream` for a live view with a Stop button.
        """
        self.require_task("causal-lm", "generate")
        from labkit.lm.generate import generate

        return generate(
            self,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            chat=chat,
            stop=stop,
            seed=seed,
            batch_size=batch_size,
            on_token=on_token,
            cancel=cancel,
        )

    def fill_mask(self, text: str, *, top_k: int = 5) -> Any:
        """The ``top_k`` most likely tokens for each mask in ``text`` (a masked LM's).

        ``text`` holds the tokenizer's mask token (``model.tokenizer.mask_token``; ``[MASK]`` is
        accepted for any tokenizer). One mask: a list of ``top_k`` candidates (``token``,
        ``probability``, ``text`` with the mask filled), most likely first; several masks: one
        such list per mask, in order. See :func:`labkit.mlm.fill_mask`.
        """
        self.require_task("masked-lm", "fill_mask")
        from labkit.mlm.fill import fill_mask

        return fill_mask(self, text, top_k=top_k)

    def stream(self, prompt: str, **settings: Any) -> GenerationStream:
        """Generate on a background thread, shown live: tokens appear as they are made.

        Returns a :class:`labkit.lm.GenerationStream` at once (``.stop()``, ``.wait()``,
        ``.generation``); in a notebook it displays as a live view with a Stop button whose
        final text stays in the saved notebook. ``settings`` are :meth:`generate`'s.
        """
        self.require_task("causal-lm", "stream")
        from labkit.lm.stream import stream

        return stream(self, prompt, **settings)

    def encode(
        self, texts: Sequence[str], *, pairs: Sequence[str] | None = None, stacklevel: int = 4
    ) -> dict[str, torch.Tensor]:
        """Tokenize ``texts`` (truncated to ``max_length``, one warning) onto the model's device."""
        enc = encode(
            self.tokenizer, texts, pairs=pairs, max_length=self.max_length, stacklevel=stacklevel
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def logits(self, texts: str | Iterable[str] | Any, *, batch_size: int = 32) -> torch.Tensor:
        """Raw scores, float32 [N, num_labels], in input order.

        Texts are tokenized once, sorted by token count and padded per batch, so a batch holds
        texts of similar length and little compute is spent on padding. An image classifier
        takes images (see :func:`labkit.vision.logits`).
        """
        import torch

        from labkit._utils.text import pad_batch

        if self.task == "image-classification":
            from labkit.vision.predict import logits as image_logits

            return image_logits(self, texts, batch_size=batch_size)
        self.require_task("classification", "logits")
        items = as_texts(texts)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        enc = encode(
            self.tokenizer,
            items,
            max_length=self.max_length,
            padding=False,
            return_tensors=None,
            stacklevel=4,
        )
        rows = [{k: enc[k][i] for k in enc} for i in range(len(items))]
        order = sorted(range(len(items)), key=lambda i: len(rows[i]["input_ids"]))
        out = torch.empty(len(items), len(self.labels), dtype=torch.float32)
        was_training = self.hf.training
        self.hf.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    batch = pad_batch(self.tokenizer, [rows[i] for i in idx])
                    logits = self.hf(**{k: v.to(self.device) for k, v in batch.items()}).logits
                    out[idx] = logits.float().cpu()
        finally:
            self.hf.train(was_training)
        return out

    def predict(
        self, texts: str | Iterable[str] | Any, *, batch_size: int = 32
    ) -> list[Prediction]:
        """One :class:`Prediction` per text, in input order.

        ``texts`` is a list of strings (a single string counts as a list of one). Texts longer
        than ``max_length`` tokens are truncated, with one warning per call. An image classifier
        takes one image or a list of them (PIL images, arrays [H, W] / [H, W, C], tensors [C, H,
        W], or files): see :func:`labkit.vision.predict`.
        """
        if self.task == "image-classification":
            from labkit.vision.predict import predict as predict_images

            return predict_images(self, texts, batch_size=batch_size)
        self.require_task("classification", "predict")
        items = as_texts(texts)
        probs = self.logits(items, batch_size=batch_size).softmax(-1).tolist()
        out = []
        for text, row in zip(items, probs):
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                Prediction(
                    text=text,
                    label=self.labels[best],
                    probs={name: float(p) for name, p in zip(self.labels, row)},
                )
            )
        return out

    def evaluate(
        self, data: TextData | Any, *, split: str | None = None, batch_size: int = 64
    ) -> Metrics | Any:
        """For a causal LM: loss and perplexity on its data (see ``labkit.lm.evaluate_lm``); for a
        masked LM: loss, perplexity and masked-token accuracy on text whose masks are the same
        at every call (``labkit.mlm.evaluate_mlm``).

        For a classifier: accuracy, macro precision/recall/F1, confusion matrix and report on
        labelled data (images for an image classifier: ``labkit.vision.evaluate``).

        ``data`` is a :class:`labkit.TextData` (its ``test`` split, else ``validation``; or
        ``split=``) or a ``datasets.Dataset`` with ``text`` and ``label`` columns.
        """
        import torch

        from labkit.metrics import compute_metrics

        if self.task == "causal-lm":
            from labkit.lm.evaluate import evaluate_lm

            return evaluate_lm(self, data, split=split, batch_size=batch_size)
        if self.task == "masked-lm":
            from labkit.mlm.evaluate import evaluate_mlm

            return evaluate_mlm(self, data, split=split, batch_size=batch_size)
        if self.task == "image-classification":
            from labkit.vision.predict import evaluate as evaluate_images

            return evaluate_images(self, data, split=split, batch_size=batch_size)
        dataset, names = labelled_split(data, split)
        ids = label_ids(self.labels, names, dataset["label"])
        logits = self.logits(dataset["text"], batch_size=batch_size)
        target = torch.tensor(ids, dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(logits, target).item()
        return compute_metrics(ids, logits.argmax(-1).tolist(), self.labels, loss=loss)

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lora = ", LoRA" if self.lora else ""
        backend = "" if self.backend == "torch" else f", backend={self.backend!r}"
        what = f"labels={list(self.labels)}" if self.labels else f"task={self.task!r}"
        return (
            f"Model({self.name!r}, {what}, device={self.device}, "
            f"{self.num_parameters / 1e6:.1f}M params{lora}{backend})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.summary import model_html

        return model_html(self)


def _unwrap(hf: Any) -> Any:
    return hf.get_base_model() if hasattr(hf, "get_base_model") else hf


def _is_causal_lm_class(name: str) -> bool:
    return name.endswith(("ForCausalLM", "LMHeadModel")) and not name.startswith(
        ("Bert", "Roberta", "XLMRoberta", "Camembert", "Electra", "Ernie")
    )


def task_of_module(hf: Any) -> str:
    """ "causal-lm" for a ``...ForCausalLM`` / ``...LMHeadModel``, "masked-lm" for a
    ``...ForMaskedLM``, "image-classification" for a ``...ForImageClassification`` (or a module
    that says so in ``labkit_task``: ``labkit.scratch``), else "classification"."""
    inner = _unwrap(hf)
    declared = getattr(inner, "labkit_task", None)
    if isinstance(declared, str) and declared in TASKS:
        return declared
    cls = type(inner).__name__
    if cls.endswith("ForMaskedLM"):
        return "masked-lm"
    if cls.endswith("ForImageClassification"):
        return "image-classification"
    return "causal-lm" if _is_causal_lm_class(cls) else "classification"


def _is_image_config(config: Any) -> bool:
    """A vision model's config: it sizes images (``image_size``, ``num_channels``) and has no
    vocabulary."""
    return (
        config is not None
        and hasattr(config, "num_channels")
        and hasattr(config, "image_size")
        and getattr(config, "vocab_size", None) is None
    )


def resolve_task(task: str, config: Any, labels: Sequence[str] | None) -> str:
    """The task ``load_model`` loads: ``task`` itself, or for "auto" the one the checkpoint is.

    "auto": a vision config (ViT, DeiT, ...) -> image-classification; ``labels`` given ->
    classification; a checkpoint saved as a causal LM (``config.architectures``) -> causal-lm;
    anything else (an encoder, a classifier) -> classification, as before other tasks were
    known: a BERT saved as ``BertForMaskedLM`` loads as a masked LM only with
    ``task="masked-lm"``.
    """
    if task not in (*TASKS, "auto"):
        raise ConfigError(f"task must be 'auto' or one of {', '.join(TASKS)}, got {task!r}.")
    if task in ("causal-lm", "masked-lm") and labels is not None:
        raise ConfigError(
            f"labels= names a classifier's classes, but task={task!r} loads a language "
            "model: drop labels=, or pass task='classification'."
        )
    if task != "auto":
        return task
    if _is_image_config(config):
        return "image-classification"
    if labels is not None:
        return "classification"
    archs = [str(a) for a in (getattr(config, "architectures", None) or [])]
    if archs and all(_is_causal_lm_class(a) for a in archs):
        return "causal-lm"
    return "classification"


def _ensure_pad_token(hf: Any, tokenizer: Any) -> None:
    """Decoder tokenizers (GPT-2, Llama) often lack a pad token; batching needs one."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    if getattr(hf.config, "pad_token_id", None) is None:
        hf.config.pad_token_id = tokenizer.pad_token_id


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~", "\\"))
        or os.sep in name.strip("/").replace("/", "", 1)
        or not _HUB_NAME.match(name)
        or Path(name).suffix in {".json", ".safetensors", ".bin"}
    )


def _check_local_weights(folder: Path, allow_pickle: bool) -> None:
    files = {p.name for p in folder.iterdir()}
    if any(f.endswith(".safetensors") or f == "model.safetensors.index.json" for f in files):
        return
    pickles = sorted(
        f for f in files if f in _PICKLE_WEIGHTS or f.endswith((".bin", ".pt", ".pth"))
    )
    if pickles and not allow_pickle:
        raise ModelLoadError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}), which can run code when "
            "loaded. Convert them to safetensors, or pass allow_pickle=True if you trust the source."
        )
    if not pickles and "config.json" not in files:
        raise ModelLoadError(
            f"{folder} is not a model folder: no config.json and no weights "
            f"(found: {', '.join(sorted(files)[:8]) or 'nothing'})."
        )


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    task: str = "auto",
    labels: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    seed: int | None = None,
) -> Model:
    """Load a sequence classifier, a causal or masked language model, or an image classifier
    and its tokenizer (image processor) onto the best device.

    ``name_or_path`` is a hub name (``"distilbert-base-uncased"``, ``"gpt2"``,
    ``"google/vit-base-patch16-224"``) or a local folder. ``task`` is ``"classification"``,
    ``"causal-lm"``, ``"masked-lm"``, ``"image-classification"`` or ``"auto"``: a vision
    checkpoint loads as an image classifier, with ``labels`` a classifier, else a checkpoint
    saved as a causal LM (GPT-2, Llama, ...) loads as one, anything else as a classifier (a
    masked LM only when asked: ``task="masked-lm"``); ``Model.task`` says which. ``labels``
    names the classes (a new classification head is made when the checkpoint has another number
    of outputs); by default the checkpoint's own labels are used. ``device="auto"`` picks cuda,
    then mps, then cpu; ``dtype="auto"`` keeps float32 weights (finetuning still computes in bf16
    on GPUs that have it); ``dtype="bfloat16"`` halves the memory of a large model.
    Only safetensors weights load unless ``allow_pickle=True``; custom model code from the hub
    runs only with ``trust_remote_code=True``. ``seed`` makes a newly made head reproducible
    (without touching the global random state).
    """
    if not isinstance(name_or_path, str | os.PathLike) or not str(name_or_path).strip():
        raise InputError(f"name_or_path must be a hub name or a folder, got {name_or_path!r}.")
    resolve_task(task, None, labels)  # a bad task, or labels for a causal LM, fail here
    if labels is not None:
        labels = as_texts(labels, what="labels")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"labels has duplicates: {labels}.")
    source = os.path.expanduser(os.fspath(name_or_path))
    local = Path(source)
    kind = path_kind(local)
    if kind == "dir":
        from labkit._utils.checkpoint import read_meta

        meta = read_meta(local)
        if meta.get("format") == "onnx":  # a folder labkit.export_onnx wrote
            from labkit.compress.onnx_backend import open_onnx

            return Model(**open_onnx(local, labels=labels, device=device, meta=meta))
        if task == "auto" and labels is None and meta.get("task") in TASKS:
            task = str(meta["task"])  # what labkit saved it as (a masked LM's checkpoint)
        _check_local_weights(local, allow_pickle)
        if (local / "adapter_config.json").exists():
            return _load_adapter(
                local,
                task=task,
                labels=labels,
                device=device,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                allow_pickle=allow_pickle,
            )
    elif kind == "file":
        raise ModelLoadError(
            f"{short(source)} is a file; pass the folder that holds config.json and the weights."
        )
    elif _looks_like_path(source):
        raise ModelLoadError(
            f"no model folder at {short(source)!r} (it does not exist). Check the path, "
            "or give a hub name such as 'distilbert-base-uncased'."
        )

    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        config = AutoConfig.from_pretrained(source, **common)
        chosen = resolve_task(task, config, labels)
        if chosen == "image-classification":
            from labkit.vision.load import load_image_model

            hf_image, processor = load_image_model(
                source,
                config=config,
                labels=labels,
                dtype=torch_dtype,
                allow_pickle=allow_pickle,
                seed=seed,
                **common,
            )
            hf_image.to(dev)
            hf_image.eval()
            return Model.wrap(hf_image, processor, labels=labels, name=source)
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        if chosen == "causal-lm":
            with hf_quiet():
                lm: Any = AutoModelForCausalLM.from_pretrained(
                    source,
                    config=config,
                    dtype=torch_dtype,
                    use_safetensors=None if allow_pickle else True,
                    **common,
                )
            lm.to(dev)
            lm.eval()
            return Model.wrap(lm, tokenizer, name=source)
        if chosen == "masked-lm":
            from labkit.mlm.load import load_masked_lm

            mlm = load_masked_lm(
                source,
                config=config,
                dtype=torch_dtype,
                allow_pickle=allow_pickle,
                seed=seed,
                **common,
            )
            mlm.to(dev)
            mlm.eval()
            return Model.wrap(mlm, tokenizer, name=source)
        kwargs: dict[str, Any] = {}
        if labels is not None:
            kwargs = {
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": {n: i for i, n in enumerate(labels)},
            }
            config.update(kwargs)
        # A new head for the given labels is expected: HF's "newly initialized" notice and its
        # per-tensor loading bar are noise in a notebook or a terminal.
        with hf_quiet(), seeded(seed):
            load: Any = AutoModelForSequenceClassification.from_pretrained
            if getattr(config, PRUNED_HEADS, None):  # saved after labkit.prune_heads
                from labkit.compress.heads import load_pruned as load
            hf = load(
                source,
                config=config,
                dtype=torch_dtype,
                use_safetensors=None if allow_pickle else True,
                ignore_mismatched_sizes=labels is not None,
                **common,
            )
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(source, exc, kind == "dir", allow_pickle) from exc
    hf.to(dev)
    hf.eval()
    return Model.wrap(hf, tokenizer, labels=labels, name=source)


def _load_error(
    source: str, exc: BaseException, is_local: bool, allow_pickle: bool
) -> ModelLoadError:
    text = str(exc)
    if "trust_remote_code" in text:
        return ModelLoadError(
            f"{short(source)!r} needs custom code from its repository to load. Pass "
            "trust_remote_code=True only if you trust that code."
        )
    if "safetensors" in text.lower() and not allow_pickle:
        return ModelLoadError(
            f"{short(source)!r} has no safetensors weights, only pickle ones that can "
            "run code when loaded. Pass allow_pickle=True if you trust the source."
        )
    if is_local and ("Unrecognized model" in text or "does not appear to have" in text):
        return ModelLoadError(
            f"could not load {short(source)!r}: {short(text.splitlines()[0], 300)}"
        )
    if not is_local and hub_unreachable(exc):
        return ModelLoadError(
            f"could not load {short(source)!r}: the Hugging Face hub is unreachable from here (offline "
            "or blocked), and the model is not in the local cache. Use a local folder, or "
            "labkit.demo.model() for the offline default."
        )
    if not is_local:
        return ModelLoadError(
            f"could not load {short(source)!r} from the Hugging Face hub: "
            f"{short(text.splitlines()[0], 300) if text else type(exc).__name__}. Check the "
            "name (e.g. 'distilbert-base-uncased') or pass a local folder."
        )
    return ModelLoadError(
        f"could not load the model in {short(source)!r}: {short(text.splitlines()[0], 300)}"
    )


def _load_adapter(
    folder: Path,
    *,
    task: str,
    labels: Sequence[str] | None,
    device: str | torch.device,
    dtype: str | torch.dtype,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> Model:
    """A saved peft adapter folder: load its base model, then attach the adapter."""
    import json

    from peft import PeftModel
    from transformers import AutoTokenizer

    cfg = json.loads((folder / "adapter_config.json").read_text())
    base_name = cfg.get("base_model_name_or_path")
    if not base_name:
        raise ModelLoadError(
            f"{folder}/adapter_config.json names no base model "
            "(base_model_name_or_path); load the base and attach it with peft."
        )
    from labkit._utils.checkpoint import read_labels

    if task == "auto" and labels is None and cfg.get("task_type") == "CAUSAL_LM":
        task = "causal-lm"
    base = load_model(
        base_name,
        task=task,
        labels=None
        if task == "causal-lm"
        else (labels if labels is not None else read_labels(folder)),
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        seed=0,
    )
    with warnings.catch_warnings():  # peft's own call of a transformers name it deprecates
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.* is deprecated", category=FutureWarning
        )
        hf = PeftModel.from_pretrained(base.hf, str(folder))
    tokenizer = (
        AutoTokenizer.from_pretrained(str(folder))
        if (folder / "tokenizer_config.json").exists()
        else base.tokenizer
    )
    wrapped: Any = hf.to(base.device)  # a PeftModel, which Model holds as its hf
    return Model.wrap(wrapped, tokenizer, labels=base.labels or None, name=str(folder))
