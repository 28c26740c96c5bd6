"""Memory budgets of inspection: peak resident memory of ``attention`` and ``explain`` on long
inputs, the estimate ``attention`` checks before its pass, and the largest input each handles.

Every measurement runs in a fresh interpreter (``--one``) so one call's peak does not hide
another's: the worker loads the model, warms the call up on a short text, then samples its
resident set size every millisecond during the measured call; the figure is the peak minus the
size just before the call. Models:

* the offline default (all-MiniLM-L6-v2, 6 layers x 12 heads, limit 512 tokens), fed a
  4,096-token text: truncated to 512 with one warning;
* tiny BERTs (2 layers x 4 heads, hidden 32) built with 4,096 and 16,384 positions, so the
  quadratic attention maps are the whole cost: 4,096 tokens fits the automatic budget (half the
  free memory); 16,384 tokens is refused by it before anything runs.

Explain uses integrated gradients with n_steps=50 and no escalation (tolerance=None) so the
time is bounded, and saliency. ``--quick`` skips the 4,096-token explain on the tiny model.

    python benchmarks/bench_budgets.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_MIB = 2**20


def _row(
    figure: str,
    value: float | str,
    unit: str,
    *,
    baseline: float | None = None,
    ratio: float | None = None,
    goal: str = "",
) -> dict[str, Any]:
    return {
        "benchmark": "budgets",
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "goal": goal,
        "unit": unit,
    }


# -- worker: one measurement in this process ------------------------------------------------------
def _model(kind: str, folder: Path) -> Any:
    import labkit

    if kind == "minilm":
        return labkit.demo.model(device="cpu")
    sys.path.insert(0, str(ROOT))
    from tests import _tiny

    positions = int(kind.removeprefix("tiny"))
    path = _tiny.build("bert", folder / kind, max_positions=positions)
    return labkit.load_model(path, labels=["negative", "positive"], device="cpu")


def _text(tokens: int) -> str:
    words = ("the", "movie", "was", "not", "good", "but", "the", "actors", "were", "fun")
    return " ".join(words[i % len(words)] for i in range(tokens))


class _Peak:
    """Resident set size sampled every millisecond on a thread, while the block runs."""

    def __enter__(self) -> _Peak:
        import psutil

        self._proc = psutil.Process()
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _one(call: str, kind: str, tokens: int) -> dict[str, Any]:
    import gc

    import labkit
    from labkit._utils.malloc import return_freed_memory
    from labkit.inspect.attention.memory import attention_memory
    from labkit.inspect.budget import refusal_limit

    folder = Path(tempfile.mkdtemp(prefix="labkit-bench-budgets-"))
    model = _model(kind, folder)
    text = _text(tokens)

    def do(t: str) -> Any:
        if call == "attention":
            return labkit.attention(model, t)
        if call == "saliency":
            return labkit.explain(model, t, method="saliency")
        return labkit.explain(model, t, n_steps=50, tolerance=None)

    do("a short warm-up text")  # lazy imports and first-call allocations are not the call's
    gc.collect()
    return_freed_memory()
    out: dict[str, Any] = {"call": call, "model": kind, "tokens_in": tokens}
    ids = model.tokenizer(text, truncation=True, max_length=model.max_length)["input_ids"]
    out["tokens_used"] = len(ids)
    out["estimate_mib"] = attention_memory(model, len(ids)).total / _MIB
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            with _Peak() as peak:
                result = do(text)
            out["ok"] = True
            out["tokens_out"] = len(result.tokens)
        except labkit.LabkitError as exc:
            out["ok"] = False
            out["error"] = str(exc)
        out["seconds"] = time.perf_counter() - t0
    out["warnings"] = [str(w.message)[:120] for w in seen if w.category is labkit.LabkitWarning]
    out["peak_mib"] = (peak.peak - peak.start) / _MIB
    out["budget_mib"] = refusal_limit() / _MIB
    return out


def _measure(call: str, kind: str, tokens: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", call, kind, str(tokens)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    plan = [
        ("attention", "minilm", 4096),
        ("saliency", "minilm", 4096),
        ("integrated_gradients", "minilm", 4096),
        ("attention", "tiny4096", 1024),
        ("attention", "tiny4096", 4096),
        ("attention", "tiny16384", 16384),
        ("saliency", "tiny4096", 4096),
    ]
    if not quick:
        plan.append(("integrated_gradients", "tiny4096", 4096))
    for call, kind, tokens in plan:
        m = _measure(call, kind, tokens)
        where = f"{call}, {kind}, {tokens}-token text"
        if not m["ok"]:
            rows.append(
                _row(
                    f"{where}: refused before the pass (estimate, auto budget)",
                    round(m["estimate_mib"]),
                    "MiB",
                    baseline=round(m["budget_mib"]),
                    ratio=m["estimate_mib"] / m["budget_mib"],
                    goal="refused with advice, no OOM",
                )
            )
            rows.append(_row(f"{where}: peak RSS growth while refusing", m["peak_mib"], "MiB"))
            continue
        rows.append(
            _row(
                f"{where}: tokens used ({len(m['warnings'])} warning)",
                m["tokens_used"],
                "tokens",
                goal="truncated to the limit, 1 warning"
                if m["tokens_in"] > m["tokens_used"]
                else "",
            )
        )
        est = m["estimate_mib"] if call == "attention" else None
        rows.append(
            _row(
                f"{where}: peak RSS growth" + (" (vs estimate)" if est else ""),
                m["peak_mib"],
                "MiB",
                baseline=est,
                ratio=m["peak_mib"] / est if est else None,
                goal="<= estimate" if est else "fits in RAM",
            )
        )
        rows.append(_row(f"{where}: time", m["seconds"], "s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip IG on 4,096 tiny tokens")
    parser.add_argument(
        "--one", nargs=3, metavar=("CALL", "MODEL", "TOKENS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        call, kind, tokens = args.one
        print(json.dumps(_one(call, kind, int(tokens))))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.run_all import print_table

    print_table(run(quick=args.quick))


if __name__ == "__main__":
    main()
