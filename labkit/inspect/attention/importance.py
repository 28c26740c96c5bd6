"""Head importance by gradient (Michel, Levy and Neubig, 2019, "Are Sixteen Heads Really Better
than One?").

Each head's output is multiplied by a gate xi = 1 placed before the layer's output projection;
the importance of a head is the mean over examples of |dL/dxi| (L: a classifier's
cross-entropy of the true label, a causal LM's loss of the text), the first-order change
of the loss if the head were removed. The paper normalises the scores of each layer by their L2
norm (``normalize=True``). The gates are forward pre-hooks, registered inside a context manager
and removed in ``finally``; the model's weights and gradients are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import ConfigError, InputError
from labkit.compress.heads import kept_heads
from labkit.data import label_ids, labelled_split
from labkit.inspect._checks import check_model, dims

if TYPE_CHECKING:
    from labkit.model import Model

__all__ = ["HeadImportance", "head_importance"]

# The projection that mixes the heads back together, per architecture family.
_OUT_PROJ = re.compile(
    r"\.(\d+)\.(attention\.output\.dense|attention\.out_lin|attn\.c_proj|self_attn\.o_proj|"
    r"self_attention\.dense|attention\.dense|attn\.out_proj)$"
)


@dataclass(frozen=True, eq=False)
class HeadImportance:
    """``scores`` float32 [layers, heads]: importance of each head (larger = the loss depends on
    it more), over ``examples`` labelled texts; normalised per layer when ``normalized``."""

    scores: np.ndarray
    model_name: str
    examples: int
    normalized: bool

    def ranked(self, k: int | None = None) -> list[tuple[int, int, float]]:
        """(layer, head, score) of the ``k`` most important heads (all by default)."""
        order = np.argsort(-self.scores, axis=None, kind="stable")
        if k is not None:
            order = order[: max(0, int(k))]
        n = self.scores.shape[1]
        return [(int(i // n), int(i % n), float(self.scores.flat[i])) for i in order]

    def __repr__(self) -> str:
        layer, head, score = self.ranked(1)[0]
        return (
            f"HeadImportance({self.model_name!r}, {self.scores.shape[0]} layers x "
            f"{self.scores.shape[1]} heads, {self.examples} examples, top: layer {layer} "
            f"head {head} = {score:.4f})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.attention import importance_html

        return importance_html(self)


def _out_projections(hf: Any) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for name, module in hf.named_modules():
        match = _OUT_PROJ.search(name)
        if match:
            found.setdefault(int(match.group(1)), module)
    return found


@contextmanager
def _gates(
    modules: dict[int, Any],
    num_heads: int,
    xi: list[Any],
    kept: list[tuple[int, ...]] | None = None,
) -> Iterator[None]:
    """Multiply each head's output by ``xi[0][layer]`` [B, H] during the block. ``kept``: the
    original numbers of the heads each layer has (fewer than ``num_heads`` once pruned; None:
    all of them)."""
    handles = []

    def gate(layer: int) -> Any:
        present = list(range(num_heads)) if kept is None else list(kept[layer])
        n = len(present)
        every = n == num_heads

        def hook(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            x = args[0]
            b, t, width = x.shape
            heads = x.view(b, t, n, width // n)
            g = xi[0][layer] if every else xi[0][layer][:, present]
            gated = heads * g[:, None, :, None].to(x.dtype)
            return (gated.view(b, t, width), *args[1:])

        return hook

    try:
        for layer, module in modules.items():
            handles.append(module.register_forward_pre_hook(gate(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()


Batch = tuple[int, dict[str, Any], Callable[[Any], Any]]  # (rows, model inputs, summed loss)


def _labelled_batches(
    model: Model, data: Any, split: str | None, max_examples: int, batch_size: int
) -> tuple[int, Iterator[Batch]]:
    """A classifier's batches: cross-entropy of the true labels, summed over the batch."""
    import torch

    dataset, names = labelled_split(data, split)
    n = min(len(dataset), max_examples)
    if n == 0:
        raise InputError("the data has no rows: head importance needs labelled examples.")
    texts = list(dataset["text"][:n])
    labels = label_ids(model.labels, names, dataset["label"][:n])

    def batches() -> Iterator[Batch]:
        for start in range(0, n, batch_size):
            chunk = texts[start : start + batch_size]
            target = torch.tensor(labels[start : start + batch_size], device=model.device)

            def loss(logits: Any, target: Any = target) -> Any:
                return torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")

            yield len(chunk), dict(model.encode(chunk, stacklevel=5)), loss

    return n, batches()


def _lm_batches(
    model: Model, data: Any, split: str | None, max_examples: int, batch_size: int
) -> tuple[int, Iterator[Batch]]:
    """A causal LM's batches: each text's LM loss (mean negative log-likelihood of its learned
    tokens, as finetuning and ``Model.evaluate`` count them), summed over the batch."""

    from labkit.lm.evaluate import _LOGITS_PER_PASS, _split_of
    from labkit.lm.train import CausalLMCollator, summed_token_loss, token_rows

    if isinstance(data, list | tuple) and all(isinstance(x, str) for x in data):
        from datasets import Dataset

        data = Dataset.from_dict({"text": list(data)})
    kind, dataset, _ = _split_of(data, split)
    n = min(len(dataset), max_examples)
    if n == 0:
        raise InputError("the data has no rows: head importance needs texts to score.")
    rows = token_rows(model, kind, dataset.select(range(n)), model.max_length)
    pad = model.tokenizer.pad_token_id
    collate = CausalLMCollator(pad if pad is not None else 0)
    vocab = int(model.base.get_output_embeddings().weight.shape[0])

    def loss(logits: Any, *, labels: Any) -> Any:
        sums = summed_token_loss(logits, labels)
        return (sums[:, 0] / sums[:, 1].clamp_min(1)).sum()

    def batches() -> Iterator[Batch]:
        start = 0
        while start < n:
            take = 1  # grow while the batch's logits stay within one evaluation pass's
            while (
                take < batch_size
                and start + take < n
                and (take + 1)
                * max(len(r["input_ids"]) for r in rows[start : start + take + 1])
                * vocab
                <= _LOGITS_PER_PASS
            ):
                take += 1
            enc = collate(rows[start : start + take])
            inputs = {k: v.to(model.device) for k, v in enc.items() if k != "labels"}
            yield take, inputs, partial(loss, labels=enc["labels"])
            start += take

    return n, batches()


def head_importance(
    model: Model,
    data: Any,
    *,
    split: str | None = None,
    max_examples: int = 256,
    batch_size: int = 16,
    normalize: bool = True,
) -> HeadImportance:
    """Gradient-based importance of every head on examples (Michel et al. 2019).

    For a classifier, ``data`` is a :class:`labkit.TextData` (its test split, else validation,
    or ``split=``) or a ``datasets.Dataset`` with ``text`` and ``label`` columns, and the loss
    is the cross-entropy of the true labels. For a causal LM, ``data`` is
    :class:`labkit.lm.LMData`, a ``datasets.Dataset`` with a ``text`` column (or ``prompt`` and
    ``response`` columns) or a list of strings, and the loss is each text's LM loss (the mean
    negative log-likelihood of its tokens, of the response only for instructions). The first
    ``max_examples`` rows are used, ``batch_size`` at a time. Returns scores float32
    [layers, heads]; for a model pruned with ``labkit.prune_heads`` the heads keep their
    original numbers and a removed head scores 0.
    """
    import torch

    check_model(model, "head_importance", gradients=True)
    if not isinstance(max_examples, int) or max_examples < 1:
        raise ConfigError(f"max_examples must be an int >= 1, got {max_examples!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    make = _lm_batches if model.task == "causal-lm" else _labelled_batches
    n, batches = make(model, data, split, max_examples, batch_size)
    num_heads = dims(model.base.config).heads
    modules = _out_projections(model.hf)
    if not modules or num_heads < 1:
        raise InputError(
            f"head_importance does not know where the heads of {type(model.base).__name__} are "
            "merged (no attention output projection found); it supports BERT, RoBERTa, "
            "DistilBERT, GPT-2 and Llama-style models."
        )
    num_layers = max(modules) + 1
    # a pruned model (labkit.prune_heads) keeps the original numbering: removed heads score 0
    kept = kept_heads(model.base.config, num_layers, num_heads)
    total = torch.zeros(num_layers, num_heads, dtype=torch.float64)
    holder: list[Any] = [None]
    hf = model.hf
    was_training = hf.training
    hf.eval()
    try:
        with _gates(modules, num_heads, holder, kept), torch.enable_grad():
            for size, inputs, loss_of in batches:
                xi = torch.ones(
                    num_layers, size, num_heads, device=model.device, requires_grad=True
                )
                holder[0] = xi
                loss = loss_of(hf(**inputs).logits)
                (grad,) = torch.autograd.grad(loss, xi)
                total += grad.abs().sum(1).double().cpu()  # |dL/dxi| per example, then summed
    finally:
        holder[0] = None
        hf.train(was_training)
    scores = total / n
    if normalize:
        norms = scores.norm(dim=1, keepdim=True)
        scores = torch.where(norms > 0, scores / norms.clamp_min(1e-20), scores)
    return HeadImportance(
        scores=scores.float().numpy(), model_name=model.name, examples=n, normalized=normalize
    )
