"""Loading an image classifier and its image processor (``labkit.load_model`` routes here for
``task="image-classification"`` and for any vision checkpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["load_image_model"]


def load_image_model(
    source: str,
    *,
    config: Any,
    labels: Sequence[str] | None = None,
    dtype: torch.dtype | None = None,
    allow_pickle: bool = False,
    seed: int | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Any, Any]:
    """(``...ForImageClassification``, its image processor) from a hub name
    (``"google/vit-base-patch16-224"``) or a local folder.

    ``labels`` names the classes: a new head is made (with ``seed``) when the checkpoint has
    another number of outputs (``ignore_mismatched_sizes``). Only safetensors weights load
    unless ``allow_pickle``. A folder without ``preprocessor_config.json`` (a model saved
    without its processor) gets labkit's default processor sized from the config (resize to
    ``image_size``, mean and std 0.5).

    ``OSError`` / ``ValueError`` / ``KeyError`` propagate to ``load_model``, which words them.
    """
    from transformers import AutoModelForImageClassification

    from labkit._utils.quiet import hf_quiet
    from labkit._utils.seed import seeded

    common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision}
    if labels is not None:
        config.update(
            {
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": {n: i for i, n in enumerate(labels)},
            }
        )
    # the newly initialized head for labels= is expected: HF's notice is noise here
    with hf_quiet(), seeded(seed):
        hf = AutoModelForImageClassification.from_pretrained(
            source,
            config=config,
            dtype=dtype,
            use_safetensors=None if allow_pickle else True,
            ignore_mismatched_sizes=labels is not None,
            **common,
        )
    return hf, _processor(source, config, common)


def _processor(source: str, config: Any, common: dict[str, Any]) -> Any:
    from transformers import AutoImageProcessor

    from labkit._utils.quiet import hf_quiet

    try:
        with hf_quiet():
            return AutoImageProcessor.from_pretrained(source, **common)
    except (OSError, ValueError):
        from pathlib import Path

        if not Path(source).is_dir():
            raise  # a hub model without a processor is broken; load_model words it
    from labkit.vision.pixels import make_processor

    return make_processor(
        getattr(config, "image_size", 224), int(getattr(config, "num_channels", 3) or 3)
    )
