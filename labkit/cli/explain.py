"""``labkit explain TEXT...``: which tokens drove a prediction (the offline default unless
--model). With a causal LM (``--model`` a causal-LM checkpoint), each TEXT is a prompt and the
explanation says which prompt tokens drove its greedy answer (or ``--target``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "explain predictions token by token (integrated gradients unless --method is given)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to explain; '-' reads lines from stdin"
    )
    p.add_argument(
        "--model",
        default=None,
        help="hub name or local folder (default: offline MiniLM, untrained head)",
    )
    p.add_argument(
        "--method",
        default="integrated_gradients",
        help="integrated_gradients, gradient_x_input, saliency, gradient_shap, "
        "occlusion, lime, kernel_shap or attention_rollout",
    )
    p.add_argument(
        "--target",
        default=None,
        help="label to explain (default: the predicted label); for a causal LM, the answer "
        "text to explain (default: its own greedy answer)",
    )
    p.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help="integrated gradients: first number of steps (default 50)",
    )
    p.add_argument(
        "--faithfulness",
        action="store_true",
        help="also compute AOPC comprehensiveness and sufficiency",
    )
    p.add_argument("--top", type=int, default=5, help="strongest tokens listed per text")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--json", action="store_true", help="print one JSON object per text")
    p.add_argument(
        "--html",
        default=None,
        metavar="FILE",
        help="also write the coloured explanations to one HTML file",
    )


def main(args: argparse.Namespace) -> int:
    from labkit._errors import InputError
    from labkit.inspect.attribution.api import explain

    texts = list(args.texts)
    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise InputError("no text given: labkit explain 'the movie was not good'")
    if args.model is None:
        from labkit import demo

        model = demo.model(device=args.device)
    else:
        from labkit.model import load_model

        model = load_model(args.model, device=args.device)
    options = {"faithfulness": True} if args.faithfulness else {}
    if args.n_steps is not None:
        options["n_steps"] = args.n_steps
    if model.task == "causal-lm":
        return _explain_generations(model, texts, args, options)
    from labkit.inspect.attribution.result import AttributionResult

    results = []
    for text in texts:
        r = explain(model, text, target=args.target, method=args.method, **options)
        assert isinstance(r, AttributionResult)  # a classifier's
        results.append(r)
    out = sys.stdout
    for r in results:
        if args.json:
            out.write(
                json.dumps(
                    {
                        "text": r.text,
                        "target": r.target,
                        "predicted": r.predicted,
                        "probs": r.probs,
                        "method": r.method,
                        "delta": r.delta,
                        "n_steps": r.options.get("n_steps"),
                        "comprehensiveness": r.comprehensiveness,
                        "sufficiency": r.sufficiency,
                        "tokens": list(r.tokens),
                        "scores": [float(s) for s in r.scores],
                        "special": list(r.special),
                    }
                )
                + "\n"
            )
            continue
        line = f"{r.target} (p={r.probs[r.target]:.3f}) by {r.method}"
        if r.delta is not None:
            line += f", completeness error {r.delta:.2g}"
        if r.comprehensiveness is not None:
            line += (
                f", comprehensiveness {r.comprehensiveness:.3f}, sufficiency {r.sufficiency:.3f}"
            )
        top = "  ".join(f"{t} {s:+.3f}" for t, s in r.top(args.top))
        out.write(f"{r.text}\n  {line}\n  top: {top}\n")
    if args.html:
        from pathlib import Path

        from labkit.render.attribution import render

        body = "\n<hr>\n".join(render(r) for r in results)
        Path(args.html).write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>labkit explain</title>"
            f"</head><body>{body}</body></html>",
            encoding="utf-8",
        )
        out.write(f"wrote {args.html}\n")
    return 0


def _explain_generations(
    model: Any, prompts: list[str], args: argparse.Namespace, options: Any
) -> int:
    """A causal LM: per prompt, its answer, its log-probability and the prompt tokens that
    drove the whole answer most."""
    from labkit.inspect.attribution.api import explain
    from labkit.inspect.attribution.generation_result import GenerationAttribution

    results = []
    for prompt in prompts:
        r = explain(model, prompt, target=args.target, method=args.method, **options)
        assert isinstance(r, GenerationAttribution)  # a causal LM's
        results.append(r)
    out = sys.stdout
    for r in results:
        if args.json:
            record = {
                "prompt": r.prompt,
                "target": r.target,
                "generated": r.generated,
                "method": r.method,
                "logprob": r.logprob,
                "tokens": list(r.tokens),
                "target_tokens": list(r.target_tokens),
                "scores": r.scores.astype(float).tolist(),
                "sequence_scores": r.sequence_scores.astype(float).tolist(),
                "delta": None if r.delta is None else r.delta.astype(float).tolist(),
            }
            out.write(json.dumps(record) + "\n")
            continue
        top = "  ".join(f"{t} {s:+.3f}" for t, s in r.top(args.top))
        out.write(
            f"{r.prompt}\n  -> {r.target!r} (log p={r.logprob:.3f}) by {r.method}\n  top: {top}\n"
        )
    if args.html:
        from pathlib import Path

        body = "\n<hr>\n".join(r._repr_html_() for r in results)
        Path(args.html).write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>labkit explain</title>"
            f"</head><body>{body}</body></html>",
            encoding="utf-8",
        )
        out.write(f"wrote {args.html}\n")
    return 0
