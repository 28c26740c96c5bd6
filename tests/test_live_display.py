"""A run displayed in a kernel: live widget + static snapshot, and when the run ends the saved
output is updated in place with the final snapshot (same widget). No kernel, no browser: the
IPython display call is replaced by a recorder."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import labkit.ui
import labkit.ui._live
from labkit.events import EvalEnd, StepEnd, TrainEnd
from labkit.history import MetricHistory
from labkit.train.config import FinetuneConfig
from labkit.train.run import Run, RunDriver

WIDGET = "application/vnd.jupyter.widget-view+json"


class Handle:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
        assert raw
        self.updates.append(bundle)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Any], Handle]]:
    """What the notebook was shown: (bundle, display handle) per display call."""
    calls: list[tuple[dict[str, Any], Handle]] = []

    def display(bundle: dict[str, Any], raw: bool = False, display_id: Any = None) -> Handle:
        assert raw and display_id is True
        calls.append((bundle, Handle()))
        return calls[-1][1]

    monkeypatch.setattr(labkit.ui._live, "ipython_display", display)
    return calls


def _run(tmp_path: Path) -> Run:
    lock = threading.Lock()
    lock.acquire()  # as labkit.finetune claims the model; the run releases it at its end
    model = SimpleNamespace(name="tiny-bert", device="cpu", release_training=lock.release)
    return Run(model, FinetuneConfig(max_steps=3), str(tmp_path))  # type: ignore[arg-type]


def test_a_run_displayed_while_training_ends_with_the_final_snapshot(
    tmp_path: Path, shown: list[tuple[dict[str, Any], Handle]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = ModuleType("ipykernel")  # "in a kernel", as labkit.render.display checks it
    kernel.version_info = (6, 29, 0)  # type: ignore[attr-defined]  # read by ipywidgets
    monkeypatch.setitem(sys.modules, "ipykernel", kernel)
    started, go = threading.Event(), threading.Event()

    def job(driver: RunDriver) -> None:
        driver.set_status("running")
        started.set()
        go.wait(10)
        for step in (1, 2, 3):
            driver.emit(StepEnd(step=step, epoch=step / 3, loss=1.0 / step, lr=0.1, total_steps=3))
        driver.emit(EvalEnd(step=3, metrics={"loss": 0.4, "accuracy": 0.9}))

    driver = RunDriver(_run(tmp_path))
    driver.start(job)
    run = driver.run
    assert started.wait(10)
    run._ipython_display_()
    go.set()
    run.wait(10)
    ((bundle, handle),) = shown
    assert "running" in bundle["text/html"] and "running" in bundle["text/plain"]
    (final,) = handle.updates  # exactly once, at the end
    assert final[WIDGET] == bundle[WIDGET]  # the same live panel
    assert "finished" in final["text/html"] and "data:image/svg+xml" in final["text/html"]
    assert final["text/plain"] == repr(run) and "accuracy" in final["text/html"]
    labkit.ui.view_for(run).close()


def test_a_run_displayed_after_its_end_is_not_updated(
    tmp_path: Path, shown: list[tuple[dict[str, Any], Handle]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # a terminal IPython
    driver = RunDriver(_run(tmp_path))
    driver.start(lambda d: None)
    driver.run.wait(10)
    driver.run._ipython_display_()
    ((bundle, handle),) = shown
    assert WIDGET not in bundle  # no kernel here: the static snapshot only
    assert "finished" in bundle["text/html"] and handle.updates == []


def test_the_end_is_caught_once_whether_it_comes_before_or_after_the_subscription(
    shown: list[tuple[dict[str, Any], Handle]],
) -> None:
    def final() -> dict[str, Any]:
        return {"text/html": "<b>final</b>", "text/plain": "final"}

    ended = MetricHistory()
    ended.record(TrainEnd(status="finished"))  # ended while the caller was not looking
    labkit.ui.display({"text/html": "old", WIDGET: {"model_id": "m"}}, follow=ended, final=final)
    later = MetricHistory()
    labkit.ui.display({"text/html": "old"}, follow=later, final=final)
    later.record(StepEnd(step=1, epoch=0.0, loss=1.0, lr=0.1))  # not the end
    assert shown[1][1].updates == []
    later.record(TrainEnd(status="stopped"))
    later.record(TrainEnd(status="stopped"))  # a second end changes nothing
    assert shown[0][1].updates == [
        {"text/html": "<b>final</b>", "text/plain": "final", WIDGET: {"model_id": "m"}}
    ]
    assert shown[1][1].updates == [{"text/html": "<b>final</b>", "text/plain": "final"}]


def test_every_view_registry_key_names_the_class_where_it_is_defined() -> None:
    """``labkit.ui`` finds views by isinstance on "module:Class"; a class that moves must
    move its key too, or its objects silently lose their live view."""
    import importlib

    for key in labkit.ui._VIEWS:
        module, _, name = key.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert f"{cls.__module__}:{cls.__qualname__}" == key
