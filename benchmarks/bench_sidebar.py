"""The sidebar's server cost: ``GET labkit/runs`` and ``GET labkit/run`` on many long runs.

A real ``jupyter server`` subprocess (labkit's extension on, token auth) serves a temp root
holding ``RUNS`` synthetic run records of ``STEPS`` steps each (the lines ``finetune`` writes:
a header, one ``StepEnd`` a step, an ``EvalEnd`` every 500 steps). Measured over HTTP on
loopback, median of several requests:

1. ``first listings``: from a fresh server, ``since=`` polls until every run is listed (the
   server reads every record once, at most ~0.5 s of reading per request, on a thread of its
   own: this one grows with the steps, and only this one), and meanwhile the worst latency of
   Jupyter's own ``api/status`` (the server stays responsive while it reads);
2. ``full listing``: ``since=0`` again (every summary; no record is read again);
3. ``idle listing``: ``since=<version>`` with nothing changed;
4. ``listing after 1 step in 10 runs``: one new line in 10 runs, then ``since=<version>``;
5. ``run?offset, 1 new step``: one run's record from the client's offset after one new line.

Everything is measured twice, with runs of ``STEPS`` and of ``STEPS / 10`` steps, in one run of
the bench: ratio = long / short. The goal: figures 2-5 do not grow with the steps (ratio close
to 1; bytes nearly equal: the sparkline is at most 64 points).

Run: ``python benchmarks/bench_sidebar.py [--quick]`` or ``python benchmarks/run_all.py --only
sidebar``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME = "sidebar"


def unavailable() -> str | None:
    try:
        import jupyter_server  # noqa: F401
    except ImportError:
        return "jupyter_server is not installed (labkit[jupyter])"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _step_line(step: int, total: int, t: float) -> str:
    loss = 0.7 / (1 + step / 1000)
    return json.dumps(
        {
            "kind": "StepEnd",
            "step": step,
            "epoch": step / 1000,
            "loss": loss,
            "lr": 5e-5,
            "grad_norm": 1.234,
            "samples_per_s": 123.4,
            "total_steps": total,
            "time": t,
        },
        separators=(",", ":"),
    )


def _write_runs(root: Path, runs: int, steps: int) -> list[Path]:
    """``runs`` records under ``root/group-<k>/run-<i>`` written by this (live) process."""
    folders = []
    now = time.time()
    for i in range(runs):
        folder = root / f"group-{i % 5}" / f"run-{i:03d}"
        folder.mkdir(parents=True)
        header = {
            "kind": "Run",
            "labkit": "bench",
            "run_id": f"bench-{i}",
            "name": f"run {i}",
            "model": "bench-model",
            "task": "classification",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": now - steps,
            "output_dir": str(folder),
            "config": {"lr": 5e-5, "batch_size": 16},
        }
        lines = [json.dumps(header)]
        for s in range(1, steps + 1):
            lines.append(_step_line(s, 10 * steps, now - steps + s))
            if s % 500 == 0:
                lines.append(
                    json.dumps(
                        {"kind": "EvalEnd", "step": s, "metrics": {"loss": 0.5}, "time": now}
                    )
                )
        (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
        folders.append(folder)
    return folders


def _append_step(folder: Path, step: int) -> None:
    with open(folder / "events.jsonl", "a") as f:
        f.write(_step_line(step, 10 * step, time.time()) + "\n")


@contextlib.contextmanager
def _server(root: Path, home: Path) -> Iterator[tuple[str, str]]:
    """A ``jupyter server`` on loopback serving ``root`` with labkit's extension: (url, token)."""
    token = secrets.token_hex(16)
    port = _free_port()
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"labkit.jupyter": True}}})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "LABKIT_STATE_DIR": str(home / "state"),  # an empty registry: the root's runs only
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
        f"--IdentityProvider.token={token}",
        "--ServerApp.log_level=WARN",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers run as root
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url, token, "api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "jupyter server did not start: " + (home / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(url: str, token: str, path: str) -> tuple[float, int, Any]:
    """(seconds, response bytes, parsed JSON) of one GET."""
    req = urllib.request.Request(url + path, headers={"Authorization": f"token {token}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - t0, len(body), json.loads(body)


def _catch_up(url: str, token: str, runs: int) -> tuple[float, int, list[float]]:
    """Poll ``labkit/runs`` from a fresh server until every run is read (``loading`` 0):
    (seconds, bytes of all the listings, latencies of Jupyter's own ``api/status`` meanwhile)."""
    import threading

    waits: list[float] = []
    done = threading.Event()

    def ping() -> None:
        while not done.is_set():
            waits.append(_get(url, token, "api/status")[0])
            time.sleep(0.05)

    pinger = threading.Thread(target=ping)
    pinger.start()
    t0 = time.perf_counter()
    size, version, listed = 0, 0, 0
    try:
        while True:
            _, got, body = _get(url, token, f"labkit/runs?since={version}")
            size += got
            listed += len(body["runs"])
            version = body["version"]
            if not body["loading"]:
                break
    finally:
        done.set()
        pinger.join()
    assert listed == runs, f"listed {listed} of {runs} runs"
    return time.perf_counter() - t0, size, waits or [0.0]


def _measure(runs: int, steps: int, repeats: int) -> dict[str, tuple[float, int]]:
    """{figure: (median seconds, bytes)} for ``runs`` records of ``steps`` steps."""
    out: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="labkit-bench-sidebar-") as tmp:
        root = Path(tmp, "root")
        folders = _write_runs(root, runs, steps)
        with _server(root, Path(tmp, "home")) as (url, token):
            spent, size, waits = _catch_up(url, token, runs)
            out["first listings until every run is read"] = (spent, size)
            out["Jupyter's api/status while they run (worst)"] = (max(waits), 0)
            full = [_get(url, token, "labkit/runs?since=0") for _ in range(repeats)]
            out["full listing"] = (statistics.median(t for t, _, _ in full), full[-1][1])
            version = full[-1][2]["version"]
            idle = [_get(url, token, f"labkit/runs?since={version}") for _ in range(repeats)]
            assert idle[-1][2]["runs"] == []
            out["idle listing"] = (statistics.median(t for t, _, _ in idle), idle[-1][1])
            times, size, step = [], 0, steps
            for _ in range(repeats):
                step += 1
                for folder in folders[:10]:
                    _append_step(folder, step)
                spent, size, body = _get(url, token, f"labkit/runs?since={version}")
                assert len(body["runs"]) == 10, len(body["runs"])
                version = body["version"]
                times.append(spent)
            out["listing after 1 step in 10 runs"] = (statistics.median(times), size)
            run_id = folders[0].relative_to(root).as_posix()
            _, _, got = _get(url, token, f"labkit/run?id={run_id}&offset=0")
            while got["more"]:
                _, _, got = _get(url, token, f"labkit/run?id={run_id}&offset={got['offset']}")
            offset, times = got["offset"], []
            for _ in range(repeats):
                step += 1
                _append_step(folders[0], step)
                spent, size, got = _get(url, token, f"labkit/run?id={run_id}&offset={offset}")
                assert got["steps"]["step"] == [step] and not got["reset"]
                offset = got["offset"]
                times.append(spent)
            out["run?offset, 1 new step"] = (statistics.median(times), size)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    runs, steps, repeats = (20, 2_000, 5) if quick else (100, 10_000, 9)
    short_steps = steps // 10
    long = _measure(runs, steps, repeats)
    short = _measure(runs, short_steps, repeats)
    rows: list[dict[str, Any]] = []
    for figure, (t_long, b_long) in long.items():
        t_short, b_short = short[figure]
        grows = figure.startswith(("first", "Jupyter"))
        label = f"{figure} ({runs} runs x {steps} vs {short_steps} steps)"
        rows.append(
            {
                "benchmark": NAME,
                "figure": f"{label}: time",
                "value": t_long * 1e3,
                "unit": "ms",
                "baseline": t_short * 1e3,
                "ratio": t_long / t_short,
                "goal": "" if grows else "<= 1.5 (no growth with steps)",
            }
        )
        if not b_long:
            continue
        rows.append(
            {
                "benchmark": NAME,
                "figure": f"{label}: bytes",
                "value": b_long,
                "unit": "B",
                "baseline": b_short,
                "ratio": b_long / b_short,
                "goal": "" if grows else "<= 1.5 (bounded: spark <= 64 points)",
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from run_all import print_table  # type: ignore[import-not-found]

    print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
