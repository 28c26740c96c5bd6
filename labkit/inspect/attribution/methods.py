"""The attribution methods, on one padded batch of token ids, through captum.

Every gradient and perturbation method works on the output of the token-embedding layer: a
forward hook (installed inside :func:`injected_embeddings`, removed in ``finally``) swaps that
output for the tensor captum is attributing, while the model still receives the real token ids
and attention mask. That is what captum's ``LayerIntegratedGradients`` does, with one
difference that matters for GPT-2 and Llama: the baseline is an embedding, not a row of token
ids, so the classification head (which finds the last non-pad token from the ids) reads the
same position at every point of the path, and the completeness check compares like with like.

Shapes: ``ids``/``mask``/``special`` are [B, T] (right-padded), ``targets`` [B]; every method
returns scores [B, T] float32 (padding positions are 0) and, where it has one, a per-example
completeness error [B].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._utils.optional import require
from labkit.inspect.attribution.batching import Batch, capped_rows, length_groups, pad
from labkit.inspect.attribution.embeddings import embedding_layer, pooled_position_from_last

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["Outcome", "attribute", "inspection", "probabilities"]


@dataclass
class Outcome:
    """Scores [B, T] float32; ``delta`` [B] (|completeness error|) or None; ``n_steps`` [B]."""

    scores: torch.Tensor
    delta: torch.Tensor | None = None
    n_steps: list[int] | None = None


# -- forward through the model ------------------------------------------------------------------
class _Slot:
    value: torch.Tensor | None = None


@contextmanager
def injected_embeddings(layer: torch.nn.Module) -> Iterator[_Slot]:
    """While open, the embedding layer outputs ``slot.value`` when it is set."""

    slot = _Slot()

    def hook(_module: Any, _args: Any, output: Any) -> Any:
        return output if slot.value is None else slot.value

    handle = layer.register_forward_hook(hook)
    try:
        yield slot
    finally:
        handle.remove()


@contextmanager
def inspection(model: Model, *, grads: bool = True) -> Iterator[None]:
    """Eval mode, and no weight gradients (only the embedding gradient is needed) for one pass.

    Turning ``requires_grad`` off skips the weight-gradient matmuls of the backward pass (about a
    third of its work). It is left alone while a training run owns the model.
    """
    import torch

    was_training = model.hf.training
    frozen = [] if model.is_training else [p for p in model.hf.parameters() if p.requires_grad]
    model.hf.eval()
    try:
        for p in frozen:
            p.requires_grad_(False)
        with torch.enable_grad() if grads else torch.inference_mode():
            yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.hf.train(was_training)


def _output(logits: torch.Tensor, kind: str) -> torch.Tensor:
    logits = logits.float()
    return logits.softmax(-1) if kind == "probability" else logits


def probabilities(model: Model, rows: list[list[int]], *, max_rows: int) -> torch.Tensor:
    """Softmax outputs [N, C] float32 for lists of token ids, in the order given.

    The rows go through the model in :func:`length_groups` (sorted by length, little padding);
    a pass holds at most ``max_rows`` rows, and on a CPU at most :data:`CPU_TOKENS` tokens.
    """
    import torch

    out = torch.empty(len(rows), len(model.labels), dtype=torch.float32)

    def fits(n: int, width: int) -> bool:
        return n <= max_rows and capped_rows(model, n, width) == n

    with inspection(model, grads=False):
        for idx in length_groups([len(r) for r in rows], fits):
            ids, mask = pad(model, [rows[i] for i in idx])
            logits = model.hf(input_ids=ids, attention_mask=mask).logits
            out[torch.tensor(idx)] = logits.float().softmax(-1).cpu()
    return out


# -- methods ------------------------------------------------------------------------------------
def attribute(
    model: Model, batch: Batch, method: str, opts: dict[str, Any], *, rows: int
) -> Outcome:
    """Run ``method`` on ``batch``; ``rows`` sequences at most per forward pass."""
    if method == "attention_rollout":
        return _rollout(model, batch, rows)
    # every other method is captum's; a clear error before any work when it is missing
    require("captum.attr", extra="explain", feature=f"explain(method={method!r})")
    layer = embedding_layer(model, opts.get("embeddings"))
    run = _METHODS[method]
    with inspection(model), injected_embeddings(layer) as slot:
        kind = opts.get("output", "probability")

        def forward(emb: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            slot.value = emb
            try:
                return _output(model.hf(input_ids=ids, attention_mask=mask).logits, kind)
            finally:
                slot.value = None

        x_emb = layer(batch.ids).detach()
        base_ids = baseline_ids(model, batch, opts.get("baseline", "pad"))
        b_emb = layer(base_ids).detach()
        outcome = run(forward, x_emb, b_emb, batch, opts, rows)
    outcome.scores = outcome.scores.float().cpu().masked_fill(batch.mask.cpu() == 0, 0.0)
    return outcome


def baseline_ids(model: Model, batch: Batch, baseline: str | int) -> torch.Tensor:
    """The batch with every real, non-special token replaced by the baseline token."""
    tok = model.tokenizer
    token_id = baseline if isinstance(baseline, int) else getattr(tok, f"{baseline}_token_id", None)
    if token_id is None:
        from labkit._errors import ConfigError

        raise ConfigError(
            f"baseline={baseline!r}: this tokenizer has no {baseline} token. Use "
            "'pad', 'unk', 'mask' (where the tokenizer has one) or a token id."
        )
    keep = batch.special.bool() | (batch.mask == 0)
    return batch.ids.masked_fill(~keep, int(token_id))


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + max(1, size)))


def _integrated_gradients(
    forward: Callable[..., Any],
    x: torch.Tensor,
    b: torch.Tensor,
    batch: Batch,
    opts: dict[str, Any],
    rows: int,
) -> Outcome:
    """IG from the baseline embedding; n_steps doubles for the examples whose error is too big."""
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    scores = torch.zeros(batch.ids.shape, dtype=torch.float32)
    delta = torch.zeros(batch.size, dtype=torch.float32)
    steps = [0] * batch.size
    todo = list(range(batch.size))
    n, cap, tol = int(opts["n_steps"]), int(opts["max_steps"]), opts["tolerance"]
    while todo:
        idx = torch.tensor(todo, device=x.device)
        attr, err = ig.attribute(
            x[idx],
            baselines=b[idx],
            target=batch.targets[idx],
            additional_forward_args=(batch.ids[idx], batch.mask[idx]),
            n_steps=n,
            internal_batch_size=max(rows, 2 * len(todo)),
            return_convergence_delta=True,
        )
        scores[idx.cpu()] = attr.sum(-1).float().cpu()
        delta[idx.cpu()] = err.abs().float().cpu()
        for i in todo:
            steps[i] = n
        if tol is None or n * 2 > cap:
            break
        todo = [i for i in todo if float(delta[i]) > tol]
        n *= 2
    return Outcome(scores, delta, steps)


def _chunked_gradients(
    method: Any,
    reduce: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    batch: Batch,
    rows: int,
    **kwargs: Any,
) -> Outcome:
    """``method.attribute`` over ``rows``-sized slices of the batch, each [b, T, H] reduced to
    [b, T] by ``reduce``."""
    parts = [
        reduce(
            method.attribute(
                _leaf(x[s]),
                target=batch.targets[s],
                additional_forward_args=(batch.ids[s], batch.mask[s]),
                **kwargs,
            )
        )
        for s in _chunks(batch.size, rows)
    ]
    return Outcome(_cat(parts))


def _gradient_x_input(
    forward: Callable[..., Any],
    x: torch.Tensor,
    _b: torch.Tensor,
    batch: Batch,
    _opts: dict[str, Any],
    rows: int,
) -> Outcome:
    from captum.attr import InputXGradient

    return _chunked_gradients(InputXGradient(forward), lambda a: a.sum(-1), x, batch, rows)


def _saliency(
    forward: Callable[..., Any],
    x: torch.Tensor,
    _b: torch.Tensor,
    batch: Batch,
    _opts: dict[str, Any],
    rows: int,
) -> Outcome:
    """L2 norm of the gradient over the embedding dimension (unsigned)."""
    from captum.attr import Saliency

    return _chunked_gradients(
        Saliency(forward), lambda a: a.norm(dim=-1), x, batch, rows, abs=False
    )


def _gradient_shap(
    forward: Callable[..., Any],
    x: torch.Tensor,
    b: torch.Tensor,
    batch: Batch,
    opts: dict[str, Any],
    rows: int,
) -> Outcome:
    """One example at a time: the baseline distribution belongs to each text."""
    import torch
    from captum.attr import GradientShap

    method = GradientShap(forward)
    scores = torch.zeros(batch.ids.shape, dtype=torch.float32)
    deltas = []
    for i, n in enumerate(batch.mask.sum(-1).tolist()):
        s = (slice(i, i + 1), slice(0, n))
        with _seeded(int(opts["seed"]), x.device):
            attr, err = method.attribute(
                x[s],
                baselines=b[s],
                n_samples=int(opts["n_samples"]),
                stdevs=float(opts["stdevs"]),
                target=batch.targets[i : i + 1],
                additional_forward_args=(batch.ids[s], batch.mask[s]),
                return_convergence_delta=True,
            )
        scores[i, :n] = attr[0].sum(-1).float().cpu()
        deltas.append(err.abs().mean())
    return Outcome(scores, torch.stack(deltas).float().cpu())


def _occlusion(
    forward: Callable[..., Any],
    x: torch.Tensor,
    b: torch.Tensor,
    batch: Batch,
    opts: dict[str, Any],
    rows: int,
) -> Outcome:
    """f(x) - f(x with a window of tokens set to the baseline embedding), per token."""
    from captum.attr import Occlusion

    hidden = x.shape[-1]
    window = int(opts["window"])
    method = Occlusion(forward)
    parts = []
    for s in _chunks(batch.size, rows):
        size = s.stop - s.start
        attr = method.attribute(
            x[s],
            sliding_window_shapes=(window, hidden),
            strides=(1, hidden),
            baselines=b[s],
            target=batch.targets[s],
            additional_forward_args=(batch.ids[s], batch.mask[s]),
            perturbations_per_eval=max(1, rows // size),
        )
        parts.append(attr.mean(-1))
    return Outcome(_cat(parts))


def _surrogate(
    kind: str,
    forward: Callable[..., Any],
    x: torch.Tensor,
    b: torch.Tensor,
    batch: Batch,
    opts: dict[str, Any],
    rows: int,
) -> Outcome:
    """LIME or KernelSHAP with one interpretable feature per token, one example at a time."""
    import torch
    from captum.attr import KernelShap, Lime

    method = (
        KernelShap(forward)
        if kind == "kernel_shap"
        else Lime(forward, interpretable_model=_least_squares(float(opts["alpha"])))
    )
    scores = torch.zeros(batch.ids.shape, dtype=torch.float32)
    deltas = []
    for i, n in enumerate(batch.mask.sum(-1).tolist()):
        s = (slice(i, i + 1), slice(0, n))
        feature_mask = torch.arange(n, device=x.device).view(1, -1, 1).expand_as(x[s])
        target = batch.targets[i : i + 1]
        with _seeded(int(opts["seed"]), x.device):
            attr = method.attribute(
                x[s],
                baselines=b[s],
                target=target,
                feature_mask=feature_mask,
                additional_forward_args=(batch.ids[s], batch.mask[s]),
                n_samples=int(opts["n_samples"]),
                perturbations_per_eval=max(1, rows),
            )
        scores[i, :n] = attr[0, :, 0].float().cpu()
        if kind == "kernel_shap":  # Shapley values add up to f(x) - f(baseline)
            with torch.no_grad():
                fx = forward(x[s], batch.ids[s], batch.mask[s])[0, target]
                fb = forward(b[s], batch.ids[s], batch.mask[s])[0, target]
            deltas.append((attr[0, :, 0].sum() - (fx - fb)).abs().reshape(()))
    delta = torch.stack(deltas).float().cpu() if deltas else None
    return Outcome(scores, delta)


def _least_squares(alpha: float) -> Any:
    """A captum interpretable model fitted by closed-form weighted ridge regression (no sklearn)."""
    import torch
    from captum._utils.models.linear_model import LinearModel

    def train(
        model: Any, dataloader: Any, construct_kwargs: dict[str, Any], **_: Any
    ) -> dict[str, float]:
        xs, ys, ws = [], [], []
        for data in dataloader:
            xs.append(data[0].double())
            ys.append(data[1].double().reshape(-1))
            ws.append(
                data[2].double().reshape(-1)
                if len(data) == 3
                else torch.ones(len(data[0]), dtype=torch.double)
            )
        xm, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
        design = torch.cat([xm, torch.ones(len(xm), 1, dtype=torch.double)], dim=1)
        root = w.clamp(min=0).sqrt().unsqueeze(1)
        lhs = (design * root).T @ (design * root)
        ridge = alpha * torch.eye(lhs.shape[0], dtype=torch.double)
        ridge[-1, -1] = 0.0  # the intercept is not shrunk
        coef = torch.linalg.lstsq(lhs + ridge, (design * root).T @ (y.unsqueeze(1) * root)).solution
        model._construct_model_params(
            weight_values=coef[:-1, 0].float().unsqueeze(0),
            bias_value=coef[-1].float(),
            **construct_kwargs,
        )
        return {}

    return LinearModel(train_fn=train)


def _rollout(model: Model, batch: Batch, rows: int) -> Outcome:
    """Attention rollout (Abnar & Zuidema 2020): (A + I)/2 averaged over heads, multiplied
    through the layers; a token's score is how much the pooled position attends to it."""
    import torch

    from labkit._utils.eager import eager_attention

    last = pooled_position_from_last(model)
    parts = []
    with inspection(model, grads=False), eager_attention(model.hf):
        for s in _chunks(batch.size, rows):
            out = model.hf(
                input_ids=batch.ids[s], attention_mask=batch.mask[s], output_attentions=True
            )
            attentions = [a for a in (out.attentions or ()) if a is not None]
            if not attentions:
                from labkit._errors import ConfigError

                raise ConfigError(
                    f"{type(model.base).__name__} returned no attention weights; "
                    "attention_rollout needs a model that supports "
                    "output_attentions=True with eager attention."
                )
            width = attentions[0].shape[-1]
            eye = torch.eye(width, device=attentions[0].device)
            mask = batch.mask[s].float()
            roll = None
            for att in attentions:
                a = 0.5 * att.float().mean(1) + 0.5 * eye
                a = a * mask.unsqueeze(1)  # no mass on padding
                a = a / a.sum(-1, keepdim=True).clamp(min=1e-12)
                roll = a if roll is None else a @ roll
            assert roll is not None
            pos = (
                (mask.sum(-1).long() - 1)
                if last
                else torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
            )
            parts.append(roll[torch.arange(roll.shape[0]), pos])
    scores = _cat(parts).masked_fill(batch.mask.cpu() == 0, 0.0)
    return Outcome(scores)


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """A copy that records gradients (captum would otherwise switch them on with a warning)."""
    return x.detach().clone().requires_grad_(True)


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.cat([p.detach().float().cpu() for p in parts])


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Fixed random streams for one call (captum draws from torch and numpy), leaving the
    global generators as they were."""
    import numpy as np
    import torch

    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(state)


_METHODS: dict[str, Callable[..., Outcome]] = {
    "integrated_gradients": _integrated_gradients,
    "gradient_x_input": _gradient_x_input,
    "saliency": _saliency,
    "gradient_shap": _gradient_shap,
    "occlusion": _occlusion,
    "lime": lambda *a: _surrogate("lime", *a),
    "kernel_shap": lambda *a: _surrogate("kernel_shap", *a),
}
