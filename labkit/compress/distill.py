"""Distillation: ``shrink`` makes a student from the teacher's own layers, ``distill`` trains it.

``shrink(model, layers=k)`` is DistilBERT's initialisation (Sanh et al. 2019): the student is the
teacher with ``k`` of its encoder layers, evenly spaced, and everything else (embeddings, pooler,
classifier head) copied, so distillation needs no second download and starts from weights that
already read the data.

``distill(teacher, student, data)`` is ``labkit.finetune`` with another training loss
(Hinton et al. 2015): on each batch the student learns the teacher's softened probabilities
and the true labels,

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - alpha) * CE(student, labels)

(``T^2`` keeps the soft term's gradients on the scale of the hard one's as ``T`` grows). The
run is a ``finetune`` run in every other way: the same ``Run``, panel, record, stop / pause /
resume / save and checkpoints; evaluations report the student's own validation metrics.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from labkit._errors import ConfigError, InputError, LabkitWarning, TrainingError
from labkit.train.config import FinetuneConfig

if TYPE_CHECKING:
    import torch

    from labkit.data import TextData
    from labkit.model import Model
    from labkit.train.run import Run

__all__ = ["DistillConfig", "DistillLoss", "distill", "distillation_loss", "kept_layers", "shrink"]

# the parts of the loss each step logs (run.history.column(...), the run's events.jsonl)
SOFT, HARD = "soft_loss", "hard_loss"


# -- shrink ----------------------------------------------------------------------------------


def kept_layers(total: int, layers: int) -> list[int]:
    """The teacher's layers a ``layers``-layer student keeps: ``i * total // layers`` for ``i``
    in ``0 .. layers - 1`` (DistilBERT's "one layer out of two" when ``layers = total / 2``:
    6 of 12 keeps 0, 2, ..., 10; 2 of 6 keeps 0 and 3; 3 of 6 keeps 0, 2, 4)."""
    return [i * total // layers for i in range(layers)]


def _layer_list(hf: Any) -> tuple[Any, str, Any]:
    """``(parent module, attribute, ModuleList)`` of a known family's encoder layers."""
    from labkit.compress.heads import _SPECS, FAMILIES

    family = str(getattr(hf.config, "model_type", "") or type(hf).__name__)
    spec = _SPECS.get(family)
    if spec is None:
        raise InputError(
            f"labkit does not know where the encoder layers of a {family!r} model are "
            f"({type(hf).__name__}); shrink supports {', '.join(FAMILIES)} (MiniLM checkpoints "
            "are BERTs). Distill into a smaller model of one of those families instead "
            "(lk.load_model(name, labels=teacher.labels))."
        )
    parent = hf.base_model
    *path, attr = spec[0].split(".")
    for part in path:
        parent = getattr(parent, part)
    return parent, attr, getattr(parent, attr)


def shrink(model: Model, *, layers: int) -> Model:
    """A new, smaller copy of ``model`` made from its own weights: the student of a distillation.

    The student keeps ``layers`` of the model's encoder layers, evenly spaced from the first
    (:func:`kept_layers`: layer ``i * L // layers`` for ``i = 0 .. layers - 1`` of ``L``, e.g.
    layers 0 and 3 of 6 for ``layers=2``), and copies of its embeddings, pooler and classifier
    head; its config says ``layers`` layers, so saving and loading it round-trips. Heads pruned
    from a kept layer stay pruned. ``model`` itself is not changed; a LoRA adapter on it is
    merged into the copy. The student has the same labels, tokenizer (a copy), device and dtype,
    and is named after the model, e.g. ``all-MiniLM-L6-v2 · 2 layers``.

    Families: BERT (MiniLM), RoBERTa, DistilBERT. Raises ``ConfigError`` when ``layers`` is not
    a whole number in [1, the model's layers] (equal to them: a plain copy, with a
    ``LabkitWarning``), ``InputError`` for another family or a model without float torch weights
    (an int8 or ONNX copy), ``TrainingError`` while the model trains in a run.
    """
    import torch

    from labkit.compress.heads import pruned_record
    from labkit.model import PRUNED_HEADS, Model
    from labkit.train.run import model_label

    if not isinstance(model, Model):
        raise ConfigError(
            f"model must be a labkit Model (labkit.load_model(...)), got {type(model).__name__}."
        )
    model.require_backend("shrink", gradients=True)
    model.require_task("classification", "shrink")
    _, _, teacher_layers = _layer_list(model.base)
    total = len(teacher_layers)
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= total:
        raise ConfigError(
            f"layers must be a whole number from 1 to {total} (the layers {model.name!r} has), "
            f"got {layers!r}."
        )
    if model.is_training:
        raise TrainingError(
            f"{model.name!r} is training in a run: its weights change at every step. Wait for "
            "the run (run.wait()) or stop it, then shrink the model."
        )
    if layers == total:
        warnings.warn(
            f"layers={layers} is every layer {model.name!r} has: nothing shrinks, the student is "
            f"a plain copy. Pass fewer layers (e.g. layers={max(1, total // 2)}).",
            LabkitWarning,
            stacklevel=2,
        )
    keep = kept_layers(total, layers)
    with model.weights_held():  # no dtype swap by an explanation while the weights are copied
        hf: Any = copy.deepcopy(model.hf)
    if model.lora:
        hf = hf.merge_and_unload()
    parent, attr, old = _layer_list(hf)
    kept = torch.nn.ModuleList([old[i] for i in keep])
    for new_index, layer in enumerate(kept):
        for module in layer.modules():  # a layer's own index (for a key/value cache) follows it
            if isinstance(getattr(module, "layer_idx", None), int):
                setattr(module, "layer_idx", new_index)  # noqa: B010 - any module type
    setattr(parent, attr, kept)
    config = hf.config
    config.num_hidden_layers = layers  # DistilBERT's config maps it to n_layers
    if getattr(config, PRUNED_HEADS, None):
        removed = pruned_record(config)
        setattr(
            config,
            PRUNED_HEADS,
            {str(i): list(removed[old_i]) for i, old_i in enumerate(keep) if old_i in removed},
        )
    hf.eval()
    unit = "layer" if layers == 1 else "layers"
    return Model(
        hf=hf,
        tokenizer=copy.deepcopy(model.tokenizer),
        labels=model.labels,
        device=model.device,
        name=f"{model_label(model)} · {layers} {unit}",
        max_length=model.max_length,
        task=model.task,
    )


# -- the loss --------------------------------------------------------------------------------


class DistillLoss(NamedTuple):
    """One batch's distillation loss (scalar float32 tensors, means over the batch, nats):
    ``loss = alpha * soft + (1 - alpha) * hard``, where ``soft`` is ``T^2`` times the KL
    divergence of the student's softened distribution from the teacher's and ``hard`` the
    student's cross-entropy on the labels."""

    loss: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> DistillLoss:
    """The distillation loss of a batch: logits ``[batch, labels]`` of both models, label ids
    ``[batch]``. Computed in float32 whatever the logits' dtype; gradients flow to the student's
    logits only (the teacher's are detached)."""
    import torch.nn.functional as F

    s = student_logits.float()
    t = teacher_logits.detach().float()
    soft = F.kl_div(
        F.log_softmax(s / temperature, dim=-1),
        F.log_softmax(t / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    hard = F.cross_entropy(s, labels)
    return DistillLoss(alpha * soft + (1.0 - alpha) * hard, soft, hard)


class _TeacherLoss:
    """The :class:`labkit.train.trainer.TrainingLoss` of a distillation: the student's forward
    pass, the teacher's (eval mode, no gradients, its own dtype) on the same token ids, and
    :func:`distillation_loss` of the two."""

    parts: tuple[str, ...] = (SOFT, HARD)

    def __init__(self, teacher: Model, *, temperature: float, alpha: float) -> None:
        self.teacher: Any = teacher.hf
        self.accepts = set(inspect.signature(teacher.base.forward).parameters) - {"labels"}
        self.device = teacher.device
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def __call__(self, model: Any, inputs: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        import torch

        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        if self.teacher.training:
            self.teacher.eval()
        with torch.no_grad():
            given = {k: v.to(self.device) for k, v in inputs.items() if k in self.accepts}
            teacher_logits = self.teacher(**given).logits.to(outputs.logits.device)
        found = distillation_loss(
            outputs.logits,
            teacher_logits,
            labels,
            temperature=self.temperature,
            alpha=self.alpha,
        )
        return found.loss, outputs, {SOFT: found.soft, HARD: found.hard}


# -- distill ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DistillConfig(FinetuneConfig):
    """A distillation's :class:`~labkit.FinetuneConfig`, plus:

    temperature: the softmax temperature ``T`` of both models' soft targets (> 0; higher shows
        more of the teacher's ranking of the wrong labels).
    alpha: the weight of the soft-target loss, in [0, 1] (0: plain finetuning on the labels;
        1: the teacher's probabilities alone).
    teacher: the teacher's name (recorded with the run).
    """

    temperature: float = 2.0
    alpha: float = 0.5
    teacher: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        t, a = self.temperature, self.alpha
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"temperature must be a number > 0 (e.g. 2.0), got {t!r}.")
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a <= 1:
            raise ConfigError(
                f"alpha must be a number in [0, 1] (the soft-target loss's weight; 0.5 weighs "
                f"it as the labels' loss), got {a!r}."
            )


def distill(
    teacher: Model,
    student: Model,
    data: TextData | Any,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    **finetune_options: Any,
) -> Run:
    """Train ``student`` to match ``teacher`` on ``data``; returns the :class:`~labkit.Run` at once.

    A ``labkit.finetune`` run of the student whose training loss is, per batch,
    ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student,
    labels)`` with ``T = temperature`` (:func:`distillation_loss`): the same ``Run``, live panel
    (its loss is this total), record, ``stop()`` / ``pause()`` / ``resume()`` / ``save()`` and
    checkpoints. Each step also logs the two parts, ``soft_loss`` (the ``T^2``-scaled KL) and
    ``hard_loss`` (the cross-entropy), so ``loss = alpha * soft_loss + (1 - alpha) * hard_loss``:
    ``run.history.column("soft_loss")``, and the same columns in
    ``labkit.load_run(run.output_dir)``. Evaluations report the student's own validation
    metrics and loss (cross-entropy), comparable with a finetune's.

    The teacher runs in eval mode, without gradients, in its own dtype, on the same token ids
    (the student's tokenizer): it must be on the student's device and have the same
    vocabulary and labels, in the same order. It is held for the run (no other run may train
    it meanwhile) and never changed. ``lk.shrink(teacher, layers=k)`` makes a student from its
    own layers. ``finetune_options`` are :func:`labkit.finetune`'s keywords (``max_steps``,
    ``lr``, ``lora``, ``output_dir``, ``name``, ``callbacks``, ...); the run's name defaults to
    ``"<student> · distilled from <teacher>"``.

    Raises ``ConfigError`` for a temperature <= 0, an alpha outside [0, 1], label sets or
    vocabularies that differ, models on different devices or one model as both, and for any bad
    finetune option; ``InputError`` for a model that is not a float torch classifier;
    ``TrainingError`` when the teacher or the student is training in another run. Warns
    (``LabkitWarning``) when the student has more parameters than the teacher.
    """
    from labkit.model import Model
    from labkit.train.finetune import check_trainable, launch, make_config
    from labkit.train.run import model_label

    if not isinstance(teacher, Model):
        raise ConfigError(
            f"teacher must be a labkit Model (labkit.load_model(...)), got {type(teacher).__name__}."
        )
    check_trainable(student)
    teacher.require_backend("a distillation's teacher")
    for role, m in (("teacher", teacher), ("student", student)):
        m.require_task("classification", f"distilling (the {role}, {m.name!r})")
    _check_pair(teacher, student)
    callbacks = finetune_options.pop("callbacks", ())
    if finetune_options.get("name") is None:
        finetune_options["name"] = f"{model_label(student)} · distilled from {model_label(teacher)}"
    config = make_config(
        DistillConfig,
        temperature=temperature,
        alpha=alpha,
        teacher=str(teacher.name),
        **finetune_options,
    )
    if (config.max_length or student.max_length) > teacher.max_length:
        config.max_length = teacher.max_length  # the teacher reads every token the student does
    if student.num_parameters > teacher.num_parameters:
        warnings.warn(
            f"the student {student.name!r} has more parameters ({student.num_parameters:,}) "
            f"than its teacher {teacher.name!r} ({teacher.num_parameters:,}): distillation "
            "makes a model smaller. Make a smaller student with lk.shrink(teacher, layers=k).",
            LabkitWarning,
            stacklevel=2,
        )
    if not teacher.claim_for_training():  # waits for an explanation holding float32 copies
        raise TrainingError(
            f"the teacher {teacher.name!r} is training in another run: its targets would move "
            "under the student. Wait for that run (run.wait()) or stop it, then distill."
        )
    loss = _TeacherLoss(teacher, temperature=config.temperature, alpha=config.alpha)
    return launch(student, data, config, callbacks, loss=loss, on_end=teacher.release_training)


def _check_pair(teacher: Model, student: Model) -> None:
    """The two models can be distilled one into the other (``ConfigError`` otherwise)."""
    if teacher is student or teacher.hf is student.hf:
        raise ConfigError(
            f"teacher and student are the same model ({teacher.name!r}). Make a student with "
            "lk.shrink(teacher, layers=k), or load a smaller model as the student."
        )
    if list(teacher.labels) != list(student.labels):
        raise ConfigError(
            f"the teacher's labels {list(teacher.labels)} and the student's "
            f"{list(student.labels)} differ: distillation matches their probabilities label by "
            "label. Load the student with labels=teacher.labels (lk.shrink(teacher, layers=k) "
            "keeps them)."
        )
    t_vocab, s_vocab = teacher.tokenizer.get_vocab(), student.tokenizer.get_vocab()
    if t_vocab != s_vocab:
        odd = next((tok for tok, i in s_vocab.items() if t_vocab.get(tok) != i), None)
        where = f" (e.g. {odd!r})" if odd is not None else ""
        raise ConfigError(
            f"the teacher {teacher.name!r} and the student {student.name!r} have different "
            f"tokenizers ({len(t_vocab):,} and {len(s_vocab):,} tokens, not the same ids"
            f"{where}): both models are fed the same token ids. Use a student of the teacher's "
            "family and vocabulary (lk.shrink(teacher, layers=k))."
        )
    if teacher.device != student.device:
        raise ConfigError(
            f"the teacher is on {teacher.device} and the student on {student.device}: the "
            "teacher runs on every training batch, on the student's device. Load both with "
            f"the same device= (e.g. device={str(student.device)!r})."
        )
    shared = {p.data_ptr() for p in teacher.hf.parameters()} & {
        p.data_ptr() for p in student.hf.parameters()
    }
    if shared:
        raise ConfigError(
            f"the student {student.name!r} shares weights with its teacher {teacher.name!r}: "
            "training it would change the teacher. Make the student with "
            "lk.shrink(teacher, layers=k) (a copy) or copy.deepcopy(model)."
        )
