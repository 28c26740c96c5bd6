"""`import labkit` is cheap and clean, yet the whole public API is reachable right away."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "torch",
    "transformers",
    "datasets",
    "captum",
    "bertviz",
    "peft",
    "accelerate",
    "ipywidgets",
    "anywidget",
    "IPython",
    "matplotlib",
    "pandas",
)


def _fresh(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_import_loads_no_heavy_or_ui_module():
    out = _fresh(
        "import sys, json, labkit; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    assert json.loads(out) == []


def test_public_names_are_attributes_after_import():
    out = _fresh(
        "import labkit, json; "
        "print(json.dumps({n: type(getattr(labkit, n)).__name__ "
        "for n in ['load_model', 'load_data', 'demo', 'LabkitError', 'Model', "
        "'TextData', 'MetricHistory', 'StepEnd', 'Control']}))"
    )
    kinds = json.loads(out)
    assert kinds["load_model"] == "function"
    assert kinds["demo"] == "module"
    assert kinds["LabkitError"] == "type"
    assert kinds["Model"] == "type"


def test_every_declared_public_name_resolves():
    import labkit

    missing = []
    for name in labkit.__all__:
        try:
            getattr(labkit, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert missing == []


def test_unknown_attribute_is_an_attribute_error():
    import labkit

    try:
        labkit.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_core_modules_never_import_ui_libraries():
    """Layering: only labkit/ui may import widget or plotting libraries."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "labkit"
    banned = {"ipywidgets", "anywidget", "IPython", "matplotlib"}
    offenders = []
    for path in root.rglob("*.py"):
        if "ui" in path.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []


def test_no_module_shadows_a_public_function():
    """A submodule named like a public function would replace it once imported
    (``labkit.attention`` the module instead of ``lk.attention`` the function)."""
    from pathlib import Path

    import labkit

    root = Path(labkit.__file__).parent
    clashes = [n for n in labkit._LAZY if (root / f"{n}.py").exists() or (root / n).is_dir()]
    assert clashes == []
    out = _fresh(
        "import labkit, labkit.inspect.attention.extract, labkit.inspect.attribution.api, labkit.train.finetune, json; "
        "print(json.dumps([callable(labkit.attention), callable(labkit.explain), "
        "callable(labkit.finetune)]))"
    )
    assert json.loads(out) == [True, True, True]


def _labkit_import_graph() -> dict[str, set[str]]:
    """labkit module -> the labkit modules it imports, at module or function level (imports
    under ``if TYPE_CHECKING:`` left out: they never run)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "labkit"
    files: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path

    def owner(name: str) -> str | None:  # the module that ``name`` (module or attribute) is in
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text())
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                found = owner(name)
                # a module importing its own package's __init__ is not an edge of the graph
                if found and found != mod and not mod.startswith(found + "."):
                    targets.add(found)
        graph[mod] = targets
    return graph


def test_labkit_has_no_import_circles():
    """Every module can be read bottom-up: no two modules import each other, directly or
    through others, counting imports inside functions."""
    graph = _labkit_import_graph()
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                circles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)
    assert circles == []


def test_the_top_level_is_a_few_core_modules_and_packages():
    """One package per concept: the top level keeps the core data types and entry points."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "labkit"
    modules = sorted(p.stem for p in root.glob("*.py"))
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists())
    assert len(modules) <= 14, modules
    assert {"train", "inspect", "render", "cli", "ui", "_utils"} <= set(packages)
