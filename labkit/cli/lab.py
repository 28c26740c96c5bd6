"""``labkit lab``: open JupyterLab on labkit's notebooks."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HELP = "open JupyterLab on labkit's notebooks, with the labkit runs sidebar"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        default=None,
        help="where to open (default: the repository's notebooks/, or a copy of the "
        "packaged notebooks in ./labkit-notebooks)",
    )
    p.add_argument("--port", type=int, default=None, help="port for the server")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.add_argument(
        "--print-only", action="store_true", help="print the command instead of running it"
    )


def notebooks_source() -> Path | None:
    """The notebooks of a source checkout, else those packaged in the wheel, else None."""
    package = Path(__file__).resolve().parents[1]  # labkit/, this file being labkit/cli/lab.py
    for candidate in (package.parent / "notebooks", package / "_notebooks"):
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    return None


def main(args: argparse.Namespace) -> int:
    from labkit._errors import LabkitError
    from labkit._utils.optional import require

    # the command runs this interpreter's jupyterlab: a `jupyter` elsewhere on PATH won't do
    require("jupyterlab", extra="ui", feature="labkit lab")
    if args.dir:
        folder = Path(args.dir)
    else:
        source = notebooks_source()
        if source is None:
            raise LabkitError("labkit's notebooks were not found; pass --dir to open a folder.")
        folder = source
        if source.name == "_notebooks":  # installed wheel: work on a copy, not site-packages
            folder = Path.cwd() / "labkit-notebooks"
            if not folder.exists():
                shutil.copytree(source, folder)
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={folder}"]
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if args.print_only:
        print(" ".join(cmd))
        return 0
    print(
        f"labkit lab: JupyterLab on {folder}; the 'labkit runs' sidebar (left) lists the runs "
        "under it and those started on this machine, and the launcher has a 'labkit' card."
    )
    return subprocess.call(cmd)
