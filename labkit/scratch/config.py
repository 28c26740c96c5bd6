"""``from_config``: a transformers model built from a config, with fresh weights (seed 001 of the
teaching material builds its model from scratch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["from_config"]

_BUILDERS = {
    "classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "image-classification": "AutoModelForImageClassification",
}


def from_config(
    config: Any,
    *,
    labels: Sequence[str] | None = None,
    task: str = "auto",
    tokenizer: Any = None,
    processor: Any = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    name: str | None = None,
) -> Model:
    """A :class:`labkit.Model` built from ``config`` with fresh weights (made with ``seed``).

    ``config`` is a transformers config (``ViTConfig(image_size=28, patch_size=4,
    num_channels=1, ...)``, ``BertConfig(...)``) or a dict with its ``model_type``. ``task`` is
    one of ``labkit.model.TASKS`` or ``"auto"`` (a vision config -> image-classification; with
    ``labels`` -> classification). ``labels`` names a classifier's classes (one output each).
    A text model needs its ``tokenizer``; an image model gets an image processor sized from the
    config (``image_size``, ``num_channels``; mean and std 0.5) unless ``processor`` is given.

    Raises ``ConfigError`` naming the field when the config cannot build the model.
    """
    import transformers

    from labkit._utils.device import pick_device
    from labkit._utils.seed import seeded
    from labkit.model import Model, resolve_task

    config = _as_config(config)
    chosen = resolve_task(task, config, labels)
    if chosen in ("classification", "image-classification"):
        if labels is None:
            count = int(getattr(config, "num_labels", 0) or 0)
            labels = [str(i) for i in range(count)]
        labels = [str(x) for x in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ConfigError(f"labels must name at least two distinct classes, got {labels!r}.")
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {n: i for i, n in enumerate(labels)}
    if chosen == "image-classification":
        if processor is None:
            from labkit.vision.pixels import make_processor

            size = getattr(config, "image_size", 224)
            processor = make_processor(size, int(getattr(config, "num_channels", 3) or 3))
        tokenizer = processor
    elif tokenizer is None:
        raise ConfigError(
            f"a {chosen} model reads text: pass tokenizer= (e.g. "
            "transformers.AutoTokenizer.from_pretrained(...) of a model whose vocabulary "
            f"matches config.vocab_size={getattr(config, 'vocab_size', None)})."
        )
    _check_sizes(config)
    builder = getattr(transformers, _BUILDERS[chosen])
    try:
        with seeded(seed):
            hf = builder.from_config(config, attn_implementation="sdpa")
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise ConfigError(_config_error(config, chosen, exc)) from exc
    hf.to(pick_device(device))
    hf.eval()
    label = name or f"{type(hf).__name__} (from config)"
    return Model.wrap(
        hf,
        tokenizer,
        labels=labels if chosen in ("classification", "image-classification") else None,
        name=label,
    )


def _as_config(config: Any) -> Any:
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, PretrainedConfig):
        import copy

        return copy.deepcopy(config)  # the caller's object stays as it was
    if isinstance(config, dict):
        fields = dict(config)
        model_type = fields.pop("model_type", None)
        if not model_type:
            raise ConfigError(
                "a config dict needs its 'model_type' ('vit', 'bert', ...); got keys "
                f"{sorted(fields)[:8]}."
            )
        try:
            return AutoConfig.for_model(model_type, **fields)
        except ValueError as exc:
            raise ConfigError(
                f"model_type {model_type!r} is not a transformers model: {exc}"
            ) from None
    raise ConfigError(
        "config must be a transformers config (e.g. transformers.ViTConfig(...)) or a dict "
        f"with a 'model_type', got {type(config).__name__}."
    )


def _check_sizes(config: Any) -> None:
    """The divisibility transformers does not check when it builds (a ViT with hidden_size 30
    and 4 heads builds, then fails at its first forward)."""
    hidden = getattr(config, "hidden_size", None)
    heads = getattr(config, "num_attention_heads", None)
    if isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads:
        raise ConfigError(
            f"hidden_size={hidden} must be a multiple of num_attention_heads={heads} (each head "
            "gets hidden_size / num_attention_heads dimensions)."
        )
    size, patch = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    if isinstance(size, int) and isinstance(patch, int) and patch > 0 and size % patch:
        raise ConfigError(
            f"image_size={size} must be a multiple of patch_size={patch} (the image is cut into "
            "whole patches)."
        )


def _config_error(config: Any, task: str, exc: BaseException) -> str:
    """Name the field when the error does: transformers says e.g. 'The hidden size (30) is not
    a multiple of the number of attention heads (4)'."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = ""
    hidden, heads = (
        getattr(config, "hidden_size", None),
        getattr(config, "num_attention_heads", None),
    )
    if isinstance(hidden, int) and isinstance(heads, int) and heads and hidden % heads:
        hint = f" hidden_size={hidden} must be a multiple of num_attention_heads={heads}."
    size, patch = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    if isinstance(size, int) and isinstance(patch, int) and patch and size % patch:
        hint += f" image_size={size} must be a multiple of patch_size={patch}."
    return f"could not build a {task} {type(config).__name__} model from this config: {text}.{hint}"
