"""labkit in JupyterLab and Notebook 7: the prebuilt front end of ``jupyterlab/``.

``labextension/`` holds the built files of the extension whose source is ``jupyterlab/src``
(``make labextension`` rebuilds it; the files are committed, so installing labkit needs no
node). The wheel installs them where JupyterLab finds prebuilt extensions,
``share/jupyter/labextensions/labkit-jupyterlab``. The extension shows a labkit output's saved
snapshot wherever its live widget is gone (see ``labkit.render.display.LIVE_MIME``), adds the
"labkit" launcher card and the "labkit runs" sidebar.

The sidebar reads run records through labkit's server extension (``labkit.jupyter.server``),
which the wheel enables in every Jupyter server (``etc/jupyter/jupyter_server_config.d``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["LABEXTENSION", "NAME", "SOURCE", "source_digest"]

NAME = "labkit-jupyterlab"  # the npm name in jupyterlab/package.json
LABEXTENSION = Path(__file__).resolve().parent / "labextension"
# the extension's source: in a checkout only (an installed wheel carries the built files alone,
# and this path then names nothing of labkit's)
SOURCE = Path(__file__).resolve().parents[2] / "jupyterlab"


def _source_files(source: Path = SOURCE) -> list[Path]:
    """Every file the build of ``source`` reads: ``package.json``, the webpack additions
    (``webpack.config.js``, ``widget-loader.js``), ``src/`` (``.js`` and the generated
    ``constants.json``), ``style/`` and the anywidget files it bundles from ``widgets/`` beside
    it (the run panel, the helpers joined ahead of it, its CSS)."""
    widgets = source.parent / "widgets"
    return [
        source / "package.json",
        source / "webpack.config.js",
        source / "widget-loader.js",
        *sorted((source / "src").rglob("*.js")),
        *sorted((source / "src").rglob("*.json")),
        *sorted((source / "style").rglob("*.css")),
        *(widgets / name for name in _BUNDLED_WIDGETS),
    ]


# the files of widgets/ the extension bundles (its run view is the anywidget run panel)
_BUNDLED_WIDGETS = ("_common.js", "run_panel.js", "run_panel.css")


def source_digest(source: Path = SOURCE) -> str:
    """sha256 of the extension's source (:func:`_source_files`), as recorded next to the built
    files in ``labextension/source.sha256`` by ``make labextension``."""
    import hashlib

    digest = hashlib.sha256()
    for path in _source_files(source):
        digest.update(path.relative_to(source.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where ``jupyter labextension develop`` finds the built extension."""
    return [{"src": "labextension", "dest": NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension Jupyter loads (the run records the sidebar reads)."""
    return [{"module": "labkit.jupyter"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from labkit.jupyter.server import load

    load(server_app)
