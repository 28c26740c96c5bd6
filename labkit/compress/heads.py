"""Where each encoder family keeps its attention heads, and the structural cut that removes some.

A layer's heads are ``head_dim``-wide slices of its query, key and value projections' outputs,
merged back by the output projection's input. Removing head ``h`` drops rows
``h * head_dim ... (h + 1) * head_dim - 1`` of q/k/v (weights and biases) and the same columns
of the output projection (its bias stays: it was added whatever the heads said). That equals
the unpruned layer with head ``h``'s output set to zero before the output projection.

The families here compute their heads with ``view(..., -1, head_dim)`` (checked in
transformers 5: ``BertSelfAttention``, ``RobertaSelfAttention``, ``DistilBertSelfAttention``),
so a layer with fewer heads runs unchanged once its Linear layers are cut; the modules' head
counts (``num_attention_heads`` / ``all_head_size``, DistilBERT's ``n_heads`` / ``dim``) are
kept in step for code that reads them. transformers 5 removed ``PreTrainedModel.prune_heads``,
so the cut is done here, one definition shared by ``prune_heads`` and the reload of a pruned
checkpoint (``load_model`` -> :func:`load_pruned`). This module imports nothing of labkit's
but its errors, so ``labkit.model`` can use it without a cycle.

The config keeps the original ``num_attention_heads``; what was cut is recorded in
``config.labkit_pruned_heads`` (:data:`PRUNED_HEADS`) as ``{"layer": [original head
indices]}``, the numbering every labkit view (attention maps, head importance) keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError, ModelLoadError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FAMILIES",
    "PRUNED_HEADS",
    "HeadLayout",
    "LayerHeads",
    "cut_heads",
    "kept_heads",
    "layout",
    "load_pruned",
    "pruned_record",
    "record_cut",
]

# the config field the removed heads are recorded in ({"layer": [head, ...]}); a leaf's constant,
# so that load_model can read it (and call load_pruned) without importing what prunes
PRUNED_HEADS = "labkit_pruned_heads"

# model_type -> (the attribute path from the base model to its layer list, then each layer's
# attention module, its q/k/v and output projections, relative to the layer)
_SPECS: dict[str, tuple[str, str, tuple[str, str, str], str]] = {
    "bert": (
        "encoder.layer",
        "attention.self",
        ("query", "key", "value"),
        "attention.output.dense",
    ),
    "roberta": (
        "encoder.layer",
        "attention.self",
        ("query", "key", "value"),
        "attention.output.dense",
    ),
    "distilbert": (
        "transformer.layer",
        "attention",
        ("q_lin", "k_lin", "v_lin"),
        "attention.out_lin",
    ),
}
FAMILIES = tuple(_SPECS)  # MiniLM checkpoints are BERTs (model_type "bert")


@dataclass(frozen=True, eq=False)
class LayerHeads:
    """One layer's attention: the module holding the head counts and its q/k/v projections
    (attributes ``qkv`` of it), and the module holding the output projection that merges the
    heads (attribute ``out`` of ``output_parent``). The projections are read when asked for, so
    they are the current ones after a cut."""

    attention: Any
    qkv: tuple[str, str, str]
    output_parent: Any
    out: str

    @property
    def query(self) -> Any:
        return getattr(self.attention, self.qkv[0])

    @property
    def key(self) -> Any:
        return getattr(self.attention, self.qkv[1])

    @property
    def value(self) -> Any:
        return getattr(self.attention, self.qkv[2])

    @property
    def output(self) -> Any:
        return getattr(self.output_parent, self.out)


@dataclass(frozen=True, eq=False)
class HeadLayout:
    """Where the heads of one model are: ``family`` (its ``model_type``), one
    :class:`LayerHeads` per layer, the original heads per layer ``num_heads`` (from the config)
    and ``head_dim`` (features per head)."""

    family: str
    layers: tuple[LayerHeads, ...]
    num_heads: int
    head_dim: int

    def heads_in(self, layer: int) -> int:
        """Heads layer ``layer`` has now (fewer than ``num_heads`` once pruned)."""
        return int(self.layers[layer].query.out_features) // self.head_dim


def _get(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _family(hf: Any) -> str:
    return str(getattr(hf.config, "model_type", "") or type(hf).__name__)


def layout(hf: Any) -> HeadLayout:
    """The :class:`HeadLayout` of a transformers model of a known family.

    Raises ``InputError`` naming the family and the supported ones otherwise (a peft wrapper
    too: its q/k/v are LoRA layers, to be merged first).
    """
    family = _family(hf)
    if hasattr(hf, "peft_config"):
        raise InputError(
            "the model has a LoRA adapter attached: its attention projections are peft layers "
            "that cannot be cut. Merge it first (model.hf = model.hf.merge_and_unload(), or "
            "Run.export(path) and load that folder), then prune."
        )
    spec = _SPECS.get(family)
    if spec is None:
        raise InputError(
            f"labkit does not know where the attention heads of a {family!r} model are "
            f"({type(hf).__name__}); head pruning supports {', '.join(FAMILIES)} "
            "(MiniLM checkpoints are BERTs)."
        )
    layers_path, attn_path, qkv, out_path = spec
    base = hf.base_model
    parts = []
    for layer in _get(base, layers_path):
        parent, _, out = out_path.rpartition(".")
        parts.append(
            LayerHeads(
                attention=_get(layer, attn_path),
                qkv=qkv,
                output_parent=_get(layer, parent),
                out=out,
            )
        )
    head_dim = int(parts[0].attention.attention_head_size)
    hidden = int(getattr(hf.config, "hidden_size", 0) or getattr(hf.config, "dim", 0))
    return HeadLayout(
        family=family, layers=tuple(parts), num_heads=hidden // head_dim, head_dim=head_dim
    )


def pruned_record(config: Any) -> dict[int, tuple[int, ...]]:
    """The heads removed so far, per layer, in the original numbering ({} when none)."""
    raw = getattr(config, PRUNED_HEADS, None) or {}
    return {int(k): tuple(sorted(int(h) for h in v)) for k, v in dict(raw).items() if v}


def kept_heads(config: Any, num_layers: int, num_heads: int) -> list[tuple[int, ...]]:
    """Per layer, the original indices of the heads it still has (all of them when unpruned)."""
    removed = pruned_record(config)
    return [
        tuple(h for h in range(num_heads) if h not in removed.get(layer, ()))
        for layer in range(num_layers)
    ]


def record_cut(config: Any, removed: Mapping[int, Iterable[int]]) -> None:
    """Add ``removed`` ({layer: [original head indices]}) to the config's record."""
    record = {k: set(v) for k, v in pruned_record(config).items()}
    for layer, heads in removed.items():
        record.setdefault(int(layer), set()).update(int(h) for h in heads)
    setattr(
        config,
        PRUNED_HEADS,
        {str(k): sorted(v) for k, v in sorted(record.items()) if v},
    )


def _sliced(linear: Any, index: torch.Tensor, dim: int) -> Any:
    """A new Linear keeping ``index`` along ``dim`` (0: outputs, 1: inputs); same dtype and
    device, ``requires_grad`` as the original's."""
    import torch

    index = index.to(linear.weight.device)
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias
    out_features, in_features = weight.shape
    new = torch.nn.Linear(
        in_features,
        out_features,
        bias=bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias.detach() if dim == 1 else bias.detach()[index])
    new.weight.requires_grad_(linear.weight.requires_grad)
    if bias is not None:
        new.bias.requires_grad_(bias.requires_grad)
    return new


def cut_heads(layout_: HeadLayout, layer: int, heads: Iterable[int]) -> None:
    """Remove ``heads`` (indices in the layer's current numbering) from layer ``layer`` of the
    model ``layout_`` describes, in place. The caller has checked that they exist and that at least one head stays."""
    import torch

    drop = set(heads)
    if not drop:
        return
    part = layout_.layers[layer]
    now = layout_.heads_in(layer)
    d = layout_.head_dim
    index = torch.tensor(
        [h * d + j for h in range(now) if h not in drop for j in range(d)], dtype=torch.long
    )
    attn = part.attention
    for name in part.qkv:
        setattr(attn, name, _sliced(getattr(attn, name), index, 0))
    setattr(part.output_parent, part.out, _sliced(part.output, index, 1))
    kept = now - len(drop)
    # the modules' own head counts, for code that reads them (their forward does not)
    if hasattr(attn, "num_attention_heads"):
        attn.num_attention_heads = kept
        attn.all_head_size = kept * d
    if hasattr(attn, "n_heads"):
        attn.n_heads = kept
        attn.dim = kept * d


# -- reload ------------------------------------------------------------------------------------
def _weight_files(source: str, use_safetensors: bool | None, revision: str | None) -> list[str]:
    """The checkpoint's weight files (one, or the shards its index lists), local or cached."""
    import json

    from transformers.utils import cached_file

    names = ["model.safetensors", "model.safetensors.index.json"]
    if use_safetensors is not True:
        names += ["pytorch_model.bin", "pytorch_model.bin.index.json"]
    for name in names:
        local = Path(source) / name
        path: str | None
        if local.is_file():
            path = str(local)
        elif Path(source).is_dir():
            path = None
        else:
            path = cached_file(
                source,
                name,
                revision=revision,
                _raise_exceptions_for_missing_entries=False,
            )
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return [path]
        shards = sorted(set(json.loads(Path(path).read_text())["weight_map"].values()))
        return [str(Path(path).with_name(s)) for s in shards]
    raise OSError(
        f"{source} has no weights (model.safetensors) to load into the pruned model"
        + ("" if use_safetensors is not True else "; only safetensors weights load here")
        + "."
    )


def _read(path: str) -> dict[str, Any]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def load_pruned(
    source: str | os.PathLike[str],
    *,
    config: Any,
    dtype: Any,
    use_safetensors: bool | None,
    ignore_mismatched_sizes: bool,
    **common: Any,
) -> Any:
    """A classifier saved after ``labkit.prune_heads``: built from ``config``, the heads its
    ``labkit_pruned_heads`` record names cut, then the saved weights loaded.

    ``load_model`` calls it in place of ``AutoModelForSequenceClassification.from_pretrained``
    (same arguments, same return). With ``ignore_mismatched_sizes`` a tensor whose shape
    differs (a new classification head for other labels) keeps its fresh initialisation.
    """
    from transformers import AutoModelForSequenceClassification

    trust = bool(common.get("trust_remote_code", False))
    hf: Any = AutoModelForSequenceClassification.from_config(
        config, dtype=dtype, trust_remote_code=trust
    )
    record = pruned_record(config)
    lay = layout(hf)
    for layer, heads in record.items():
        if not 0 <= layer < len(lay.layers) or any(not 0 <= h < lay.num_heads for h in heads):
            raise ModelLoadError(
                f"{source}/config.json records pruned heads {dict(record)} that this "
                f"{lay.family} model ({len(lay.layers)} layers x {lay.num_heads} heads) does not "
                "have; the config was edited or belongs to another model."
            )
        cut_heads(lay, layer, heads)  # a fresh model: current numbers are the original ones
    state: dict[str, Any] = {}
    for path in _weight_files(os.fspath(source), use_safetensors, common.get("revision")):
        state.update(_read(path))
    own = hf.state_dict()
    mismatched = [k for k, v in state.items() if k in own and tuple(v.shape) != own[k].shape]
    if mismatched and not ignore_mismatched_sizes:
        raise ValueError(
            f"the weights in {source} do not fit the pruned model built from its config "
            f"({', '.join(mismatched[:4])}): the config's {list(record.items())[:3]} record does "
            "not match the saved tensors."
        )
    for k in mismatched:
        del state[k]
    result = hf.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in mismatched]
    if missing:
        raise ValueError(
            f"the weights in {source} lack {len(missing)} tensors of the model "
            f"({', '.join(missing[:4])}); it was not saved from a labkit-pruned model."
        )
    return hf
