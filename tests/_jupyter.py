"""Test harnesses for widgets: a kernel-less wire tap, and JupyterLab / Notebook 7 on loopback.

``WireTap(widget)`` records what a widget sends to its front end and lets a test play the
front end's messages back, without a kernel, with ipywidgets 7 and 8 alike.

``jupyter_server(root, app="lab")`` starts JupyterLab (or Notebook 7 with ``app="notebook"``) on
127.0.0.1 with every config, data, runtime, settings and workspace dir isolated in a temp folder
(a saved workspace would open a "Select Kernel" dialog), the settings that keep browser tests
stable (no windowing, no news check), and the app exposed as ``window.jupyterapp``. Then
``open_notebook(page, server, "x.ipynb")`` waits until the kernel is up and idle, and
``run_all(page)`` runs every cell::

    with jupyter_server(tmp_path) as server:
        write_notebook(tmp_path / "t.ipynb", ["import labkit", "run"])
        open_notebook(page, server, "t.ipynb")
        run_all(page)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "JupyterServer",
    "WireTap",
    "app_missing",
    "jupyter_server",
    "open_notebook",
    "run_all",
    "write_notebook",
]


# -- a kernel-less wire tap -------------------------------------------------------------------


class WireTap:
    """Everything ``widget`` sends from now on, as (data, buffers) pairs, with no kernel.

    Works with ipywidgets 8 (``comm.DummyComm``) and 7 (``ipykernel.comm.Comm``, which drops
    messages when no kernel is running: the tap stands in for it).
    """

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        comm = widget.comm
        if getattr(comm, "kernel", True) is None:  # ipywidgets 7 sends only with a kernel
            comm._trait_values["kernel"] = object()
        comm.publish_msg = self._publish

    def _publish(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        if msg_type == "comm_msg":
            self.messages.append((data or {}, [bytes(b) for b in (buffers or [])]))

    def clear(self) -> None:
        self.messages.clear()

    def custom(self) -> list[tuple[dict[str, Any], list[bytes]]]:
        """Custom messages (``widget.send``) as (content, buffers)."""
        return [(d["content"], b) for d, b in self.messages if d.get("method") == "custom"]

    def states(self) -> list[dict[str, Any]]:
        """Trait updates sent, one dict per update message."""
        return [d["state"] for d, _ in self.messages if d.get("method") == "update"]

    @staticmethod
    def nbytes(message: tuple[dict[str, Any], list[bytes]]) -> int:
        """Bytes of one message on the wire: its JSON plus its binary buffers."""
        data, buffers = message
        return len(json.dumps(data, separators=(",", ":"))) + sum(len(b) for b in buffers)

    def total_bytes(self) -> int:
        return sum(self.nbytes(m) for m in self.messages)

    def from_front_end(self, content: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        """Deliver a custom message as if a view had sent it."""
        self.widget._handle_msg(
            {
                "content": {"data": {"method": "custom", "content": content}},
                "buffers": list(buffers),
            }
        )

    def set_from_front_end(self, **state: Any) -> None:
        """Apply a trait change as if a view had made it."""
        self.widget.set_state(state)


# -- JupyterLab / Notebook 7 on loopback --------------------------------------------------------

_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def app_missing(app: str = "lab") -> str | None:
    """Why ``app`` ("lab" or "notebook") cannot start here, or None."""
    import importlib.util

    module = {"lab": "jupyterlab", "notebook": "notebook"}[app]
    if importlib.util.find_spec(module) is None:
        return f"the {module} package is not installed"
    return None


@dataclass
class JupyterServer:
    """A running Jupyter server; ``url`` has no trailing slash."""

    app: str
    url: str
    token: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def notebook_url(self, path: str) -> str:
        route = "lab/tree" if self.app == "lab" else "notebooks"
        return f"{self.url}/{route}/{path}?token={self.token}"

    def api(self, path: str) -> Any:
        req = urllib.request.Request(
            f"{self.url}/api/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def jupyter_server(
    root: Path,
    *,
    app: str = "lab",
    timeout: float = 90.0,
    env: dict[str, str] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
) -> Iterator[JupyterServer]:
    """Start JupyterLab (``app="lab"``) or Notebook 7 (``"notebook"``) serving ``root``.

    Every Jupyter dir points into a fresh temp folder; the server is terminated by its PID
    (then killed) on exit, and its kernels with it. ``settings`` adds user settings files
    (``{"@jupyterlab/x-extension/y.jupyterlab-settings": {...}}``) to the stable defaults.
    """
    reason = app_missing(app)
    if reason:
        raise RuntimeError(f"cannot start Jupyter {app}: {reason}")
    home = Path(tempfile.mkdtemp(prefix="labkit-jupyter-"))
    dirs = {
        name: home / name
        for name in (
            "config",
            "data",
            "runtime",
            "ipython",
            "settings",
            "workspaces",
            "xdg-config",
            "xdg-cache",
        )
    }
    for d in dirs.values():
        d.mkdir()
    for name, value in {**_SETTINGS, **(settings or {})}.items():
        path = dirs["settings"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    full_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "XDG_CONFIG_HOME": str(dirs["xdg-config"]),
        "XDG_CACHE_HOME": str(dirs["xdg-cache"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    module, app_class = (
        ("jupyterlab", "LabApp") if app == "lab" else ("notebook", "JupyterNotebookApp")
    )
    cmd = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.disable_check_xsrf=True",
        f"--{app_class}.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=root)
    server = JupyterServer(app, f"http://127.0.0.1:{port}", token, Path(root), proc, log, full_env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Jupyter {app} exited with {proc.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                if server.api("status"):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Jupyter {app} did not answer in {timeout:.0f} s:\n{server.log_tail()}"
                )
            time.sleep(0.2)  # polling the server's status, not waiting for a result
        yield server
    finally:
        with contextlib.suppress(OSError, ValueError):
            for kernel in server.api("kernels"):  # kernels are the server's children
                req = urllib.request.Request(
                    f"{server.url}/api/kernels/{kernel['id']}",
                    method="DELETE",
                    headers={"Authorization": f"token {token}"},
                )
                urllib.request.urlopen(req, timeout=5).close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def kernel_env() -> dict[str, str]:
    """A test server's kernel environment: offline hub, and this checkout importable."""
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }


def write_tiny_notebook(path: Path, cells: Sequence[str], rows: int) -> Path:
    """Write ``cells`` as a notebook at ``path`` with ``{model!r}`` naming a tiny BERT built
    next to it and ``{rows!r}`` standing for ``rows`` toy training rows."""
    from tests import _tiny

    folder = _tiny.build("bert", path.parent / "tiny-bert")
    model, data = repr(str(folder)), repr(_tiny.toy_rows(rows))
    return write_notebook(
        path, [c.replace("{model!r}", model).replace("{rows!r}", data) for c in cells]
    )


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """Write a notebook of code ``cells`` (python3 kernel) to ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))
    return path


_KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext;
  return !!(ctx && ctx.isReady && ctx.session && ctx.session.kernel
            && ctx.kernelDisplayName !== 'No Kernel' && ctx.session.kernel.status === 'idle');
}"""


def open_notebook(page: Any, server: JupyterServer, path: str, *, timeout: float = 90_000) -> None:
    """Open ``path`` and wait until its kernel is started and idle (then Run All is safe)."""
    page.goto(server.notebook_url(path))
    page.wait_for_function(
        "() => !!(window.jupyterapp && window.jupyterapp.shell)", timeout=timeout
    )
    page.wait_for_function(_KERNEL_IDLE, timeout=timeout)


def run_all(page: Any) -> None:
    """Run every cell of the current notebook (the kernel must be idle: see open_notebook)."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
