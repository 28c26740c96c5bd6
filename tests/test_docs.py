"""What a reader meets first: the README and the notebooks' markdown read well without their
images (offline, a badge image is broken and only its alt text shows), and every image the
README shows is in the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def _markdown() -> dict[str, str]:
    docs = {"README.md": (ROOT / "README.md").read_text()}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        docs[nb.name] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return docs


def test_every_image_has_alt_text_that_says_where_it_leads() -> None:
    seen = 0
    for name, text in _markdown().items():
        for alt, _src in IMAGE.findall(text):
            seen += 1
            # "Binder" or "Open In Colab" alone says nothing once the image is broken
            assert len(alt.split()) >= 4, f"{name}: image alt text {alt!r} is too short"
    assert seen >= 1 + 5  # the README's badges and screenshot, each notebook's badge


def test_the_readme_screenshot_is_in_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    local = [src for _alt, src in IMAGE.findall(text) if not src.startswith("http")]
    assert local, "the README shows no screenshot of the lab"
    for src in local:
        assert (ROOT / src).is_file(), src
