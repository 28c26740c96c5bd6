"""Attention views: bytes sent to the browser and build time, labkit vs bertviz; time to first
paint in Chromium; extraction time vs a plain forward pass.

BERT-base geometry (12 layers x 12 heads, random init: only the shapes matter) at 32, 128 and
512 tokens. labkit's "first view" is what the browser receives before the first drawing: the
widget state (front-end code, tokens, uint8 thumbnails) plus the one layer the head view asks
for; "all layers" adds every other layer as the user opens it. bertviz's figure is the HTML of
``model_view(html_action="return")``. At 512 tokens bertviz's HTML (~0.8 GB) is estimated from
its bytes per weight at 128 tokens unless ``--bertviz-512`` is given.

    python benchmarks/bench_attention.py [--quick] [--bertviz-512]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _row(
    figure: str, value: float, baseline: float | None, ratio: float | None, goal: str, unit: str
) -> dict[str, Any]:
    return {
        "benchmark": "attention",
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "goal": goal,
        "unit": unit,
    }


def _bert_base() -> Any:
    import torch
    import transformers as tf

    import labkit
    from labkit.demo import model_path

    torch.manual_seed(0)
    tok = tf.AutoTokenizer.from_pretrained(str(model_path()))
    hf = tf.BertForSequenceClassification(tf.BertConfig())  # 12 x 12, hidden 768, vocab 30522
    hf.eval()
    return labkit.Model.wrap(hf, tok, name="bert-base (random init)")


def _median_time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _state_bytes(view: Any) -> int:
    """Bytes of the widget's initial state as the kernel sends it: JSON + binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers(view.get_state())
    return len(json.dumps(state).encode()) + sum(len(bytes(b)) for b in buffers)


def _reply_bytes(content: dict[str, Any], buffers: list[bytes]) -> int:
    return len(json.dumps(content).encode()) + sum(len(b) for b in buffers)


def _bertviz_html(result: Any) -> str:
    import torch
    from bertviz import model_view

    attention = [torch.from_numpy(result.weights[i][None]) for i in range(len(result.layers))]
    return model_view(attention, list(result.tokens), html_action="return").data


_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/attention_view.css"></head><body><div id="root"></div>
<script type="module">
const b64 = (s) => { const t = atob(s); const u = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) u[i] = t.charCodeAt(i); return new DataView(u.buffer); };
const data = JSON.parse(document.getElementById("data").textContent);
const state = data.state;
for (const [k, v] of Object.entries(data.buffers)) state[k] = b64(v);
const handlers = {};
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on: (e, cb) => { (handlers[e] ||= []).push(cb); }, off() {},
  send: (msg) => setTimeout(() => {
    const reply = data.replies[msg.layer];
    for (const h of handlers["msg:custom"] || []) h(reply.content, reply.buffers.map(b64));
  }, 0),
};
const root = document.getElementById("root");
new MutationObserver(() => {
  const view = root.querySelector(".lk-attn");
  if (view && view.dataset.ready === "1" && window.__paint === undefined) {
    requestAnimationFrame(() => { window.__paint = performance.now(); });
  }
}).observe(root, { subtree: true, attributes: true, childList: true });
const mod = await import("/attention_view.js");
if (mod.default.initialize) mod.default.initialize({ model });
mod.default.render({ model, el: root });
</script></body></html>"""


def first_paint_seconds(view: Any) -> float:
    """Navigation start -> head view drawn (layer 0 delivered as a kernel reply would be)."""
    sys.path.insert(0, str(ROOT))
    from ipywidgets.widgets.widget import _remove_buffers
    from playwright.sync_api import sync_playwright

    from tests._browser import CHROMIUM, CHROMIUM_ARGS, WIDGETS

    state, paths, buffers = _remove_buffers(view.get_state())
    state = {k: v for k, v in state.items() if not k.startswith("_")}
    bufs = {p[0]: base64.b64encode(bytes(b)).decode() for p, b in zip(paths, buffers)}
    content, layer_bufs = view.layer_message(0)
    replies = {
        0: {"content": content, "buffers": [base64.b64encode(b).decode() for b in layer_bufs]}
    }
    payload = json.dumps({"state": state, "buffers": bufs, "replies": replies})
    page_html = _PAGE.replace(
        '<div id="root"></div>',
        '<div id="root"></div><script id="data" type="application/json">'
        + payload.replace("</", "<\\/")
        + "</script>",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def route(r: Any) -> None:
            name = r.request.url.split("/")[-1]
            if name in ("", "index.html"):
                r.fulfill(status=200, content_type="text/html", body=page_html)
            elif (WIDGETS / name).is_file():
                kind = "text/javascript" if name.endswith(".js") else "text/css"
                r.fulfill(status=200, content_type=kind, body=(WIDGETS / name).read_text())
            else:
                r.abort()

        page.route("**/*", route)
        page.goto("http://labkit.test/")
        page.wait_for_function("window.__paint !== undefined", timeout=60_000)
        seconds = page.evaluate("window.__paint") / 1000
        browser.close()
    return seconds


def run(*, quick: bool = False, bertviz_512: bool = False) -> list[dict[str, Any]]:
    import torch

    import labkit
    from labkit.ui.attention_view import AttentionView

    model = _bert_base()
    rows: list[dict[str, Any]] = []
    sizes = (32, 128) if quick else (32, 128, 512)
    bertviz_per_weight = None
    for t in sizes:
        text = " ".join(["movie"] * (t - 2))  # [CLS] + t-2 words + [SEP] = t tokens
        enc = model.encode([text])
        assert enc["input_ids"].shape[1] == t
        repeat = 5 if t < 512 else 3

        def plain(enc: dict[str, Any] = enc) -> None:
            with torch.inference_mode():
                model.hf(**enc)

        def extract(text: str = text) -> Any:
            return labkit.attention(model, text)

        plain()
        result = extract()
        # alternate the two so both see the same load on a shared machine
        t_plain_all, t_extract_all = [], []
        for _ in range(repeat):
            t_plain_all.append(_median_time(plain, 1))
            t_extract_all.append(_median_time(extract, 1))
        t_plain = statistics.median(t_plain_all)
        t_extract = statistics.median(t_extract_all)
        rows.append(
            _row(
                f"extraction time, T={t}",
                t_extract,
                t_plain,
                t_extract / t_plain,
                "",
                "s (vs plain forward)",
            )
        )

        def build(result: Any = result) -> tuple[AttentionView, int]:
            view = AttentionView(result)
            return view, _state_bytes(view) + _reply_bytes(*view.layer_message(0))

        start = time.perf_counter()
        view, first = build()
        t_build = time.perf_counter() - start
        all_layers = _state_bytes(view) + sum(
            _reply_bytes(*view.layer_message(i)) for i in range(len(result.layers))
        )
        weights = result.weights.size
        if t <= 128 or bertviz_512:
            start = time.perf_counter()
            html = _bertviz_html(result)
            t_bertviz = time.perf_counter() - start
            b_bytes = float(len(html.encode()))
            bertviz_per_weight = b_bytes / weights
            del html
            note = ""
        else:
            b_bytes = float(bertviz_per_weight or 21.0) * weights
            t_bertviz = float("nan")
            note = " (bertviz estimated)"
        goal = ">= 20x smaller" if t == 128 else ""
        rows.append(
            _row(
                f"bytes to browser, first view, T={t}{note}",
                first,
                b_bytes,
                b_bytes / first,
                goal,
                "bytes",
            )
        )
        rows.append(
            _row(
                f"bytes to browser, all layers, T={t}{note}",
                all_layers,
                b_bytes,
                b_bytes / all_layers,
                "",
                "bytes",
            )
        )
        rows.append(
            _row(f"build time, T={t}{note}", t_build, t_bertviz, t_bertviz / t_build, "", "s")
        )
        if t == max(sizes):
            try:
                paint = first_paint_seconds(view)
                rows.append(
                    _row(f"time to first paint in Chromium, T={t}", paint, None, None, "< 2 s", "s")
                )
            except Exception as exc:  # no browser here: say so in the table
                rows.append(
                    _row(
                        f"time to first paint, T={t}: not measured ({exc!s:.60})",
                        float("nan"),
                        None,
                        None,
                        "< 2 s",
                        "s",
                    )
                )
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 and 128 tokens only")
    parser.add_argument(
        "--bertviz-512",
        action="store_true",
        help="really build bertviz's 512-token HTML (~0.8 GB, minutes)",
    )
    args = parser.parse_args()
    rows = run(quick=args.quick, bertviz_512=args.bertviz_512)
    print(f"{'figure':58} {'value':>14} {'baseline':>14} {'ratio':>8}  {'goal':14} unit")
    for r in rows:
        print(
            f"{r['figure']:58} {_fmt(r['value']):>14} {_fmt(r['baseline']):>14} "
            f"{_fmt(r['ratio']):>8}  {r['goal']:14} {r['unit']}"
        )


if __name__ == "__main__":
    main()
