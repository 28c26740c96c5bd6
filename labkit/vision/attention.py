"""What a Vision Transformer attends to: ``labkit.attention(vit, image)`` -> :class:`AttentionResult`
over patches.

The image goes through the model's image processor (:func:`labkit.vision.pixels.pixel_values`),
one pass runs with eager attention (the fast kernel is put back in ``finally``), each layer's
maps are copied as the layer makes them (``labkit.inspect.attention.maps``, as for text), and
they come back as the text path keeps them: float32 [layers, heads, T, T] with T = patches + 1
(the class token first, then the patches row by row). The result also carries the image as the model saw it, the patch grid and the patch size, which
the overlays (``labkit.render.image``) and the interactive view (``labkit.ui.image_view``) draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError
from labkit._utils.eager import inspection_pass
from labkit.inspect._checks import check_model, dims, indices
from labkit.inspect.attention.result import AttentionResult

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["image_attention", "one_image_pixels", "patch_layout", "refuse_image", "seen_image"]


def refuse_image(model: Model, x: Any, what: str) -> None:
    """Raise an InputError naming the model's task when ``x`` (not a string) looks like an
    image but ``model`` is not an image classifier; do nothing otherwise (the text path then
    says what it takes)."""
    if isinstance(x, str) or getattr(model, "task", None) == "image-classification":
        return
    shape = getattr(x, "shape", None)
    if type(x).__module__.startswith("PIL") or (shape is not None and len(shape) in (2, 3, 4)):
        found = type(x).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
        model.require_task("image-classification", f"{what} of an image ({found})")


def patch_layout(
    model: Model, *, blocks: int | None = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((rows, cols), (patch height, patch width)) of the model's patch grid, from its config.

    A model with no patches (an MLP built by hand, ``labkit.scratch``): with ``blocks`` the
    image is cut into about ``blocks`` x ``blocks`` squares instead (what occlusion slides and
    per-patch sums add up); without, an ``InputError`` (attention maps need patch tokens)."""
    from labkit.vision.pixels import image_shape

    _, h, w = image_shape(model)
    size = getattr(model.base.config, "patch_size", None)
    if size is None and blocks and h and w:
        side = max(1, min(h, w) // blocks)
        size = side if h % side == 0 and w % side == 0 else 1
    elif size is None and h and w:
        raise InputError(
            f"{model.name!r} has no patches (its config has no patch_size): it is not a vision "
            "transformer, so there is no attention over the image to show. labkit.explain "
            "works on it."
        )
    ph, pw = (size, size) if isinstance(size, int) else tuple(size or (0, 0))[:2]
    if not (h and w and ph and pw):
        raise InputError(
            f"{model.name!r}: its config gives no image_size / patch_size "
            f"(found image_size={getattr(model.base.config, 'image_size', None)!r}, "
            f"patch_size={size!r}), so its tokens cannot be placed on the image."
        )
    return (h // ph, w // pw), (int(ph), int(pw))


def one_image_pixels(model: Model, image: Any, what: str) -> torch.Tensor:
    """``image`` as the model's pixel values [1, C, H, W]: exactly one image, or an InputError
    naming the shape found and the one the model takes."""
    from labkit.vision.pixels import image_shape, model_images, pixel_values

    c, h, w = image_shape(model)
    takes = f"{model.name!r} takes one image of {h}x{w} with {c} channel(s)"
    try:  # nested lists (a dataset row's image) read as the array they spell
        arrays = model_images(model, image, what=what)
    except InputError as exc:
        raise InputError(f"{exc} {takes}.") from None
    if len(arrays) != 1:
        raise InputError(
            f"{what} must be one image; found {len(arrays)} "
            f"(shape {tuple(getattr(image, 'shape', (len(arrays),)))}). {takes}: pass them "
            "one at a time."
        )
    try:
        return pixel_values(model, arrays[0], what=what)
    except InputError as exc:
        raise InputError(f"{exc} (found an image of shape {arrays[0].shape}.)") from None


def seen_image(model: Model, pixels: torch.Tensor) -> np.ndarray:
    """uint8 [H, W, C]: pixel values [1, C, H, W] turned back into the image the model saw
    (the processor's normalisation and rescaling undone)."""
    proc = model.processor
    x = pixels[0].detach().float().cpu().numpy().transpose(1, 2, 0).astype(np.float64)
    c = x.shape[-1]
    if getattr(proc, "do_normalize", False):
        mean = np.resize(np.asarray(getattr(proc, "image_mean", 0.0), dtype=np.float64), c)
        std = np.resize(np.asarray(getattr(proc, "image_std", 1.0), dtype=np.float64), c)
        x = x * std + mean
    if getattr(proc, "do_rescale", False):
        x = x / float(getattr(proc, "rescale_factor", 1 / 255) or 1 / 255)
    return np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))


def _tokens(special: int, rows: int, cols: int) -> tuple[str, ...]:
    names = ["[CLS]", "[DIST]"][:special] + [f"[TOKEN {i}]" for i in range(2, special)]
    return (*names, *(f"patch ({r},{c})" for r in range(rows) for c in range(cols)))


def _maps(
    model: Model, pixels: torch.Tensor, layers: Any, heads: Any, patches: int
) -> tuple[np.ndarray, int, int]:
    """(weights float32 [kept layers, kept heads, T, T], layers, heads) of one image: each
    layer's maps copied as it makes them (``labkit.inspect.attention.maps``), or, for a model
    whose modules hide them, from what it returns with ``output_attentions=True``."""
    from labkit.inspect.attention.maps import layer_maps

    size = dims(model.base.config)
    x = pixels.to(model.dtype)
    if size.layers and size.heads:
        keep_layers = indices(layers, size.layers, "layers")
        keep_heads = indices(heads, size.heads, "heads")
        for special in (1, 2):  # the class token (and DeiT's distillation token)
            with (
                inspection_pass(model),
                layer_maps(model.hf, keep_layers, keep_heads, patches + special, None) as maps,
            ):
                model.hf(pixel_values=x)
            if maps.complete(size.layers, size.heads):
                return maps.weights, size.layers, size.heads
            if maps.count:
                break
    with inspection_pass(model):
        out = model.hf(pixel_values=x, output_attentions=True)
    atts = [a for a in (getattr(out, "attentions", None) or ()) if a is not None]
    if not atts or any(a.dim() != 4 for a in atts):
        raise InputError(
            f"{model.name} ({type(model.base).__name__}) returned no attention weights even "
            "with output_attentions=True and eager attention: it cannot be inspected with "
            "labkit.attention."
        )
    wanted = list(indices(heads, int(atts[0].shape[1]), "heads"))
    maps_of = [atts[i][0][wanted] for i in indices(layers, len(atts), "layers")]
    weights = np.stack([m.float().cpu().numpy() for m in maps_of])
    return weights, len(atts), int(atts[0].shape[1])


def image_attention(
    model: Model,
    image: Any,
    *,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    memory_budget: int | str = "auto",
) -> AttentionResult:
    """Attention weights of every kept layer and head of an image classifier for one image.

    ``image`` is a PIL image, an array [H, W] / [H, W, C] / [C, H, W] (uint8 0-255 or float
    0-1), an image file or a dataset row (see :func:`labkit.vision.pixels.as_image`);
    grayscale and RGB are converted to what the model takes and its image processor resizes.
    ``layers`` / ``heads`` keep those model indices (default all). The result's weights are
    float32 [layers, heads, patches + 1, patches + 1]; its ``image``, ``grid`` and
    ``patch_size`` place each patch token on the image.
    """
    from labkit.inspect.attention.memory import attention_memory
    from labkit.inspect.budget import parse_budget, refusal_limit

    check_model(model)
    model.require_task("image-classification", "labkit.attention on an image")
    budget = parse_budget(memory_budget)
    size = dims(model.base.config)
    if size.layers:
        indices(layers, size.layers, "layers")
    if size.heads:
        indices(heads, size.heads, "heads")
    (rows, cols), patch = patch_layout(model)
    pixels = one_image_pixels(model, image, "image")
    need = attention_memory(model, rows * cols + 1, layers=layers, heads=heads)
    limit = budget if budget is not None else refusal_limit(model.device)
    if need.total > limit:
        raise InputError(need.advice(limit, explicit=budget is not None))
    weights, total_layers, total_heads = _maps(model, pixels, layers, heads, rows * cols)
    t = weights.shape[-1]
    special = t - rows * cols
    if special < 0:
        raise InputError(
            f"{model.name!r} returned maps over {t} tokens, fewer than its {rows}x{cols} "
            "patches: its tokens cannot be placed on the image."
        )
    c, h, w = pixels.shape[1:]
    return AttentionResult(
        tokens=_tokens(special, rows, cols),
        weights=weights,
        special=np.arange(t) < special,
        model_name=model.name,
        layers=indices(layers, total_layers, "layers"),
        heads=indices(heads, total_heads, "heads"),
        text=f"image ({h}x{w}x{c})",
        model_type=str(getattr(model.base.config, "model_type", "")),
        num_layers=total_layers,
        num_heads=total_heads,
        image=seen_image(model, pixels),
        grid=(rows, cols),
        patch_size=patch,
    )
