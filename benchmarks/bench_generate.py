"""Generation throughput: ``Model.generate`` / ``Model.stream`` against ``hf.generate``.

Rows (one process, the two sides alternating, medians of the repeats; the same model, prompt
token ids in the chat template, left padding in the same row order, greedy, the same
``max_new_tokens``, so both sides make exactly the same tokens):

1. batch 1: ``Model.generate([prompt])`` vs ``hf.generate`` (goal >= 0.98x).
2. batch 8: ``Model.generate(8 prompts)`` vs ``hf.generate`` on the same padded batch
   (goal >= 0.98x).
3. streaming, batch 1: ``Model.stream(prompt)`` with a subscriber vs ``hf.generate`` with
   transformers' ``TextIteratorStreamer`` read on the caller's thread (goal >= 0.98x).

Under rows 1 and 2, labkit's own work per decoding step timed alone (its logits processor and
stopping criterion: the chosen tokens' log-probabilities from a log-softmax and a gather, and
the stop/cancel check) as a share of hf.generate's step (goal <= 0.02): a figure that stays
steady where whole runs on busy CPUs vary by several percent. (torch's CPU ``logsumexp`` over
the 49k vocabulary took 3-5x longer than ``log_softmax`` + gather here, so the latter it is.)

Run: ``python benchmarks/bench_generate.py [--quick] [--model PATH] [--device cpu]
[--new-tokens N] [--reps N]``, or ``benchmarks/run_all.py --only generate [--quick]``. The
model is ``labkit.demo.lm()`` (SmolLM2-135M-Instruct) unless ``--model`` names a folder, e.g.
an already converted copy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEVICE = "cpu"  # --device
# (new tokens, repeats): --quick, then the full size
SIZES = {True: (16, 3), False: (64, 7)}
PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Review: a gorgeous, witty, seductive movie. Is this review positive or negative?",
    "List three colours.",
    "Explain in a few words what a transformer model is.",
    "Review: the worst film of the year, painfully slow and predictable. Is this review "
    "positive or negative?",
    "Translate 'good morning' into French.",
    "Name a planet.",
]


def _row(figure: str, value: float, baseline: float | None, goal: str, unit: str) -> dict[str, Any]:
    ratio = value / baseline if baseline else None
    return {
        "benchmark": "generate",
        "figure": figure,
        "value": round(value, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
        "unit": unit,
    }


def unavailable() -> str | None:
    from importlib.util import find_spec

    if find_spec("gguf") is None:
        return "the offline LM needs the gguf package (pip install 'labkit[demo]')"
    return None


def load(path: str | None = None, device: str = "cpu") -> Any:
    """The model measured: ``labkit.demo.lm()``, or the causal LM folder ``path``."""
    import labkit

    if path is None:
        return labkit.demo.lm(device=device)
    return labkit.load_model(path, task="causal-lm", device=device)


def _hf_batch(model: Any, prompts: list[str], new_tokens: int) -> tuple[Any, Any, list[int]]:
    """The left-padded ids labkit's generate makes for ``prompts`` (its rows sorted by length),
    and that order."""
    import torch

    from labkit.lm.generate import prepare

    plan = prepare(model, prompts, max_new_tokens=new_tokens, batch_size=len(prompts))
    order = sorted(range(len(plan.rows)), key=lambda i: len(plan.rows[i]))
    rows = [plan.rows[i] for i in order]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), plan.pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r)
        mask[i, width - len(r) :] = 1
    return ids.to(model.device), mask.to(model.device), order


def _sync(model: Any) -> None:
    import torch

    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def _timed(fn: Any, model: Any) -> tuple[float, Any]:
    _sync(model)
    t0 = time.perf_counter()
    out = fn()
    _sync(model)
    return time.perf_counter() - t0, out


def _hf_tokens(out: Any, width: int, pad: int, eos: set[int]) -> int:
    """Tokens HF made per row: up to and including the first end-of-sequence token."""
    n = 0
    for row in out[:, width:].tolist():
        for t in row:
            n += 1
            if t in eos:
                break
    return n


def compare(model: Any, prompts: list[str], new_tokens: int, reps: int) -> dict[str, float]:
    """labkit's and HF's tokens/s for one batch of ``prompts``; asserts equal tokens."""
    import torch

    from labkit.lm.generate import _eos_ids

    ids, mask, order = _hf_batch(model, prompts, new_tokens)
    pad = int(model.tokenizer.pad_token_id)
    eos = _eos_ids(model)

    def ours() -> Any:
        return model.generate(prompts, max_new_tokens=new_tokens, batch_size=len(prompts))

    def theirs() -> Any:
        with torch.inference_mode():
            return model.hf.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )

    ours(), theirs()  # warm-up: allocator, kernels, caches
    t_ours, t_theirs = [], []
    n = None
    for _ in range(reps):
        t, gens = _timed(ours, model)
        t_ours.append(t)
        t, out = _timed(theirs, model)
        t_theirs.append(t)
        got = [list(gens[i].token_ids) for i in order]
        want = [
            r[: next((k + 1 for k, x in enumerate(r) if x in eos), len(r))]
            for r in out[:, ids.shape[1] :].tolist()
        ]
        if got != want:
            raise AssertionError("labkit and hf.generate made different tokens")
        n = _hf_tokens(out, ids.shape[1], pad, eos)
    assert n is not None
    return {"ours": n / statistics.median(t_ours), "theirs": n / statistics.median(t_theirs)}


def compare_stream(model: Any, prompt: str, new_tokens: int, reps: int) -> dict[str, float]:
    """``Model.stream`` with a subscriber vs ``hf.generate`` + ``TextIteratorStreamer``."""
    import torch
    from transformers import TextIteratorStreamer

    ids, mask, _ = _hf_batch(model, [prompt], new_tokens)

    def ours() -> int:
        pieces: list[str] = []
        s = model.stream(prompt, max_new_tokens=new_tokens)
        s.subscribe(pieces.append)
        return s.wait().n_tokens

    def theirs() -> int:
        streamer = TextIteratorStreamer(model.tokenizer, skip_prompt=True, skip_special_tokens=True)
        out: list[Any] = []

        def work() -> None:
            with torch.inference_mode():
                out.append(
                    model.hf.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        max_new_tokens=new_tokens,
                        do_sample=False,
                        pad_token_id=int(model.tokenizer.pad_token_id),
                        streamer=streamer,
                    )
                )

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for _piece in streamer:
            pass
        thread.join()
        return int(out[0].shape[1] - ids.shape[1])

    ours(), theirs()
    t_ours, t_theirs = [], []
    n = 0
    for _ in range(reps):
        t, n = _timed(ours, model)
        t_ours.append(t)
        t, _n = _timed(theirs, model)
        t_theirs.append(t)
    return {"ours": n / statistics.median(t_ours), "theirs": n / statistics.median(t_theirs)}


def bookkeeping(model: Any, batch: int, reps: int = 200) -> float:
    """Seconds labkit's own work takes per decoding step for ``batch`` rows (its logits
    processor and stopping criterion on scores of the model's vocabulary), without streaming."""
    import torch

    from labkit.lm.generate import _Recorder, prepare

    plan = prepare(model, ["x"] * batch, max_new_tokens=reps + 1, batch_size=batch)
    vocab = int(model.hf.get_output_embeddings().weight.shape[0])
    scores = torch.randn(batch, vocab, device=model.device)
    ids = torch.randint(3, vocab, (batch, 16), device=model.device)  # never an eos
    rec = _Recorder(model, plan, range(batch), on_token=None, cancel=None)
    rec.stopping(ids, rec.processor(ids, scores))  # warm-up
    _sync(model)
    t0 = time.perf_counter()
    for _ in range(reps):
        rec.stopping(ids, rec.processor(ids, scores))
    _sync(model)
    return (time.perf_counter() - t0) / reps


def run(
    quick: bool = True,
    model: Any = None,
    new_tokens: int | None = None,
    reps: int | None = None,
) -> list[dict[str, Any]]:
    """The rows; ``model`` is a labkit causal LM (default: :func:`load` on ``DEVICE``)."""
    import warnings

    import labkit

    warnings.simplefilter("ignore", labkit.LabkitWarning)
    lm = model if model is not None else load(device=DEVICE)
    n_new, n_reps = SIZES[quick]
    n_new, n_reps = new_tokens or n_new, reps or n_reps
    where = f"{lm.device.type}, {n_new} new tokens, median of {n_reps}"
    rows = []
    one = compare(lm, PROMPTS[:1], n_new, n_reps)
    rows.append(
        _row(
            f"Model.generate vs hf.generate, batch 1 ({where})",
            one["ours"],
            one["theirs"],
            ">= 0.98",
            "tokens/s",
        )
    )
    eight = compare(lm, PROMPTS, n_new, n_reps)
    rows.append(
        _row(
            f"Model.generate vs hf.generate, batch 8 ({where})",
            eight["ours"],
            eight["theirs"],
            ">= 0.98",
            "tokens/s",
        )
    )
    # labkit's share of a step, timed alone: steady where whole runs are noisy (busy CPUs)
    own = bookkeeping(lm, len(PROMPTS))
    step = len(PROMPTS) / eight["theirs"]  # seconds per decoding step of the batch of 8
    rows.append(
        _row(
            "  labkit's own work per step, batch 8, as a share of hf.generate's step",
            own * 1e6,
            step * 1e6,
            "<= 0.02",
            "µs",
        )
    )
    streamed = compare_stream(lm, PROMPTS[0], n_new, n_reps)
    rows.append(
        _row(
            f"Model.stream vs hf.generate + TextIteratorStreamer ({where})",
            streamed["ours"],
            streamed["theirs"],
            ">= 0.98",
            "tokens/s",
        )
    )
    return rows


def main() -> None:
    global DEVICE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer tokens and repeats")
    p.add_argument("--model", default=None, help="a causal LM folder (default: labkit.demo.lm())")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
    p.add_argument("--new-tokens", type=int, default=None, help="max_new_tokens of each call")
    p.add_argument("--reps", type=int, default=None, help="alternating repeats per row")
    a = p.parse_args()
    DEVICE = a.device
    model = load(a.model, device=a.device)
    from bench_finetune import print_rows

    print_rows(run(quick=a.quick, model=model, new_tokens=a.new_tokens, reps=a.reps), width=76)


if __name__ == "__main__":
    main()
