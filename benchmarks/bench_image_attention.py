"""Image attention payload: bytes a browser receives for one 224x224 image on ViT-base geometry
(16x16 patches: 196 + [CLS] = 197 tokens, 12 layers x 12 heads; random weights from
``ViTConfig()``: only the shapes matter), labkit's views against bertviz's format.

labkit's "first view" is the ``ImageAttentionView`` widget state (front-end code, the uint8
image, the fp16 rollout [T, T]): the rollout from [CLS] draws from it alone; "all layers" adds
every layer's fp16 maps as the user opens them; the static HTML is what a saved notebook keeps.
bertviz's figure is ``model_view(html_action="return")`` over the same 12 x 12 maps (estimated
from its bytes per weight on 4 layers unless ``--bertviz-full``).

    python benchmarks/bench_image_attention.py [--quick] [--bertviz-full]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _row(figure: str, value: float, baseline: float | None, goal: str, unit: str) -> dict[str, Any]:
    return {
        "benchmark": "image attention",
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": None if baseline is None else baseline / value,
        "goal": goal,
        "unit": unit,
    }


def _vit_base() -> Any:
    import torch
    import transformers

    import labkit

    torch.manual_seed(0)
    config = transformers.ViTConfig()  # 224 px, 16 px patches, 12 x 12, hidden 768
    return labkit.from_config(config, labels=[str(i) for i in range(10)], device="cpu")


def _state_bytes(view: Any) -> int:
    """Bytes of the widget's initial state as the kernel sends it: JSON + binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers(view.get_state())
    return len(json.dumps(state).encode()) + sum(len(bytes(b)) for b in buffers)


def _reply_bytes(content: dict[str, Any], buffers: list[bytes]) -> int:
    return len(json.dumps(content).encode()) + sum(len(b) for b in buffers)


def _bertviz_bytes(result: Any, layers: int) -> int:
    import torch
    from bertviz import model_view

    attention = [torch.from_numpy(result.weights[i][None]) for i in range(layers)]
    return len(model_view(attention, list(result.tokens), html_action="return").data.encode())


def run(*, quick: bool = False, bertviz_full: bool = False) -> list[dict[str, Any]]:
    import numpy as np

    import labkit
    from labkit.ui.image_view import ImageAttentionView

    model = _vit_base()
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    start = time.perf_counter()
    result = labkit.attention(model, image)
    t_extract = time.perf_counter() - start
    assert result.weights.shape == (12, 12, 197, 197), result.weights.shape
    view = ImageAttentionView(result)
    first = _state_bytes(view)
    every = first + sum(_reply_bytes(*view.layer_message(i)) for i in range(12))
    static = len(result._repr_html_().encode())
    sample = 2 if quick else 4
    if bertviz_full:
        bertviz = float(_bertviz_bytes(result, 12))
        note = ""
    else:  # bertviz's HTML grows linearly with the weights: measure a few layers, scale up
        bertviz = _bertviz_bytes(result, sample) / sample * 12
        note = f" (bertviz: {sample} layers measured, x{12 / sample:g})"
    return [
        _row("extraction time, 197 tokens, 12 x 12", t_extract, None, "", "s"),
        _row(f"bytes to browser, first view{note}", first, bertviz, ">= 100x smaller", "bytes"),
        _row(f"bytes to browser, all 12 layers{note}", every, bertviz, "", "bytes"),
        _row(f"static HTML (saved notebook){note}", static, bertviz, "", "bytes"),
    ]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="measure bertviz on 2 layers")
    parser.add_argument(
        "--bertviz-full", action="store_true", help="build bertviz's HTML for all 12 layers"
    )
    args = parser.parse_args()
    rows = run(quick=args.quick, bertviz_full=args.bertviz_full)
    print(f"{'figure':62} {'value':>12} {'bertviz':>13} {'ratio':>8}  {'goal':16} unit")
    for r in rows:
        print(
            f"{r['figure']:62} {_fmt(r['value']):>12} {_fmt(r['baseline']):>13} "
            f"{_fmt(r['ratio']):>8}  {r['goal']:16} {r['unit']}"
        )


if __name__ == "__main__":
    main()
