"""Harnesses for the hardening tests and benchmark: kill training mid-save, steer a run in rapid
alternation, and watch resident memory over a long run with the panel attached.

``KillServer`` is a fork server: a subprocess imports torch, transformers and labkit once, then
forks one training child per trial, so a trial costs a fork and a resume rather than a Python
start (seconds on 2 cores). The child trains a tiny model saving every step and appends
``step N`` / ``saved N`` lines to a log with ``os.write`` (a SIGKILL loses nothing written). The
caller kills the child at a random moment, often while a checkpoint is being written, and
:func:`inspect_kill` says what survived.

A checkpoint is **lost** when either the run reported it as ``Saved`` and it is gone without a
newer run of ``keep`` checkpoints having rotated it away, or a ``checkpoint-N`` folder exists but
does not load (missing or unreadable weights, optimizer, scheduler, RNG or trainer state).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LABELS = ["negative", "positive"]
KEEP = 3  # keep_checkpoints of the killed runs: rotation deletes run while we kill, too
MAX_STEPS = 100_000  # never reached: every trial ends by a kill
CHECKPOINT_FILES = (
    "config.json",
    "model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "trainer_state.json",
)


# -- the fork server (runs in its own process) --------------------------------------------------


def serve() -> None:
    """Read one JSON request per stdin line; fork a training child for each; report its exit."""
    import traceback

    import torch
    import transformers  # noqa: F401 - imported once here, shared by every child

    import labkit
    from labkit.train import trainer as _bridge  # noqa: F401 - Trainer and friends

    torch.set_num_threads(1)
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: train until killed
            code = 1
            try:
                _train_child(labkit, req)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


def _train_child(labkit: Any, req: dict[str, Any]) -> None:
    from labkit.events import Saved, StepEnd
    from tests import _tiny

    fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    class Log:
        def on_event(self, event: Any, control: Any) -> None:
            if isinstance(event, StepEnd):
                os.write(fd, f"step {event.step}\n".encode())
            elif isinstance(event, Saved):
                os.write(fd, f"saved {event.step}\n".encode())

    data = labkit.load_data(_tiny.toy_rows(32), labels=LABELS)
    model = labkit.load_model(req["model"], labels=LABELS, device="cpu")
    run = labkit.finetune(
        model,
        data,
        max_steps=req.get("max_steps", MAX_STEPS),
        save_every=1,
        keep_checkpoints=KEEP,
        eval_every=MAX_STEPS,
        batch_size=8,
        lr=1e-3,
        output_dir=req["out"],
        resume_from=req["resume"],
        progress=False,
        callbacks=[Log()],
    )
    run.wait()


# -- checking what a kill left ------------------------------------------------------------------


def checkpoint_problem(path: str | Path, *, full: bool = False) -> str | None:
    """Why checkpoint folder ``path`` would not resume, or None when it is complete.

    Parses the trainer state (its step must match the folder's), the config, the safetensors
    header, and the optimizer / scheduler / RNG pickles; ``full`` also loads it with
    ``labkit.load_model`` and predicts one text.
    """
    import torch
    from safetensors import safe_open

    import labkit
    from labkit._utils import checkpoint as _checkpoint

    path = Path(path)
    missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        return f"{path.name}: missing {', '.join(missing)}"
    try:
        state = json.loads((path / "trainer_state.json").read_text())
        if state["global_step"] != _checkpoint.step_of(path):
            return f"{path.name}: trainer_state says step {state['global_step']}"
        json.loads((path / "config.json").read_text())
        with safe_open(str(path / "model.safetensors"), "pt") as f:
            if not list(f.keys()):
                return f"{path.name}: no tensors in model.safetensors"
        torch.load(path / "optimizer.pt", weights_only=True)
        torch.load(path / "scheduler.pt", weights_only=True)
        torch.load(path / "rng_state.pth", weights_only=False)
        if full:
            model = labkit.load_model(path, device="cpu")
            if model.predict(["a great film"])[0].label not in LABELS:
                return f"{path.name}: predicts no known label"
    except Exception as exc:
        return f"{path.name}: {type(exc).__name__}: {exc}"
    return None


@dataclass
class KillReport:
    """What one kill left behind."""

    mode: str  # "save" (killed while a save was seen in progress) or "random"
    expected_first: int  # the step a resumed run must start at (latest checkpoint + 1)
    first_step: int | None  # the first step the killed process took
    last_step: int  # the last step it logged
    during_save: bool  # a staging folder was left: the kill hit a checkpoint write
    phase: str  # where in the save the kill landed (see ``kill_phase``)
    checkpoints: list[int]  # complete checkpoint steps on disk after the kill
    lost: list[str] = field(default_factory=list)  # descriptions of lost checkpoints


def read_log(path: Path) -> tuple[list[int], list[int]]:
    steps, saved = [], []
    if path.exists():
        for line in path.read_text().splitlines():
            kind, _, n = line.partition(" ")
            if n.isdigit():
                (steps if kind == "step" else saved).append(int(n))
    return steps, saved


def kill_phase(out: Path) -> str:
    """Which part of a checkpoint write the staging debris in ``out`` shows was interrupted."""
    from labkit._utils import checkpoint as _checkpoint

    staging = out / _checkpoint.STAGING
    partial = list(staging.glob("checkpoint-*")) if staging.is_dir() else []
    if partial:
        n = sum((partial[0] / f).is_file() for f in CHECKPOINT_FILES)
        return f"writing {n}/{len(CHECKPOINT_FILES)} files"
    names = [p.name for p in out.iterdir()]
    if any(n.startswith(f"{_checkpoint.STAGING}-old-") for n in names):
        return "committing"
    if staging.is_dir():
        return "committed"
    if any(n.startswith(f"{_checkpoint.STAGING}-del-") for n in names):
        return "rotating"
    return "between saves"


def inspect_kill(out: Path, log: Path, *, mode: str, expected_first: int) -> KillReport:
    """Check the run folder ``out`` after a kill against what the run logged."""
    from labkit._utils import checkpoint as _checkpoint

    steps, saved = read_log(log)
    present = [_checkpoint.step_of(p) for p in _checkpoint.find(out)]
    present_steps = [s for s in present if s is not None]
    staging = [p.name for p in out.iterdir() if p.name.startswith(_checkpoint.STAGING)]
    report = KillReport(
        mode=mode,
        expected_first=expected_first,
        first_step=steps[0] if steps else None,
        last_step=steps[-1] if steps else 0,
        during_save=bool(staging),
        phase=kill_phase(out),
        checkpoints=present_steps,
    )
    for s in sorted(set(saved) - set(present_steps)):
        if sum(p > s for p in present_steps) < KEEP:  # not explained by rotation
            report.lost.append(f"checkpoint-{s}: reported Saved, gone")
    for i, s in enumerate(present_steps):
        problem = checkpoint_problem(out / f"checkpoint-{s}", full=i == len(present_steps) - 1)
        if problem:
            report.lost.append(problem)
    return report


class KillServer:
    """The fork server as a context manager; ``trial(rng)`` runs one kill."""

    def __init__(self, model_dir: Path, out: Path, *, timeout: float = 60.0) -> None:
        self.model_dir, self.out, self.timeout = Path(model_dir), Path(out), timeout
        self.out.mkdir(parents=True, exist_ok=True)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests._hardening import serve; serve()"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.trials = 0

    def __enter__(self) -> KillServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stderr_tail(self, chars: int = 3000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-chars:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._stderr.close()

    def _line(self, prefix: str) -> list[str]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith(prefix):
            raise RuntimeError(
                f"fork server said {line!r}, expected {prefix!r}:\n{self.stderr_tail()}"
            )
        return line.split()

    def _wait_for(self, pid: int, predicate: Any, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not predicate():
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"trial {self.trials}: no {what}:\n{self.stderr_tail()}")
            time.sleep(0.0005)  # polling the run folder, not waiting for a result

    def trial(self, rng: random.Random) -> KillReport:
        """Resume the run (or start it), wait for its first step, then SIGKILL it: in "save"
        mode a random moment into the next checkpoint write, else after a random delay."""
        from labkit._utils import checkpoint as _checkpoint

        self.trials += 1
        latest = _checkpoint.latest(self.out)
        expected_first = (_checkpoint.step_of(latest) or 0) + 1 if latest else 1
        log = self.out.parent / f"{self.out.name}-trial-{self.trials}.log"
        request = {"model": str(self.model_dir), "out": str(self.out), "resume": latest}
        request["log"] = str(log)
        self.proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        pid = int(self._line("pid")[1])
        self._wait_for(pid, lambda: bool(read_log(log)[0]), "first step")
        mode = rng.choice(("save", "random"))
        staging = self.out / _checkpoint.STAGING
        if mode == "save":
            self._wait_for(pid, staging.is_dir, "checkpoint write")
            time.sleep(rng.uniform(0.0, 0.15))  # a random point inside the write (or after)
        else:
            time.sleep(rng.uniform(0.0, 0.25))  # a random moment: a step or a save
        os.kill(pid, signal.SIGKILL)
        _, got, status = self._line("exit")
        assert int(got) == pid
        if not (os.WIFSIGNALED(int(status)) and os.WTERMSIG(int(status)) == signal.SIGKILL):
            raise RuntimeError(f"the training child ended by itself:\n{self.stderr_tail()}")
        return inspect_kill(self.out, log, mode=mode, expected_first=expected_first)


def kill_trials(model_dir: Path, root: Path, n: int, *, seed: int = 0) -> list[KillReport]:
    """``n`` kill trials on one run folder under ``root``, each resuming the last."""
    rng = random.Random(seed)
    with KillServer(model_dir, root / "run") as server:
        return [server.trial(rng) for _ in range(n)]


# -- resident memory over a long run with the panel attached -----------------------------------


@dataclass
class LongRun:
    steps: list[int]  # the run's history, one entry per step
    rss_mb: dict[int, float]  # resident size at these steps
    warm_step: int  # growth is measured from here
    steps_per_s: float  # after warm-up
    client_steps: list[float]  # what a front end following the panel holds at the end
    status: str

    @property
    def growth_mb(self) -> float:
        return self.rss_mb[max(self.rss_mb)] - self.rss_mb[self.warm_step]

    @property
    def peak_growth_mb(self) -> float:
        return max(self.rss_mb.values()) - self.rss_mb[self.warm_step]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def long_run(
    model_dir: Path, out: Path, *, steps: int = 2000, warm: int = 200, panel: bool = True
) -> LongRun:
    """Train ``steps`` steps of a tiny model (one thread), sampling RSS every ``warm`` steps;
    with ``panel`` a RunPanel is attached and a kernel-less front end follows it."""
    import psutil

    import labkit
    from labkit.events import StepEnd
    from tests import _tiny
    from tests._jupyter import WireTap

    proc = psutil.Process()
    rss: dict[int, float] = {}

    class Sample:
        def on_event(self, event: Any, control: Any) -> None:
            if isinstance(event, StepEnd) and event.step % warm == 0:
                rss[event.step] = proc.memory_info().rss / 2**20

    data = labkit.load_data(_tiny.toy_rows(32), labels=LABELS)
    model = labkit.load_model(model_dir, labels=LABELS, device="cpu")
    client = None
    with torch_threads(1):
        run = labkit.finetune(
            model,
            data,
            max_steps=steps,
            eval_every=max(1, steps // 4),
            batch_size=8,
            lr=1e-3,
            output_dir=out,
            progress=False,
            callbacks=[Sample()],
        )
        if panel:
            from labkit.ui.panel import view_for_run
            from tests.test_panel import Client

            view = view_for_run(run)
            client = Client(WireTap(view))
            client.sync()
        run.wait(timeout=900)
        if panel:
            deadline = time.monotonic() + 30
            while view._thread is not None and time.monotonic() < deadline:
                time.sleep(0.01)  # polling: the panel sends its last rows, then its thread ends
            client.pump()
            view.close()
    times = run.history.column("time")
    done = len(times) - warm
    return LongRun(
        steps=run.history.column("step"),
        rss_mb=rss,
        warm_step=warm,
        steps_per_s=done / (times[-1] - times[warm - 1]) if done > 0 else float("nan"),
        client_steps=list(client.steps) if client else [],
        status=run.status,
    )
