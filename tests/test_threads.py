"""The training thread gets the CPU cores to itself: the caller's idle OpenMP pool is freed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = r"""
import os, torch
from labkit._utils.threads import release_idle_pool

def tasks():
    return len(os.listdir("/proc/self/task"))

x = torch.randn(2_000_000)
for _ in range(20):
    x.exp()  # a parallel op: this thread now owns an OpenMP pool
before = tasks()
released = release_idle_pool()
after = tasks()
y = torch.randn(2_000_000).exp().sum()  # parallel ops still work; a new pool is built
again = tasks()
print(before, released, after, again, bool(torch.isfinite(y)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libgomp pools are Linux's")
def test_release_idle_pool_frees_the_callers_workers_and_ops_still_run() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        timeout=120,
    ).stdout.split()
    before, released, after, again, finite = int(out[0]), out[1], int(out[2]), int(out[3]), out[4]
    assert released == "True"
    assert after < before  # the pool's workers are gone
    assert again == before  # rebuilt on the next parallel op
    assert finite == "True"


def test_release_is_harmless_without_torch_loaded() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from labkit._utils.threads import release_idle_pool; "
            "print(release_idle_pool(), 'torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert out == ["False", "False"]


def test_torchs_own_libgomp_is_picked_even_under_a_wheel_renamed_name() -> None:
    from labkit._utils.threads import pick_libgomp

    site = "/venv/lib/python3.11/site-packages"
    mapped = [
        "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
        f"{site}/torch.libs/libgomp-a34b3233.so.1",
        f"{site}/torch/lib/libtorch_cpu.so",
        "[heap]",
    ]
    assert pick_libgomp(mapped, site) == f"{site}/torch.libs/libgomp-a34b3233.so.1"
    assert pick_libgomp(mapped[:1], site) == mapped[0]
    assert pick_libgomp(["[heap]"], site) == "libgomp.so.1"
