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

A causal LM (``model.task == "causal-lm"``) is explained by
:mod:`labkit.inspect.attribution.generation`: ``explain(lm, prompt, target=None)`` attributes
each token of the model's greedy continuation (or of ``target``) to the prompt's tokens and
returns a :class:`~labkit.inspect.attribution.generation_result.GenerationAttribution`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from labkit._errors import InputError, LabkitWarning
from labkit.inspect._checks import check_model
from labkit.inspect.attribution.dataset import explain_many
from labkit.inspect.attribution.engine import check_memory, encode, run
from labkit.inspect.attribution.faithfulness import rank_agreement
from labkit.inspect.attribution.options import METHODS, method_name, method_options, validate
from labkit.inspect.attribution.result import AttributionResult, DatasetAttribution

if TYPE_CHECKING:
    from labkit.inspect.attribution.generation_result import GenerationAttribution
    from labkit.model import Model
    from labkit.vision.attribution_result import ImageAttribution

__all__ = [
    "METHODS",
    "AttributionResult",
    "DatasetAttribution",
    "explain",
    "explain_dataset",
    "method_options",
    "rank_agreement",
]


def explain(
    model: Model,
    text: str | Any,
    *,
    target: str | int | None = None,
    method: str = "integrated_gradients",
    **options: Any,
) -> AttributionResult | GenerationAttribution | ImageAttribution:
    """Explain the model's answer for one ``text``.

    ``target`` is a label name (or id) to explain; None explains the predicted label. ``method``
    and the ``options`` it takes are listed in this module's docstring. Texts longer than the
    model's limit are truncated, with one :class:`labkit.LabkitWarning`. A model held in
    bf16/fp16 is explained in float32 (its weights are put back as they were).

    For a causal LM, ``text`` is the prompt and ``target`` the continuation to explain (None:
    the model's own greedy one); the result is a ``GenerationAttribution`` (see
    :mod:`labkit.inspect.attribution.generation` for its methods and options).

    For an image classifier, ``text`` is one image and the result an ``ImageAttribution``
    (pixel scores and patch sums; methods ``integrated_gradients`` and ``occlusion``, see
    :mod:`labkit.vision.explain`).
    """
    if getattr(model, "task", None) == "causal-lm":
        from labkit.inspect.attribution.generation import explain_generation

        if target is not None and not isinstance(target, str):
            raise InputError(
                f"target of a causal LM is the continuation to explain (a string) or None, "
                f"got {type(target).__name__} ({target!r:.60}); label ids are a classifier's."
            )
        return explain_generation(model, text, target=target, method=method, **options)
    check_model(model, "explain", gradients=True)
    if model.task == "image-classification":  # an image: pixels and patches
        from labkit.vision.explain import explain_image

        with _in_float32(model):
            return explain_image(model, text, target=target, method=method, **options)
    if not isinstance(text, str):
        from labkit.vision.attention import refuse_image

        refuse_image(model, text, "labkit.explain")
    name = method_name(method)
    opts = validate(name, options)
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
    ``finetune`` waits for the block (``Model.weights_held``)."""
    from labkit._utils.device import float32_weights

    # is_training is read once the guard that finetune takes is held; stacklevel 6 reaches
    # past this generator and its contextlib frame to explain's caller
    with (
        model.weights_held(),
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
    check_model(model, "explain_dataset", gradients=True)
    name = method_name(method)
    opts = validate(name, {"faithfulness": True, **options})
    with _in_float32(model):
        dataset_result, unconverged = explain_many(
            model, dataset, subset=subset, target=target, method=name, opts=opts, split=split
        )
    _warn_unconverged(unconverged, len(dataset_result.results), opts, stacklevel=2)
    return dataset_result
