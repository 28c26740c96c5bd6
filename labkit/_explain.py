"""``explain`` and ``explain_dataset``: which tokens drove a prediction, and can we trust it.

::

    r = labkit.explain(model, "the movie was not good")          # integrated gradients
    r.tokens, r.scores, r.target, r.delta                         # [T] scores, completeness error
    labkit.explain(model, text, method="occlusion", target="positive", faithfulness=True)
    labkit.explain_dataset(model, data, subset="misclassified").influence

Methods (through captum, on the token-embedding layer unless said otherwise):
``integrated_gradients``, ``gradient_x_input``, ``saliency`` (unsigned), ``gradient_shap``,
``occlusion``, ``lime``, ``kernel_shap`` (one feature per token) and ``attention_rollout``
(Abnar & Zuidema 2020; reads attention, the same for every target label).

Options (keyword arguments; each method accepts the ones listed in ``method_options(name)``):

* ``baseline`` — token that replaces the text in the baseline: ``"pad"`` (default), ``"unk"``,
  ``"mask"`` or a token id. Special tokens ([CLS], [SEP], ...) stay.
* ``output`` — attribute the target's ``"probability"`` (default) or its ``"logit"``.
* ``n_steps`` (50), ``max_steps`` (800), ``tolerance`` (0.01, None = off) — integrated gradients
  doubles n_steps for every text whose completeness error |sum(scores) - (f(x) - f(baseline))|
  is above ``tolerance`` (in units of ``output``), until ``max_steps``; a
  :class:`labkit.LabkitWarning` says when the cap is reached first.
* ``n_samples``, ``stdevs``, ``seed`` (gradient_shap), ``window`` (occlusion, in tokens),
  ``n_samples``, ``seed`` (lime, kernel_shap), ``alpha`` (lime's ridge penalty).
* ``faithfulness`` — also compute AOPC comprehensiveness and sufficiency (ERASER).
* ``memory_budget`` — bytes a pass may use (``"auto"``, an int, or ``"512MB"``/``"2GiB"``).
* ``embeddings`` — the embedding layer (module or dotted name) when labkit cannot find it.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._budget import parse_budget
from ._dataset_attribution import DatasetAttribution
from ._errors import ConfigError, InputError, LabkitWarning
from ._faithfulness import rank_agreement

if TYPE_CHECKING:
    from captum.attr._utils.visualization import VisualizationDataRecord

    from .model import Model

__all__ = [
    "METHODS",
    "AttributionResult",
    "DatasetAttribution",
    "explain",
    "explain_dataset",
    "method_options",
    "rank_agreement",
]

_ALL = {"faithfulness": False, "memory_budget": "auto"}
_GRAD = {**_ALL, "output": "probability", "embeddings": None}
_BASED = {**_GRAD, "baseline": "pad"}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {**_BASED, "n_steps": 50, "max_steps": 800, "tolerance": 0.01},
    "gradient_x_input": dict(_GRAD),
    "saliency": dict(_GRAD),
    "gradient_shap": {**_BASED, "n_samples": 20, "stdevs": 0.0, "seed": 0},
    "occlusion": {**_BASED, "window": 1},
    "lime": {**_BASED, "n_samples": 200, "alpha": 0.01, "seed": 0},
    "kernel_shap": {**_BASED, "n_samples": 200, "seed": 0},
    "attention_rollout": dict(_ALL),
}
METHODS: tuple[str, ...] = tuple(_DEFAULTS)
_ALIASES = {
    "ig": "integrated_gradients",
    "layer_integrated_gradients": "integrated_gradients",
    "input_x_gradient": "gradient_x_input",
    "grad_x_input": "gradient_x_input",
    "gradientshap": "gradient_shap",
    "kernelshap": "kernel_shap",
    "shap": "kernel_shap",
    "rollout": "attention_rollout",
}
# methods whose examples are computed one at a time (their randomness or baselines are per text)
_PER_EXAMPLE = {"gradient_shap", "lime", "kernel_shap"}


def method_options(method: str) -> dict[str, Any]:
    """The options ``method`` accepts, with their defaults."""
    return dict(_DEFAULTS[_method_name(method)])


def _method_name(method: str) -> str:
    if not isinstance(method, str):
        raise ConfigError(f"method must be a string, got {type(method).__name__}.")
    key = method.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key in _DEFAULTS:
        return key
    close = difflib.get_close_matches(key, [*METHODS, *_ALIASES], n=1)
    hint = f" Did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise ConfigError(f"unknown method {method!r}.{hint} Available: {', '.join(METHODS)}.")


def _options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults of ``method`` updated with ``given``, validated."""
    allowed = _DEFAULTS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{method} does not take option(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed))}."
        )
    opts = {**allowed, **given}

    def check(name: str, ok: bool, want: str) -> None:
        if name in given and not ok:
            raise ConfigError(f"{name} must be {want}, got {given[name]!r}.")

    def is_int(v: Any, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    check("n_steps", is_int(opts.get("n_steps"), 2), "an int >= 2")
    check("max_steps", is_int(opts.get("max_steps"), 2), "an int >= 2")
    if "max_steps" in opts and opts["max_steps"] < opts["n_steps"]:
        if "max_steps" in given:
            raise ConfigError(
                f"max_steps ({opts['max_steps']}) is below n_steps "
                f"({opts['n_steps']}); set max_steps >= n_steps (equal turns the "
                "escalation off)."
            )
        opts["max_steps"] = opts["n_steps"]  # a large n_steps alone: no escalation beyond it
    tol = opts.get("tolerance")
    check(
        "tolerance",
        tol is None or (isinstance(tol, int | float) and tol > 0),
        "None (no escalation) or a number > 0",
    )
    check("output", opts.get("output") in ("probability", "logit"), "'probability' or 'logit'")
    base = opts.get("baseline")
    check(
        "baseline",
        base in ("pad", "unk", "mask") or is_int(base, 0),
        "'pad', 'unk', 'mask' or a token id",
    )
    check("n_samples", is_int(opts.get("n_samples"), 1), "an int >= 1")
    check("seed", is_int(opts.get("seed"), 0), "an int >= 0")
    check("window", is_int(opts.get("window"), 1), "an int >= 1 (tokens)")
    for name in ("stdevs", "alpha"):
        v = opts.get(name)
        check(
            name, isinstance(v, int | float) and not isinstance(v, bool) and v >= 0, "a number >= 0"
        )
    check("faithfulness", isinstance(opts.get("faithfulness"), bool), "True or False")
    opts["memory_budget"] = parse_budget(opts["memory_budget"]) or "auto"
    return opts


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """How much each token pushed the model toward ``target``, by one method.

    ``tokens`` [T] are the pieces of ``text`` as the model saw them (special tokens included,
    flagged in ``special`` [T]; ``spaces`` [T] says whether whitespace precedes a token, for
    display). ``scores`` [T] float32: positive pushes toward ``target``, negative away (saliency
    is unsigned). ``probs`` maps every label to the model's probability. ``delta`` is the
    completeness error |sum(scores) - (f(x) - f(baseline))| for integrated gradients and
    kernel SHAP (the mean over samples for gradient SHAP), else None. ``options`` holds the
    options used (for integrated gradients ``n_steps`` is the number finally used).
    ``comprehensiveness``/``sufficiency`` are AOPC scores when ``faithfulness=True`` was asked.
    """

    text: str
    tokens: tuple[str, ...]
    scores: np.ndarray
    target: str
    probs: dict[str, float]
    method: str
    delta: float | None
    options: dict[str, Any]
    comprehensiveness: float | None = None
    sufficiency: float | None = None
    special: tuple[bool, ...] = ()
    spaces: tuple[bool, ...] = ()
    token_ids: tuple[int, ...] = ()
    model: Model | None = field(default=None, repr=False)

    @property
    def predicted(self) -> str:
        """The label with the highest probability."""
        return max(self.probs, key=self.probs.__getitem__)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.probs)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` non-special tokens with the highest scores, as (token, score)."""
        order = [
            i
            for i in np.argsort(-self.scores, kind="stable")
            if not (self.special and self.special[i])
        ]
        return [(self.tokens[i], float(self.scores[i])) for i in order[:k]]

    def agreement(self, other: AttributionResult, *, method: str = "spearman") -> float:
        """Rank correlation of this explanation with ``other`` (same text, another method)."""
        return rank_agreement(self, other, method=method)

    def to_captum(self, *, true_label: str | None = None) -> VisualizationDataRecord:
        """captum's ``VisualizationDataRecord`` for ``captum.attr.visualization.visualize_text``.

        Scores are divided by the largest |score|; tokens and labels are HTML-escaped, because
        captum pastes them into its HTML as they are.
        """
        import html

        import torch
        from captum.attr import visualization

        from ._attribution_html import scale

        top = scale(self.scores, self.special)
        return visualization.VisualizationDataRecord(
            torch.from_numpy(self.scores / top),
            float(self.probs[self.predicted]),
            html.escape(self.predicted),
            html.escape(true_label if true_label is not None else ""),
            html.escape(self.target),
            float(self.scores.sum()),
            [html.escape(t) for t in self.tokens],
            float(self.delta or 0.0),
        )

    def __repr__(self) -> str:
        delta = "" if self.delta is None else f", delta={self.delta:.2g}"
        top = ", ".join(repr(t) for t, _ in self.top(3))
        return (
            f"AttributionResult(target={self.target!r} p={self.probs[self.target]:.3f}, "
            f"method={self.method!r}, {len(self.tokens)} tokens{delta}, top=[{top}])"
        )

    def _repr_html_(self) -> str:
        from ._attribution_html import render

        return render(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from ._display import mimebundle

        return mimebundle(self, self._repr_html_(), include, exclude)


def explain(
    model: Model,
    text: str,
    *,
    target: str | int | None = None,
    method: str = "integrated_gradients",
    **options: Any,
) -> AttributionResult:
    """Explain the model's answer for one ``text``.

    ``target`` is a label name (or id) to explain; None explains the predicted label. ``method``
    and the ``options`` it takes are listed in this module's docstring. Texts longer than the
    model's limit are truncated, with one :class:`labkit.LabkitWarning`. A model held in
    bf16/fp16 is explained in float32 (its weights are put back as they were).
    """
    from ._explain_run import check_memory, encode, run

    name = _method_name(method)
    opts = _options(name, options)
    if not isinstance(text, str):
        raise InputError(
            f"text must be a string, got {type(text).__name__}; for many texts "
            "use labkit.explain_dataset(model, texts)."
        )
    if not text.strip():
        raise InputError(
            "text is empty: explain needs at least one word, e.g. "
            "explain(model, 'the movie was not good')."
        )
    encoded = encode(model, [text], stacklevel=4)
    with _in_float32(model):
        check_memory(model, encoded, name, opts)
        results, unconverged = run(model, encoded, [target], name, opts)
    _warn_unconverged(unconverged, 1, opts, stacklevel=3)
    return results[0]


@contextmanager
def _in_float32(model: Model) -> Iterator[None]:
    """A bf16/fp16 model held in float32 for one explain call, unless a training run owns it;
    ``finetune`` waits for the block (``Model._dtype_guard``)."""
    from ._device import float32_weights

    # is_training is read once the guard that finetune takes is held; stacklevel 6 reaches
    # past this generator and its contextlib frame to explain's caller
    with (
        model._dtype_guard,
        float32_weights(model.hf, allowed=not model.is_training, stacklevel=6),
    ):
        yield


def _warn_unconverged(
    unconverged: list[float], total: int, opts: dict[str, Any], *, stacklevel: int
) -> None:
    if unconverged:
        warnings.warn(
            f"integrated gradients did not converge for {len(unconverged)} of {total} text(s): "
            f"completeness error up to {max(unconverged):.3g} > tolerance {opts['tolerance']} "
            f"at n_steps={opts['max_steps']} (the cap). Raise max_steps= or loosen tolerance=; "
            "the scores may not add up to the change in the model's output.",
            LabkitWarning,
            stacklevel=stacklevel + 1,
        )


def explain_dataset(
    model: Model,
    dataset: Any,
    *,
    subset: str | int = "misclassified",
    target: str = "predicted",
    method: str = "integrated_gradients",
    split: str | None = None,
    **options: Any,
) -> DatasetAttribution:
    """Explain many texts at once, batched under a memory budget.

    ``dataset`` is a :class:`labkit.TextData` (its ``test`` split, else ``validation``, or
    ``split=``), a ``datasets.Dataset``/``pandas.DataFrame`` with ``text`` (and ``label``)
    columns, or a list of strings. ``subset`` is ``"misclassified"`` (needs labels), ``"all"``
    or ``n`` (the first n rows). ``target`` is ``"predicted"``, ``"true"`` (needs labels) or a
    label name. ``faithfulness`` defaults to True here. Results equal one-by-one
    :func:`explain` calls up to float rounding; the returned :class:`DatasetAttribution` holds
    a per-example table and the tokens that push each label most across the set.
    """
    from ._dataset_attribution import explain_many

    name = _method_name(method)
    opts = _options(name, {"faithfulness": True, **options})
    with _in_float32(model):
        dataset_result, unconverged = explain_many(
            model, dataset, subset=subset, target=target, method=name, opts=opts, split=split
        )
    _warn_unconverged(unconverged, len(dataset_result.results), opts, stacklevel=2)
    return dataset_result
