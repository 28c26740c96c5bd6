"""Explaining what a causal LM generates: which prompt tokens drove each generated token.

::

    r = labkit.explain(lm, "The capital of France is")   # the model's own greedy continuation
    r.target_tokens, r.scores, r.sequence_scores          # [N], [N, P], [P]
    r.target_logprobs, r.logprob, r.delta                 # [N] nats, their sum, [N] (IG)
    labkit.explain(lm, "The capital of France is", target=" Paris", method="feature_ablation")

``labkit.explain`` comes here when ``model.task == "causal-lm"``. What is explained is the
log-probability of each target token given the prompt and the target tokens before it (teacher
forcing), and of the whole target (the sequence row) — captum's ``LLMGradientAttribution`` and
``LLMAttribution`` do the work, so the scores mean what captum's mean. The features are the
user's prompt tokens only: a chat template's own tokens and special tokens stay fixed.

Methods:

* ``integrated_gradients`` — captum's ``LayerIntegratedGradients`` on the token embeddings,
  from the prompt with every feature token replaced by the baseline token. ``delta`` is each
  row's completeness error (nats).
* ``gradient_x_input`` — ``LayerGradientXActivation`` on the token embeddings.
* ``feature_ablation`` (alias ``occlusion``) — ``FeatureAblation``: the log-probability with
  the prompt as it is minus with one token replaced by the baseline token; one teacher-forced
  pass per prompt token.
* ``shapley_sampling`` — ``ShapleyValueSampling``: ``n_samples`` random orders of the prompt
  tokens, about ``n_samples x P`` passes.

Options: ``max_new_tokens`` (32; the length of the greedy continuation explained when no target
is given), ``chat`` (``"auto"``, True, False: as :meth:`labkit.Model.generate`), ``baseline``
(``"pad"``, ``"unk"`` or a token id), ``n_steps`` (50) and ``tolerance`` (integrated
gradients: a :class:`labkit.LabkitWarning` when a row's completeness error is above it, in
nats; None: no check), ``n_samples`` (10) and ``seed`` (Shapley sampling), ``memory_budget``,
``embeddings`` (gradient methods: the embedding layer when labkit cannot find it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit._errors import InputError, LabkitWarning
from labkit.inspect.attribution.generation_result import GenerationAttribution
from labkit.inspect.attribution.options import resolve_method

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["METHODS", "explain_generation", "method_options"]

_COMMON: dict[str, Any] = {"max_new_tokens": 32, "chat": "auto", "memory_budget": "auto"}
_GRADIENT: dict[str, Any] = {**_COMMON, "embeddings": None}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {**_GRADIENT, "baseline": "pad", "n_steps": 50, "tolerance": None},
    "gradient_x_input": dict(_GRADIENT),
    "feature_ablation": {**_COMMON, "baseline": "pad"},
    "shapley_sampling": {**_COMMON, "baseline": "pad", "n_samples": 10, "seed": 0},
}
METHODS: tuple[str, ...] = tuple(_DEFAULTS)
_ALIASES = {
    "ig": "integrated_gradients",
    "layer_integrated_gradients": "integrated_gradients",
    "input_x_gradient": "gradient_x_input",
    "grad_x_input": "gradient_x_input",
    "occlusion": "feature_ablation",
    "ablation": "feature_ablation",
    "shapley": "shapley_sampling",
    "shapley_value_sampling": "shapley_sampling",
}
# the classifier method whose validation (labkit.inspect.attribution.options) checks the same
# option names, so each option is checked, and its error worded, in one place
_CHECKED_AS = {
    "integrated_gradients": "integrated_gradients",
    "gradient_x_input": "gradient_x_input",
    "feature_ablation": "occlusion",
    "shapley_sampling": "kernel_shap",
}
_GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input")
# classifier-only options, with what to do instead
_CLASSIFIER_ONLY = {
    "faithfulness": "AOPC faithfulness needs a predicted label; it is not defined for generations",
    "output": "a generation is always explained through its log-probabilities",
    "window": "feature_ablation removes one prompt token at a time",
    "max_steps": "integrated gradients runs n_steps as given; raise n_steps instead",
}


def method_options(method: str) -> dict[str, Any]:
    """The options a causal-LM ``method`` accepts, with their defaults."""
    return dict(_DEFAULTS[_method(method)])


def _method(method: Any) -> str:
    if not isinstance(method, str):
        raise InputError(f"method must be a string, got {type(method).__name__}.")
    name, hint = resolve_method(method, METHODS, _ALIASES)
    if name is not None:
        return name
    raise InputError(
        f"unknown method {method!r} for a causal LM.{hint} Generations are explained with "
        f"{', '.join(METHODS)} (aliases: {', '.join(sorted(_ALIASES))})."
    )


def _options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    from labkit.inspect.attribution.options import validate

    allowed = _DEFAULTS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        why = "; ".join(f"{k}: {_CLASSIFIER_ONLY[k]}" for k in unknown if k in _CLASSIFIER_ONLY)
        raise InputError(
            f"{method} on a causal LM does not take option(s) {', '.join(unknown)}"
            f"{f' ({why})' if why else ''}; it takes {', '.join(sorted(allowed))}."
        )
    opts = {**allowed, **given}
    shared = {k: v for k, v in given.items() if k not in _COMMON or k == "memory_budget"}
    if "n_steps" in shared:  # the classifier's max_steps default must not undercut n_steps
        shared["max_steps"] = shared["n_steps"]
    checked = validate(_CHECKED_AS[method], shared)
    opts["memory_budget"] = checked["memory_budget"]
    return opts


@dataclass
class _Prompt:
    """The ids the model sees for a prompt, and which of them are the user's tokens."""

    ids: list[int]
    features: list[bool]
    tokens: list[str]
    pieces: list[str]
    spaces: list[bool]


def _chat_text(tok: Any, prompt: str) -> str:
    # the same call as labkit.lm.generate.prompt_ids; its ids are checked against prompt_ids
    return str(
        tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    )


def _prompt(model: Model, prompt: str, *, chat: bool) -> _Prompt:
    from labkit.inspect.attribution.engine import _display
    from labkit.lm.generate import prompt_ids

    tok = model.tokenizer
    ids = prompt_ids(model, prompt, chat=chat)
    special = [bool(x) for x in tok.get_special_tokens_mask(ids, already_has_special_tokens=True)]
    text, start = (_chat_text(tok, prompt), -1) if chat else (prompt, 0)
    if chat:
        start = text.rfind(prompt)
    spans = None
    if getattr(tok, "is_fast", False):
        enc = tok(text, add_special_tokens=not chat, return_offsets_mapping=True)
        if list(enc["input_ids"]) == ids:
            spans = [tuple(s) for s in enc["offset_mapping"]]
    if chat and (spans is None or start < 0):
        raise InputError(
            f"could not find the prompt's tokens inside {model.name!r}'s chat template "
            "(it needs a fast tokenizer and a template that keeps the prompt's text as it is). "
            "Explain the raw text with chat=False."
        )
    end = start + len(prompt)
    features = []
    for i, flag in enumerate(special):
        if flag:
            features.append(False)
        elif spans is None:
            features.append(True)
        else:
            s, e = spans[i]
            features.append(e > s and s < end and e > start)  # overlaps the prompt's text
    raw = [str(t) for t in tok.convert_ids_to_tokens(ids)]
    pieces, spaces = _display(tok, text, ids, spans, [not f for f in features])
    if chat:  # the first prompt token follows the template's newline: no space shown
        first = features.index(True) if any(features) else 0
        spaces[first] = False
    keep = [i for i, f in enumerate(features) if f]
    return _Prompt(
        ids=ids,
        features=features,
        tokens=[raw[i] for i in keep],
        pieces=[pieces[i] for i in keep],
        spaces=[spaces[i] for i in keep],
    )


def _target_pieces(tok: Any, ids: list[int]) -> list[str]:
    """Each target token as the text it adds to the decoded target (its raw token while it is
    the first half of a character split over several tokens)."""
    pieces: list[str] = []
    done = ""
    for i, token in enumerate(tok.convert_ids_to_tokens(ids)):
        text = tok.decode(ids[: i + 1])
        if text.endswith("\ufffd") or not text.startswith(done):
            pieces.append(str(token))
            continue
        pieces.append(text[len(done) :] or str(token))
        done = text
    return pieces


def _target_ids(model: Model, target: Any) -> list[int]:
    if isinstance(target, bool) or not isinstance(target, str):
        raise InputError(
            f"target must be the text to explain (a string) or None for the model's own "
            f"continuation; got {type(target).__name__} ({target!r:.60}). Label ids are a "
            "classifier's targets."
        )
    if not target.strip():
        raise InputError(
            "target is empty: pass the continuation to explain, e.g. target=' Paris', or "
            "target=None to explain the model's own greedy continuation."
        )
    from labkit._utils.text import clean_text

    # captum's convention: the target is tokenized on its own, without special tokens
    ids = list(model.tokenizer(clean_text(target), add_special_tokens=False)["input_ids"])
    if not ids:
        raise InputError(f"target {target!r} tokenizes to no tokens; pass some text.")
    return ids


def _check_context(model: Model, prompt_len: int, target_len: int, what: str) -> None:
    if prompt_len + target_len > model.max_length:
        raise InputError(
            f"the prompt ({prompt_len:,} tokens) and {what} ({target_len:,} tokens) make "
            f"{prompt_len + target_len:,} tokens, over {model.name!r}'s context of "
            f"{model.max_length:,}: shorten the prompt or the target."
        )


def _row_bytes(model: Model, seq_len: int, *, backward: bool) -> int:
    """Bytes one sequence holds in a pass: the layers' activations (the classifiers'
    estimate) plus a causal LM's float32 logits over the whole vocabulary — at every position
    in a forward pass (perturbations read them all), at the last one and its gradient in a
    backward pass (see :func:`_last_logits`)."""
    from labkit.inspect.attribution.batching import bytes_per_row

    vocab = int(getattr(model.base.config, "vocab_size", 0) or 0)
    logits = vocab * 4 * (2 if backward else seq_len)
    return bytes_per_row(model, seq_len, backward=backward) + logits


def _check_memory(model: Model, method: str, seq_len: int, budget: int | None) -> int:
    """Refuse before any pass when the smallest one cannot fit; returns the rows one pass may
    hold under the automatic batch budget (or ``budget``)."""
    from labkit.inspect.attribution.batching import capped_rows
    from labkit.inspect.budget import batch_budget, format_bytes, refusal_limit, suggest_budget

    backward = method in _GRADIENT_METHODS
    rows = 2 if method == "integrated_gradients" else 1
    per_row = _row_bytes(model, seq_len, backward=backward)
    limit = budget if budget is not None else refusal_limit(model.device)
    need = rows * per_row
    if need > limit:
        whose = "memory_budget" if budget is not None else "half the memory available now"
        raise InputError(
            f"{method.replace('_', ' ')} on {seq_len:,} tokens (prompt + target) would need "
            f"about {format_bytes(need)} for its smallest pass ({rows} sequence(s) through "
            f"the model and its {model.base.config.vocab_size:,}-word output), over {whose} "
            f"of {format_bytes(limit)}. To fit: shorten the prompt or the target, run on a GPU, "
            f"or raise the budget with memory_budget='{suggest_budget(need)}' if the machine "
            "has that much free memory."
        )
    room = budget if budget is not None else batch_budget(model.device)
    return capped_rows(model, max(1, int(room // max(per_row, 1))), seq_len)


@contextmanager
def _held(model: Model) -> Iterator[None]:
    """No training run starts meanwhile; a bf16/fp16 model runs in float32 for the call, unless
    a run owns it (as ``labkit.explain`` does for classifiers)."""
    from labkit._utils.device import float32_weights

    # stacklevel 7 reaches past this generator, its contextlib frame and explain's frames
    with (
        model.weights_held(),
        float32_weights(model.hf, allowed=not model.is_training, stacklevel=7),
    ):
        yield


def _logprobs(model: Model, rows: list[list[int]], target: list[int]) -> np.ndarray:
    """float64 [R, N]: log p(target_i | row, target_<i) for prompts ``rows`` of one length, in
    one teacher-forced pass (what captum's attributions explain)."""
    import torch

    from labkit._utils.quiet import hf_quiet
    from labkit.inspect.attribution.methods import inspection

    width = len(rows[0])
    ids = torch.tensor([r + target for r in rows], dtype=torch.long, device=model.device)
    want = torch.tensor(target, dtype=torch.long, device=model.device)
    # hf_quiet: the baseline row holds pad tokens, which transformers warns about (no padding)
    with inspection(model, grads=False), hf_quiet():
        logits = model.hf(input_ids=ids).logits[:, width - 1 : width - 1 + len(target)]
        logp = logits.float().log_softmax(-1)
        picked = logp.gather(-1, want.expand(len(rows), -1).unsqueeze(-1)).squeeze(-1)
    return picked.double().cpu().numpy()


def _captum_input(tok: Any, p: _Prompt, baseline: int) -> Any:
    """captum's ``TextTokenInput`` over ids already built (the chat template's among them):
    the features are the user's prompt tokens, the rest stays as it is."""
    import torch
    from captum.attr import TextTokenInput

    class PromptInput(TextTokenInput):
        def __init__(self) -> None:  # not super's: it would tokenize a text again
            self.inp_tensor = torch.tensor([p.ids], dtype=torch.long)
            mask = torch.tensor([p.features], dtype=torch.bool)
            self.itp_mask = None if bool(mask.all()) else mask
            self.itp_tensor = self.inp_tensor[mask].unsqueeze(0)
            self.skip_tokens = None
            self.values = list(p.tokens)
            self.tokenizer = tok
            self.n_itp_features = len(p.tokens)
            self.baselines = int(baseline)

    return PromptInput()


def _baseline_id(model: Model, baseline: str | int) -> int:
    import torch

    from labkit.inspect.attribution.batching import Batch
    from labkit.inspect.attribution.methods import baseline_ids

    one = torch.zeros((1, 1), dtype=torch.long)
    batch = Batch(ids=one, mask=torch.ones_like(one), special=one.bool(), targets=one[0])
    return int(baseline_ids(model, batch, baseline)[0, 0])


def _last_logits(hf: Any) -> Any:
    """``hf`` as captum's gradient classes call it, computing the logits of the last position
    only (all they read): the LM head over every position is about a fifth of a small model's
    work, and its [rows, T, vocab] logits and their gradient the largest tensors of the pass."""
    import inspect

    import torch

    base = hf.get_base_model() if hasattr(hf, "get_base_model") else hf
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return hf

    class LastLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
            return self.hf(input_ids=input_ids, logits_to_keep=1, **kwargs)

    return LastLogits()


class _IdNames:
    """The tokenizer captum's LLM classes get. Given token ids (never text), they use theirs
    only to name the target tokens of their own result, which labkit does itself; captum 0.9's
    naming warns about every character split over several tokens and raises IndexError when
    the last target token is such a piece. This stand-in names each id ``t<id>``."""

    def decode(self, ids: Any, **_: Any) -> str:
        return " ".join(f"t{int(i)}" for i in np.atleast_1d(np.asarray(ids)).tolist())

    def encode(self, text: str, **_: Any) -> list[int]:
        return [int(w[1:]) for w in text.split()]

    def __call__(self, text: str, **_: Any) -> dict[str, Any]:
        ids, offsets, at = [], [], 0
        for word in text.split(" "):
            ids.append(int(word[1:]))
            offsets.append((at, at + len(word)))
            at += len(word) + 1
        return {"input_ids": ids, "offset_mapping": offsets}


def _attribute(
    model: Model, method: str, inp: Any, target: list[int], opts: dict[str, Any], rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [N, P], sequence row [P]) float32 from captum's LLM attribution classes."""
    import captum.attr as ca
    import torch

    from labkit._utils.quiet import hf_quiet
    from labkit.inspect.attribution.embeddings import embedding_layer
    from labkit.inspect.attribution.methods import _seeded, inspection

    tok, hf = _IdNames(), model.hf
    ids = torch.tensor(target, dtype=torch.long)
    # perturbations need no autograd at all: their passes run in inference mode
    with inspection(model, grads=method in _GRADIENT_METHODS), hf_quiet():
        if method in _GRADIENT_METHODS:
            layer = embedding_layer(model, opts.get("embeddings"))
            forward = _last_logits(hf)
            if method == "integrated_gradients":
                inner: Any = ca.LayerIntegratedGradients(forward, layer)
                kwargs: dict[str, Any] = {
                    "n_steps": int(opts["n_steps"]),
                    "internal_batch_size": max(1, min(rows, int(opts["n_steps"]))),
                }
            else:
                inner, kwargs = ca.LayerGradientXActivation(forward, layer), {}
            out = ca.LLMGradientAttribution(inner, tok).attribute(inp, target=ids, **kwargs)
        else:
            # one teacher-forced pass per perturbation (the gradient methods' semantics);
            # captum's default decodes the target token by token, N passes for each
            kwargs = {"forward_in_tokens": False}
            if method == "feature_ablation":
                inner = ca.FeatureAblation(hf)
            else:
                inner = ca.ShapleyValueSampling(hf)
                kwargs["n_samples"] = int(opts["n_samples"])
            with _seeded(int(opts.get("seed", 0)), model.device):
                out = ca.LLMAttribution(inner, tok).attribute(inp, target=ids, **kwargs)
    scores = out.token_attr
    assert scores is not None  # every method here has per-token rows
    return (
        scores.detach().float().cpu().numpy().reshape(len(target), -1),
        out.seq_attr.detach().float().cpu().numpy().reshape(-1),
    )


def explain_generation(
    model: Model,
    prompt: str,
    *,
    target: str | None = None,
    method: str = "integrated_gradients",
    **options: Any,
) -> GenerationAttribution:
    """Which prompt tokens drove each token of ``target`` (None: the model's own greedy
    continuation of ``prompt``, ``max_new_tokens`` long at most). ``method`` and ``options``
    are listed in this module's docstring. Returns a :class:`GenerationAttribution` whose
    ``scores`` are float32 [len(target_tokens), len(tokens)].
    """
    from labkit._utils.optional import require
    from labkit.inspect._checks import check_model
    from labkit.lm.generate import check_generate_args, check_prompt

    check_model(model, "explain", gradients=True)
    model.require_task("causal-lm", "explaining a generation")
    name = _method(method)
    opts = _options(name, options)
    # a clear error before any work when captum is missing
    require("captum.attr", extra="explain", feature=f"explain(lm, method={name!r})")
    prompt = check_prompt(prompt)
    if not prompt.strip():
        raise InputError(
            "prompt is empty: pass the text the model continues, e.g. "
            "explain(lm, 'The capital of France is')."
        )
    use_chat, _ = check_generate_args(
        model,
        max_new_tokens=opts["max_new_tokens"],
        temperature=0.0,
        top_p=1.0,
        chat=opts["chat"],
        stop=None,
    )
    target_given = None if target is None else _target_ids(model, target)
    p = _prompt(model, prompt, chat=use_chat)
    if not any(p.features):
        raise InputError(
            f"the prompt {prompt!r:.60} has no tokens of its own to attribute to (only special "
            "tokens); pass some text."
        )
    budget = opts["memory_budget"]
    budget = None if budget == "auto" else int(budget)
    with _held(model):
        if target_given is None:
            _check_context(model, len(p.ids), opts["max_new_tokens"], "max_new_tokens")
            rows = _check_memory(model, name, len(p.ids) + opts["max_new_tokens"], budget)
            gen = model.generate(prompt, max_new_tokens=opts["max_new_tokens"], chat=use_chat)[0]
            target_ids, target_text = list(gen.token_ids), gen.text
            if not target_ids:
                raise InputError(
                    "the model generated no token for this prompt: nothing to explain."
                )
        else:
            target_ids, target_text = target_given, str(target)
            _check_context(model, len(p.ids), len(target_ids), "the target")
            rows = _check_memory(model, name, len(p.ids) + len(target_ids), budget)
        baseline = _baseline_id(model, opts.get("baseline", "pad"))
        base_row = [baseline if f else i for i, f in zip(p.ids, p.features)]
        ig = name == "integrated_gradients"  # its completeness check needs the baseline's too
        lp = _logprobs(model, [p.ids, base_row] if ig else [p.ids], target_ids)
        inp = _captum_input(model.tokenizer, p, baseline)
        scores, sequence = _attribute(model, name, inp, target_ids, opts, rows)
    logprobs, base_lp = lp[0], (lp[1] if ig else None)
    delta = None
    if base_lp is not None:
        delta = np.abs(scores.astype(np.float64).sum(1) - (logprobs - base_lp)).astype(np.float32)
        tol = opts["tolerance"]
        if tol is not None and float(delta.max()) > tol:
            warnings.warn(
                f"integrated gradients left a completeness error up to {float(delta.max()):.3g} "
                f"nats (> tolerance {tol}) on {int((delta > tol).sum())} of {len(delta)} target "
                f"tokens at n_steps={opts['n_steps']}: raise n_steps= or try another baseline=; "
                "those rows do not add up to the change in the log-probability.",
                LabkitWarning,
                stacklevel=3,
            )
    tok = model.tokenizer
    special_ids = set(tok.all_special_ids)
    return GenerationAttribution(
        prompt=prompt,
        target=target_text,
        tokens=tuple(p.tokens),
        target_tokens=tuple(str(t) for t in tok.convert_ids_to_tokens(target_ids)),
        scores=scores.astype(np.float32),
        sequence_scores=sequence.astype(np.float32),
        target_logprobs=logprobs.astype(np.float32),
        method=name,
        delta=delta,
        chat=use_chat,
        options={**opts, "baseline_id": baseline},
        pieces=tuple(p.pieces),
        spaces=tuple(p.spaces),
        target_pieces=tuple(_target_pieces(tok, target_ids)),
        target_special=tuple(i in special_ids for i in target_ids),
        token_ids=tuple(i for i, f in zip(p.ids, p.features) if f),
        target_ids=tuple(target_ids),
        baseline_logprobs=None if base_lp is None else base_lp.astype(np.float32),
        generated=target_given is None,
        model_name=model.name,
        model=model,
    )
