"""The live panel without a browser: trait state, messages, replay, delta sizes, throttling,
controls and faults. Runs against ipywidgets 8 and, with the 7.7.1 overlay, ipywidgets 7."""

from __future__ import annotations

import json
import random
import threading
import time
from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from labkit.events import ENDED_STATUSES, EvalEnd, Saved, StepEnd, TrainEnd
from labkit.history import MetricHistory
from labkit.render.console import ConsoleProgress
from labkit.ui.panel import COLUMNS, LossChart, RunPanel, view_for_run
from tests._jupyter import WireTap

WIDGETS = Path(__file__).resolve().parents[1] / "widgets"


class Run:
    """A stand-in with the interface of ``labkit.Run`` the panel reads, driving a real
    ``MetricHistory``."""

    def __init__(self, total: int = 100, device: str = "cpu", fail_on: str = "") -> None:
        self.history = MetricHistory()
        self.status = "pending"
        self.step = 0
        self.total_steps = total
        self.error: str | None = None
        self.output_dir = "/tmp/labkit-fake"
        self.model = SimpleNamespace(name="tiny-bert", device=device)
        self.config = SimpleNamespace(metric="f1")
        self.calls: list[str] = []
        self.fail_on = fail_on

    @property
    def metrics(self) -> dict[str, float]:
        last = self.history.last_eval
        return dict(last.metrics) if last else {}

    @property
    def checkpoints(self) -> list[str]:
        return [s.path for s in self.history.saves]

    def _steer(self, action: str) -> None:
        if action == self.fail_on:
            raise RuntimeError(f"{action} broke")
        self.calls.append(action)
        if self.status not in ENDED_STATUSES:
            # as labkit.Run: a request shows at once, the step boundary answers it
            self.status = {"pause": "pausing", "resume": "running", "stop": "stopping"}.get(
                action, self.status
            )

    def stop(self) -> None:
        self._steer("stop")

    def pause(self) -> None:
        self._steer("pause")

    def resume(self) -> None:
        self._steer("resume")

    def save(self) -> None:
        self._steer("save")

    # driving the fake
    def steps(self, n: int, *, t0: float = 1000.0, dt: float = 0.5) -> None:
        self.status = "running"
        for _ in range(n):
            self.step += 1
            self.history.record(
                StepEnd(
                    step=self.step,
                    epoch=self.step / 50,
                    loss=2.0 / (1 + 0.05 * self.step),
                    lr=1e-3,
                    samples_per_s=64.0,
                    total_steps=self.total_steps,
                    time=t0 + dt * self.step,
                )
            )

    def hold(self) -> None:
        """The training loop reached the step boundary of a requested pause."""
        self.status = "paused"

    def end(self, status: str, error: str | None = None) -> None:
        self.status, self.error = status, error
        self.history.record(TrainEnd(status=status, error=error, step=self.step))  # type: ignore[arg-type]


def decode(content: dict[str, Any], buffers: list[bytes]) -> dict[str, list[float]]:
    out = {}
    for name, buf in zip(content["cols"], buffers):
        arr = array(dict(COLUMNS)[name])
        arr.frombytes(buf)
        out[name] = list(arr)
    return out


class Client:
    """A reference front end following the protocol of widgets/run_panel.js: keep what is new,
    drop what it holds, ask again on a gap."""

    def __init__(self, tap: WireTap, drop: float = 0.0, seed: int = 0) -> None:
        self.tap, self.drop, self.rng = tap, drop, random.Random(seed)
        self.cursor = len(tap.messages)
        self.steps: list[float] = []
        self.loss: list[float] = []
        self.evals: list[list[Any]] = []
        self.pending = False
        self.syncs = 0

    def sync(self) -> None:
        if not self.pending:
            self.pending, self.syncs = True, self.syncs + 1
            self.tap.from_front_end(
                {"type": "sync", "have": len(self.steps), "have_evals": len(self.evals)}
            )

    def pump(self) -> None:
        while self.cursor < len(self.tap.messages):
            data, buffers = self.tap.messages[self.cursor]
            self.cursor += 1
            if data.get("method") == "custom":
                self.receive(data["content"], buffers)
            elif data.get("method") == "update":
                state = data["state"]
                if len(self.steps) < state.get("rows", 0) or len(self.evals) < state.get(
                    "n_evals", 0
                ):
                    self.sync()

    def receive(self, msg: dict[str, Any], buffers: list[bytes]) -> None:
        if not msg.get("reply") and self.rng.random() < self.drop:
            return  # lost on the way (e.g. sent before this view's listener existed)
        if msg.get("reply"):
            self.pending = False
        cols = decode(msg, buffers)
        gap = msg["start"] > len(self.steps) or msg["evals_start"] > len(self.evals)
        skip = len(self.steps) - msg["start"]
        if 0 <= skip < msg["n"]:
            self.steps += cols["step"][skip:]
            self.loss += cols["loss"][skip:]
        eskip = len(self.evals) - msg["evals_start"]
        if 0 <= eskip < len(msg["evals"]):
            self.evals += msg["evals"][eskip:]
        if gap:
            self.sync()


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def run() -> Run:
    return Run(total=400)


def test_history_replays_then_streams_without_loss_or_duplicates(run: Run) -> None:
    run.steps(250)
    run.history.record(EvalEnd(step=100, metrics={"loss": 0.9, "accuracy": 0.61}))
    panel = RunPanel(run, interval=3600)  # the test flushes by hand
    tap = WireTap(panel)
    first = Client(tap)
    first.sync()
    first.pump()
    assert first.steps == [float(s) for s in run.history.column("step")]
    assert first.evals == [[100, {"loss": 0.9, "accuracy": 0.61}]]
    lossy = Client(tap, drop=0.4, seed=3)  # a view whose messages often get lost
    lossy.sync()
    for i in range(60):
        run.steps(random.Random(i).randint(0, 7))
        if i % 10 == 0:
            run.history.record(EvalEnd(step=run.step, metrics={"loss": 1.0 / (i + 1)}))
        panel.flush()
        first.pump()
        lossy.pump()
    run.end("finished")
    panel.flush()
    late = Client(tap)  # opened after the end: the whole history, once
    late.sync()
    for client in (first, lossy, late):
        client.pump()
        assert client.steps == [float(s) for s in run.history.column("step")]
        assert client.loss == pytest.approx(run.history.column("loss"), rel=1e-6)
        assert [e[0] for e in client.evals] == [e.step for e in run.history.evals]
    assert first.syncs == 1  # a view that lost nothing never asked twice
    assert lossy.syncs > 1


def test_one_update_costs_the_same_at_100_and_100000_rows() -> None:
    sizes = []
    for n in (100, 100_000):
        fake = Run(total=200_000)
        fake.steps(n)
        panel = RunPanel(fake, interval=3600)
        tap = WireTap(panel)
        fake.steps(5)
        panel.flush()
        (delta,) = tap.custom()
        assert delta[0]["start"] == n and delta[0]["n"] == 5
        sizes.append((sum(map(len, delta[1])), tap.total_bytes()))
        panel.close()
    (buf_a, all_a), (buf_b, all_b) = sizes
    assert buf_a == buf_b == 5 * 20  # 5 rows x (8 + 3 * 4) bytes
    assert abs(all_a - all_b) <= 24  # only the digits of the numbers differ


def test_updates_are_throttled_and_sent_off_the_training_thread(run: Run) -> None:
    panel = RunPanel(run, interval=0.1)
    tap = WireTap(panel)
    senders: set[str] = set()
    record = tap._publish

    def spy(*args: Any, **kwargs: Any) -> None:
        senders.add(threading.current_thread().name)
        record(*args, **kwargs)

    panel.comm.publish_msg = spy
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        run.steps(1)  # as fast as the loop goes: thousands of steps a second
    elapsed = time.monotonic() - start
    run.end("finished")
    wait_for(lambda: panel._thread is None, what="the panel thread to end with the run")
    deltas = [c for c, _ in tap.custom()]
    assert len(run.history) > 500
    assert len(deltas) <= elapsed / 0.1 + 3  # at most ~10 a second
    assert sum(d["n"] for d in deltas) == len(run.history)  # batched, nothing lost
    assert threading.main_thread().name not in senders


def test_panel_shows_the_run_state(run: Run) -> None:
    panel = RunPanel(run, interval=3600)
    assert (panel.status, panel.step, panel.total_steps, panel.eta_s) == ("pending", 0, 400, -1)
    assert (panel.title, panel.device, panel.metric) == ("tiny-bert", "cpu", "f1")
    run.steps(40)  # 0.5 s a step
    run.history.record(EvalEnd(step=40, metrics={"loss": 0.5, "f1": 0.7}))
    run.history.record(Saved(step=40, path="/tmp/labkit-fake/checkpoint-40"))
    panel.flush()
    assert (panel.status, panel.step, panel.rows, panel.n_evals) == ("running", 40, 40, 1)
    assert panel.epoch == pytest.approx(0.8) and panel.samples_per_s == 64.0
    assert panel.eta_s == pytest.approx((400 - 40) * 0.5)
    assert panel.metrics == {"loss": 0.5, "f1": 0.7}
    assert panel.checkpoints == ["/tmp/labkit-fake/checkpoint-40"]
    assert panel.gpu_memory == "" and panel.error == ""
    run.end("failed", error="RuntimeError: <b>boom</b>")
    panel.flush()
    assert panel.status == "failed" and panel.error == "RuntimeError: <b>boom</b>"
    assert panel.eta_s == -1


def test_the_panel_and_the_console_show_the_same_eta(run: Run) -> None:
    import io

    out = io.StringIO()
    run.history.subscribe(ConsoleProgress(out, history=run.history))
    panel = RunPanel(run, interval=3600)
    run.steps(40, dt=0.75)  # 40 of 400 steps, 0.75 s each: 4:30 left
    panel.flush()
    assert panel.eta_s == pytest.approx(run.history.eta()) == pytest.approx(360 * 0.75)
    assert out.getvalue().splitlines()[-1].endswith("eta 04:30")  # the console at step 40
    run.status = "paused"
    panel.flush()
    assert panel.eta_s == -1  # no ETA while held
    panel.close()


def test_the_front_end_learns_the_end_from_the_kernel(run: Run) -> None:
    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    run.steps(3)
    panel.flush()
    assert not panel.ended
    run.end("out_of_memory", error="the machine ran out of memory")
    panel.flush()
    assert panel.ended and {"status": "out_of_memory", "ended": True} in [
        {k: v for k, v in s.items() if k in ("status", "ended")} for s in tap.states()
    ]
    js = (WIDGETS / "run_panel.js").read_text()
    assert not [s for s in ENDED_STATUSES if f'"{s}"' in js]  # no second list in the JS


@pytest.mark.parametrize("status", ["diverged", "out_of_memory"])
def test_a_bad_end_shows_its_message(run: Run, status: str) -> None:
    panel = RunPanel(run, interval=0.05)
    run.steps(3)
    run.end(status, error=f"{status}: lower the learning rate")
    wait_for(lambda: panel.status == status and panel._thread is None, what=status)
    assert panel.error == f"{status}: lower the learning rate"


def test_buttons_steer_the_run_and_never_raise(run: Run) -> None:
    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    run.steps(5)

    def press(action: str) -> str:
        tap.from_front_end({"type": "control", "action": action})
        return panel.notice

    assert press("pause") == "holding at the next step" and run.status == "pausing"
    run.hold()
    assert "checkpoint" in press("save")  # save while paused
    assert press("resume") == "" and run.status == "running"  # the badge says it
    assert "stopping" in press("stop")
    assert "stopping" in press("stop")  # twice: asked again, harmless
    assert run.calls == ["pause", "save", "resume", "stop", "stop"]
    run.end("stopped")
    for action in ("pause", "stop", "save", "resume"):  # after the end
        assert "already ended (stopped)" in press(action)
    assert run.calls == ["pause", "save", "resume", "stop", "stop"]
    assert "unknown action" in press("explode")
    tap.from_front_end({"type": "nonsense"})
    tap.from_front_end("not even a dict")  # type: ignore[arg-type]


def test_the_badge_and_the_notice_agree_from_the_press_to_the_end(run: Run) -> None:
    """Stop: "stopping…" at once, no ETA, the notice stays until "stopped" replaces it; Pause:
    "pausing…" until held, then "paused" and the notice goes; Save: answered by the save."""
    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    run.steps(10)
    panel.flush()
    assert panel.eta_s > 0 and panel.status_label == "running"
    tap.from_front_end({"type": "control", "action": "pause"})
    assert (panel.status, panel.status_label) == ("pausing", "pausing…")
    assert panel.notice == "holding at the next step" and panel.eta_s == -1
    run.hold()
    panel.flush()
    assert (panel.status_label, panel.notice) == ("paused", "")  # held: nothing pending
    tap.from_front_end({"type": "control", "action": "save"})
    assert panel.notice.startswith("checkpoint requested")
    panel.flush()
    assert panel.notice.startswith("checkpoint requested")  # not saved yet
    run.history.record(Saved(step=10, path="/tmp/labkit-fake/checkpoint-10"))
    panel.flush()
    assert panel.notice == "saved checkpoint-10"
    tap.from_front_end({"type": "control", "action": "resume"})
    run.steps(2)
    tap.from_front_end({"type": "control", "action": "stop"})
    # one state message carries both the badge's words and the answer
    last = tap.states()[-1]
    assert last.get("status_label") == "stopping…" and "stopping" in last.get("notice", "")
    assert panel.eta_s == -1
    panel.flush()
    assert panel.status_label == "stopping…" and "no evaluation" in panel.notice
    run.end("stopped")
    panel.flush()
    assert (panel.status_label, panel.notice, panel.ended) == ("stopped", "", True)
    panel.close()


def test_a_failing_control_is_reported_not_raised() -> None:
    fake = Run(fail_on="save")
    panel = RunPanel(fake, interval=3600)
    tap = WireTap(panel)
    fake.steps(2)
    tap.from_front_end({"type": "control", "action": "save"})
    assert panel.notice == "save failed: RuntimeError: save broke"


def test_view_settings_sync_from_the_front_end(run: Run) -> None:
    chart = LossChart(run.history, interval=3600)
    tap = WireTap(chart)
    tap.set_from_front_end(smoothing=0.9, log_scale=True, window=100, metric="accuracy")
    assert (chart.smoothing, chart.log_scale, chart.window, chart.metric) == (
        0.9,
        True,
        100,
        "accuracy",
    )
    tap.set_from_front_end(smoothing=5.0, window=-3)
    assert chart.smoothing == 0.999 and chart.window == 0
    chart.smoothing = 0.5  # and from Python to the views
    assert {"smoothing": 0.5} in tap.states()


def test_a_chart_follows_a_bare_history() -> None:
    history = MetricHistory()
    chart = LossChart(history, interval=0.02)
    tap = WireTap(chart)
    client = Client(tap)
    client.sync()
    for i in range(30):
        history.record(StepEnd(step=i + 1, epoch=0.0, loss=1.0, lr=0.1))
    history.record(TrainEnd(status="finished"))
    wait_for(lambda: chart._thread is None, what="the chart to finish")
    client.pump()
    assert client.steps == [float(i + 1) for i in range(30)]
    finished = LossChart(history)  # a finished history needs no thread
    assert finished._thread is None and finished.rows == 30


def test_each_run_has_one_panel_shared_by_its_displays(tmp_path: Path) -> None:
    import labkit.ui
    from labkit.train.config import FinetuneConfig
    from labkit.train.run import Run as RealRun

    model = SimpleNamespace(name="tiny-bert", device="cpu")
    run = RealRun(model, FinetuneConfig(), str(tmp_path))  # type: ignore[arg-type]
    panel = view_for_run(run)
    assert labkit.ui.view_for(run) is panel  # found by isinstance, not by class name
    assert labkit.ui.view_for(Run()) is None  # a look-alike class is not a labkit.Run
    bundle = labkit.ui.widget_bundle(run)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    panel.close()
    again = view_for_run(run)
    assert again is not panel and again.comm is not None
    again.close()


def test_two_runs_of_one_model_get_panels_with_different_titles(tmp_path: Path) -> None:
    """Notebook 02 compares LoRA and full finetuning: both panels once read the model's name."""
    from labkit.train.config import FinetuneConfig
    from labkit.train.run import Run as RealRun

    model = SimpleNamespace(name="/models/all-MiniLM-L6-v2", device="cpu", lora=False)
    lora = RealRun(model, FinetuneConfig(lora=True), str(tmp_path / "a"))  # type: ignore[arg-type]
    full = RealRun(model, FinetuneConfig(), str(tmp_path / "b"))  # type: ignore[arg-type]
    mine = RealRun(model, FinetuneConfig(name="<b>mine</b>"), str(tmp_path / "c"))  # type: ignore[arg-type]
    panels = [RunPanel(r, interval=3600) for r in (lora, full, mine)]
    try:
        titles = [p.title for p in panels]
        assert titles == [
            "all-MiniLM-L6-v2 · LoRA r=8",
            "all-MiniLM-L6-v2 · full finetuning",
            "<b>mine</b>",  # as text: the front end sets textContent
        ]
        assert [p.title for p in panels] == [r.name for r in (lora, full, mine)]
    finally:
        for p in panels:
            p.close()


def test_nan_losses_travel_as_nan(run: Run) -> None:
    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    run.status = "running"
    run.history.record(StepEnd(step=1, epoch=0, loss=float("nan"), lr=0.1))
    panel.flush()
    ((content, buffers),) = tap.custom()
    loss = decode(content, buffers)["loss"]
    assert loss[0] != loss[0]  # NaN: a gap in the chart, not a zero


def test_a_distillations_loss_parts_reach_the_view(run: Run) -> None:
    """The facts line shows a composite loss's parts (a distillation's soft and hard loss) as
    the last step reported them; a plain finetune has none."""
    panel = RunPanel(run, interval=3600)
    run.status = "running"
    run.history.record(StepEnd(step=1, epoch=0, loss=0.7, lr=0.1))
    panel.flush()
    assert panel.loss_parts == {}
    parts = {"soft_loss": 0.25, "hard_loss": float("nan")}
    run.history.record(StepEnd(step=2, epoch=0, loss=0.6, lr=0.1, losses=parts))
    panel.flush()
    assert panel.loss_parts == {"soft_loss": 0.25}  # a NaN part is left out, not sent as null
    run.history.record(
        StepEnd(step=3, epoch=0, loss=0.5, lr=0.1, losses={"soft_loss": 0.2, "hard_loss": 0.9})
    )
    panel.flush()
    assert panel.loss_parts == {"soft_loss": 0.2, "hard_loss": 0.9}
    panel.close()


def test_front_end_module_is_self_contained_and_escapes() -> None:
    js = (WIDGETS / "run_panel.js").read_text()
    assert "import " not in js.replace("import(", "")  # blob: URLs cannot resolve imports
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in js


@pytest.mark.ipywidgets7
def test_overlay_run_imports_ipywidgets_7() -> None:
    """The Colab overlay run (``make test-ipywidgets7`` passes ``--ipywidgets7``) really tests
    ipywidgets 7.7.1 and anywidget 0.9, not the venv's versions (deselected in other runs)."""
    import anywidget
    import ipywidgets

    assert ipywidgets.__version__ == "7.7.1", ipywidgets.__file__
    assert anywidget.__version__.startswith("0.9."), anywidget.__file__


# -- a causal LM's sample generations ----------------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>"


def test_samples_stream_as_text_and_replay_to_any_view(run: Run) -> None:
    from labkit.events import Samples

    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    run.steps(10)
    run.history.record(EvalEnd(step=10, metrics={"loss": 1.2}))
    panel.flush()
    assert panel.n_samples == 0
    tap.clear()
    # the samples come seconds after their evaluation, with no new step: an update of its own
    run.history.record(Samples(step=10, prompts=(HOSTILE, "q"), texts=("</script><b>x</b>", "")))
    panel.flush()
    ((content, _),) = tap.custom()
    assert (content["n"], content["samples_start"], content["evals"]) == (0, 0, [])
    # sent as the text itself (JSON), never as markup: the view sets textContent
    assert content["samples"] == [
        [10, [HOSTILE, "q"], ["</script><b>x</b>", ""], "</script><b>x</b>"]
    ]
    assert panel.n_samples == 1 and {"n_samples": 1} in tap.states()
    panel.flush()
    assert len(tap.custom()) == 1  # nothing new: nothing sent
    run.steps(10)
    run.history.record(Samples(step=20, prompts=(HOSTILE, "q"), texts=("positive", "4")))
    panel.flush()
    assert tap.custom()[-1][0]["samples_start"] == 1
    assert [s[0] for s in tap.custom()[-1][0]["samples"]] == [20]
    # a view opened later (or one that lost a message) asks for what it lacks
    tap.clear()
    tap.from_front_end({"type": "sync", "have": 0, "have_evals": 0})  # an older view: no key
    ((reply, _),) = tap.custom()
    assert reply["reply"] and [s[0] for s in reply["samples"]] == [10, 20]
    tap.from_front_end({"type": "sync", "have": 20, "have_evals": 1, "have_samples": 1})
    reply = tap.custom()[-1][0]
    assert (reply["samples_start"], [s[0] for s in reply["samples"]]) == (1, [20])
    panel.close()


def test_long_samples_are_cut_before_they_travel(run: Run) -> None:
    from labkit.events import Samples

    panel = RunPanel(run, interval=3600)
    tap = WireTap(panel)
    long = "word " * 2000
    run.history.record(Samples(step=1, prompts=(long,), texts=(long,)))
    panel.flush()
    ((content, _),) = tap.custom()
    ((_, prompts, texts, answer),) = content["samples"]
    assert all("…" in x and len(x) < 500 for x in (*prompts, *texts, answer))
    assert len(json.dumps(content)) < 2_000
    panel.close()
