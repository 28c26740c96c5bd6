"""Static HTML of image results: attention over patches and attributions over pixels, drawn on
the image.

Each figure is one inline PNG (a data URI; Pillow encodes it) at the model's resolution, shown
enlarged with ``image-rendering: pixelated`` and the patch grid drawn over it as inline SVG.
Attention uses the attention heatmaps' white -> blue ramp (``heatmap.BLUE``) with the image
ghosted in; attributions use the text view's green (toward the target) and red (against) at
the same opacity. Nothing is fetched; every name and label is escaped. What a saved notebook,
nbviewer and GitHub show of ``labkit.attention(vit, image)`` and ``labkit.explain(vit, image)``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

from labkit.render import heatmap as _heatmap
from labkit.render.attribution import AGAINST, OPACITY, TOWARD, legend_html
from labkit.render.summary import sig

if TYPE_CHECKING:
    from labkit.inspect.attention.result import AttentionResult
    from labkit.vision.attribution_result import ImageAttribution

__all__ = [
    "GHOST",
    "attention_overlay",
    "attribution_overlay",
    "image_attention_html",
    "image_attribution_html",
    "png_uri",
]

GHOST = 0.35  # share of the image's brightness kept under an attention overlay
_BASE_LIFT = 0.4  # attribution overlays lift the image's blacks by this share toward white
_SHOWN = 168  # figures are drawn about this many pixels wide
_CELL = 44  # per-head thumbnails, pixels
_FONT = "font-family:sans-serif;font-size:13px"


def png_uri(rgb: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 [H, W, 3] (or [H, W, 1]) image."""
    from labkit.render.heatmap import data_uri, image_png

    return data_uri(image_png(rgb))


def _luma(image: np.ndarray) -> np.ndarray:
    """float [H, W] brightness 0..1 of a uint8 [H, W, C] image."""
    x = image.astype(np.float64) / 255.0
    if x.shape[-1] == 1:
        return x[:, :, 0]
    return x[:, :, :3] @ np.array([0.299, 0.587, 0.114])


def _spread(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A [rows, cols] grid of values repeated over its patches to [H, W] (edges padded)."""
    h, w = shape
    rows, cols = values.shape
    if (rows, cols) == (h, w):
        return values.astype(np.float64)
    big = np.repeat(np.repeat(values, -(-h // rows), axis=0), -(-w // cols), axis=1)
    return big[:h, :w].astype(np.float64)


def attention_overlay(
    image: np.ndarray, values: np.ndarray, top: float | None = None
) -> np.ndarray:
    """uint8 [H, W, 3]: ``values`` ([rows, cols] per patch, or [H, W]) on the attention ramp
    (0 white, ``top`` -- their maximum by default -- dark blue), the image ghosted in."""
    peak = float(values.max()) if top is None else float(top)
    t = np.clip(_spread(values, image.shape[:2]) / peak, 0, 1) if peak > 0 else 0 * _luma(image)
    end = np.array(_heatmap.BLUE, dtype=np.float64)
    colour = 255.0 + (end - 255.0) * t[:, :, None]
    out = (1 - GHOST) * colour + GHOST * 255.0 * _luma(image)[:, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def attribution_overlay(image: np.ndarray, scores: np.ndarray, top: float) -> np.ndarray:
    """uint8 [H, W, 3]: signed ``scores`` ([H, W], or [rows, cols] per patch) over the image,
    green toward the target and red against, ±``top`` at full opacity (as the text view)."""
    x = np.clip(_spread(scores, image.shape[:2]) / top, -1, 1) if top > 0 else 0 * _luma(image)
    base = (_BASE_LIFT + (1 - _BASE_LIFT) * _luma(image))[:, :, None] * 255.0
    colour = np.where(x[:, :, None] >= 0, np.array(TOWARD, float), np.array(AGAINST, float))
    alpha = (np.abs(x) * OPACITY)[:, :, None]
    return np.clip(np.rint((1 - alpha) * base + alpha * colour), 0, 255).astype(np.uint8)


def _grid_svg(grid: tuple[int, int], px: tuple[int, int]) -> str:
    """Inline SVG of the patch grid's lines over a figure of ``px`` (width, height) pixels."""
    rows, cols = grid
    width, height = px
    lines = [
        f"<line x1='{width * c / cols:.1f}' y1='0' x2='{width * c / cols:.1f}' y2='{height}'/>"
        for c in range(1, cols)
    ] + [
        f"<line x1='0' y1='{height * r / rows:.1f}' x2='{width}' y2='{height * r / rows:.1f}'/>"
        for r in range(1, rows)
    ]
    return (
        f"<svg width='{width}' height='{height}' style='position:absolute;left:0;top:0' "
        f"stroke='rgba(128,128,128,0.45)' stroke-width='0.6'>{''.join(lines)}</svg>"
    )


def _display_size(h: int, w: int) -> tuple[int, int]:
    scale = max(1, round(_SHOWN / max(h, w))) if max(h, w) < _SHOWN else _SHOWN / max(h, w)
    return round(w * scale), round(h * scale)


def _figure(
    rgb: np.ndarray, caption: str, note: str, grid: tuple[int, int] | None, cls: str
) -> str:
    e = html.escape
    h, w = rgb.shape[:2]
    width, height = _display_size(h, w)
    lines = _grid_svg(grid, (width, height)) if grid else ""
    return (
        f"<figure class='{cls}' style='margin:4px 12px 4px 0;display:inline-block;"
        f"vertical-align:top'><figcaption style='font-weight:600;margin-bottom:2px'>"
        f"{e(caption)}</figcaption><div style='position:relative;width:{width}px;"
        f"height:{height}px'><img alt='{e(caption)}' src='{png_uri(rgb)}' style='width:"
        f"{width}px;height:{height}px;image-rendering:pixelated;display:block'>{lines}</div>"
        f"<div style='color:#666;font-size:11px'>{e(note)}</div></figure>"
    )


def _ramp_legend() -> str:
    end = _heatmap.shade(_heatmap.BLUES, 255)
    return (
        "<div class='labkit-legend' style='display:flex;align-items:center;gap:6px;"
        "font-size:12px;margin-top:4px'><span>0</span><span style='display:inline-block;"
        f"width:120px;height:10px;border:1px solid #ccc;background:linear-gradient(to right,"
        f"#fff,{end})'></span><span>each figure's largest weight (written under it)</span>"
        "</div>"
    )


def _heads_table(result: AttentionResult, query: int) -> str:
    """Layers x heads (+ their mean) of small grid maps: where ``query`` looks in each head."""
    e = html.escape
    assert result.grid is not None
    rows, cols = result.grid
    first = len(result.tokens) - rows * cols
    th = "font-weight:normal;color:#777;font-size:11px;padding:0 3px;text-align:center"
    out = [f"<tr><th style='{th}'>layer \\ head</th>"]
    out += [f"<th style='{th}'>{h}</th>" for h in result.heads] + [f"<th style='{th}'>mean</th>"]
    out.append("</tr>")
    for li, layer in enumerate(result.layers):
        maps = result.weights[li, :, query, first:].reshape(-1, rows, cols)
        cells = [*maps, maps.mean(0)]
        names = [*(f"head {h}" for h in result.heads), "mean of heads"]
        out.append(f"<tr><th style='{th}'>{layer}</th>")
        for grid, name in zip(cells, names):
            src = _heatmap.data_uri(_heatmap.png(_heatmap.to_levels(grid)))
            tip = f"layer {layer}, {name}: largest weight {sig(float(grid.max()))}"
            out.append(
                f"<td style='padding:1px'><img alt='{e(tip)}' title='{e(tip)}' src='{src}' "
                f"style='width:{_CELL}px;height:{round(_CELL * rows / cols)}px;"
                "image-rendering:pixelated;border:1px solid #ddd;display:block'></td>"
            )
        out.append("</tr>")
    return f"<table style='border-collapse:collapse'>{''.join(out)}</table>"


def image_attention_html(result: AttentionResult) -> str:
    """The static view of an image's attention: the image, attention rollout and the last
    layer's mean from the class token and from the centre patch drawn over it, then every
    head's map from the class token (each on its own scale); everything escaped."""
    e = html.escape
    assert result.image is not None and result.grid is not None and result.patch_size is not None
    image, grid = result.image, result.grid
    rows, cols = grid
    ph, pw = result.patch_size
    h, w, c = image.shape
    last = result.layers[-1]
    centre = (rows // 2, cols // 2)
    shown = [
        ("rollout from [CLS]", result.patch_map("[CLS]")),
        (f"layer {last} from [CLS] (mean of heads)", result.patch_map("[CLS]", layer=last)),
        (f"layer {last} from patch {centre}", result.patch_map(centre, layer=last)),
    ]
    plain = image if c == 3 else np.repeat(image, 3, axis=-1)
    figures = [_figure(plain, "image", f"{h}x{w}, {rows}x{cols} patches", grid, "labkit-image")]
    figures += [
        _figure(
            attention_overlay(image, values),
            caption,
            f"largest weight {sig(float(values.max()))}",
            grid,
            "labkit-overlay",
        )
        for caption, values in shown
    ]
    partial = (
        ""
        if len(result.layers) == result.num_layers
        else f" (rollout over the kept layers {list(result.layers)} only)"
    )
    return (
        f"<div class='labkit-image-attention' style='{_FONT}'>"
        f"<div><b>Attention over patches</b> · {e(result.model_name)} · {rows}x{cols} patches "
        f"of {ph}x{pw} px + [CLS] = {len(result.tokens)} tokens · {len(result.layers)} layers "
        f"x {len(result.heads)} heads{e(partial)}</div>"
        f"<div>{''.join(figures)}</div>{_ramp_legend()}"
        f"<div style='margin-top:8px'><b>From [CLS], every head</b> "
        f"<span style='color:#777'>(rows: layers; each map on its own scale)</span></div>"
        f"{_heads_table(result, 0)}</div>"
    )


def image_attribution_html(result: ImageAttribution) -> str:
    """The static view of an image explanation: the image, its pixel scores and its patch
    sums drawn over it (green toward the target, red against), a legend and the numbers."""
    e = html.escape
    image, grid = result.image, result.grid
    plain = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    top = result.display_scale
    patch_top = float(np.abs(result.patch_scores).max()) or 1.0
    method = result.method.replace("_", " ")
    figures = [_figure(plain, "image", f"{image.shape[0]}x{image.shape[1]}", grid, "labkit-image")]
    # occlusion by whole patches gives one number per patch: its pixel figure would repeat it
    by_patch = result.method == "occlusion" and result.options.get("window") == result.patch_size
    if not by_patch:
        caption = "pixel scores" if result.method != "occlusion" else "occlusion, per pixel"
        figures.append(
            _figure(
                attribution_overlay(image, result.scores, top),
                caption,
                f"±{sig(top)} at full colour",
                grid,
                "labkit-overlay",
            )
        )
    figures.append(
        _figure(
            attribution_overlay(image, result.patch_scores, patch_top),
            (
                "drop when a patch is "
                + ("blacked out" if result.options.get("baseline") == "black" else "replaced")
            )
            if by_patch
            else "per patch (sum)",
            f"±{sig(patch_top)} at full colour",
            grid,
            "labkit-overlay",
        )
    )
    parts = [f"<b>{e(result.target)}</b> (p={result.probability:.3f})"]
    if result.predicted != result.target:
        p = result.probs[result.predicted]
        parts.append(f"predicted <b>{e(result.predicted)}</b> (p={p:.3f})")
    parts.append(e(method))
    if result.delta is not None:
        steps = result.options.get("n_steps")
        parts.append(
            f"completeness error {result.delta:.4f}" + (f" at {int(steps)} steps" if steps else "")
        )
    parts.append(f"baseline {e(str(result.options.get('baseline', '')))}")
    top_patches = ", ".join(f"{rc} {v:+.3g}" for rc, v in result.top_patches(3))
    scale = "shared" if result.scale is not None else "own"
    return (
        f"<div class='labkit-image-attribution' style='{_FONT}'>"
        f"<div>{e(result.model_name)} · {' · '.join(parts)}</div>"
        f"<div>{''.join(figures)}</div>"
        f"<div style='color:#555'>strongest patches (row, col): {e(top_patches)}</div>"
        f"{legend_html(result.target, f'{scale} scale ±{top:.2g}')}</div>"
    )
