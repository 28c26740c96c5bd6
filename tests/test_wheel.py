"""The wheel carries the package and its front-end files, and imports from a clean venv."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_wheel_installs_and_finds_its_widgets(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("labkit-*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # dependencies come from the test environment (a plain path entry: its editable-install
    # hooks are NOT activated, so `labkit` can only come from the wheel)
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )

    probe = (
        "import json, labkit, labkit.ui._base as b, pathlib; "
        "from labkit.cli.lab import notebooks_source; "
        "d = b.widgets_dir(); n = notebooks_source(); "
        "print(json.dumps({'file': labkit.__file__, 'widgets': str(d), "
        "'names': sorted(p.name for p in d.iterdir()), 'typed': "
        "(pathlib.Path(labkit.__file__).parent / 'py.typed').exists(), "
        "'notebooks': str(n), 'notebook_names': sorted(p.name for p in n.glob('*.ipynb'))}))"
    )
    out = json.loads(
        subprocess.run(
            [str(py), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout
    )
    assert out["file"].startswith(str(site)), out["file"]
    assert out["widgets"].startswith(str(site)) and out["widgets"].endswith("_widgets")
    repo_widgets = sorted(p.name for p in (ROOT / "widgets").iterdir() if p.is_file())
    assert repo_widgets and out["names"] == repo_widgets
    assert out["typed"]
    # `labkit lab` opens the notebooks packaged in the wheel
    assert out["notebooks"].startswith(str(site)) and out["notebooks"].endswith("_notebooks")
    assert out["notebook_names"] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    # the prebuilt JupyterLab extension lands where JupyterLab looks for it, built files included
    ext = env_dir / "share" / "jupyter" / "labextensions" / "labkit-jupyterlab"
    meta = json.loads((ext / "package.json").read_text())
    assert (ext / meta["jupyterlab"]["_build"]["load"]).is_file()
    assert json.loads((ext / "install.json").read_text())["packageName"] == "labkit"
    # and the server extension the sidebar reads run records from is enabled for every server
    config = env_dir / "etc" / "jupyter" / "jupyter_server_config.d" / "labkit.json"
    enabled = json.loads(config.read_text())["ServerApp"]["jpserver_extensions"]
    assert enabled == {"labkit.jupyter": True}
    points = subprocess.run(
        [str(py), "-c", "import labkit.jupyter as j; print(j._jupyter_server_extension_points())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "labkit.jupyter" in points
    version = subprocess.run(
        [str(env_dir / "bin" / "labkit"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("labkit ")
