"""``lk.shrink`` (a student from the teacher's own layers) and ``lk.distill`` (a finetune run
whose loss mixes the teacher's soft targets with the labels), on tiny config-built models."""

from __future__ import annotations

import math
import threading

import pytest
import torch

import labkit as lk
from labkit.compress.distill import distillation_loss, kept_layers
from labkit.events import StepEnd, event_from_dict, event_to_dict
from labkit.history import MetricHistory
from tests import _tiny

LABELS = ["negative", "positive"]
ARCHES = ("bert", "distilbert", "roberta")


@pytest.fixture(scope="module")
def deep_dirs(tmp_path_factory):
    """Tiny 4-layer classifiers (bert, distilbert, roberta): a teacher with layers to drop."""
    root = tmp_path_factory.mktemp("deep")
    return {arch: _tiny.build(arch, root / arch, layers=4) for arch in ARCHES}


def _load(folder, labels=LABELS):
    return lk.load_model(folder, labels=labels, device="cpu")


def _layers(model):
    base = model.base.base_model
    return (
        base.transformer.layer if model.hf.config.model_type == "distilbert" else base.encoder.layer
    )


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- shrink ----------------------------------------------------------------------------------


def test_kept_layers_are_evenly_spaced_from_the_first():
    assert kept_layers(12, 6) == [0, 2, 4, 6, 8, 10]  # DistilBERT's one out of two
    assert kept_layers(6, 2) == [0, 3]
    assert kept_layers(6, 3) == [0, 2, 4]
    assert kept_layers(4, 4) == [0, 1, 2, 3]
    assert kept_layers(6, 1) == [0]


@pytest.mark.parametrize("arch", ARCHES)
def test_shrink_keeps_the_teachers_own_layers_embeddings_and_head(deep_dirs, arch):
    teacher = _load(deep_dirs[arch])
    before = _state(teacher.hf)
    student = lk.shrink(teacher, layers=2)

    assert student.hf.config.num_hidden_layers == 2
    assert len(_layers(student)) == 2 and len(_layers(teacher)) == 4
    for new, old in zip(_layers(student), [0, 2]):
        assert _same(_state(new), _state(_layers(teacher)[old]))
    t_state, s_state = _state(teacher.hf), _state(student.hf)
    outside = [k for k in t_state if ".layer." not in k]
    assert outside and all(torch.equal(s_state[k], t_state[k]) for k in outside)
    assert student.num_parameters < teacher.num_parameters
    assert student.labels == teacher.labels and student.device == teacher.device
    assert student.name == f"{arch} · 2 layers"
    # a copy: training the student never touches the teacher
    t_ptrs = {p.data_ptr() for p in teacher.hf.parameters()}
    assert not t_ptrs & {p.data_ptr() for p in student.hf.parameters()}
    assert _same(before, _state(teacher.hf))
    probs = [p.probs for p in student.predict(["a great movie", "dull"])]
    assert all(math.isclose(sum(p.values()), 1.0, rel_tol=1e-5) for p in probs)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_shrunk_student_saves_and_loads_back_the_same(deep_dirs, arch, tmp_path):
    student = lk.shrink(_load(deep_dirs[arch]), layers=1)
    assert student.name == f"{arch} · 1 layer"
    student.hf.save_pretrained(tmp_path)
    student.tokenizer.save_pretrained(tmp_path)
    loaded = _load(tmp_path)
    assert loaded.hf.config.num_hidden_layers == 1 and len(_layers(loaded)) == 1
    texts = ["a great movie", "the film was awful and long"]
    torch.testing.assert_close(loaded.logits(texts), student.logits(texts))


def test_shrink_refuses_what_it_cannot_shrink(deep_dirs, tiny_dirs):
    teacher = _load(deep_dirs["bert"])
    for bad in (0, 5, 2.5, True, "2"):
        with pytest.raises(lk.ConfigError, match=r"layers must be a whole number from 1 to 4"):
            lk.shrink(teacher, layers=bad)
    with pytest.raises(lk.ConfigError, match="labkit Model"):
        lk.shrink(teacher.hf, layers=2)
    gpt2 = _load(tiny_dirs["gpt2"])
    with pytest.raises(lk.InputError, match=r"'gpt2'.*shrink supports bert, roberta, distilbert"):
        lk.shrink(gpt2, layers=1)
    with pytest.warns(lk.LabkitWarning, match="nothing shrinks"):
        same = lk.shrink(teacher, layers=4)
    texts = ["a great movie"]
    torch.testing.assert_close(same.logits(texts), teacher.logits(texts))


def test_shrink_keeps_the_heads_pruned_from_a_kept_layer(deep_dirs, tmp_path):
    teacher = _load(deep_dirs["bert"])
    pruned = lk.prune_heads(teacher, heads={2: [1], 3: [0, 2]})
    student = lk.shrink(pruned, layers=2)  # keeps layers 0 and 2
    assert student.hf.config.labkit_pruned_heads == {"1": [1]}
    student.hf.save_pretrained(tmp_path)
    student.tokenizer.save_pretrained(tmp_path)
    texts = ["a great movie", "dull"]
    torch.testing.assert_close(_load(tmp_path).logits(texts), student.logits(texts))


# -- the loss --------------------------------------------------------------------------------


def test_the_distillation_loss_is_the_formula():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 3, generator=g, requires_grad=True)
    t = torch.randn(5, 3, generator=g, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1, 0])
    T, a = 3.0, 0.3
    found = distillation_loss(s, t, y, temperature=T, alpha=a)

    p_t = torch.softmax(t / T, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / T, -1))).sum(-1).mean()
    ce = -torch.log_softmax(s, -1)[torch.arange(5), y].mean()
    torch.testing.assert_close(found.soft, T * T * kl)
    torch.testing.assert_close(found.hard, ce)
    torch.testing.assert_close(found.loss, a * T * T * kl + (1 - a) * ce)
    found.loss.backward()
    assert s.grad is not None and t.grad is None  # the teacher is a constant
    same = distillation_loss(s, s.detach(), y, temperature=T, alpha=1.0)
    assert float(same.soft.detach()) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(distillation_loss(s, t, y, alpha=0.0).loss, ce)


def test_a_steps_loss_parts_round_trip_through_the_record_and_the_history():
    with_parts = StepEnd(step=2, epoch=0.5, loss=0.4, lr=1e-4, losses={"soft_loss": 0.1})
    back = event_from_dict(event_to_dict(with_parts))
    assert back == with_parts
    plain = {"kind": "StepEnd", "step": 1, "epoch": 0.1, "loss": 0.5, "lr": 1e-4}
    assert event_from_dict(plain) == StepEnd(step=1, epoch=0.1, loss=0.5, lr=1e-4)
    h = MetricHistory()
    h.record(event_from_dict(plain))
    h.record(with_parts)
    h.record(StepEnd(step=3, epoch=0.6, loss=0.3, lr=1e-4, losses={"soft_loss": float("nan")}))
    assert h.column("soft_loss") == [None, 0.1, None]
    assert len(h.steps_since(0)["soft_loss"]) == len(h) == 3
    with pytest.raises(KeyError, match="soft_loss"):
        h.column("hard_loss")


# -- distill ---------------------------------------------------------------------------------


@pytest.fixture
def teacher(tiny_dirs):
    return _load(tiny_dirs["bert"])


def _weights(model):
    return _state(model.hf)


def test_a_short_distillation_logs_both_losses_and_leaves_the_teacher_as_it_was(
    teacher, toy_data, tmp_path
):
    student = lk.shrink(teacher, layers=1)
    before = _weights(teacher)
    run = lk.distill(
        teacher,
        student,
        toy_data,
        temperature=2.0,
        alpha=0.7,
        max_steps=4,
        batch_size=8,
        eval_every=2,
        lr=1e-3,
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    assert run.name == "bert · 1 layer · distilled from bert"
    loss, soft, hard = (run.history.column(c) for c in ("loss", "soft_loss", "hard_loss"))
    assert len(loss) == len(soft) == len(hard) == 4
    for total, s, h in zip(loss, soft, hard):
        assert total == pytest.approx(0.7 * s + 0.3 * h, rel=1e-5)
    assert [e.step for e in run.history.evals] == [2, 4] and "accuracy" in run.metrics
    assert run.checkpoints and run.model is student
    assert _same(before, _weights(teacher)) and not teacher.is_training
    assert not student.is_training

    loaded = lk.load_run(run.output_dir)
    assert loaded.history.column("soft_loss") == soft
    assert loaded.history.column("hard_loss") == hard
    assert loaded.config["temperature"] == 2.0 and loaded.config["alpha"] == 0.7
    assert loaded.config["teacher"] == teacher.name


def test_alpha_zero_trains_exactly_as_finetune_does(teacher, toy_data, tmp_path):
    options = {"max_steps": 3, "batch_size": 8, "seed": 3, "progress": False}
    student = lk.shrink(teacher, layers=1)
    student_copy = lk.shrink(teacher, layers=1)
    run = lk.distill(
        teacher, student, toy_data, alpha=0.0, output_dir=tmp_path / "kd", **options
    ).wait()
    same = lk.finetune(student_copy, toy_data, output_dir=tmp_path / "ft2", **options).wait()
    assert run.status == same.status == "finished"
    assert run.history.column("loss") == pytest.approx(same.history.column("loss"), rel=1e-5)
    assert run.history.column("hard_loss") == pytest.approx(run.history.column("loss"), rel=1e-5)
    assert run.metrics["loss"] == pytest.approx(same.metrics["loss"], rel=1e-5)


def test_stop_mid_distillation_keeps_a_checkpoint(teacher, toy_data, tmp_path):
    class StopAtTwo:
        def on_event(self, event, control):
            if isinstance(event, StepEnd) and event.step == 2:
                control.stop()

    student = lk.shrink(teacher, layers=1)
    run = lk.distill(
        teacher,
        student,
        toy_data,
        max_steps=50,
        batch_size=4,
        output_dir=tmp_path / "run",
        callbacks=[StopAtTwo()],
        progress=False,
    ).wait()
    assert run.status == "stopped" and run.step == 2
    assert [c.rsplit("-", 1)[1] for c in run.checkpoints] == ["2"]
    assert run.history.column("soft_loss")[:2] == lk.load_run(run.output_dir).history.column(
        "soft_loss"
    )
    assert not teacher.is_training
    # the checkpoint resumes the distillation
    resumed = lk.distill(
        teacher,
        lk.shrink(teacher, layers=1),
        toy_data,
        max_steps=3,
        batch_size=4,
        resume_from=run.checkpoints[-1],
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    assert resumed.status == "finished" and resumed.history.column("step") == [3]
    assert resumed.history.column("soft_loss")[0] is not None


def test_a_lora_student_distills(teacher, toy_data, tmp_path):
    run = lk.distill(
        teacher,
        lk.shrink(teacher, layers=1),
        toy_data,
        lora=True,
        max_steps=2,
        batch_size=8,
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    assert run.model.lora and len(run.history.column("soft_loss")) == 2


def test_distill_refuses_bad_settings_and_keeps_both_models_free(
    teacher, tiny_dirs, toy_data, tmp_path
):
    student = lk.shrink(teacher, layers=1)
    out = {"output_dir": tmp_path / "never", "progress": False}
    for t in (0, -1.0, float("nan"), True):
        with pytest.raises(lk.ConfigError, match="temperature must be a number > 0"):
            lk.distill(teacher, student, toy_data, temperature=t, **out)
    for a in (-0.1, 1.5, None):
        with pytest.raises(lk.ConfigError, match=r"alpha must be a number in \[0, 1\]"):
            lk.distill(teacher, student, toy_data, alpha=a, **out)
    with pytest.raises(lk.ConfigError, match="max_steps"):
        lk.distill(teacher, student, toy_data, max_steps=0, **out)
    flipped = _load(tiny_dirs["bert"], labels=["positive", "negative"])
    with pytest.raises(
        lk.ConfigError,
        match=r"\['negative', 'positive'\] and the student's \['positive', 'negative'\]",
    ):
        lk.distill(teacher, flipped, toy_data, **out)
    roberta = _load(tiny_dirs["roberta"])
    with pytest.raises(lk.ConfigError, match="different tokenizers"):
        lk.distill(teacher, roberta, toy_data, **out)
    with pytest.raises(lk.ConfigError, match="the same model"):
        lk.distill(teacher, teacher, toy_data, **out)
    with pytest.raises(lk.ConfigError, match="teacher must be a labkit Model"):
        lk.distill(teacher.hf, student, toy_data, **out)
    assert not teacher.is_training and not student.is_training
    assert not (tmp_path / "never").exists()


def test_a_teacher_training_elsewhere_is_refused(teacher, toy_data, tmp_path):
    release = threading.Event()

    class Hold:
        def on_event(self, event, control):
            if isinstance(event, StepEnd):
                release.wait(60)

    student = lk.shrink(teacher, layers=1)
    busy = lk.finetune(
        teacher,
        toy_data,
        max_steps=2,
        output_dir=tmp_path / "busy",
        callbacks=[Hold()],
        progress=False,
    )
    try:
        with pytest.raises(
            lk.TrainingError, match=r"the teacher '.*bert' is training in another run"
        ):
            lk.distill(teacher, student, toy_data, output_dir=tmp_path / "kd", progress=False)
        assert not student.is_training
    finally:
        release.set()
        busy.stop()
        busy.wait()


def test_a_student_larger_than_its_teacher_is_warned_about(teacher, toy_data, tmp_path):
    small = lk.shrink(teacher, layers=1)
    with pytest.warns(lk.LabkitWarning, match=r"more parameters .* than its teacher"):
        run = lk.distill(
            small,
            teacher,
            toy_data,
            max_steps=1,
            batch_size=8,
            output_dir=tmp_path / "run",
            progress=False,
        )
    assert run.wait().status == "finished", run.error
