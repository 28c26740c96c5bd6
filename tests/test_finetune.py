"""Finetuning mechanics on tiny config-built models: run control, resume, faults, config."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import labkit
from labkit import ConfigError, StepEnd, TrainingError
from labkit.events import EvalEnd, Saved, TrainEnd

LABELS = ["negative", "positive"]


def _poll(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


class OnStep:
    """Calls ``action(control)`` when StepEnd ``step`` arrives; records every event."""

    def __init__(self, step: int | None = None, action=None) -> None:
        self.step, self.action, self.events = step, action, []

    def on_event(self, event, control) -> None:
        self.events.append(event)
        if isinstance(event, StepEnd) and event.step == self.step and self.action:
            self.action(control)


def _go(model, data, tmp_path: Path, name: str = "run", **kw):
    kw.setdefault("max_steps", 8)
    kw.setdefault("batch_size", 8)
    kw.setdefault("lr", 1e-3)
    kw.setdefault("progress", False)
    return labkit.finetune(model, data, output_dir=tmp_path / name, **kw)


def test_finetune_returns_at_once_and_records_every_event(tiny_model, toy_data, tmp_path):
    seen: list[object] = []
    gate = threading.Event()

    class Hold:
        def on_event(self, event, control):
            if isinstance(event, StepEnd) and event.step == 1:
                gate.wait(30)  # hold the training thread until the test has looked

    run = _go(tiny_model, toy_data, tmp_path, callbacks=[Hold()], eval_every=4, save_every=4)
    assert run.status in ("pending", "running")
    assert tiny_model.is_training
    unsubscribe = run.history.subscribe(seen.append)
    gate.set()
    run.wait()
    unsubscribe()
    assert run.status == "finished" and run.error is None
    assert not tiny_model.is_training
    assert run.step == run.total_steps == 8
    assert run.history.column("step") == list(range(1, 9))
    assert all(e.total_steps == 8 for e in seen if isinstance(e, StepEnd))
    kinds = {type(e) for e in seen}
    assert {StepEnd, EvalEnd, Saved, TrainEnd} <= kinds
    assert [e.step for e in run.history.evals] == [4, 8]
    assert set(run.metrics) == {"loss", "accuracy", "precision", "recall", "f1"}
    assert run.evaluation is not None and run.evaluation.confusion
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-4", "checkpoint-8"]
    assert run.history.end.status == "finished"
    for action in (run.stop, run.pause, run.resume, run.save):
        action()  # after the end: no-ops, never raise
    assert run.wait() is run


def test_stop_takes_effect_within_one_step_and_saves(tiny_model, toy_data, tmp_path):
    cb = OnStep(3, lambda c: c.stop())
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb], max_steps=50).wait()
    assert run.status == "stopped"
    assert run.step == 3
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-3"]


def test_stop_from_another_thread(tiny_model, toy_data, tmp_path):
    gate = threading.Event()
    at_stop: list[int] = []
    cb = OnStep(2, lambda c: gate.wait(30))
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb], max_steps=200)
    _poll(lambda: run.step >= 2)
    at_stop.append(run.step)
    run.stop()
    gate.set()
    run.wait()
    assert run.status == "stopped"
    assert run.step <= at_stop[0] + 1


def test_stop_says_stopping_at_once_and_runs_no_evaluation(tiny_model, toy_data, tmp_path):
    """The user's Stop: "stopping" before the step boundary, then the checkpoint and the end;
    the epoch-end evaluation that a mid-epoch stop used to start (20-35 s on the demo model)
    does not run."""
    gate = threading.Event()
    cb = OnStep(2, lambda c: gate.wait(30))
    # 32 toy rows, batch 4: 8 steps an epoch, evaluated at each epoch's end
    run = _go(
        tiny_model, toy_data, tmp_path, callbacks=[cb], max_steps=None, epochs=3, batch_size=4
    )
    _poll(lambda: run.step >= 2)
    run.stop()
    assert run.status == "stopping" and not run.done  # the training thread is still held
    gate.set()
    run.wait()
    assert run.status == "stopped" and run.step == 2
    assert run.history.evals == [] and run.evaluation is None
    assert not any(isinstance(e, EvalEnd) for e in cb.events)
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-2"]


def test_pause_says_pausing_until_held_and_resume_says_running(tiny_model, toy_data, tmp_path):
    gate = threading.Event()
    cb = OnStep(2, lambda c: gate.wait(30))
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb], max_steps=50)
    _poll(lambda: run.step >= 2)
    run.pause()
    assert run.status == "pausing"
    gate.set()
    _poll(lambda: run.status == "paused")
    run.resume()
    assert run.status == "running"
    run.pause()
    _poll(lambda: run.status == "paused")
    run.stop()
    assert run.status == "stopping"
    run.wait(60)
    assert run.status == "stopped"


def test_pause_save_while_paused_then_resume(tiny_model, toy_data, tmp_path):
    cb = OnStep(2, lambda c: c.pause())
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb])
    _poll(lambda: run.status == "paused")
    assert run.step == 2 and run.checkpoints == []
    run.save()
    _poll(lambda: len(run.checkpoints) == 1)
    assert Path(run.checkpoints[0]).name == "checkpoint-2"
    assert run.status == "paused" and run.step == 2  # saved without training on
    # history (behind run.checkpoints) records before callbacks hear of it: wait for both
    _poll(lambda: any(isinstance(e, Saved) and e.step == 2 for e in cb.events))
    run.resume()
    run.wait()
    assert run.status == "finished" and run.step == 8
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-2", "checkpoint-8"]


def test_stop_while_paused_stops(tiny_model, toy_data, tmp_path):
    cb = OnStep(1, lambda c: c.pause())
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb])
    _poll(lambda: run.status == "paused")
    run.stop()
    run.wait(60)
    assert run.status == "stopped" and run.step == 1
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-1"]


# 58 training rows in batches of 16: 4 steps per epoch, so cut=5 resumes inside epoch 2
@pytest.mark.slow
@pytest.mark.parametrize(("lora", "cut"), [(False, 5), (True, 2)])
def test_resume_continues_with_identical_losses(tiny_dirs, toy_data, tmp_path, lora, cut):
    def fresh():
        return labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")

    common = {"lora": lora, "max_steps": 7, "batch_size": 16}
    full = _go(fresh(), toy_data, tmp_path, "full", **common).wait()
    part = _go(
        fresh(), toy_data, tmp_path, "part", **common, callbacks=[OnStep(cut, lambda c: c.stop())]
    ).wait()
    assert part.step == cut
    rest = _go(
        fresh(), toy_data, tmp_path, "rest", **common, resume_from=part.checkpoints[-1]
    ).wait()
    assert rest.status == "finished"
    assert rest.history.column("step") == list(range(cut + 1, 8))
    expected = full.history.column("loss")[cut:]
    assert rest.history.column("loss") == pytest.approx(expected, abs=1e-5)
    assert rest.history.column("lr") == pytest.approx(full.history.column("lr")[cut:], abs=1e-12)


def test_resume_from_a_run_folder_takes_its_latest_checkpoint(tiny_dirs, toy_data, tmp_path):
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    first = _go(model, toy_data, tmp_path, "r", max_steps=4, save_every=2).wait()
    assert len(first.checkpoints) == 2
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    again = labkit.finetune(
        model,
        toy_data,
        max_steps=6,
        batch_size=8,
        lr=1e-3,
        progress=False,
        resume_from=first.output_dir,
    )
    again.wait()
    assert again.output_dir == first.output_dir
    assert again.history.column("step") == [5, 6]


def test_nan_loss_ends_as_diverged_and_keeps_last_good_checkpoint(tiny_model, toy_data, tmp_path):
    poison = threading.Event()

    def nan_logits(module, inputs, output):
        return output * float("nan") if poison.is_set() else output

    handle = tiny_model.hf.classifier.register_forward_hook(nan_logits)
    try:
        cb = OnStep(4, lambda c: poison.set())
        run = _go(tiny_model, toy_data, tmp_path, callbacks=[cb], save_every=2, max_steps=20).wait()
    finally:
        handle.remove()
    assert run.status == "diverged"
    assert "step 5" in run.error and "lower learning rate" in run.error
    assert [Path(p).name for p in run.checkpoints] == ["checkpoint-2", "checkpoint-4"]
    assert "checkpoint-4" in run.error
    assert run.history.end.status == "diverged"
    assert run.history.column("loss")[-1] is None  # recorded, as JSON-safe None
    reloaded = labkit.load_model(run.checkpoints[-1], device="cpu")
    assert torch.isfinite(reloaded.logits(["a great film"])).all()
    # the model in memory is back at the last good checkpoint, not left with NaN weights
    assert "was reset to the last good checkpoint" in run.error
    texts = ["a great film", "dull and slow"]
    assert torch.allclose(run.model.logits(texts), reloaded.logits(texts), atol=1e-6)


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 2 GB"),
        MemoryError(),
    ],
    ids=["cuda", "cpu-allocator", "MemoryError"],
)
def test_out_of_memory_ends_the_run_with_advice_and_a_usable_model(
    tiny_model, toy_data, tmp_path, error
):
    armed = threading.Event()

    def oom(module, inputs, output):
        if armed.is_set():
            raise error
        return output

    handle = tiny_model.hf.classifier.register_forward_hook(oom)
    try:
        run = _go(tiny_model, toy_data, tmp_path, callbacks=[OnStep(2, lambda c: armed.set())])
        run.wait()  # not a failure: no exception re-raised
        armed.clear()
    finally:
        handle.remove()
    assert run.status == "out_of_memory"
    assert "batch_size" in run.error and "lora=True" in run.error
    assert not tiny_model.is_training
    assert tiny_model.predict(["a great film"])[0].label in LABELS


def test_exception_in_a_callback_fails_the_run_and_wait_reraises(tiny_model, toy_data, tmp_path):
    class Boom(RuntimeError):
        pass

    def explode(control):
        raise Boom("callback broke")

    run = _go(tiny_model, toy_data, tmp_path, callbacks=[OnStep(2, explode)])
    with pytest.raises(Boom, match="callback broke"):
        run.wait()
    assert run.status == "failed"
    assert "callback broke" in run.error
    assert not tiny_model.is_training
    with pytest.raises(Boom):
        run.wait()


def test_a_model_already_training_refuses_a_second_run(tiny_model, toy_data, tmp_path):
    run = _go(tiny_model, toy_data, tmp_path, callbacks=[OnStep(1, lambda c: c.pause())])
    _poll(lambda: run.status == "paused")
    with pytest.raises(TrainingError, match="already training"):
        _go(tiny_model, toy_data, tmp_path, "second")
    run.stop()
    run.wait()
    assert not tiny_model.is_training
    again = _go(tiny_model, toy_data, tmp_path, "third", max_steps=1).wait()
    assert again.status == "finished"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lr": 0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"max_steps": 0}, "max_steps"),
        ({"metric": "bleu", "early_stopping": 2}, "metric"),
        ({"eval_every": 0}, "eval_every"),
        ({"warmup": 1.5}, "warmup"),
        ({"schedule": "sawtooth"}, "schedule"),
        ({"lora": "yes"}, "lora"),
        ({"not_an_option": 1}, "not_an_option"),
        ({"logging_steps": 50}, "logging_steps"),
        ({"name": ""}, "name must be a non-empty string.*got ''"),
        ({"name": "  "}, "name"),
        ({"name": 3}, "name.*got 3"),
    ],
)
def test_invalid_config_fails_before_training_naming_the_field(
    tiny_model, toy_data, tmp_path, kwargs, field
):
    with pytest.raises(ConfigError, match=field):
        labkit.finetune(tiny_model, toy_data, output_dir=tmp_path, **kwargs)
    assert not tiny_model.is_training
    assert not any(tmp_path.iterdir())


def test_a_second_mixed_precision_run_on_the_same_model_computes_in_bf16(
    tiny_model, toy_data, tmp_path
):
    # accelerate marks a model it has prepared and skips it next time: with its autocast
    # wrapper gone but the mark left, a second bf16 run would silently train in fp32
    seen: list[torch.dtype] = []
    hook = tiny_model.hf.classifier.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        for name in ("first", "second"):
            seen.clear()
            run = _go(tiny_model, toy_data, tmp_path, name, precision="bf16", max_steps=3).wait()
            assert run.status == "finished", run.error
            assert seen and set(seen) == {torch.bfloat16}, (name, set(seen))
        seen.clear()
        tiny_model.predict(["great fun"])
        assert seen == [torch.float32]  # and inference afterwards is float32 again
    finally:
        hook.remove()


def test_fp16_autocast_over_fp16_weights_is_refused_before_training(tiny_dirs, toy_data, tmp_path):
    # the loss scaler cannot unscale float16 gradients: transformers would fail at the first
    # optimizer step, after the run had started; labkit says what to load instead
    half = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu", dtype="float16")
    with pytest.raises(ConfigError, match=r"dtype='float32'.*precision='fp32'"):
        labkit.finetune(half, toy_data, precision="fp16", output_dir=tmp_path)
    assert not half.is_training
    assert not any(tmp_path.iterdir())
    assert half.hf.__class__.__name__ == "BertForSequenceClassification"  # no adapter attached


def test_after_mixed_precision_the_model_computes_what_it_saved(tiny_model, toy_data, tmp_path):
    # accelerate wraps forward in bf16 autocast for the run; left on, every later prediction
    # and attribution would run in bf16 and disagree with the float32 checkpoint
    texts = ["great fun", "the worst film of the year", "dull"]
    forward = type(tiny_model.hf).forward
    run = _go(tiny_model, toy_data, tmp_path, precision="bf16").wait()
    assert run.status == "finished", run.error
    assert "forward" not in vars(tiny_model.hf) and tiny_model.hf.forward.__func__ is forward
    saved = labkit.load_model(run.checkpoints[-1], device="cpu")
    torch.testing.assert_close(tiny_model.logits(texts), saved.logits(texts), rtol=0, atol=1e-6)


def test_config_is_keyword_only_with_lr_defaults():
    with pytest.raises(TypeError):
        labkit.FinetuneConfig(True)  # type: ignore[misc]
    assert labkit.FinetuneConfig().learning_rate < labkit.FinetuneConfig(lora=True).learning_rate
    assert labkit.FinetuneConfig(lr=3e-4).learning_rate == 3e-4


def test_bad_callback_and_bad_resume_are_config_errors(tiny_model, toy_data, tmp_path):
    with pytest.raises(ConfigError, match=r"callbacks\[0\]"):
        labkit.finetune(tiny_model, toy_data, callbacks=[object()], output_dir=tmp_path)
    with pytest.raises(ConfigError, match="resume_from"):
        labkit.finetune(tiny_model, toy_data, resume_from=tmp_path / "nope")
    assert not tiny_model.is_training


def test_early_stopping_on_a_chosen_metric(tiny_model, toy_data, tmp_path):
    run = _go(
        tiny_model,
        toy_data,
        tmp_path,
        lr=1e-12,
        max_steps=40,
        eval_every=1,
        early_stopping=2,
        metric="accuracy",
    ).wait()
    assert run.status == "finished" and run.early_stopped
    assert run.step == 3  # eval 1 sets the best; evals 2 and 3 do not improve on it
    assert run.best_checkpoint == run.checkpoints[-1]


def test_best_checkpoint_follows_the_metric(tiny_model, toy_data, tmp_path):
    run = _go(tiny_model, toy_data, tmp_path, max_steps=6, eval_every=2, save_every=2).wait()
    losses = {e.step: e.metrics["loss"] for e in run.history.evals}
    best_step = min(losses, key=losses.get)
    assert Path(run.best_checkpoint).name == f"checkpoint-{best_step}"


def test_runs_are_named_by_what_distinguishes_them():
    from peft import AdaLoraConfig, IA3Config, LoraConfig

    from labkit.train.run import Run

    def name(lora=False, model_name="/models/all-MiniLM-L6-v2/", has_adapter=False, **kw) -> str:
        model = SimpleNamespace(name=model_name, lora=has_adapter)
        return Run(model, labkit.FinetuneConfig(lora=lora, **kw), "out").name  # type: ignore[arg-type]

    assert name() == "all-MiniLM-L6-v2 · full finetuning"
    assert name(True) == "all-MiniLM-L6-v2 · LoRA r=8"  # lora_config's default rank
    assert name(LoraConfig(r=4)) == "all-MiniLM-L6-v2 · LoRA r=4"
    assert name(AdaLoraConfig(total_step=10)) == "all-MiniLM-L6-v2 · AdaLoRA"
    assert name(IA3Config()) == "all-MiniLM-L6-v2 · IA3"
    assert name(has_adapter=True) == "all-MiniLM-L6-v2 · LoRA adapter"  # keeps training it
    assert name(model_name="distilbert-base-uncased") == "distilbert-base-uncased · full finetuning"
    assert name(True, name="my run") == "my run"


def test_a_named_run_and_its_elapsed_seconds(tiny_model, toy_data, tmp_path):
    before = time.time()
    run = labkit.finetune(
        tiny_model,
        toy_data,
        max_steps=3,
        batch_size=8,
        progress=False,
        name="baseline",
        output_dir=tmp_path / "run",
    ).wait()
    assert run.status == "finished", run.error
    assert run.name == "baseline" and "baseline" in repr(run)
    history = run.history
    assert history.start_time is not None and before <= history.start_time <= time.time()
    assert all(before <= t <= time.time() for t in history.column("time"))  # the wall clock
    elapsed = history.column("elapsed")
    assert 0 < elapsed[0] <= elapsed[-1] < 600  # from the run's start: the first step counts
    assert elapsed[-1] == pytest.approx(history.column("time")[-1] - history.start_time)


def test_a_stop_from_a_callback_says_stopping_until_the_end(tiny_model, toy_data, tmp_path):
    """A callback's control.stop() does not pass through Run.stop: the run says stopping all
    the same while its checkpoint is written."""
    gate, seen, box = threading.Event(), [], {}

    class StopAtTwo:
        def on_event(self, event, control):
            if isinstance(event, StepEnd) and event.step == 1:
                gate.wait(30)
            if isinstance(event, StepEnd) and event.step == 2:
                control.stop()
            if isinstance(event, Saved):
                seen.append(box["run"].status)

    run = _go(tiny_model, toy_data, tmp_path, callbacks=[StopAtTwo()], max_steps=50)
    box["run"] = run
    gate.set()
    run.wait(60)
    assert seen == ["stopping"] and run.status == "stopped"


def test_the_logged_loss_does_not_grow_with_gradient_accumulation(tiny_dirs, toy_data, tmp_path):
    """A classifier's loss is a batch mean: with grad_accum=k the step's loss is still the mean
    cross-entropy (transformers 5 skipped its division by k for models whose forward takes
    **kwargs, logging k times the loss and stepping with k times the gradient)."""
    first = {}
    for k in (1, 4):
        model = labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")
        run = labkit.finetune(
            model,
            toy_data,
            max_steps=1,
            batch_size=4,
            grad_accum=k,
            lr=1e-9,
            output_dir=tmp_path / f"k{k}",
            progress=False,
        )
        run.wait()
        assert run.status == "finished", run.error
        first[k] = run.history.column("loss")[0]
    # an untrained two-label head: about ln 2 = 0.69 either way, never 4 x 0.69
    assert first[1] < 1.0 and first[4] < 1.0, first
    assert abs(first[4] - first[1]) < 0.25, first
