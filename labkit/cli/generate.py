"""``labkit generate PROMPT...``: continue prompts with a causal LM, streamed to the terminal.

The offline SmolLM2-135M-Instruct (``labkit.demo.lm()``) unless ``--model`` is given. Tokens
are written to stdout as they are made; a one-line summary per prompt goes to stderr, so the
text alone can be piped. Ctrl+C stops the generation after the token being made, prints what
it has and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "continue prompts with a causal LM, streamed (the offline SmolLM2 unless --model)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "prompts", nargs="*", metavar="PROMPT", help="prompts to continue; '-' reads stdin as one"
    )
    p.add_argument(
        "--model",
        default=None,
        help="hub name or local folder of a causal LM (default: offline SmolLM2-135M-Instruct)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to make at most")
    p.add_argument(
        "--temperature", type=float, default=0.0, help="0 is greedy (the default); 0.7 samples"
    )
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, in (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="makes sampling repeatable")
    p.add_argument(
        "--no-chat",
        action="store_true",
        help="continue the raw text, without the model's chat template",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=None,
        metavar="TEXT",
        help="end the generation before this text (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument(
        "--json",
        action="store_true",
        help="print each generation as one JSON object (text, tokens, logprobs, finish_reason)",
    )


def _load(args: argparse.Namespace) -> Any:
    if args.model is None:
        from labkit import demo

        return demo.lm(device=args.device)
    from labkit.model import load_model

    return load_model(args.model, task="causal-lm", device=args.device)


def _summary(stream: Any) -> str:
    reason = stream.finish_reason or stream.status
    return f"[{stream.n_tokens} tokens, {reason}, {stream.tokens_per_s:.1f} tokens/s]"


def main(args: argparse.Namespace) -> int:
    from labkit._errors import InputError

    prompts = list(args.prompts)
    if prompts == ["-"]:
        prompts = [sys.stdin.read()]
    if not prompts:
        raise InputError("no prompt given: labkit generate 'What is the capital of France?'")
    model = _load(args)
    settings = {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "chat": False if args.no_chat else "auto",
        "stop": args.stop,
    }
    out, err = sys.stdout, sys.stderr
    for prompt in prompts:
        stream = model.stream(prompt, **settings)
        try:
            if not args.json:
                stream.subscribe(lambda piece: (out.write(piece), out.flush()))
            while not stream.done:  # short waits: Ctrl+C reaches this thread between them
                stream.wait(0.1)
            stream.wait()  # a failed generation raises here
        except KeyboardInterrupt:
            stream.stop()
            stream.wait()
            _finish(stream, args, out, err)
            print("labkit generate: stopped", file=err)
            return 130
        _finish(stream, args, out, err)
    return 0


def _finish(stream: Any, args: argparse.Namespace, out: Any, err: Any) -> None:
    if args.json:
        out.write(json.dumps(stream.generation.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write("\n")
        print(_summary(stream), file=err)
    out.flush()
