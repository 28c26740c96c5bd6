"""lk.compare_runs: several runs on one chart, their final metrics and differing config fields,
live (Run) and from their folders (RecordedRun), as static HTML and as a live widget."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
import warnings
from array import array
from pathlib import Path
from typing import Any

import pytest

import labkit as lk
from labkit.events import EvalEnd, StepEnd, TrainEnd, event_to_dict
from labkit.runs.compare import MAX_POINTS, keep_indices


def write_run(
    folder: Path,
    *,
    name: str,
    steps: int,
    lr: float = 1e-3,
    rate: float = 0.01,
    evals_every: int = 0,
    spike_at: int | None = None,
    started: float = 1_000_000.0,
    seconds_per_step: float = 0.1,
    ended: bool = True,
    config: dict[str, Any] | None = None,
) -> Path:
    """A synthetic run record: ``steps`` StepEnd lines (loss 2/(1 + rate step), noisy, a spike
    of 50 at ``spike_at``), an evaluation every ``evals_every`` steps, and a TrainEnd when
    ``ended``."""
    folder.mkdir(parents=True, exist_ok=True)
    header = {
        "kind": "Run",
        "labkit": "test",
        "run_id": f"id-{name}-{folder.name}",
        "name": name,
        "model": "tiny",
        "task": "classification",
        # a run still going is trained by a live process (this one); an ended one by none
        "pid": -1 if ended else os.getpid(),
        "host": socket.gethostname(),
        "started": started,
        "output_dir": str(folder),
        "config": {"lr": lr, "epochs": 3.0, "batch_size": 16, "metric": "loss", **(config or {})},
    }
    lines = [json.dumps(header)]
    for s in range(1, steps + 1):
        loss = 50.0 if s == spike_at else 2.0 / (1 + rate * s) * (1 + 0.1 * math.sin(s))
        at = started + s * seconds_per_step
        lines.append(
            json.dumps(
                event_to_dict(
                    StepEnd(step=s, epoch=s / steps, loss=loss, lr=lr, total_steps=steps, time=at)
                )
            )
        )
        if evals_every and s % evals_every == 0:
            gain = rate * s / (1 + rate * s)
            metrics = {"loss": 1.5 / (1 + rate * s), "accuracy": 0.5 + 0.45 * gain}
            lines.append(json.dumps(event_to_dict(EvalEnd(step=s, metrics=metrics, time=at))))
    if ended:
        end = TrainEnd(status="finished", step=steps, time=started + steps * seconds_per_step)
        lines.append(json.dumps(event_to_dict(end)))
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    return folder


# -- two real tiny runs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tiny_dirs, toy_data, tmp_path_factory) -> list[Any]:
    root = tmp_path_factory.mktemp("compare")
    runs = []
    for lr in (1e-4, 5e-3):
        model = lk.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
        with warnings.catch_warnings():  # the second waits for the first (labkit.train.slot)
            warnings.simplefilter("ignore", lk.LabkitWarning)
            runs.append(
                lk.finetune(
                    model,
                    toy_data,
                    max_steps=20,
                    lr=lr,
                    batch_size=8,
                    eval_every=10,
                    output_dir=root / f"lr-{lr}",
                )
            )
    for run in runs:
        run.wait()
    return runs


def test_live_runs_and_their_folders_compare_the_same(two_runs) -> None:
    live = lk.compare_runs(two_runs)
    recorded = lk.compare_runs([r.output_dir for r in two_runs])
    assert [type(r).__name__ for r in recorded.runs] == ["RecordedRun", "RecordedRun"]
    assert live.labels == recorded.labels and len(set(live.labels)) == 2
    for a, b, run in zip(live.curves(), recorded.curves(), two_runs):
        assert a.step == b.step == list(range(1, 21))
        assert a.loss == pytest.approx(b.loss) and a.loss == pytest.approx(
            run.history.column("loss")
        )
        assert a.smooth == pytest.approx(b.smooth)
        assert [e[0] for e in a.evals] == [e[0] for e in b.evals] == [10, 20]
    assert live.finals().rows == recorded.finals().rows
    finals = live.finals()
    assert finals.columns[:4] == ["run", "status", "step", "wall time"]
    acc = finals.columns.index("accuracy")
    for row, run in zip(finals.rows, two_runs):
        assert row[1] == "finished" and row[2] == "20 / 20"
        assert row[acc] == f"{run.metrics['accuracy']:.4g}"
    assert live.metric == recorded.metric == "accuracy"  # config metric is "loss": accuracy


def test_config_table_lists_what_differs_and_only_that(two_runs) -> None:
    for comparison in (
        lk.compare_runs(two_runs),
        lk.compare_runs([r.output_dir for r in two_runs]),
    ):
        diff = comparison.config_diff()
        fields = [row[0] for row in diff.rows]
        assert "lr" in fields
        assert "max_steps" not in fields and "batch_size" not in fields and "seed" not in fields
        lr_row = diff.rows[fields.index("lr")]
        assert lr_row[1:] == ["0.0001", "0.005"]
        assert diff.columns == ["field", *comparison.labels]
    same = lk.compare_runs([two_runs[0], two_runs[0].output_dir])
    assert same.config_diff().rows == []
    assert "the same" in same.config_diff().note


def test_static_html_has_both_charts_tables_and_escaped_names(tmp_path) -> None:
    bad = "<img src=x onerror=alert(1)>"
    a = write_run(tmp_path / "a", name=bad, steps=50, evals_every=10, lr=1e-3)
    b = write_run(tmp_path / "b", name="plain", steps=30, evals_every=10, lr=5e-3)
    comparison = lk.compare_runs([a, b])
    page = comparison._repr_html_()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page
    images = re.findall(r"src='data:image/svg\+xml;base64,([^']+)'", page)
    assert len(images) == 2  # the loss chart and the accuracy panel
    import base64

    svgs = [base64.b64decode(x).decode() for x in images]
    assert "validation accuracy" in svgs[1]
    assert svgs[0].count("<path") >= 4  # raw + smoothed for each run
    assert "<img" not in svgs[0]
    assert "1 of 4 configuration fields differ" in page
    assert ">0.005<" in page and ">lr<" in page
    assert "finished" in page


def test_downsampling_bounds_the_curve_and_keeps_spikes(tmp_path) -> None:
    folder = write_run(tmp_path / "long", name="long", steps=10_000, spike_at=7_777)
    comparison = lk.compare_runs([folder])
    curve = comparison.curve(0)
    assert curve.steps == 10_000 and len(curve.step) <= MAX_POINTS
    raw = comparison.runs[0].history.column("loss")
    assert max(v for v in curve.loss if v is not None) == 50.0 and 7_777 in curve.step
    assert min(v for v in curve.loss if v is not None) == min(raw)
    assert curve.step[0] == 1 and curve.step[-1] == 10_000
    assert curve.step == sorted(curve.step)
    # the smoothed value at a kept step is the EMA over every step, not over the kept ones
    from labkit.render.svgchart import ema

    full = ema(raw, 0.6)
    assert curve.smooth == pytest.approx([full[s - 1] for s in curve.step])
    assert keep_indices([1.0, None, 3.0], 10) == [0, 1, 2]


def test_time_alignment_uses_seconds_since_each_start(tmp_path) -> None:
    fast = write_run(tmp_path / "fast", name="fast", steps=20, seconds_per_step=0.5)
    slow = write_run(
        tmp_path / "slow", name="slow", steps=20, seconds_per_step=2.0, started=2_000_000.0
    )
    comparison = lk.compare_runs([fast, slow], x="time")
    f, s = comparison.curves()
    assert f.x("time")[-1] == pytest.approx(10.0) and s.x("time")[-1] == pytest.approx(40.0)
    assert s.x("step")[-1] == 20.0
    rows = comparison.finals().rows
    assert rows[0][3] == "10s" and rows[1][3] == "40s"
    assert "by seconds since the run began" in comparison._repr_html_()


def test_duplicate_names_empty_runs_and_bad_input(tmp_path) -> None:
    a = write_run(tmp_path / "one", name="same", steps=5)
    b = write_run(tmp_path / "two", name="same", steps=5)
    empty = write_run(tmp_path / "empty", name="fresh", steps=0, ended=False)
    comparison = lk.compare_runs([a, b, empty])
    assert comparison.labels == ["same (one)", "same (two)", "fresh"]
    assert comparison.curve(2).steps == 0
    page = comparison._repr_html_()
    assert "no steps yet" in page
    again = lk.compare_runs([a, a])
    assert again.labels == ["same #1", "same #2"]
    with pytest.raises(lk.InputError, match="no runs"):
        lk.compare_runs([])
    with pytest.raises(lk.InputError, match="item 1 is a int"):
        lk.compare_runs([a, 3])
    with pytest.raises(lk.InputError, match="does not exist"):
        lk.compare_runs([tmp_path / "missing"])
    with pytest.raises(lk.ConfigError, match="x must be 'step'"):
        lk.compare_runs([a], x="epoch")  # type: ignore[arg-type]
    evaluated = write_run(tmp_path / "ev", name="ev", steps=10, evals_every=5)
    with pytest.raises(lk.ConfigError, match="the runs have loss, accuracy"):
        lk.compare_runs([evaluated], metric="bleu")
    assert lk.compare_runs([evaluated], metric="loss").metric == "loss"
    assert lk.compare_runs([a]).metric == ""  # no evaluation: no second panel


# -- the live widget ------------------------------------------------------------------------------
class _Tap:
    """Stands in for the widget's comm: keeps every message and its byte size."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        self.states: list[dict[str, Any]] = []
        comm = widget.comm
        if getattr(comm, "kernel", True) is None:
            comm._trait_values["kernel"] = object()
        comm.publish_msg = self.publish

    def publish(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **_: Any
    ) -> None:
        blobs = [bytes(b) for b in buffers or ()]
        if data and data.get("method") == "custom":
            self.messages.append((data["content"], blobs))
        elif data and data.get("method") == "update":
            self.states.append(data["state"])

    def size(self) -> int:
        return sum(len(json.dumps(c)) + sum(map(len, b)) for c, b in self.messages)


def _floats(blob: bytes) -> list[float]:
    arr = array("f")
    arr.frombytes(blob)
    return list(arr)


def test_widget_sends_bounded_curves_and_answers_a_sync(tmp_path) -> None:
    from labkit.ui.compare_view import CompareView

    folders = [
        write_run(tmp_path / f"r{i}", name=f"run {i}", steps=10_000, evals_every=1000, spike_at=99)
        for i in range(10)
    ]
    view = CompareView(lk.compare_runs(folders))
    assert not view.live and view._thread is None  # finished runs: nothing to follow
    assert [r["steps"] for r in view.runs] == [10_000] * 10
    assert view.metric == "accuracy" and view.metric_names == ["accuracy"]
    tap = _Tap(view)
    view._on_msg(view, {"type": "sync", "have": {}}, [])
    ((content, blobs),) = tap.messages
    assert content["reply"] and [r["index"] for r in content["runs"]] == list(range(10))
    assert len(blobs) == 40 and all(len(b) <= 4 * MAX_POINTS for b in blobs)
    loss = _floats(blobs[2])
    assert max(loss) == 50.0  # the spike at step 99 survives the thinning
    assert tap.size() < 10 * (16 * MAX_POINTS + 2_000)
    tap.messages.clear()
    have = {str(i): r["version"] for i, r in enumerate(view.runs)}
    view._on_msg(view, {"type": "sync", "have": {**have, "3": 0}}, [])
    assert [r["index"] for r in tap.messages[0][0]["runs"]] == [3]  # only what it lacks
    assert view.finals["columns"][:4] == ["run", "status", "step", "wall time"]
    assert view.config["rows"] == [] and "the same" in view.config["note"]
    view.close()


def test_widget_follows_a_growing_record(tmp_path) -> None:
    from labkit.ui.compare_view import CompareView

    folder = write_run(tmp_path / "grow", name="grow", steps=10, ended=False)
    done = write_run(tmp_path / "done", name="done", steps=10)
    comparison = lk.compare_runs([folder, done])
    view = CompareView(comparison, interval=3600)
    tap = _Tap(view)
    assert view.live
    version = view.runs[0]["version"]
    with open(folder / "events.jsonl", "a") as f:
        for s in range(11, 31):
            f.write(
                json.dumps(event_to_dict(StepEnd(step=s, epoch=1, loss=0.5, lr=1e-3, time=2e6)))
                + "\n"
            )
    comparison.refresh()
    view.flush()
    ((content, blobs),) = tap.messages
    assert [r["index"] for r in content["runs"]] == [0] and not content["reply"]
    assert _floats(blobs[0])[-1] == 30.0
    assert view.runs[0]["steps"] == 30 and view.runs[0]["version"] == version + 1
    from labkit.render.svgchart import ema

    # the smoothed loss, extended as the run grew, is the panel's EMA over every step
    assert comparison.curve(0).smooth == ema(comparison.runs[0].history.column("loss"), 0.6)
    view.flush()
    assert len(tap.messages) == 1  # nothing new: nothing sent
    view.close()


def test_a_notebook_gets_the_live_view_and_the_static_snapshot(tmp_path, monkeypatch) -> None:
    import sys
    from types import ModuleType

    import labkit.ui

    comparison = lk.compare_runs([write_run(tmp_path / "a", name="a", steps=5)])
    assert set(comparison._repr_mimebundle_()) == {"text/plain", "text/html"}  # plain Python
    kernel = ModuleType("ipykernel")  # "in a kernel", as labkit.render.display checks it
    kernel.version_info = (6, 29, 0)  # type: ignore[attr-defined]  # read by ipywidgets
    monkeypatch.setitem(sys.modules, "ipykernel", kernel)
    bundle = comparison._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.labkit.view+json"]["view"] == "RunComparison"
    assert bundle["text/html"] == comparison._repr_html_()
    view = labkit.ui.view_for(comparison)
    assert type(view).__name__ == "CompareView" and labkit.ui.view_for(comparison) is view
    assert "CompareView" in labkit.ui.__all__
    view.close()


def test_widget_follows_a_training_run_to_its_end(tiny_model, toy_data, tmp_path) -> None:
    import threading

    from labkit.ui.compare_view import CompareView

    done = write_run(tmp_path / "before", name="before", steps=20, evals_every=10)
    gate = threading.Event()

    class Hold:  # holds training at its first step until the view exists
        def on_event(self, event: Any, control: Any) -> None:
            if isinstance(event, StepEnd) and event.step == 1:
                gate.wait(30)

    run = lk.finetune(
        tiny_model,
        toy_data,
        max_steps=20,
        eval_every=10,
        callbacks=[Hold()],
        output_dir=tmp_path / "now",
    )
    view = CompareView(lk.compare_runs([run, done]), interval=0.05)
    tap = _Tap(view)
    assert view.live and view._thread is not None
    gate.set()
    run.wait()
    deadline = time.monotonic() + 10
    while view._thread is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert view._thread is None and not view.live  # stopped following once the run ended
    assert view.runs[0]["steps"] == 20 and view.runs[0]["status"] == "finished"
    sent = [r for content, _ in tap.messages for r in content["runs"]]
    assert sent and {r["index"] for r in sent} == {0}  # only the run that changed
    assert sent[-1]["n"] == 20 and [e[0] for e in sent[-1]["evals"]] == [10, 20]
    assert view.finals["rows"][0][1] == "finished"
    view.close()
