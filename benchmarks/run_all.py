"""Run every benchmarks/bench_*.py and print one table: figure, baseline, ratio, goal.

Each bench module exposes ``run(quick: bool) -> list[dict]`` with rows of
``benchmark, figure, value, unit, baseline, ratio, goal``. ``--only NAME`` runs one module.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def print_table(rows: list[dict]) -> None:
    cols = ["benchmark", "figure", "value", "unit", "baseline", "ratio", "goal"]
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
        for i, c in enumerate(cols)
    ]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=None, help="run only bench_<ONLY>.py")
    parser.add_argument("--quick", action="store_true", help="smaller sizes where supported")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    rows: list[dict] = []
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem != f"bench_{args.only}":
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        t0 = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            why = getattr(module, "unavailable", lambda: None)()
            if why:
                print(f"[{path.name}: not run: {why}]", file=sys.stderr)
                continue
            kwargs = (
                {"quick": args.quick} if "quick" in inspect.signature(module.run).parameters else {}
            )
            rows += module.run(**kwargs)
        except Exception:
            failed.append(path.name)
            traceback.print_exc()
        print(f"[{path.name}: {time.perf_counter() - t0:.0f}s]", file=sys.stderr)
    print_table(rows)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
