"""Small static heatmaps: pooled attention matrices as palette PNGs in data URIs.

Static HTML (saved notebooks, nbviewer, reports) cannot run the widget, so each layer becomes one
image: its heads side by side. The PNG is written by hand with ``zlib`` (no matplotlib, no
Pillow): an 8-bit palette image is a few hundred bytes per head. ``labelled`` wraps one such
image in a figure with its tokens on both axes (escaped, thinned when rows are small).
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Sequence

import numpy as np

__all__ = [
    "BLUE",
    "BLUES",
    "RED",
    "REDS",
    "data_uri",
    "edges",
    "image_png",
    "labelled",
    "png",
    "pool",
    "shade",
    "tile",
    "to_levels",
]


def _ramp(end: tuple[int, int, int]) -> bytes:
    """256 colours from white to ``end`` (index 0 white, 255 ``end``)."""
    t = np.linspace(0.0, 1.0, 256)[:, None]
    white = np.array([255.0, 255.0, 255.0])
    rgb = np.rint(white * (1 - t) + np.array(end, dtype=float) * t).astype(np.uint8)
    return rgb.tobytes()


# The dark ends of the two ramps (RGB). The widgets draw with the same numbers: labkit.ui._base
# hands them to the front end as PALETTE.attention and PALETTE.change.
BLUE = (8, 48, 107)  # attention weights: white -> BLUE
RED = (153, 0, 13)  # attention change (Jensen-Shannon divergence): white -> RED
BLUES = _ramp(BLUE)
REDS = _ramp(RED)


def shade(palette: bytes, level: int) -> str:
    """CSS ``#rrggbb`` of entry ``level`` (0..255) of a 256-colour palette."""
    r, g, b = palette[3 * level : 3 * level + 3]
    return f"#{r:02x}{g:02x}{b:02x}"


def edges(n: int, size: int) -> np.ndarray:
    """int [groups + 1]: where ``pool`` splits ``n`` rows into at most ``size`` even groups
    (group g holds rows ``edges[g]`` to ``edges[g + 1] - 1``)."""
    return np.linspace(0, n, min(n, size) + 1).astype(int)


def pool(matrix: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool a [T, T] matrix to at most [size, size] (rows and columns split evenly)."""
    rows, cols = matrix.shape
    if rows <= size and cols <= size:
        return matrix.astype(np.float32, copy=False)
    r_edges = edges(rows, size)
    c_edges = edges(cols, size)
    summed = np.add.reduceat(np.add.reduceat(matrix, r_edges[:-1], axis=0), c_edges[:-1], axis=1)
    counts = np.outer(np.diff(r_edges), np.diff(c_edges))
    return (summed / counts).astype(np.float32)


def to_levels(matrix: np.ndarray, top: float | None = None) -> np.ndarray:
    """uint8 levels 0..255 of ``matrix`` scaled by ``top`` (its own maximum by default)."""
    peak = float(matrix.max()) if top is None else top
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(matrix.shape, dtype=np.uint8)
    return np.clip(np.rint(matrix / peak * 255.0), 0, 255).astype(np.uint8)


def tile(images: list[np.ndarray], gap: int = 1) -> np.ndarray:
    """Place uint8 images of one height side by side, ``gap`` columns of 0 (white) between."""
    height = max(im.shape[0] for im in images)
    parts = []
    for i, im in enumerate(images):
        if i:
            parts.append(np.zeros((height, gap), dtype=np.uint8))
        pad = np.zeros((height, im.shape[1]), dtype=np.uint8)
        pad[: im.shape[0]] = im
        parts.append(pad)
    return np.concatenate(parts, axis=1)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(levels: np.ndarray, palette: bytes = BLUES) -> bytes:
    """An 8-bit palette PNG of a uint8 [h, w] image (value = palette index)."""
    levels = np.ascontiguousarray(levels, dtype=np.uint8)
    height, width = levels.shape
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = levels
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", palette)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def image_png(image: np.ndarray) -> bytes:
    """A PNG of a uint8 image [H, W] / [H, W, 1] (grayscale) or [H, W, 3] (RGB): the one
    encoder of every image labkit shows (thumbnails, overlays)."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    height, width = arr.shape[:2]
    colour = 0 if arr.ndim == 2 else 2
    raw = np.zeros((height, width * (1 if arr.ndim == 2 else 3) + 1), dtype=np.uint8)
    raw[:, 1:] = arr.reshape(height, -1)  # filter byte 0 (None) per row
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


_LABEL_PX = 11  # axis labels at least this many pixels apart: thinned when rows are smaller
_LABEL_CHARS = 12  # longer labels are cut (the full token is in the tooltip)


def labelled(
    matrix: np.ndarray,
    labels: Sequence[str],
    *,
    caption: str,
    size: int = 64,
    width: int = 280,
    top: float | None = None,
    palette: bytes = BLUES,
) -> str:
    """HTML figure of a [T, T] matrix with its T ``labels`` on both axes (rows: queries,
    columns: keys) and ``caption`` above; everything shown is escaped.

    The matrix is pooled to at most ``size`` x ``size`` and drawn about ``width`` pixels wide.
    Where a row is under 11 px tall only every few rows get a label (each covers a slot of
    rows and names its first token; the tooltip names the tokens it covers). ``top`` is the
    value drawn darkest (the matrix's maximum by default): pass one shared ``top`` to compare
    two figures.
    """
    e = html.escape
    t = matrix.shape[0]
    cut = edges(t, size)
    groups = len(cut) - 1
    cell = max(2, min(14, width // max(groups, 1)))
    step = -(-_LABEL_PX // cell)  # groups per label slot, rounded up
    side = groups * cell
    src = data_uri(png(to_levels(pool(matrix, size), top), palette))
    slots = []
    for g in range(0, groups, step):
        lo, hi = int(cut[g]), int(cut[min(g + step, groups)])
        name = labels[lo]
        short = name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1].rstrip() + "…"
        tip = f"token {lo}: {name}" if hi - lo == 1 else f"tokens {lo}-{hi - 1}, from {name}"
        slots.append((min(step, groups - g) * cell, short, tip))
    gutter = min(90, 6 * max(len(s) for _, s, _ in slots) + 6)
    label = "font-size:10px;white-space:pre;overflow:hidden;flex:none"
    rows = "".join(
        f"<div title='{e(tip)}' style='height:{px}px;line-height:{px}px;{label}'>{e(text)}</div>"
        for px, text, tip in slots
    )
    cols = "".join(
        f"<div title='{e(tip)}' style='width:{px}px;line-height:{px}px;max-height:{gutter}px;"
        f"writing-mode:vertical-rl;transform:rotate(180deg);{label}'>{e(text)}</div>"
        for px, text, tip in slots
    )
    return (
        f"<figure class='labkit-map' style='margin:4px 12px 4px 0;display:inline-block;"
        f"vertical-align:top'><figcaption style='font-weight:600;margin-bottom:2px'>"
        f"{e(caption)}</figcaption>"
        f"<div style='display:flex'><div style='width:{gutter + 3}px;flex:none'></div>"
        f"<div class='labkit-map-keys' style='display:flex;align-items:flex-end'>{cols}</div>"
        f"</div><div style='display:flex'><div class='labkit-map-queries' style='width:"
        f"{gutter}px;flex:none;text-align:right'>{rows}</div>"
        f"<img alt='{e(caption)}: rows query tokens, columns key tokens' src='{src}' "
        f"style='width:{side}px;height:{side}px;margin-left:3px;image-rendering:pixelated;"
        f"flex:none'></div>"
        f"</figure>"
    )
