"""Why an image classifier decided: ``labkit.explain(vit, image)`` -> :class:`ImageAttribution`.

Two methods, through captum, on the pixel values the model's processor makes:

* ``integrated_gradients`` (default): gradients along the straight path from a baseline image
  to the image, times the difference (Sundararajan et al. 2017). The scores add up to
  f(image) - f(baseline); ``n_steps`` doubles until the completeness error is within
  ``tolerance`` or ``max_steps`` is reached (then one :class:`labkit.LabkitWarning`), as for
  text.
* ``occlusion``: each window (default one patch) replaced by the baseline in turn; its pixels
  share the drop in the output (Zeiler & Fergus 2014), so a patch's scores sum to that drop.

Options: ``baseline`` — ``"black"`` (default: a black image through the processor), ``"mean"``
(the processor's mean image, all zeros after normalisation) or a gray level 0..255;
``output`` — ``"probability"`` (default) or ``"logit"`` of the target; ``n_steps`` (50),
``max_steps`` (800), ``tolerance`` (0.01, None = off), ``internal_batch_size`` (16) for
integrated gradients; ``window`` — (height, width) in pixels for occlusion.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import ConfigError, InputError, LabkitWarning
from labkit.vision.attention import one_image_pixels, patch_layout, seen_image
from labkit.vision.attribution_result import ImageAttribution

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["IMAGE_METHODS", "explain_image"]

IMAGE_METHODS = ("integrated_gradients", "occlusion")
_ALIASES = {"ig": "integrated_gradients", "integrated-gradients": "integrated_gradients"}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {
        "baseline": "black",
        "output": "probability",
        "n_steps": 50,
        "max_steps": 800,
        "tolerance": 0.01,
        "internal_batch_size": 16,
    },
    "occlusion": {"baseline": "black", "output": "probability", "window": None},
}


def _method(method: Any) -> str:
    key = str(method).strip().lower().replace(" ", "_") if isinstance(method, str) else ""
    key = _ALIASES.get(key, key)
    if key not in IMAGE_METHODS:
        raise ConfigError(
            f"unknown method {method!r} for an image classifier; it takes "
            f"{', '.join(IMAGE_METHODS)}."
        )
    return key


def _options(method: str, given: dict[str, Any], patch: tuple[int, int]) -> dict[str, Any]:
    allowed = _DEFAULTS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{method} on an image does not take option(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed))}."
        )
    opts = {**allowed, **given}

    def is_int(v: Any, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    base = opts["baseline"]
    if not (base in ("black", "mean") or (is_int(base, 0) and base <= 255)):
        raise ConfigError(f"baseline must be 'black', 'mean' or a gray level 0..255, got {base!r}.")
    if opts["output"] not in ("probability", "logit"):
        raise ConfigError(f"output must be 'probability' or 'logit', got {opts['output']!r}.")
    if method == "integrated_gradients":
        for name in ("n_steps", "max_steps", "internal_batch_size"):
            if not is_int(opts[name], 1 if name == "internal_batch_size" else 2):
                raise ConfigError(f"{name} must be an int >= 2, got {opts[name]!r}.")
        if opts["max_steps"] < opts["n_steps"]:
            if "max_steps" in given:
                raise ConfigError(
                    f"max_steps ({opts['max_steps']}) is below n_steps ({opts['n_steps']})."
                )
            opts["max_steps"] = opts["n_steps"]
        tol = opts["tolerance"]
        if tol is not None and (
            isinstance(tol, bool) or not isinstance(tol, int | float) or tol <= 0
        ):
            raise ConfigError(f"tolerance must be None or a number > 0, got {tol!r}.")
    else:
        window = opts["window"] if opts["window"] is not None else patch
        window = (window, window) if isinstance(window, int) else tuple(window)
        if len(window) != 2 or not all(is_int(v, 1) for v in window):
            raise ConfigError(f"window must be (height, width) in pixels, got {opts['window']!r}.")
        opts["window"] = (int(window[0]), int(window[1]))
    return opts


def _target(model: Model, target: str | int | None, probs: np.ndarray) -> int:
    if target is None:
        return int(probs.argmax())
    if isinstance(target, str):
        if target in model.labels:
            return model.labels.index(target)
        raise InputError(f"target {target!r} is not a label; labels are {list(model.labels)}.")
    if isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise InputError(f"target must be a label name or index, got {target!r}.")
    if not 0 <= int(target) < len(model.labels):
        raise InputError(
            f"target {target} is out of range: the model has {len(model.labels)} labels "
            f"(0..{len(model.labels) - 1})."
        )
    return int(target)


def _baseline(model: Model, pixels: torch.Tensor, baseline: str | int) -> torch.Tensor:
    """The baseline's pixel values: a flat image through the model's processor."""
    from labkit.vision.pixels import pixel_values

    c, h, w = pixels.shape[1:]
    if baseline == "black":
        level = np.zeros(c)
    elif baseline == "mean":
        mean = getattr(model.processor, "image_mean", None)
        level = np.resize(np.asarray(0.5 if mean is None else mean, dtype=np.float64), c) * 255
    else:
        level = np.full(c, float(baseline))
    flat = np.broadcast_to(np.rint(level).astype(np.uint8), (int(h), int(w), int(c))).copy()
    return pixel_values(model, flat, what="baseline").to(pixels.dtype)


def explain_image(
    model: Model,
    image: Any,
    *,
    target: str | int | None = None,
    method: str = "integrated_gradients",
    **options: Any,
) -> ImageAttribution:
    """Explain an image classifier's answer for one image (see this module's docstring for
    the methods and their options). ``target`` is a label name or index; None explains the
    predicted label. The caller (``labkit.explain``) holds the weights in float32."""
    import torch

    from labkit._utils.optional import require

    require("captum.attr", extra="explain", feature="labkit.explain on an image")
    from captum.attr import IntegratedGradients, Occlusion

    model.require_task("image-classification", "labkit.explain on an image")
    name = _method(method)
    grid, patch = patch_layout(model, blocks=7)  # a model without patches: 7x7 blocks
    opts = _options(name, options, patch)
    hf = model.hf
    dtype = next(hf.parameters()).dtype
    pixels = one_image_pixels(model, image, "image").to(dtype)
    from labkit.vision.pixels import model_images

    given = model_images(model, image, what="image")[0]
    base = _baseline(model, pixels, opts["baseline"])
    was_training = hf.training
    hf.eval()
    try:
        with torch.no_grad():
            logits = _logits(hf, pixels)
        probs = torch.softmax(logits.float(), -1)[0].cpu().numpy()
        index = _target(model, target, probs)

        def forward(x: torch.Tensor) -> torch.Tensor:
            out = _logits(hf, x)
            if opts["output"] == "probability":
                out = torch.softmax(out.float(), -1)
            return out[:, index]

        delta: float | None = None
        if name == "integrated_gradients":
            attr, delta = _integrated(IntegratedGradients(forward), pixels, base, opts)
        else:
            c = pixels.shape[1]
            wh, ww = opts["window"]
            with torch.no_grad():
                raw = Occlusion(forward).attribute(
                    pixels,
                    sliding_window_shapes=(c, wh, ww),
                    strides=(c, wh, ww),
                    baselines=base,
                )
            # each pixel of a window carries the window's whole drop, once per channel: share it
            attr = raw / float(c * wh * ww)
    finally:
        hf.train(was_training)
    scores = attr[0].detach().float().sum(0).cpu().numpy().astype(np.float32)  # [H, W]
    rows, cols = grid
    ph, pw = patch
    patch_scores = (
        scores[: rows * ph, : cols * pw].reshape(rows, ph, cols, pw).sum((1, 3)).astype(np.float32)
    )
    return ImageAttribution(
        image=seen_image(model, pixels),
        scores=scores,
        patch_scores=patch_scores,
        grid=grid,
        patch_size=patch,
        target=model.labels[index],
        probs={label: float(p) for label, p in zip(model.labels, probs)},
        method=name,
        delta=delta,
        options=opts,
        model_name=model.name,
        model=model,
        given=given,
    )


def _logits(hf: Any, x: torch.Tensor) -> torch.Tensor:
    out = hf(pixel_values=x)
    return getattr(out, "logits", out)


def _integrated(
    ig: Any, pixels: torch.Tensor, base: torch.Tensor, opts: dict[str, Any]
) -> tuple[torch.Tensor, float]:
    """Integrated gradients with n_steps doubled until the completeness error is within
    tolerance (or max_steps); opts["n_steps"] becomes the number finally used."""
    steps = opts["n_steps"]
    while True:
        attr, err = ig.attribute(
            pixels,
            baselines=base,
            n_steps=steps,
            internal_batch_size=opts["internal_batch_size"],
            return_convergence_delta=True,
        )
        delta = float(err.abs().max())
        tol = opts["tolerance"]
        if tol is None or delta <= tol or steps >= opts["max_steps"]:
            break
        steps = min(2 * steps, opts["max_steps"])
    opts["n_steps"] = steps
    if tol is not None and delta > tol:
        warnings.warn(
            f"integrated gradients did not converge: completeness error {delta:.3g} > "
            f"tolerance {tol} at n_steps={steps} (the cap). Raise max_steps= or loosen "
            "tolerance=; the scores may not add up to the change in the model's output.",
            LabkitWarning,
            stacklevel=4,
        )
    return attr, delta
