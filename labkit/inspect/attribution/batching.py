"""How attribution passes are sized and grouped: bytes a row holds, rows a pass may take, texts
grouped by length so that padding stays small, and the padded id/mask tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkit._errors import InputError
from labkit.inspect._checks import model_dims
from labkit.inspect.budget import format_bytes, refusal_limit, suggest_budget

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = [
    "CPU_TOKENS",
    "PAD_SLACK",
    "Batch",
    "bytes_per_row",
    "capped_rows",
    "check_fits",
    "length_groups",
    "pad",
    "rows_per_pass",
]

# On a CPU the work is bound by arithmetic: passes beyond ~8k tokens run no faster per token
# (measured on MiniLM: 26k-token passes were 10% slower than 2k-token ones), so they are capped.
CPU_TOKENS = 8192
# How much padding a batch may add, as a share of its real tokens (see length_groups).
PAD_SLACK = 0.15


@dataclass
class Batch:
    """Encoded examples: ``ids``, ``mask``, ``special`` [B, T]; ``targets`` [B] label ids."""

    ids: torch.Tensor
    mask: torch.Tensor
    special: torch.Tensor
    targets: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def rows_per_pass(
    model: Model, seq_len: int, budget: int, *, backward: bool = True, attentions: bool = False
) -> int:
    """How many sequences of ``seq_len`` tokens one forward (+ backward) pass may hold.

    Activations kept for the backward pass dominate: per layer and token about 10 hidden-wide
    and 2 feed-forward-wide values (measured: MiniLM with sdpa on the CPU keeps 16 hidden
    widths, 70 MiB a row at 512 tokens; the factors here are 10% above that). The eager kernel
    also keeps three [heads, T, T] maps per layer; ``attentions=True`` (attention rollout) adds
    the returned maps of every layer. A forward pass without gradients holds about two layers.
    """
    per_row = bytes_per_row(model, seq_len, backward=backward, attentions=attentions)
    return max(1, int(budget // max(per_row, 1)))


def bytes_per_row(
    model: Model, seq_len: int, *, backward: bool = True, attentions: bool = False
) -> int:
    """Estimated bytes one sequence of ``seq_len`` tokens holds in a pass (see rows_per_pass)."""
    from labkit._utils.eager import attn_implementation

    d = model_dims(model)
    hidden, layers, heads, ffn = d.hidden, d.layers, d.heads, d.ffn
    width = getattr(model.dtype, "itemsize", 4)
    eager = attentions or attn_implementation(model.hf) in (None, "eager")
    per_layer = seq_len * (10 * hidden + 2 * ffn) + (3 * heads * seq_len**2 if eager else 0)
    per_row = per_layer * (layers if backward else 2)
    if attentions:
        per_row += layers * heads * seq_len**2
    return int(width * per_row)


def check_fits(
    model: Model,
    method: str,
    seq_len: int,
    budget: int | None,
    *,
    backward: bool,
    attentions: bool = False,
    min_rows: int = 1,
) -> None:
    """Refuse, before any pass, a text whose smallest pass (``min_rows`` sequences of
    ``seq_len`` tokens) cannot fit the memory limit.

    The limit is ``budget`` when the user gave one, else half the memory available now (the
    automatic batch budget is smaller, but it only sizes batches: one row over it still runs).
    """

    def need(tokens: int) -> int:
        return min_rows * bytes_per_row(model, tokens, backward=backward, attentions=attentions)

    limit = budget if budget is not None else refusal_limit(model.device)
    needed = need(seq_len)
    if needed <= limit:
        return
    fit = seq_len
    while fit > 2 and need(fit) > limit:
        fit = fit * 3 // 4
    whose = "memory_budget" if budget is not None else "half the memory available now"
    raise InputError(
        f"{method.replace('_', ' ')} on {seq_len} tokens would need about "
        f"{format_bytes(needed)} for its smallest pass ({min_rows} sequence(s) of "
        f"{seq_len} tokens through {model_dims(model).layers} layers), over {whose} of "
        f"{format_bytes(limit)}. To fit: shorten the text to about {fit} tokens, run on a GPU, "
        f"or raise the budget with memory_budget='{suggest_budget(needed)}' if the machine "
        "has that much free memory."
    )


def length_groups(
    lengths: Sequence[int], fits: Callable[[int, int], bool], *, slack: float = PAD_SLACK
) -> list[list[int]]:
    """Indices grouped into passes: sorted by length, each group as large as ``fits(rows,
    width)`` allows while its padded size stays within ``slack`` of its real tokens.

    On a CPU the arithmetic is the cost, and a padded position costs what a real token does:
    one batch of all 200 demo reviews padded to the longest (78 tokens, mean 27) did 2.9 times
    the work of the reviews themselves and was slower than explaining them one by one.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    group: list[int] = []
    real = 0
    for i in order:
        width, n = max(1, lengths[i]), len(group) + 1
        if group and (not fits(n, width) or n * width > (1 + slack) * (real + width)):
            groups.append(group)
            group, real = [], 0
        group.append(i)
        real += max(1, lengths[i])
    if group:
        groups.append(group)
    return groups


def capped_rows(model: Model, rows: int, seq_len: int) -> int:
    """``rows`` capped to :data:`CPU_TOKENS` tokens a pass on a CPU (unchanged on a GPU)."""
    if model.device.type == "cpu":
        return max(1, min(rows, CPU_TOKENS // max(seq_len, 1)))
    return rows


def pad(model: Model, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask [N, T] on the model's device."""
    import torch

    width = max(len(r) for r in rows)
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(model.device), mask.to(model.device)
