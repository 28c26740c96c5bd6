"""Issue #15: ``lk.demo.lm()`` first load (dequantize the GGUF file once) and cached load.

Each load runs in a fresh process with an empty ``LABKIT_CACHE`` for the first one and the
same (now filled) cache for the second; the figures are the wall time of ``lk.demo.lm()`` in
that process and its peak resident memory (VmHWM), against Binder's 2 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent("""
    import json, time
    t = time.perf_counter()
    import labkit as lk
    lm = lk.demo.lm(device="cpu")
    took = time.perf_counter() - t
    (g,) = lm.generate("What is the capital of France?", max_new_tokens=12)
    hwm = next(x for x in open("/proc/self/status") if x.startswith("VmHWM")).split()[1]
    print(json.dumps({"seconds": took, "vmhwm_mb": int(hwm) / 1024, "answer": g.text}))
""")

BINDER_MB = 2048


def _load(cache: str) -> dict:
    env = {**os.environ, "LABKIT_CACHE": cache}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def unavailable() -> str | None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        return "gguf is not installed (pip install 'labkit[demo]')"
    return None


def run(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as cache:
        first = _load(cache)
        cached = _load(cache)
    rows = []
    for name, r in (("first load (fetch + dequantize)", first), ("cached load", cached)):
        rows.append(
            {
                "benchmark": "demo.lm",
                "figure": f"{name}: time",
                "value": r["seconds"],
                "unit": "s",
                "baseline": None,
                "ratio": None,
                "goal": "said on stderr (about a minute)" if "first" in name else "seconds",
            }
        )
        rows.append(
            {
                "benchmark": "demo.lm",
                "figure": f"{name}: peak RSS",
                "value": r["vmhwm_mb"],
                "unit": "MB",
                "baseline": BINDER_MB,
                "ratio": r["vmhwm_mb"] / BINDER_MB,
                "goal": "< 1 (Binder 2 GB)",
            }
        )
    rows.append(
        {
            "benchmark": "demo.lm",
            "figure": f"answer: {cached['answer']!r}",
            "value": None,
            "unit": "",
            "baseline": None,
            "ratio": None,
            "goal": "mentions Paris",
        }
    )
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
    from run_all import print_table

    print_table(run())
