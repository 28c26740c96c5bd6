"""``labkit runs``: list the recorded runs (the sidebar's list, in a terminal) and steer one."""

from __future__ import annotations

import argparse

HELP = "list recorded runs (under a folder and started on this machine); stop, pause, resume or save one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder",
        nargs="?",
        default=".",
        help="where to look for runs (default: here), to 4 folders deep; runs started on this "
        "machine elsewhere are listed too",
    )
    steer = p.add_mutually_exclusive_group()
    for action, what in (
        ("stop", "save a checkpoint and end the run at its next step"),
        ("pause", "hold the run at its next step"),
        ("resume", "let a paused run go on"),
        ("save", "write a checkpoint at the next step"),
    ):
        steer.add_argument(
            f"--{action}", metavar="RUN", default=None, help=f"{what} (RUN: the run's folder)"
        )


def main(args: argparse.Namespace) -> int:
    for action in ("stop", "pause", "resume", "save"):
        folder = getattr(args, action, None)
        if folder:
            return _steer(folder, action)
    return _list(args.folder)


def _steer(folder: str, action: str) -> int:
    from labkit.runs.loaded import load_run

    run = load_run(folder)
    if run.history.end is not None:
        print(f"{run.name}: already {run.status}; nothing to {action}")
        return 0
    getattr(run, action)()  # a run whose process died raises TrainingError: exit 1, no write
    print(f"{run.name}: {action} requested; the run answers at its next step")
    return 0


def _list(folder: str) -> int:
    import os
    import time

    from labkit.jupyter.server import RunIndex

    index = RunIndex(folder)
    listing = index.listing(0)
    while listing["loading"]:  # the index reads new records a slice at a time: all of them here
        listing = index.listing(0)
    runs = listing["runs"]
    if not runs:
        print(f"no labkit runs under {os.path.abspath(folder)} nor started on this machine")
        return 0
    runs.sort(key=lambda r: r.get("started") or 0.0)
    rows = [("status", "step", "loss", "started", "name", "folder")]
    for r in runs:
        total = f"/{r['total_steps']}" if r.get("total_steps") else ""
        loss = f"{r['loss']:.4f}" if isinstance(r.get("loss"), float) else "-"
        started = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"]))
            if r.get("started")
            else ""
        )
        where = r["path"] if r.get("path") is not None else index.folder_of(r["id"]).as_posix()
        rows.append((r["status"], f"{r['step']}{total}", loss, started, r["name"], where))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + str(row[-1]))
    return 0
