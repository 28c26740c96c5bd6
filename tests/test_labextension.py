"""labkit's JupyterLab extension: built from the source beside it, found by JupyterLab, and
speaking the marker the kernel side writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_the_digest_changes_with_the_source(tmp_path: Path) -> None:
    copy = tmp_path / "jupyterlab"
    (copy / "src").mkdir(parents=True)
    (copy / "package.json").write_bytes((SOURCE / "package.json").read_bytes())
    index = (SOURCE / "src" / "index.js").read_text()
    (copy / "src" / "index.js").write_text(index)
    assert source_digest(copy) == source_digest()
    (copy / "src" / "index.js").write_text(index + "\n// an edit\n")
    assert source_digest(copy) != source_digest()


def test_the_marker_is_the_same_string_in_the_kernel_and_the_front_end() -> None:
    source = (SOURCE / "src" / "index.js").read_text()
    assert f"export const LIVE_MIME = '{LIVE_MIME}';" in source
    built = "".join(p.read_text() for p in (LABEXTENSION / "static").glob("*.js"))
    assert LIVE_MIME in built
    assert live_marker("Run") == {LIVE_MIME: {"version": 1, "view": "Run"}}


def test_the_front_end_loads_nothing_from_the_network() -> None:
    for path in [*(SOURCE / "src").rglob("*.js"), *(LABEXTENSION / "static").glob("*.js")]:
        text = path.read_text()
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
