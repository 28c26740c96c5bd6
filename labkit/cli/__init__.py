"""The ``labkit`` command: ``labkit demo | predict | generate | train | explain | runs | export |
lab``.

Each subcommand lives in its own ``labkit.cli.<name>`` module exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``main(args) -> int``; those modules import heavy libraries only
inside ``main`` so that ``labkit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from labkit._errors import LabkitError
from labkit._version import __version__

__all__ = ["main"]

_COMMANDS = ("demo", "predict", "generate", "train", "explain", "runs", "export", "lab")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="labkit", description="An interactive lab for transformer models, headless."
    )
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"labkit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"labkit.cli.{name}":
                raise
            continue  # not built yet
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].main(args) or 0)  # type: ignore[attr-defined]
    except LabkitError as exc:
        print(f"labkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"labkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
