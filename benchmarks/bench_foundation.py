"""Issue #2 figures: import time, time to first prediction, batched predict vs a loop,
and the accuracy of the untrained default (the baseline finetuning must beat)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _fresh_seconds(code: str, repeat: int) -> float:
    """Median wall time of running ``code`` in a fresh interpreter, minus interpreter start-up."""

    def once(src: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", src], check=True, capture_output=True)
        return time.perf_counter() - t0

    bare = statistics.median(once("pass") for _ in range(repeat))
    return statistics.median(once(code) for _ in range(repeat)) - bare


def run(quick: bool = False) -> list[dict]:
    import labkit

    rows = []
    imp = _fresh_seconds("import labkit", 7)
    rows.append(
        {
            "benchmark": "foundation",
            "figure": "import labkit",
            "value": imp,
            "unit": "s",
            "goal": "< 0.3 s",
        }
    )
    first = _fresh_seconds(
        "import labkit; m = labkit.demo.model(device='cpu'); "
        "m.predict(['a gorgeous, witty, seductive movie'])",
        1 if quick else 3,
    )
    rows.append(
        {
            "benchmark": "foundation",
            "figure": "time to first prediction (demo model)",
            "value": first,
            "unit": "s",
            "goal": "report",
        }
    )

    data = labkit.demo.data()
    model = labkit.demo.model(device="cpu")
    texts = list(data.train["text"][:1000])
    model.predict(texts[:64])  # warm-up
    t0 = time.perf_counter()
    model.predict(texts, batch_size=64)
    batched = time.perf_counter() - t0
    n_loop = 200 if quick else 1000
    t0 = time.perf_counter()
    for t in texts[:n_loop]:
        model.predict([t])
    loop = (time.perf_counter() - t0) * len(texts) / n_loop
    rows.append(
        {
            "benchmark": "foundation",
            "figure": "predict 1,000 texts, batched",
            "value": len(texts) / batched,
            "unit": "texts/s",
            "baseline": f"{len(texts) / loop:.1f} texts/s one-by-one",
            "ratio": loop / batched,
            "goal": ">= 4x",
        }
    )

    metrics = model.evaluate(data, split="test")
    rows.append(
        {
            "benchmark": "foundation",
            "figure": "untrained default, test accuracy",
            "value": metrics.accuracy,
            "unit": "acc",
            "goal": "~0.5 (baseline)",
        }
    )
    return rows


if __name__ == "__main__":
    from run_all import print_table

    print_table(run(quick="--quick" in sys.argv))
