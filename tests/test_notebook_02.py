"""Notebook 02's comparison table, run against two recorded runs (fast; the whole notebook runs
in test_notebooks.py, marked slow)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.events import StepEnd
from labkit.history import MetricHistory
from tests.test_notebook_cells import _cell, run_cell

T0 = 1_796_000_000.0  # the wall clock the table once showed as 1.796e+09


class Recorded:
    """What the table cell reads of a finished ``labkit.Run``."""

    def __init__(self, name: str, seconds_per_step: float, params: int) -> None:
        self.name = name
        self.history = MetricHistory()
        self.history.mark_start(T0)
        for s in range(1, 7):
            self.history.record(
                StepEnd(step=s, epoch=s / 6, loss=0.5, lr=1e-3, time=T0 + seconds_per_step * s)
            )
        metrics = SimpleNamespace(accuracy=0.8, f1=0.79)
        self.model = SimpleNamespace(trainable_parameters=params, evaluate=lambda data: metrics)

    def wait(self) -> Recorded:
        return self


def test_02_table_shows_elapsed_training_seconds_rounded_and_names_each_run() -> None:
    lora = Recorded("all-MiniLM-L6-v2 · LoRA r=8", 2.0573, 1_000)
    full = Recorded("all-MiniLM-L6-v2 · full finetuning", 7.61234, 22_000_000)
    ns = {"run": lora, "full": full, "lora_after": lora.model.evaluate(None), "data": None}
    table = run_cell(_cell("02_finetune", "pd.DataFrame("), ns)
    assert list(table["run"]) == [lora.name, full.name]  # two runs, told apart
    assert list(table["seconds"]) == [12.3, 45.7]  # 6 steps' elapsed seconds, 3 digits
    # the record keeps its precision (to the wall clock's float resolution, about 0.2 µs)
    assert lora.history.column("elapsed")[-1] == pytest.approx(6 * 2.0573, abs=1e-6)
