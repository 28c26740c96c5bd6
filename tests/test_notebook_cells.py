"""Cells of notebooks 03 and 04 run against a tiny model: what they display, and that the
dataset cell explains the misclassified examples its text promises (fast; the whole notebooks
run in test_notebooks.py, marked slow)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

import labkit

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _cells(name: str) -> list[str]:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _cell(name: str, contains: str) -> str:
    found = [s for s in _cells(name) if contains in s]
    assert len(found) == 1, f"{name}: {len(found)} code cells contain {contains!r}"
    return found[0]


def _last_line(source: str) -> str:
    return source.strip().splitlines()[-1].strip()


def run_cell(source: str, namespace: dict[str, Any]) -> Any:
    """Run a cell as IPython does: the value of its last expression is what it displays."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)


def test_03_displays_the_importance_and_summary_views_not_raw_tuples():
    assert _last_line(_cell("03_attention_heads", "lk.head_importance(")) == "imp"
    assert _last_line(_cell("03_attention_heads", "res.summary")) == "res.summary"
    for source in _cells("03_attention_heads"):
        assert ".ranked(" not in _last_line(source)


def test_04_shows_the_run_while_it_trains():
    cells = _cells("04_explain_predictions")
    start = next(i for i, s in enumerate(cells) if "lk.finetune(" in s)
    assert _last_line(cells[start]) == "run"  # the live panel, before anything blocks
    assert "run.wait()" not in cells[start]
    assert any("run.wait()" in s for s in cells[start + 1 :])


def test_04_compares_the_two_methods_in_a_labelled_view(tiny_model):
    from labkit.inspect.attribution.compare import ExplanationComparison

    source = _cell("04_explain_predictions", 'method="occlusion"')
    assert "print(" not in source
    text = "a gorgeous, witty, seductive movie"
    ns = {"lk": labkit, "model": tiny_model, "TEXT": text, "ex": labkit.explain(tiny_model, text)}
    shown = run_cell(source, ns)
    assert isinstance(shown, ExplanationComparison)
    assert "occlusion" in shown._repr_html_()


def test_04_explains_misclassified_examples(tiny_model, toy_data, capsys):
    source = _cell("04_explain_predictions", "explain_dataset(")
    split = toy_data.test if toy_data.test is not None else toy_data.validation
    truth = [toy_data.labels[y] for y in split["label"]]
    wrong = [p.label != t for p, t in zip(tiny_model.predict(split["text"]), truth)]
    assert any(wrong), "the untrained tiny model should get some examples wrong"
    ns = {"lk": labkit, "model": tiny_model, "data": toy_data, "N_EXAMPLES": 3}
    ds = run_cell(source, ns)
    assert isinstance(ds, labkit.DatasetAttribution)
    assert len(ds) == min(3, sum(wrong))
    assert ds.table["correct"].tolist() == [False] * len(ds)
    assert f"{sum(wrong)} of {len(split)}" in capsys.readouterr().out


def test_04_says_so_when_nothing_is_misclassified(tiny_model, toy_data, capsys, monkeypatch):
    source = _cell("04_explain_predictions", "explain_dataset(")
    split = toy_data.test if toy_data.test is not None else toy_data.validation
    truth = [toy_data.labels[y] for y in split["label"]]

    def perfect(texts: Any, **_: Any) -> list[Any]:
        return [labkit.Prediction(text=t, label=y, probs={y: 1.0}) for t, y in zip(texts, truth)]

    monkeypatch.setattr(tiny_model, "predict", perfect)
    ds = run_cell(source, {"lk": labkit, "model": tiny_model, "data": toy_data, "N_EXAMPLES": 2})
    out = capsys.readouterr().out
    assert f"0 of {len(split)}" in out and "explaining the first 2" in out
    assert len(ds) == 2


@pytest.mark.parametrize("name", ["03_attention_heads", "04_explain_predictions"])
def test_no_cell_prints_raw_floats(name):
    """print(ex.top(5)) and friends wrote 17-digit tuples; displayed objects round."""
    raw = re.compile(r"print\(.*\.(top|ranked|agreement)\(")
    for source in _cells(name):
        assert not raw.search(source), source
