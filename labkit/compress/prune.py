"""Head pruning: ``prune_heads`` (the least important heads, or the ones named) and
``pruning_curve`` (accuracy and latency as more heads go, by importance against at random).

``prune_heads`` returns a new :class:`labkit.Model` whose attention layers really are smaller
(``labkit.compress.heads`` does the structural cut); the input model is untouched. What was
cut is recorded in the config (``labkit.compress.heads.PRUNED_HEADS``), so ``save_pretrained``
or ``Run.export`` then ``labkit.load_model(folder)`` gives the same model back
(``labkit.compress.heads.load_pruned``, re-exported here, cuts the same heads before the
weights load). Heads keep their original numbering everywhere:
in ``heads=``, in the record, in ``lk.head_importance`` scores and ``lk.attention`` maps of a
pruned model (a removed head's map is all zeros there).

Importance is Michel et al. (2019)'s gradient score (``labkit.head_importance``); the random
baseline draws one random ranking per repeat and prunes along it, so each random curve is one
fixed order, as the importance curve is.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import ConfigError, InputError, LabkitWarning, TrainingError
from labkit.compress.heads import (
    HeadLayout,
    cut_heads,
    kept_heads,
    layout,
    load_pruned,
    pruned_record,
    record_cut,
)

if TYPE_CHECKING:
    from labkit.inspect.attention.importance import HeadImportance
    from labkit.model import Model

__all__ = ["PruningCurve", "PruningPoint", "load_pruned", "prune_heads", "pruning_curve"]

_MARK = " · pruned "  # what a pruned model's name adds to the name it came from


# -- prune_heads -------------------------------------------------------------------------------
def _check_model(model: Any, what: str) -> HeadLayout:
    from labkit.model import Model

    if not isinstance(model, Model):
        raise InputError(
            f"{what} needs a labkit.Model, got {type(model).__name__}. Load one with "
            "labkit.load_model(...)."
        )
    model.require_backend(what, gradients=True)
    model.require_task("classification", what)
    lay = layout(model.hf)
    if model.is_training:
        raise TrainingError(
            f"{model.name!r} is training in a run: its weights change at every step. Wait for "
            f"the run (run.wait()) or stop it, then call {what}."
        )
    return lay


def _fraction(value: Any, what: str = "fraction") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a number in [0, 1), got {value!r}.")
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(
            f"{what}={value!r} is outside [0, 1): it is the share of heads to remove "
            "(0.3 removes 30%); at least one head of every layer always stays."
        )
    return float(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer | str):
        raise ConfigError(f"{what} must be an int, got {value!r}.")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what} must be an int, got {value!r}.") from None


def _named(heads: Any, kept: list[tuple[int, ...]], num_heads: int) -> dict[int, tuple[int, ...]]:
    """``heads={layer: [head, ...]}`` checked against what the model has (original numbering)."""
    if not isinstance(heads, Mapping):
        raise ConfigError(
            f"heads must be a dict {{layer: [head, ...]}}, got {type(heads).__name__}."
        )
    layers = len(kept)
    asked: dict[int, set[int]] = {}  # {0: ...} and {"0": ...} name the same layer
    for key, value in heads.items():
        layer = _int(key, "a layer in heads=")
        if not 0 <= layer < layers:
            raise InputError(
                f"heads= names layer {layer}, but the model has {layers} layers (0..{layers - 1})."
            )
        items = [value] if isinstance(value, int | np.integer | str) else value
        if not isinstance(items, Iterable):
            raise ConfigError(f"heads[{layer}] must be a list of head indices, got {value!r}.")
        asked.setdefault(layer, set()).update(_int(h, f"a head in heads[{layer}]") for h in items)
    plan: dict[int, tuple[int, ...]] = {}
    for layer, chosen in sorted(asked.items()):
        wanted = sorted(chosen)
        bad = [h for h in wanted if not 0 <= h < num_heads]
        if bad:
            raise InputError(
                f"heads[{layer}] names heads {bad}, but each layer has {num_heads} heads "
                f"(0..{num_heads - 1})."
            )
        gone = [h for h in wanted if h not in kept[layer]]
        if gone:
            raise InputError(
                f"heads[{layer}] names heads {gone}, which were already pruned; layer {layer} "
                f"has heads {list(kept[layer])} left (heads keep their original numbers)."
            )
        if wanted and len(wanted) == len(kept[layer]):
            raise InputError(
                f"heads[{layer}] names every head layer {layer} has left ({wanted}); a layer "
                "keeps at least one head. Leave one of them out."
            )
        if wanted:
            plan[layer] = tuple(wanted)
    return plan


def _scores(importance: Any, layers: int, num_heads: int) -> np.ndarray:
    from labkit.inspect.attention.importance import HeadImportance

    raw = importance.scores if isinstance(importance, HeadImportance) else importance
    try:
        scores = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            "importance must be a labkit.HeadImportance or an array of scores [layers, heads], "
            f"got {type(importance).__name__}."
        ) from None
    if scores.shape != (layers, num_heads):
        raise InputError(
            f"importance has shape {list(scores.shape)}, but the model has {layers} layers x "
            f"{num_heads} heads: compute it on this model (labkit.head_importance(model, data))."
        )
    if not np.isfinite(scores).all():
        raise InputError("importance holds NaN or infinite scores; recompute it on finite data.")
    return scores


def _least_important(
    scores: np.ndarray, fraction: float, kept: list[tuple[int, ...]]
) -> dict[int, tuple[int, ...]]:
    """The ``round(fraction * heads left)`` lowest-scoring heads, never a layer's last one."""
    candidates = sorted(
        (float(scores[layer, h]), layer, h) for layer, hs in enumerate(kept) for h in hs
    )
    want = math.floor(fraction * len(candidates) + 0.5)
    left = [len(hs) for hs in kept]
    plan: dict[int, list[int]] = {}
    taken = 0
    for _, layer, h in candidates:
        if taken == want:
            break
        if left[layer] > 1:  # ascending order: a layer's last head is its most important
            left[layer] -= 1
            plan.setdefault(layer, []).append(h)
            taken += 1
    if taken < want:
        warnings.warn(
            f"fraction={fraction:g} asks for {want} of {len(candidates)} heads, but every "
            f"layer keeps one: removed {taken}.",
            LabkitWarning,
            stacklevel=3,
        )
    return {layer: tuple(sorted(hs)) for layer, hs in plan.items()}


def _cut(hf: Any, plan: Mapping[int, Sequence[int]]) -> None:
    """Remove ``plan``'s heads (original numbering) from ``hf`` in place and record them."""
    lay = layout(hf)
    kept = kept_heads(hf.config, len(lay.layers), lay.num_heads)
    for layer, heads in plan.items():
        cut_heads(lay, layer, [kept[layer].index(h) for h in heads])
    record_cut(hf.config, plan)


def _pruned_name(name: str, fraction: float | None, first: bool, total: int) -> str:
    base = name.split(_MARK)[0]
    if fraction is not None and first:
        return f"{base}{_MARK}{fraction * 100:.3g}%"
    return f"{base}{_MARK}{total} head{'s' if total != 1 else ''}"


def prune_heads(
    model: Model,
    *,
    fraction: float | None = None,
    heads: Mapping[int, Sequence[int]] | None = None,
    data: Any = None,
    importance: HeadImportance | Any = None,
) -> Model:
    """A new :class:`labkit.Model` with attention heads removed; ``model`` is untouched.

    Pass exactly one of:

    - ``fraction`` in [0, 1): remove the ``round(fraction * heads)`` least important heads of
      the whole model (of those it still has), never a layer's last one (each layer keeps at
      least its most important head). ``importance`` is a :class:`labkit.HeadImportance` or an
      array of scores float [layers, heads] (larger = more important); without it,
      ``labkit.head_importance(model, data)`` is computed on ``data`` (a ``TextData`` or a
      labelled ``datasets.Dataset``; its test split, else validation).
    - ``heads={layer: [head, ...]}``: remove exactly those heads.

    Heads keep their original numbers when a pruned model is pruned again (``heads=`` and
    ``importance`` use them; a head already removed is refused). The q/k/v projections lose
    ``head_dim`` outputs and the output projection ``head_dim`` inputs per removed head, so
    parameters, memory and compute really shrink; ``hf.config.labkit_pruned_heads`` records
    every removed head ({"layer": [head, ...]}, cumulative), and a saved copy loads back with
    ``labkit.load_model(folder)``. The new model's name says what was done
    (``"all-MiniLM-L6-v2 · pruned 30%"``).

    Raises ``ConfigError`` for a bad ``fraction``, both or neither of ``fraction`` / ``heads``,
    or ``fraction`` without ``data`` or ``importance``; ``InputError`` for heads or layers
    that do not exist, every head of a layer, a family whose attention layout labkit does not
    know (BERT, RoBERTa, DistilBERT are supported), a LoRA adapter (merge it first) or an int8
    / ONNX copy; ``TrainingError`` while the model trains in a run.
    """
    lay = _check_model(model, "prune_heads")
    if (fraction is None) == (heads is None):
        raise ConfigError(
            "prune_heads needs exactly one of fraction= (the share of least important heads to "
            "remove) or heads= ({layer: [head, ...]} to remove)."
        )
    num_layers, num_heads = len(lay.layers), lay.num_heads
    kept = kept_heads(model.hf.config, num_layers, num_heads)
    if heads is not None:
        if data is not None or importance is not None:
            raise ConfigError(
                "heads= names the heads to remove itself: data= and importance= only rank "
                "heads for fraction=. Drop them, or use fraction=."
            )
        plan = _named(heads, kept, num_heads)
    else:
        fraction = _fraction(fraction)
        if importance is None and data is None:
            raise ConfigError(
                "prune_heads(fraction=...) ranks heads by importance: pass data= (labelled "
                "examples to compute labkit.head_importance on) or importance= (a "
                "HeadImportance you computed)."
            )
        if importance is not None and data is not None:
            raise ConfigError(
                "pass data= or importance=, not both: importance= is used as given, so data= "
                "would be ignored."
            )
        if importance is None:
            from labkit.inspect.attention.importance import head_importance

            importance = head_importance(model, data)
        plan = _least_important(_scores(importance, num_layers, num_heads), fraction, kept)
    with model.weights_held():  # not while explain holds the weights in another dtype
        new = copy.deepcopy(model)
    _cut(new.hf, plan)
    total = sum(len(v) for v in pruned_record(new.hf.config).values())
    new.name = _pruned_name(model.name, fraction, not any(len(k) < num_heads for k in kept), total)
    return new


# -- pruning_curve -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PruningPoint:
    """One fraction of the curve.

    ``heads_removed`` of the model's heads were removed (``parameters`` left), by importance
    (``accuracy``, ``f1`` = macro-F1, ``latency`` seconds at batch 1) and at random
    (``random_accuracies`` / ``random_f1s``: one per repeat; ``random_latency`` seconds at
    batch 1 of the first repeat's model). Accuracies are after the recovery finetune when the
    curve had one.
    """

    fraction: float
    heads_removed: int
    parameters: int
    accuracy: float
    f1: float
    latency: float
    random_accuracies: tuple[float, ...]
    random_f1s: tuple[float, ...]
    random_latency: float

    @property
    def random_accuracy(self) -> float:
        """Mean accuracy over the random repeats."""
        return statistics.fmean(self.random_accuracies)

    @property
    def random_f1(self) -> float:
        """Mean macro-F1 over the random repeats."""
        return statistics.fmean(self.random_f1s)

    @property
    def random_spread(self) -> tuple[float, float]:
        """(lowest, highest) accuracy over the random repeats."""
        return min(self.random_accuracies), max(self.random_accuracies)


@dataclass(frozen=True, eq=False)
class PruningCurve:
    """Accuracy and latency of ``model_name`` as heads are removed, by importance and at random.

    ``rows`` holds one :class:`PruningPoint` per fraction (ascending); ``split`` is the split
    evaluated (``examples`` texts), ``importance`` the ranking pruned along (computed on
    ``importance_split``), ``total_heads`` the model's heads before pruning,
    ``random_repeats`` random orders per fraction, ``recover_steps`` finetuning steps after
    each cut (0: none).
    """

    rows: tuple[PruningPoint, ...]
    model_name: str
    split: str
    examples: int
    total_heads: int
    random_repeats: int
    recover_steps: int
    importance: HeadImportance
    importance_split: str

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{p.fraction:g}: {p.accuracy:.3f} vs {p.random_accuracy:.3f}" for p in self.rows
        )
        return (
            f"PruningCurve({self.model_name!r}, {self.split} accuracy by importance vs random: "
            f"{shown})"
        )

    def _repr_html_(self) -> str:
        from labkit.render.pruning import curve_html

        return curve_html(self)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the plot and the table as one self-contained HTML page; returns its path."""
        from labkit.render.report import Report

        report = Report("Head pruning", subtitle=f"{self.model_name}, {self.split} split")
        report.add_html("Accuracy as heads are removed", self._repr_html_())
        return report.write(path)


def _fractions(fractions: Any) -> tuple[float, ...]:
    if isinstance(fractions, int | float):
        fractions = [fractions]
    try:
        values = sorted({_fraction(f, "each of fractions") for f in fractions})
    except TypeError:
        raise ConfigError(
            f"fractions must be a list of numbers in [0, 1), got {fractions!r}."
        ) from None
    if not values:
        raise ConfigError("fractions is empty: give the shares of heads to remove, e.g. [0, 0.3].")
    return tuple(values)


def _splits(data: Any, split: str | None) -> tuple[str, str | None, str]:
    """(evaluated split, split importance is computed on, its name): importance comes from
    another split than the one evaluated when the data has one."""
    from labkit.data import TextData

    if not isinstance(data, TextData):
        return "data", None, "data (the same rows)"
    chosen = split or ("test" if data.test is not None else "validation")
    for other in ("validation", "train"):
        if other != chosen and data.splits.get(other) is not None:
            return chosen, other, other
    return chosen, chosen, chosen


def _recover(model: Model, data: Any, steps: int, seed: int, batch_size: int) -> None:
    import tempfile

    from labkit.train.finetune import finetune

    with tempfile.TemporaryDirectory(prefix="labkit-prune-") as out:
        run = finetune(
            model,
            data,
            max_steps=steps,
            seed=seed,
            batch_size=batch_size,
            output_dir=out,
            progress=False,
            eval_every=steps + 1,
        )
        try:
            run.wait()
        except BaseException:  # interrupted: the run must not train on in a deleted folder
            run.stop()
            run.wait()
            raise
        if run.status != "finished":
            raise TrainingError(
                f"the recovery finetune of {model.name} ended {run.status}"
                f"{': ' + str(run.error) if getattr(run, 'error', None) else ''}; "
                "pass recover_steps=0 to skip it."
            )


def pruning_curve(
    model: Model,
    data: Any,
    *,
    fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5),
    random_repeats: int = 3,
    recover_steps: int = 0,
    split: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    importance: HeadImportance | Any = None,
    latency_repeats: int = 5,
) -> PruningCurve:
    """Accuracy, macro-F1 and latency at batch 1 after removing each of ``fractions`` of the
    heads, by importance and at random.

    ``data`` is a :class:`labkit.TextData` (evaluated on ``split``: its test split, else
    validation) or a labelled ``datasets.Dataset``. Importance is ``importance`` when given,
    else ``labkit.head_importance`` on another split of ``data`` than the one evaluated
    (validation, else train; the evaluated split when there is no other), so the ranking is
    not fitted to the examples it is scored on.
    Each random repeat (``random_repeats``, drawn from ``seed``) is one random order of the
    heads, pruned along at every fraction. With ``recover_steps > 0`` every pruned model is
    finetuned that many steps on the train split (``labkit.finetune``, one run at a time)
    before it is evaluated. Latency is the median of ``latency_repeats`` timed calls of one
    text (``labkit.compress.measure``), the importance- and random-pruned models timed in turn.
    ``model`` is untouched. Returns a :class:`PruningCurve` (a plot in a notebook).
    """
    from labkit.compress.measure import interleaved
    from labkit.data import labelled_split
    from labkit.inspect.attention.importance import HeadImportance, head_importance

    lay = _check_model(model, "pruning_curve")
    chosen = _fractions(fractions)
    repeats = _int(random_repeats, "random_repeats")
    if repeats < 1:
        raise ConfigError(f"random_repeats must be >= 1, got {random_repeats!r}.")
    steps = _int(recover_steps, "recover_steps")
    if steps < 0:
        raise ConfigError(f"recover_steps must be >= 0, got {recover_steps!r}.")
    if _int(batch_size, "batch_size") < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size!r}.")
    if _int(latency_repeats, "latency_repeats") < 1:
        raise ConfigError(f"latency_repeats must be >= 1, got {latency_repeats!r}.")
    eval_split, imp_split, imp_name = _splits(data, split)
    dataset, _ = labelled_split(data, None if eval_split == "data" else eval_split)
    texts = list(dataset["text"][:8])
    if not texts:
        raise InputError(f"the {eval_split} split has no rows to evaluate the pruned models on.")
    if steps and getattr(data, "splits", {}).get("train") is None:
        raise ConfigError(
            "recover_steps > 0 finetunes on the train split, and this data has none; pass a "
            "TextData with a train split, or recover_steps=0."
        )
    num_layers, num_heads = len(lay.layers), lay.num_heads
    if importance is None:
        importance = head_importance(model, data, split=imp_split)
    else:
        imp_name = "given"
    scores = _scores(importance, num_layers, num_heads)
    rng = np.random.default_rng(seed)
    orders = [rng.random((num_layers, num_heads)) for _ in range(repeats)]
    kept = kept_heads(model.hf.config, num_layers, num_heads)
    total = sum(len(k) for k in kept)

    def scored(m: Model) -> tuple[float, float]:
        got = m.evaluate(
            data, split=None if eval_split == "data" else eval_split, batch_size=batch_size
        )
        return float(got.accuracy), float(got.f1)

    def made(order: np.ndarray, fraction: float) -> Model:
        pruned = prune_heads(model, fraction=fraction, importance=order)
        if steps:
            _recover(pruned, data, steps, seed, min(16, batch_size))
        return pruned

    rows = []
    for fraction in chosen:
        by_importance = made(scores, fraction)
        accuracy, f1 = scored(by_importance)
        randoms = [made(order, fraction) for order in orders]
        random_scores = [scored(m) for m in randoms]
        one = texts[:1]
        times = interleaved(
            {
                "importance": partial(by_importance.logits, one, batch_size=1),
                "random": partial(randoms[0].logits, one, batch_size=1),
            },
            latency_repeats,
        )
        rows.append(
            PruningPoint(
                fraction=fraction,
                heads_removed=sum(len(v) for v in pruned_record(by_importance.hf.config).values())
                - (num_layers * num_heads - total),
                parameters=by_importance.num_parameters,
                accuracy=accuracy,
                f1=f1,
                latency=times["importance"],
                random_accuracies=tuple(a for a, _ in random_scores),
                random_f1s=tuple(f for _, f in random_scores),
                random_latency=times["random"],
            )
        )
        del by_importance, randoms
    return PruningCurve(
        rows=tuple(rows),
        model_name=model.name,
        split=eval_split,
        examples=len(dataset),
        total_heads=total,
        random_repeats=repeats,
        recover_steps=steps,
        importance=importance
        if isinstance(importance, HeadImportance)
        else _as_importance(scores, model.name),
        importance_split=imp_name,
    )


def _as_importance(scores: np.ndarray, name: str) -> HeadImportance:
    from labkit.inspect.attention.importance import HeadImportance

    return HeadImportance(
        scores=scores.astype(np.float32), model_name=name, examples=0, normalized=False
    )
