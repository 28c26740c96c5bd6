"""How close to the hardware: achieved FLOP/s of labkit's finetuning against a large matmul's peak.

    python benchmarks/bench_flops.py [--quick] [--device auto] [--lm PATH] [--steps N]

Rows, all measured in one process on one device:

1. peak: the best of several timed ``torch.matmul`` of two n x n matrices (2 n^3 FLOPs each;
   n = 2048 on the CPU, 8192 on a GPU) in the dtype the finetuning computed in (float32 on the
   CPU; on a GPU the dtype of the model's logits under labkit's precision choice, bf16 under
   autocast), measured right after the finetuning it is compared with.
2. the classifier ``labkit.demo.model()`` (all-MiniLM-L6-v2), full finetuning on
   ``labkit.demo.data()``, batch 16.
3. a causal LM (``labkit.demo.lm()``, SmolLM2-135M-Instruct, or the folder ``--lm`` names),
   LoRA finetuning (labkit's ``lora=True``) on ``labkit.demo.instructions()``, batch 8.
4. both fractions in one line: "finetune FLOP/s / matmul peak: classifier 0.31, causal LM
   0.22" (``make bench`` prints it; later work can be held to it).

How the FLOPs are counted (the usual estimate, Kaplan et al. 2020, "Scaling Laws for Neural
Language Models", section 2.1): N is the model's non-embedding parameters (every parameter but
those of its ``nn.Embedding`` modules: token, position and token-type embeddings; an output layer
tied to the token embedding is that embedding, so it is left out too). T is the real tokens the
timed steps trained on: the sum of each training batch's ``attention_mask`` (padding does not
count), read by a forward pre-hook on the model. A parameter that trains costs 6 FLOPs per token
(2 forward, 2 for the gradient of its input, 2 for its own gradient); a frozen one costs 4 (no
weight gradient), so full finetuning counts ``6 N T`` and LoRA ``4 N_frozen T + 6 N_lora T``.
Attention's score and value products (which grow with the sequence length) and a tied output
layer's matmul are not counted: the figure is a lower bound of the work done (for SmolLM2 the
tied 576 x 49,152 output layer alone adds about a quarter to the matmul work).

Time: from the end of the 2nd optimizer step to the end of the last one (``StepEnd.time``, as
``bench_finetune``), with the tokens of the forwards made in that window; evaluation and sample
generation are not in it (the model is in eval mode there, and the run ends after the window).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEVICE = "auto"  # --device: what labkit picks, as a user gets it
VALIDATION_ROWS = 32  # the run's closing evaluation: kept short, it is not timed


def _row(figure: str, value: Any, baseline: Any, unit: str, goal: str = "report") -> dict[str, Any]:
    ratio = value / baseline if isinstance(value, float) and baseline else None
    return {
        "benchmark": "flops",
        "figure": figure,
        "value": round(value, 4) if isinstance(value, float) else value,
        "unit": unit,
        "baseline": round(baseline, 4) if isinstance(baseline, float) else baseline,
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
    }


# -- the peak -----------------------------------------------------------------------------------


def matmul_peak(device: Any, dtype: Any, n: int, repeats: int = 5) -> float:
    """FLOP/s of the fastest of ``repeats`` timed ``a @ b`` (n x n, ``dtype``) on ``device``; on a
    GPU each timing holds 10 products, so the launch does not count."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    cuda = torch.device(device).type == "cuda"
    inner = 10 if cuda else 1

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(2):  # warm-up: kernel choice, thread pool, caches
        a @ b
    sync()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync()
        best = max(best, inner * 2 * n**3 / (time.perf_counter() - t0))
    return best


# -- counting -----------------------------------------------------------------------------------


def non_embedding_parameters(hf: Any) -> tuple[int, int]:
    """(frozen, trainable) parameter counts of ``hf``, embeddings left out (a tied output
    layer shares the embedding's tensor, which ``parameters()`` lists once)."""
    import torch

    embedding = {
        id(p) for m in hf.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()
    }
    frozen = trainable = 0
    for p in hf.parameters():
        if id(p) in embedding:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return frozen, trainable


@contextlib.contextmanager
def counting_tokens(hf: Any) -> Iterator[dict[str, list[Any]]]:
    """While open, each training-mode forward of ``hf`` appends (wall clock, real tokens) and the
    dtype of its logits; the hooks are removed on leaving."""
    seen: dict[str, list[Any]] = {"at": [], "tokens": [], "dtype": []}

    def before(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if not module.training:
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen["at"].append(time.time())  # the clock of StepEnd.time
        # a 0-d tensor on the device: summed at the end, no GPU sync per step
        seen["tokens"].append(mask.sum() if mask is not None else ids.numel())

    def after(module: Any, args: Any, output: Any) -> None:
        logits = getattr(output, "logits", None)
        if module.training and logits is not None and len(seen["dtype"]) < 4:
            seen["dtype"].append(logits.dtype)

    handles = [
        hf.register_forward_pre_hook(before, with_kwargs=True),
        hf.register_forward_hook(after),
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _short_validation(data: Any) -> Any:
    """``data`` with its validation split cut to ``VALIDATION_ROWS`` (TextData and LMData)."""
    from datasets import DatasetDict

    splits = DatasetDict(dict(data.splits))
    splits["validation"] = data.validation.select(range(min(VALIDATION_ROWS, len(data.validation))))
    return dataclasses.replace(data, splits=splits)


def finetune_flops(
    model: Any, data: Any, *, steps: int, batch_size: int, lora: bool, out: str, **kw: Any
) -> dict[str, Any]:
    """Finetune ``model`` with ``labkit.finetune`` for ``steps`` steps and count its FLOP/s."""
    import torch

    import labkit

    base = model.hf  # the module every forward goes through, with or without an adapter
    with counting_tokens(base) as seen:
        run = labkit.finetune(
            model,
            data,
            lora=lora,
            max_steps=steps,
            batch_size=batch_size,
            output_dir=out,
            progress=False,
            save_every=None,
            **kw,
        ).wait()
    if run.status != "finished":
        raise RuntimeError(f"the run ended {run.status}: {run.error}")
    times = run.history.column("time")
    t0, t1 = times[1], times[-1]  # the ends of the 2nd and of the last step
    tokens = sum(int(n) for at, n in zip(seen["at"], seen["tokens"], strict=True) if t0 < at <= t1)
    frozen, trainable = non_embedding_parameters(model.hf)  # with the adapter, once attached
    per_token = 6 * trainable + 4 * frozen
    seconds = t1 - t0
    return {
        "flops": per_token * tokens / seconds,
        "tokens_per_s": tokens / seconds,
        "per_token": per_token,
        "frozen": frozen,
        "trainable": trainable,
        "dtype": seen["dtype"][0] if seen["dtype"] else torch.float32,
        "device": model.device,
        "steps": len(times) - 2,
    }


# -- the benchmark ------------------------------------------------------------------------------


def _demo_lm() -> Any:
    import labkit

    return labkit.demo.lm(device=DEVICE)


def _peak_for(result: dict[str, Any], peaks: dict[Any, float]) -> tuple[float, str]:
    """The matmul peak on the run's device in its compute dtype (measured once per pair)."""
    device, dtype = result["device"], result["dtype"]
    n = 8192 if device.type == "cuda" else 2048
    key = (str(device), dtype)
    if key not in peaks:
        peaks[key] = matmul_peak(device, dtype, n)
    return peaks[key], f"{n}x{n} {str(dtype).replace('torch.', '')} on {device}"


def run(
    quick: bool = True,
    *,
    lm: Callable[[], Any] = _demo_lm,
    steps: int | None = None,
    lm_steps: int | None = None,
) -> list[dict[str, Any]]:
    """The rows above; ``lm`` returns the causal LM to finetune (default ``labkit.demo.lm()``),
    ``steps`` / ``lm_steps`` the optimizer steps of each run (default 12 / 6 quick, 40 / 30)."""
    from transformers import set_seed

    import labkit

    steps = steps or (12 if quick else 40)
    lm_steps = lm_steps or (6 if quick else 30)
    rows: list[dict[str, Any]] = []
    peaks: dict[Any, float] = {}
    fractions: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        set_seed(0)
        classifier = labkit.demo.model(device=DEVICE)
        c = finetune_flops(
            classifier,
            _short_validation(labkit.demo.data()),
            steps=steps,
            batch_size=16,
            lora=False,
            out=f"{tmp}/classifier",
        )
        peak, peak_name = _peak_for(c, peaks)
        rows.append(_row(f"matmul peak ({peak_name}, best of 5)", peak / 1e9, None, "GFLOP/s"))
        fractions["classifier"] = c["flops"] / peak
        rows.append(
            _row(
                f"classifier full finetune: 6 x {c['trainable'] / 1e6:.1f}M params x "
                f"{c['tokens_per_s']:,.0f} tokens/s ({c['steps']} steps)",
                c["flops"] / 1e9,
                peak / 1e9,
                "GFLOP/s",
            )
        )
        del classifier
        set_seed(0)
        causal = lm()
        d = finetune_flops(
            causal,
            _short_validation(labkit.demo.instructions()),
            steps=lm_steps,
            batch_size=8,
            lora=True,
            out=f"{tmp}/lm",
            sample_prompts=(),  # no sample generations: the closing evaluation stays short
        )
        lm_peak, lm_peak_name = _peak_for(d, peaks)
        if lm_peak_name != peak_name:
            rows.append(
                _row(f"matmul peak ({lm_peak_name}, best of 5)", lm_peak / 1e9, None, "GFLOP/s")
            )
        fractions["causal LM"] = d["flops"] / lm_peak
        name = os.path.basename(str(causal.name).rstrip("/")) or "causal LM"
        rows.append(
            _row(
                f"causal LM ({name}) LoRA finetune: (4 x {d['frozen'] / 1e6:.1f}M + 6 x "
                f"{d['trainable'] / 1e6:.2f}M) x {d['tokens_per_s']:,.0f} tokens/s "
                f"({d['steps']} steps)",
                d["flops"] / 1e9,
                lm_peak / 1e9,
                "GFLOP/s",
            )
        )
    summary = ", ".join(f"{k} {v:.2f}" for k, v in fractions.items())
    rows.append(_row("finetune FLOP/s / matmul peak", summary, None, "fraction"))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps (12 and 6)")
    p.add_argument("--device", default="auto", help="auto (default: labkit's pick), cpu, cuda")
    p.add_argument("--lm", default=None, help="a causal LM folder instead of labkit.demo.lm()")
    p.add_argument("--steps", type=int, default=None, help="classifier steps")
    p.add_argument("--lm-steps", type=int, default=None, help="causal LM steps")
    a = p.parse_args()
    global DEVICE
    DEVICE = a.device

    def from_folder() -> Any:
        import labkit

        return labkit.load_model(a.lm, task="causal-lm", device=DEVICE)

    rows = run(
        quick=a.quick, lm=from_folder if a.lm else _demo_lm, steps=a.steps, lm_steps=a.lm_steps
    )
    for r in rows:
        ratio = "" if r["ratio"] is None else f"  ({r['ratio']} of the peak)"
        print(f"{r['figure']}: {r['value']} {r['unit']}{ratio}", flush=True)


if __name__ == "__main__":
    main()
