"""Static HTML of an ``ImageData``: source, shape, split sizes and a strip of thumbnails per
class, each image an inline PNG data URI (``labkit.render.heatmap.image_png``: nothing from the
network, no Pillow)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from labkit.render.heatmap import data_uri, image_png

__all__ = ["MAX_CLASSES", "PER_CLASS", "image_data_html"]

PER_CLASS = 8  # thumbnails shown for each class
MAX_CLASSES = 20  # rows drawn; more classes are counted
_THUMB_PX = 48  # shown size (CSS, pixelated): a 28x28 digit stays crisp


def image_data_html(
    *,
    source: str,
    labels: Sequence[str],
    image_size: tuple[int, int],
    channels: int,
    split_sizes: Mapping[str, int],
    counts: Sequence[int],
    thumbnails: Sequence[np.ndarray],
) -> str:
    """Source, labels, image shape, split sizes, and per class its training count and a strip
    of ``thumbnails[k]`` (uint8 [n, H, W, C]); classes past the 20th are counted, not drawn."""
    e = html.escape
    h, w = image_size
    sizes = " · ".join(f"{e(str(k))} {v:,}" for k, v in split_sizes.items())
    strips = []
    for name, count, imgs in list(zip(labels, counts, thumbnails))[:MAX_CLASSES]:
        thumbs = "".join(
            f"<img alt='{e(name)}' title='{e(name)}' src='{data_uri(image_png(im))}' "
            f"width='{_THUMB_PX}' height='{_THUMB_PX}' "
            "style='image-rendering:pixelated;margin:1px;border:1px solid #ddd'>"
            for im in imgs
        )
        strips.append(
            f"<tr><td style='padding-right:8px;text-align:right'><b>{e(name)}</b><br>"
            f"<small>{int(count):,}</small></td><td>{thumbs}</td></tr>"
        )
    more = len(labels) - MAX_CLASSES
    tail = f"<div><small>... and {more} more classes</small></div>" if more > 0 else ""
    return (
        f"<div class='labkit-image-data'><b>{e(source or 'ImageData')}</b> — "
        f"{len(labels)} classes, {h}x{w}x{channels} images; {sizes}"
        f"<table>{''.join(strips)}</table>{tail}</div>"
    )
