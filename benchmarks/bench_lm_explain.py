"""Explaining a generation: labkit.explain on a causal LM against captum's LLM classes called
directly with the same settings.

    python benchmarks/bench_lm_explain.py                 # 32-token generation, IG n_steps=50
    python benchmarks/bench_lm_explain.py --quick         # 8 tokens, n_steps=20, 1 repeat
    python benchmarks/bench_lm_explain.py --model PATH    # another causal LM (default: demo.lm())

The model is the offline SmolLM2-135M-Instruct (``labkit.demo.lm()``) on the device labkit
picks. The prompt is read as raw text (``chat=False``) so that captum's own ``TextTokenInput``
sees the same features (every prompt token: SmolLM2 adds no special tokens) and the same
baseline (the pad token); the target is the model's greedy continuation of that prompt, given
to both as text.

1. Integrated gradients: ``labkit.explain(lm, prompt, target=..., n_steps=50)`` vs
   ``LLMGradientAttribution(LayerIntegratedGradients(hf, embeddings), tokenizer).attribute(
   TextTokenInput(prompt, tokenizer, baselines=pad), target=..., n_steps=50,
   internal_batch_size=50)``; the scores are checked equal. Best of 2 interleaved repeats
   after a warm-up run each (1 with ``--quick``).
   Goal: <= 1.10x captum's time. (labkit computes the logits of the last position only, which
   is all these methods read; captum's forward computes them at every position.)
2. Feature ablation: ``method="feature_ablation"`` vs ``LLMAttribution(FeatureAblation(hf),
   tokenizer).attribute(..., forward_in_tokens=False)`` (one teacher-forced pass per
   perturbation, as labkit does; captum's default decodes the target token by token).
3. Peak memory of (1) in a fresh process each (RSS growth during the call on a CPU, peak
   allocated on CUDA): labkit against its automatic batch budget, and against captum with all
   n_steps in one pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "The history of the Roman Empire begins with"


def _model(path: str | None = None) -> Any:
    import labkit

    if path:
        return labkit.load_model(path, task="causal-lm")
    return labkit.demo.lm()


def _target(model: Any, n_tokens: int) -> str:
    """The model's greedy continuation of PROMPT, ``n_tokens`` long, as text."""
    g = model.generate(PROMPT, max_new_tokens=n_tokens, chat=False)[0]
    return g.text


def _captum_ig(model: Any, target: str, n_steps: int) -> Any:
    """What a user writes with captum alone for the same attribution."""
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    hf, tok = model.hf.eval(), model.tokenizer
    inp = TextTokenInput(PROMPT, tok, baselines=tok.pad_token_id)
    lig = LLMGradientAttribution(LayerIntegratedGradients(hf, hf.get_input_embeddings()), tok)
    return lig.attribute(inp, target=target, n_steps=n_steps, internal_batch_size=n_steps)


def _captum_ablation(model: Any, target: str) -> Any:
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    hf, tok = model.hf.eval(), model.tokenizer
    inp = TextTokenInput(PROMPT, tok, baselines=tok.pad_token_id)
    return LLMAttribution(FeatureAblation(hf), tok).attribute(
        inp, target=target, forward_in_tokens=False
    )


def _best_times(fns: list[Any], repeats: int) -> tuple[list[float], list[Any]]:
    """(fastest of ``repeats`` runs of each, each one's first result), interleaved so that load
    from other processes on a shared machine falls on all of them alike; the first run of each
    is the warm-up and is not timed."""
    first = [fn() for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best, first


def bench_time(model: Any, n_tokens: int, n_steps: int, repeats: int) -> list[dict]:
    import numpy as np

    import labkit

    target = _target(model, n_tokens)

    def ours_ig() -> Any:
        return labkit.explain(model, PROMPT, target=target, n_steps=n_steps, chat=False)

    def ours_fa() -> Any:
        return labkit.explain(model, PROMPT, target=target, method="feature_ablation", chat=False)

    rows = []
    mine = None
    for name, fns, what in (
        (
            "integrated gradients",
            [ours_ig, lambda: _captum_ig(model, target, n_steps)],
            f"IG n_steps={n_steps}, vs captum LLMGradientAttribution(LayerIntegratedGradients)",
        ),
        (
            "feature ablation",
            [ours_fa, lambda: _captum_ablation(model, target)],
            "vs captum LLMAttribution(FeatureAblation), one teacher-forced pass each",
        ),
    ):
        (t_ours, t_captum), (ours, theirs) = _best_times(fns, repeats)
        # the same attribution, so the timing compares like with like
        np.testing.assert_allclose(
            ours.scores, theirs.token_attr.cpu().numpy(), rtol=2e-3, atol=2e-4
        )
        mine = mine or ours
        rows.append(
            {
                "benchmark": "lm_explain",
                "figure": f"explain a {len(ours.target_tokens)}-token generation "
                f"({len(ours.tokens)}-token prompt), {name}: {what}; {model.device}",
                "value": round(t_ours, 3),
                "baseline": round(t_captum, 3),
                "ratio": round(t_ours / t_captum, 3),
                "goal": "<= 1.10",
                "unit": "s",
            }
        )
    assert mine is not None and mine.delta is not None and mine.baseline_logprobs is not None
    change = float(np.abs(mine.target_logprobs - mine.baseline_logprobs).max())
    rows.append(
        {
            "benchmark": "lm_explain",
            "figure": f"IG completeness error at n_steps={n_steps}: largest over the "
            f"{len(mine.target_tokens)} target tokens (nats) vs the largest "
            "|log p - log p(baseline)|",
            "value": round(float(mine.delta.max()), 4),
            "baseline": round(change, 4),
            "ratio": round(float(mine.delta.max()) / max(change, 1e-9), 3),
            "goal": "(reported)",
            "unit": "nats",
        }
    )
    return rows


_MEMORY_CHILD = r"""
import json, sys, threading, time, warnings
import psutil, torch
sys.path.insert(0, sys.argv[2])
from benchmarks.bench_lm_explain import PROMPT, _captum_ig, _model, _target
which, n_tokens, n_steps = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
model = _model(sys.argv[5] or None)
target = _target(model, n_tokens)
import labkit
warnings.simplefilter("ignore")
# warm-up on a 1-token target: weights paged in, lazy imports and first allocations done
if which == "labkit":
    labkit.explain(model, PROMPT, target=" the", n_steps=2, chat=False)
else:
    _captum_ig(model, " the", 2)
cuda = model.device.type == "cuda"
proc = psutil.Process()
peak = [0]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.002)

if cuda:
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
else:
    start = proc.memory_info().rss
    threading.Thread(target=sample, daemon=True).start()
info = {}
if which == "labkit":
    from labkit.inspect.budget import batch_budget
    info["budget"] = batch_budget(model.device)
    labkit.explain(model, PROMPT, target=target, n_steps=n_steps, chat=False)
else:
    _captum_ig(model, target, n_steps)
if cuda:
    torch.cuda.synchronize(); top = torch.cuda.max_memory_allocated()
else:
    done.set(); time.sleep(0.01); top = peak[0]
info["peak"] = top - start
info["device"] = str(model.device)
print("RESULT" + json.dumps(info))
"""


def _child_peak(which: str, n_tokens: int, n_steps: int, path: str | None) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_CHILD,
            which,
            str(ROOT),
            str(n_tokens),
            str(n_steps),
            path or "",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"},
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def bench_memory(n_tokens: int, n_steps: int, path: str | None = None) -> list[dict]:
    ours = _child_peak("labkit", n_tokens, n_steps, path)
    theirs = _child_peak("captum", n_tokens, n_steps, path)
    mib = 1 << 20
    return [
        {
            "benchmark": "lm_explain",
            "figure": f"IG peak memory, {n_tokens}-token generation, n_steps={n_steps}, "
            f"{ours['device']}: labkit vs its automatic batch budget",
            "value": round(ours["peak"] / mib, 1),
            "baseline": round(ours["budget"] / mib, 1),
            "ratio": round(ours["peak"] / ours["budget"], 3),
            "goal": "<= 1 (within the budget)",
            "unit": "MiB",
        },
        {
            "benchmark": "lm_explain",
            "figure": f"IG peak memory, {n_tokens}-token generation: labkit vs captum "
            "LLMGradientAttribution with all n_steps in one pass",
            "value": round(ours["peak"] / mib, 1),
            "baseline": round(theirs["peak"] / mib, 1),
            "ratio": round(ours["peak"] / max(theirs["peak"], 1), 3),
            "goal": "(reported)",
            "unit": "MiB",
        },
    ]


def unavailable() -> str | None:
    from importlib.util import find_spec

    if find_spec("captum") is None:
        return "captum is not installed (pip install 'labkit[explain]')"
    return None


def run(quick: bool = False, model_path: str | None = None) -> list[dict]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.simplefilter("ignore")
    n_tokens, n_steps, repeats = (8, 20, 1) if quick else (32, 50, 2)
    rows = bench_time(_model(model_path), n_tokens, n_steps, repeats)
    rows += bench_memory(n_tokens, n_steps, model_path)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 tokens, n_steps=20, 1 repeat")
    parser.add_argument("--model", default=None, help="a causal LM folder (default demo.lm())")
    parser.add_argument("--only", choices=["time", "memory"], default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    n_tokens, n_steps, repeats = (8, 20, 1) if args.quick else (32, 50, 2)
    if args.only == "time":
        rows = bench_time(_model(args.model), n_tokens, n_steps, repeats)
    elif args.only == "memory":
        rows = bench_memory(n_tokens, n_steps, args.model)
    else:
        rows = run(quick=args.quick, model_path=args.model)
    for r in rows:
        print(
            f"{r['figure']:<120} {r['value']:>9} {r['unit']:<4} baseline {r['baseline']:>9} "
            f"ratio {r['ratio']:>6}  goal {r['goal']}"
        )


if __name__ == "__main__":
    main()
