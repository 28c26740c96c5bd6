"""labkit's JupyterLab extension: built from the source beside it, found by JupyterLab, and
speaking the marker the kernel side writes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.jupyter import LABEXTENSION, NAME, SOURCE, source_digest
from labkit.render.display import LIVE_MIME, live_marker

ROOT = Path(__file__).resolve().parents[1]


def test_the_built_files_are_built_from_this_source() -> None:
    """Editing jupyterlab/src without `make labextension` fails here, before a user meets an
    extension that does something else than its source says."""
    stamp = (LABEXTENSION / "source.sha256").read_text().strip()
    assert stamp == source_digest(), "the built extension is stale: run `make labextension`"
    meta = json.loads((LABEXTENSION / "package.json").read_text())
    assert meta["name"] == NAME == json.loads((SOURCE / "package.json").read_text())["name"]
    assert (LABEXTENSION / meta["jupyterlab"]["_build"]["load"]).is_file()


def _copy_source(tmp_path: Path) -> Path:
    """The extension's source and the widgets it bundles, copied as they lie in the repo."""
    from labkit.jupyter import _source_files

    for path in _source_files():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    return tmp_path / "jupyterlab"


@pytest.mark.parametrize(
    "edited", ["jupyterlab/src/index.js", "jupyterlab/style/index.css", "widgets/run_panel.js"]
)
def test_the_digest_changes_with_the_source(tmp_path: Path, edited: str) -> None:
    """The sidebar's chart is widgets/run_panel.js bundled: editing it, like editing the
    extension's own source, makes the built files stale."""
    copy = _copy_source(tmp_path)
    assert source_digest(copy) == source_digest()
    path = tmp_path / edited
    path.write_text(path.read_text() + "\n/* an edit */\n")
    assert source_digest(copy) != source_digest()


def test_the_digest_covers_every_file_the_build_reads() -> None:
    from labkit.jupyter import _source_files

    covered = set(_source_files())
    for folder in ("src", "style"):
        for path in (SOURCE / folder).rglob("*"):
            if path.is_file():
                assert path in covered, f"{path} is outside the stamp: add it to _source_files"
    webpack = (SOURCE / "webpack.config.js").read_text()
    assert "widget-loader.js" in webpack and (SOURCE / "widget-loader.js") in covered


def test_the_constants_shared_with_the_kernel_are_current() -> None:
    """The panel's colours and the ended statuses the front end uses are the kernel's."""
    spec = importlib.util.spec_from_file_location("labext_constants", SOURCE / "constants.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = (SOURCE / "src" / "constants.json").read_text()
    assert written == module.text(), "src/constants.json is stale: run `make labextension`"
    from labkit.events import ENDED_STATUSES
    from labkit.ui._base import palette

    data = json.loads(written)
    assert data["palette"] == palette() and set(data["ended"]) == set(ENDED_STATUSES)


def test_the_built_files_hold_the_launcher_the_sidebar_and_the_run_panel() -> None:
    built = "".join(p.read_text() for p in (LABEXTENSION / "static").glob("*.js"))
    for plugin in ("labkit-jupyterlab:snapshots", "labkit-jupyterlab:launcher"):
        assert plugin in built
    assert "labkit-jupyterlab:runs" in built and "labkit runs" in built
    assert "run/control" in built  # the Stop button's route (under {base_url}labkit/)
    # the chart is the anywidget panel's own code, joined after the shared helpers
    assert "waiting for the first training step" in built
    assert "labkit-runs-item" in built and "labkit-run-view" in built


def test_front_end_text_never_goes_in_as_html() -> None:
    """Run names, paths and errors come from the server: set as text, never parsed as HTML."""
    sources = [*(SOURCE / "src").glob("*.js"), ROOT / "widgets" / "run_panel.js"]
    for path in sources:
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in text, f"{path}: {sink}"


def test_the_marker_is_the_same_string_in_the_kernel_and_the_front_end() -> None:
    source = (SOURCE / "src" / "index.js").read_text()
    assert f"export const LIVE_MIME = '{LIVE_MIME}';" in source
    built = "".join(p.read_text() for p in (LABEXTENSION / "static").glob("*.js"))
    assert LIVE_MIME in built
    assert live_marker("Run") == {LIVE_MIME: {"version": 1, "view": "Run"}}


def test_the_front_end_loads_nothing_from_the_network() -> None:
    # the SVG namespace is a name, never fetched (createElementNS, the icon's xmlns)
    svg_namespace = "http://www.w3.org/2000/svg"
    files = [
        *(SOURCE / "src").rglob("*.js"),
        *(SOURCE / "style").rglob("*.css"),
        *(LABEXTENSION / "static").glob("*.js"),
    ]
    for path in files:
        text = path.read_text().replace(svg_namespace, "")
        assert "http://" not in text and "https://" not in text, path


def test_jupyterlab_finds_the_installed_extension() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in (out.stdout + out.stderr).splitlines() if NAME in line]
    assert lines and "enabled" in lines[0] and "OK" in lines[0], out.stdout + out.stderr


def test_nbviewer_shows_the_snapshot_of_a_saved_labkit_output() -> None:
    """nbviewer (nbconvert's HTML export) knows neither the marker nor, without saved widget
    state, the widget: it shows the static snapshot, escaped text and all."""
    import nbformat
    from nbconvert import HTMLExporter

    snapshot = "<div class='labkit-run'>finished &lt;img src=x&gt;</div>"
    bundle = {
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": "0123456789abcdef",
        },
        **live_marker("Run"),
        "text/html": snapshot,
        "text/plain": "Run(finished, step 12/12)",
    }
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("run")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert 'class="labkit-run">finished &lt;img src=x&gt;</div>' in html  # as HTML, escaped
    assert "0123456789abcdef" not in html  # no widget placeholder without its state
