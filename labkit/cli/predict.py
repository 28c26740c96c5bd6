"""``labkit predict TEXT...``: classify texts with a model (the offline default unless --model)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "classify texts with a model (the offline default unless --model is given)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to classify; '-' reads lines from stdin"
    )
    p.add_argument(
        "--model", default=None, help="hub name or local folder (default: offline MiniLM)"
    )
    p.add_argument("--labels", default=None, help="comma-separated label names for a new head")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--json", action="store_true", help="print one JSON object per text")


def main(args: argparse.Namespace) -> int:
    from labkit._errors import InputError

    texts = list(args.texts)
    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin]
    if not texts:
        raise InputError("no text given: labkit predict 'a gorgeous, witty, seductive movie'")
    if args.model is None:
        from labkit import demo

        model = demo.model(device=args.device)
    else:
        from labkit.model import load_model

        labels = args.labels.split(",") if args.labels else None
        model = load_model(args.model, labels=labels, device=args.device)
    for p in model.predict(texts):
        if args.json:
            print(json.dumps({"text": p.text, "label": p.label, "probs": p.probs}))
        else:
            print(f"{p.label:>10} {p.score:6.1%}  {p.text}")
    return 0
