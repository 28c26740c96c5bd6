"""Small static heatmaps: pooled attention matrices as palette PNGs in data URIs.

Static HTML (saved notebooks, nbviewer, reports) cannot run the widget, so each layer becomes one
image: its heads side by side. The PNG is written by hand with ``zlib`` (no matplotlib, no
Pillow): an 8-bit palette image is a few hundred bytes per head.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["BLUE", "BLUES", "RED", "REDS", "data_uri", "png", "pool", "tile", "to_levels"]


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


def pool(matrix: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool a [T, T] matrix to at most [size, size] (rows and columns split evenly)."""
    rows, cols = matrix.shape
    if rows <= size and cols <= size:
        return matrix.astype(np.float32, copy=False)
    r_edges = np.linspace(0, rows, min(rows, size) + 1).astype(int)
    c_edges = np.linspace(0, cols, min(cols, size) + 1).astype(int)
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


def data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
