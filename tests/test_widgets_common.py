"""widgets/_common.js: the front-end helpers every widget module is sent after, written once.

``labkit.ui._base`` sends each module as ``prelude() + module``: the prelude is ``_common.js``
then one ``const PALETTE = {...};`` line built from ``labkit.render``'s colours. A module that
declares a shared name again would be a SyntaxError in the browser (or a second copy of a
helper), so these tests fail first and say which module and which name.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit.render import attribution, heatmap, run, svgchart
from labkit.ui import _base

ROOT = Path(__file__).resolve().parents[1]
WIDGETS = ROOT / "widgets"
COMMON = WIDGETS / _base.COMMON
MODULES = sorted(p for p in WIDGETS.glob("*.js") if p != COMMON)
NODE = shutil.which("node")


@pytest.fixture
def node() -> str:
    """node, which checks the joined modules' JavaScript: a missing one fails, never skips."""
    if NODE is None:
        pytest.fail(
            "node is not installed: the widget modules are checked with it (`make browser` "
            "installs it as root, or apt-get install nodejs)"
        )
    return NODE


needs_node = pytest.mark.usefixtures("node")

# A top-level declaration. The widget modules write top-level code at column 0 and indent
# everything else, so a line-anchored pattern sees exactly the top level.
_DECLARATION = re.compile(
    r"^(?:export\s+)?(?:async\s+)?(?:function\s*\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_DESTRUCTURING = re.compile(r"^(?:export\s+)?(?:const|let|var)\s*[\[{]", re.MULTILINE)


def declared(text: str) -> set[str]:
    """The names a module declares at its top level."""
    return set(_DECLARATION.findall(text))


def shared_names() -> set[str]:
    """Every name the prelude declares: _common.js's and PALETTE."""
    return declared(_base.prelude())


def test_common_is_plain_declarations() -> None:
    text = COMMON.read_text()
    assert not re.search(r"^\s*(?:import|export)\b", text, re.MULTILINE), (
        "_common.js is pasted ahead of ES modules: it must not import or export"
    )
    # the SVG namespace is a name, not an address: nothing is fetched from it
    text = text.replace('"http://www.w3.org/2000/svg"', "")
    for bad in ("innerHTML", "insertAdjacentHTML", "http://", "https://"):
        assert bad not in text


def test_the_parser_sees_the_shared_and_module_names() -> None:
    shared = shared_names()
    assert {"h", "subscribe", "bytesOf", "f16", "heatmap", "diverging", "PALETTE"} <= shared
    assert {"listenReplies", "requestReply", "REPLIES", "HALF"} <= shared
    for path in MODULES:
        assert declared(path.read_text()) or "export default" in path.read_text(), path.name


def test_top_level_declarations_name_one_binding_each() -> None:
    """A destructuring declaration would hide its names from the check below."""
    found = [p.name for p in [COMMON, *MODULES] if _DESTRUCTURING.search(p.read_text())]
    assert not found, f"declare one name per statement at the top level of: {found}"


def test_no_module_redeclares_a_shared_name() -> None:
    shared = shared_names()
    clashes = [
        f"widgets/{path.name} declares {name}"
        for path in MODULES
        for name in sorted(declared(path.read_text()) & shared)
    ]
    assert not clashes, (
        "these names are declared once, in widgets/_common.js (PALETTE by labkit.ui._base); "
        "delete the module's copy: " + "; ".join(clashes)
    )


def test_the_prelude_is_common_then_the_palette() -> None:
    common = COMMON.read_text()
    prelude = _base.prelude()
    assert prelude.startswith(common)
    line = re.fullmatch(r"\nconst PALETTE = (.*);\n", prelude[len(common) :])
    assert line, prelude[len(common) :]
    assert json.loads(line[1]) == _base.palette()


def test_the_palette_is_labkit_render_s_colours() -> None:
    assert _base.palette() == {
        "attention": list(heatmap.BLUE),
        "change": list(heatmap.RED),
        "toward": list(attribution.TOWARD),
        "against": list(attribution.AGAINST),
        "opacity": attribution.OPACITY,
        "chart": {
            "raw": run.RAW,
            "ema": run.SMOOTH,
            "val": run.VAL,
            "metric": run.METRIC,
            "pad": svgchart.PAD,
            "dot": svgchart.DOT_R,
        },
        "status": run.STATUS_COLORS,
    }


def _widget_classes() -> list[type]:
    """labkit's widget classes that set ``_esm`` (not the per-instance subclasses that
    traitlets' ``add_traits`` makes, nor classes defined in tests)."""
    import pkgutil

    import labkit.ui

    # every module of labkit.ui: a new widget is checked without being listed here
    modules = [
        importlib.import_module(f"labkit.ui.{info.name}")
        for info in pkgutil.iter_modules(labkit.ui.__path__)
    ]
    return [
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, _base.LabkitWidget)
        and cls.__module__ == module.__name__
        and "_esm" in cls.__dict__
    ]


def test_each_widget_sends_common_then_its_module() -> None:
    common = COMMON.read_text()
    prelude = _base.prelude()
    texts = {p.read_text(): p.name for p in MODULES}
    used = set()
    for cls in _widget_classes():
        esm = str(cls._esm)
        assert esm.startswith(common), cls.__name__
        rest = esm[len(prelude) :]
        assert esm[: len(prelude)] == prelude and rest in texts, (
            f"{cls.__name__}._esm is not the prelude followed by one widgets/*.js module"
        )
        used.add(texts[rest])
    assert used == {p.name for p in MODULES}, "a module in widgets/ is sent by no widget"


def test_the_esm_trait_a_view_syncs_is_the_joined_module() -> None:
    from labkit.ui.attribution_view import AttributionView

    view = AttributionView()
    try:
        sent = view.get_state()["_esm"]
    finally:
        view.close()
    assert sent == _base.esm("attribution_view.js")
    assert sent.startswith(COMMON.read_text())
    assert sent.endswith((WIDGETS / "attribution_view.js").read_text())


def test_joining_is_idempotent() -> None:
    class Twice(_base.LabkitWidget):
        _esm = _base.esm("app_status.js")

    assert Twice._esm == _base.esm("app_status.js")


def test_colour_numbers_are_written_once() -> None:
    """The ramps' RGB numbers live in labkit/render only; the widgets read PALETTE."""
    colours = [heatmap.BLUE, heatmap.RED, attribution.TOWARD, attribution.AGAINST]
    patterns = [re.compile(rf"\b{r}\s*,\s*{g}\s*,\s*{b}\b") for r, g, b in colours]
    hexes = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in colours]
    front = [p for p in WIDGETS.iterdir() if p.suffix in (".js", ".css")]
    for path in front:
        text = path.read_text()
        assert not any(p.search(text) for p in patterns), f"widgets/{path.name} spells a colour"
        assert not any(x in text.lower() for x in hexes), f"widgets/{path.name} spells a colour"
    for pattern in patterns:
        where = [
            str(p.relative_to(ROOT))
            for p in (ROOT / "labkit").rglob("*.py")
            for _ in pattern.finditer(p.read_text())
        ]
        assert len(where) == 1, (pattern.pattern, where)


def _node(path: Path, text: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run ``text`` as the ES module ``path`` (a .mjs file) with node."""
    path.write_text(text, encoding="utf-8")
    assert NODE is not None
    cmd = [NODE, *flags, str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@needs_node
@pytest.mark.parametrize("module", [p.name for p in MODULES])
def test_node_accepts_the_joined_module(tmp_path: Path, module: str) -> None:
    done = _node(tmp_path / module.replace(".js", ".mjs"), _base.esm(module), "--check")
    assert done.returncode == 0, done.stderr


@needs_node
def test_the_front_end_draws_the_python_colours(tmp_path: Path) -> None:
    """JS ramp() matches heatmap.BLUES/REDS level for level, diverging() matches colour()."""
    values = [-2.0, -1.0, -0.37, -1e-4, 0.0, 1e-4, 0.5, 0.999, 1.0, 3.0]
    script = _base.prelude() + (
        "const levels = (end) => Array.from({ length: 256 }, (_, k) => ramp(end, k / 255));\n"
        "console.log(JSON.stringify({\n"
        "  blues: levels(PALETTE.attention).flat(), reds: levels(PALETTE.change).flat(),\n"
        f"  diverging: {json.dumps(values)}.map((v) => diverging(v, 1)),\n"
        "}));\n"
    )
    done = _node(tmp_path / "colours.mjs", script)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert bytes(out["blues"]) == heatmap.BLUES
    assert bytes(out["reds"]) == heatmap.REDS
    assert out["diverging"] == [attribution.colour(v, 1.0) for v in values]


@needs_node
def test_the_shared_buffer_helpers_decode(tmp_path: Path) -> None:
    import numpy as np

    halves = np.array([0.0, 1.0, -2.5, 65504.0, 6e-8, np.inf], dtype=np.float16)
    floats = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    script = _base.prelude() + (
        f"const half = new Uint8Array({json.dumps(list(b'x' + halves.tobytes()))});\n"
        f"const single = new Uint8Array({json.dumps(list(floats.tobytes()))});\n"
        "console.log(JSON.stringify({\n"
        "  odd: Array.from(f16(new DataView(half.buffer, 1))).map(String),\n"
        "  f32: Array.from(f32(single.buffer)), none: f32(null).length + f16(undefined).length,\n"
        "}));\n"
    )
    done = _node(tmp_path / "buffers.mjs", script)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [float(v) for v in out["odd"]] == [float(v) for v in halves.astype(np.float32)]
    assert out["f32"] == floats.tolist() and out["none"] == 0


@needs_node
def test_the_front_end_writes_numbers_as_the_static_views_do(tmp_path: Path) -> None:
    """JS sig() and labkit.render.summary.sig agree: 6e-06 is 6.00e-06, not 0.00000600."""
    from labkit.render.summary import sig

    values = [
        6e-06,
        1e-06,
        -4.2e-06,
        1.234e-4,
        0.0123456,
        0.99996,
        0.5,
        1.0,
        12.345,
        999.6,
        1234.6,  # not a tie: Python formats ties to even, JS rounds them up
        -0.000123,
        0.0,
    ]
    script = (
        _base.prelude() + f"console.log(JSON.stringify({json.dumps(values)}.map((v) => sig(v))));\n"
    )
    done = _node(tmp_path / "sig.mjs", script)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [sig(v) for v in values]
