"""Generation with a causal LM: ``Generation`` (one prompt's continuation) and ``generate``.

``transformers``' own ``generate`` does the decoding, so greedy ids are exactly
``hf.generate(do_sample=False)``'s and the speed is its speed. What labkit adds around it:
checked arguments, the chat template for instruct models, left padding for batches, the prompt
cut from the left to fit the context (one warning), stop strings, per-token log-probabilities,
a per-token callback (streaming views, the terminal) and cancellation from another thread.

A call has two halves: :func:`prepare` (validate, tokenize, cut to the context: every refusal
and the one warning happen here, on the caller's thread) and :func:`run_prepared` (the
decoding, which a stream runs on a thread of its own).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, InputError, LabkitWarning
from labkit._utils.text import as_texts

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = [
    "FINISH_REASONS",
    "GENERATE_SETTINGS",
    "Generation",
    "Prepared",
    "check_generate_args",
    "check_prompt",
    "generate",
    "prepare",
    "prompt_ids",
    "run_prepared",
]

# why a row ended: its end-of-sequence token, max_new_tokens, a stop string, or cancel
FINISH_REASONS = ("eos", "length", "stop", "cancelled")
# the longest generation a call may ask for, whatever the context (a typo guard: 10**6)
MAX_NEW_TOKENS_LIMIT = 32_768
# the keywords of a generation's settings (Model.generate's, Model.stream's)
GENERATE_SETTINGS = ("max_new_tokens", "temperature", "top_p", "chat", "stop", "seed", "batch_size")

OnToken = Callable[[int, str], None]


@dataclass(frozen=True)
class Generation:
    """One prompt's continuation.

    ``prompt`` is the text as given, ``text`` the generated text (special tokens dropped, cut
    before a stop string), ``tokens`` / ``token_ids`` the generated tokens only (the final
    end-of-sequence token included when the model made one), ``logprobs`` each generated
    token's log-probability under the model (natural log, of its logits before temperature and
    top-p), ``finish_reason`` one of ``eos``, ``length``, ``stop``, ``cancelled``.
    """

    prompt: str
    text: str
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: str = "length"

    @property
    def logprob(self) -> float:
        """Log-probability of the whole continuation (sum over its tokens)."""
        return float(sum(self.logprobs))

    @property
    def perplexity(self) -> float:
        """exp(mean negative log-probability) of the generated tokens; nan when there are none."""
        if not self.logprobs:
            return math.nan
        return math.exp(-self.logprob / len(self.logprobs))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (``labkit generate --json``, reports)."""
        return {
            "prompt": self.prompt,
            "text": self.text,
            "tokens": list(self.tokens),
            "token_ids": list(self.token_ids),
            "logprobs": [lp if math.isfinite(lp) else None for lp in self.logprobs],
            "finish_reason": self.finish_reason,
            "logprob": self.logprob if math.isfinite(self.logprob) else None,
            "perplexity": self.perplexity if math.isfinite(self.perplexity) else None,
        }

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from labkit.render.generation import generation_html

        return generation_html([self])


def _whole_number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}.")
    return value


def check_generate_args(
    model: Model,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    chat: bool | str,
    stop: str | Sequence[str] | None,
    batch_size: int = 1,
    seed: int | None = None,
) -> tuple[bool, tuple[str, ...]]:
    """Validate generation settings; returns (use the chat template, the stop strings)."""
    _whole_number(max_new_tokens, "max_new_tokens")
    # at least one prompt token must fit next to the generated ones
    limit = min(model.max_length - 1, MAX_NEW_TOKENS_LIMIT)
    if not 1 <= max_new_tokens <= limit:
        raise ConfigError(
            f"max_new_tokens must be between 1 and {limit:,} (the model's context is "
            f"{model.max_length:,} tokens, prompt included), got {max_new_tokens:,}."
        )
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ConfigError(
            f"temperature must be a number >= 0 (0 is greedy, 0.7 a usual sampling value), "
            f"got {temperature!r}."
        )
    if (
        isinstance(top_p, bool)
        or not isinstance(top_p, int | float)
        or not math.isfinite(top_p)
        or not 0 < top_p <= 1
    ):
        raise ConfigError(
            f"top_p must be in (0, 1] (1 keeps every token, 0.9 the usual nucleus), got {top_p!r}."
        )
    if _whole_number(batch_size, "batch_size") < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    if seed is not None:
        _whole_number(seed, "seed")
    has_template = bool(getattr(model.tokenizer, "chat_template", None))
    if chat == "auto":
        use_chat = has_template
    elif chat is True or chat is False:
        use_chat = chat
        if chat and not has_template:
            raise ConfigError(
                f"chat=True needs a chat template, but {model.name!r}'s tokenizer has none "
                "(it is not an instruct/chat model). Pass chat=False to continue the raw "
                "text, or set tokenizer.chat_template."
            )
    else:
        raise ConfigError(f"chat must be 'auto', True or False, got {chat!r}.")
    if stop is None:
        stops: tuple[str, ...] = ()
    else:
        stops = tuple(as_texts(stop, what="stop"))
        if any(not s for s in stops):
            raise ConfigError("stop holds an empty string, which would stop at once; drop it.")
    return use_chat, stops


def check_prompt(prompt: Any, what: str = "prompt") -> str:
    """One prompt string (a list of one is not silently taken)."""
    if not isinstance(prompt, str):
        raise InputError(f"{what} must be a string, got {type(prompt).__name__} ({prompt!r:.60}).")
    return as_texts(prompt, what=what)[0]


def prompt_ids(model: Model, prompt: str, *, chat: bool) -> list[int]:
    """The token ids the model sees for ``prompt`` (in the chat template when ``chat``)."""
    tok = model.tokenizer
    if chat:
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
    else:
        ids = list(tok(prompt)["input_ids"])
    if not ids:  # an empty prompt with a tokenizer that adds nothing: start from bos/eos
        from labkit._utils.text import _filler_id

        bos = getattr(tok, "bos_token_id", None)
        ids = [bos if isinstance(bos, int) else _filler_id(tok)]
    return ids


def _fit_context(rows: list[list[int]], room: int, max_new_tokens: int, stacklevel: int) -> None:
    """Cut prompts from the left so prompt + max_new_tokens fits the context; warn once."""
    cut = [i for i, r in enumerate(rows) if len(r) > room]
    if not cut:
        return
    longest = max(len(rows[i]) for i in cut)
    for i in cut:
        rows[i] = rows[i][-room:]
    warnings.warn(
        f"{len(cut)} prompt(s) (the longest {longest:,} tokens) did not fit the model's context "
        f"with max_new_tokens={max_new_tokens:,}: their first tokens were dropped to keep the "
        f"last {room:,}.",
        LabkitWarning,
        stacklevel=stacklevel,
    )


def _eos_ids(model: Model) -> set[int]:
    cfg = getattr(model.base, "generation_config", None)
    raw = getattr(cfg, "eos_token_id", None)
    if raw is None:
        raw = model.tokenizer.eos_token_id
    if raw is None:
        return set()
    return {int(x) for x in (raw if isinstance(raw, list | tuple) else [raw])}


@dataclass(frozen=True)
class Prepared:
    """A checked generation, ready to run: the prompts, their token ids (cut to fit the
    context) and the decoding settings. Made by :func:`prepare`."""

    prompts: tuple[str, ...]
    rows: tuple[tuple[int, ...], ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    chat: bool
    stops: tuple[str, ...]
    seed: int | None
    batch_size: int
    eos: frozenset[int] = field(default_factory=frozenset)
    pad: int = 0


def prepare(
    model: Model,
    prompts: str | Iterable[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    chat: bool | str = "auto",
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    batch_size: int = 8,
    stacklevel: int = 3,
) -> Prepared:
    """Check every setting and tokenize the prompts; a prompt too long for the context is cut
    from the left with one ``LabkitWarning`` (``stacklevel`` as for ``warnings.warn`` seen
    from this function's caller's caller)."""
    items = as_texts(prompts, what="prompts")
    use_chat, stops = check_generate_args(
        model,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        chat=chat,
        stop=stop,
        batch_size=batch_size,
        seed=seed,
    )
    rows = [prompt_ids(model, p, chat=use_chat) for p in items]
    _fit_context(rows, model.max_length - max_new_tokens, max_new_tokens, stacklevel)
    eos = _eos_ids(model)
    pad = model.tokenizer.pad_token_id
    return Prepared(
        prompts=tuple(items),
        rows=tuple(tuple(r) for r in rows),
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        top_p=float(top_p),
        chat=use_chat,
        stops=stops,
        seed=seed,
        batch_size=batch_size,
        eos=frozenset(eos),
        pad=int(pad) if pad is not None else (min(eos) if eos else 0),
    )


def _stop_prefix(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string: held
    back from ``on_token`` until the next tokens say whether it does."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


class _Recorder:
    """Per-step bookkeeping during ``hf.generate``: log-probabilities, text, stops, cancel.

    Its ``processor`` (a logits processor, run before temperature and top-p) keeps a reference
    to each step's scores; its ``stopping`` (a stopping criterion, called once per step with the
    chosen tokens appended) reads the chosen tokens off ``input_ids``, so each token meets the
    scores it was chosen from whatever the streamer timing. Only the chosen tokens'
    log-probabilities are kept, so memory stays O(tokens). They come from a log-softmax and a
    gather: on a CPU, torch's log_softmax kernel is several times faster than ``logsumexp``
    over a 49k vocabulary (benchmarks/bench_generate.py times this work per step).
    """

    def __init__(
        self,
        model: Model,
        plan: Prepared,
        rows: Sequence[int],
        *,
        on_token: OnToken | None,
        cancel: threading.Event | None,
    ) -> None:
        self.tok = model.tokenizer
        self.plan = plan
        self.index = list(rows)  # the caller's row number of each row of this batch
        size = len(self.index)
        self.eos, self.stops = plan.eos, plan.stops
        self.on_token, self.cancel = on_token, cancel
        self.ids: list[list[int]] = [[] for _ in range(size)]
        self.logprobs: list[list[float]] = [[] for _ in range(size)]
        self.sent: list[str] = ["" for _ in range(size)]
        self.done: list[str | None] = [None] * size
        self._scores: torch.Tensor | None = None
        self._flags: torch.Tensor | None = None  # what stopping returns while nothing changes
        self.decode_each = on_token is not None or bool(self.stops)

    # a LogitsProcessor (a callable is enough for transformers)
    def processor(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        # the warpers after this one make new tensors, so the reference stays these scores
        self._scores = scores
        return scores

    # a StoppingCriteria (a callable), once per step: input_ids ends with the chosen tokens
    def stopping(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> Any:
        import torch

        chosen = input_ids[:, -1]
        if self._scores is not None:
            logp = self._scores.float().log_softmax(-1)
            picked = logp.gather(-1, chosen[:, None].to(logp.device)).squeeze(-1)
            # one device-to-host copy a step for both
            ids, lps = torch.stack([chosen.double(), picked.double().to(chosen.device)]).tolist()
            self._scores = None
        else:
            ids, lps = chosen.tolist(), [math.nan] * len(self.ids)
        cancelled = self.cancel is not None and self.cancel.is_set()
        before = list(self.done)
        for r, (tid, lp) in enumerate(zip(ids, lps)):
            if self.done[r] is not None:
                continue  # a finished row gets pad tokens from here on
            self.ids[r].append(int(tid))
            self.logprobs[r].append(float(lp))
            if int(tid) in self.eos:
                self.done[r] = "eos"
            if self.decode_each:
                last = (
                    cancelled
                    or self.done[r] is not None
                    or len(self.ids[r]) >= self.plan.max_new_tokens
                )
                self._text_step(r, final=last)
        if cancelled:
            for r in range(len(self.done)):
                if self.done[r] is None:
                    self.done[r] = "cancelled"
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self._flags is None or self.done != before:
            # eos too: a tokenizer's eos that the generation config does not name
            flags = [d in ("stop", "eos") for d in self.done]
            self._flags = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        return self._flags

    def _text_step(self, r: int, *, final: bool) -> None:
        """Hand row ``r``'s new text to ``on_token`` (once per token: "" while a token's text
        is held back); end the row at a stop string. ``final``: the row's last token, so
        nothing is held back."""
        text = str(self.tok.decode(self.ids[r], skip_special_tokens=True))
        if self.stops:
            at = _first_stop(text, self.stops)
            if at is not None:
                text, final = text[:at], True
                if self.done[r] is None:
                    self.done[r] = "stop"
        if not final:
            if text.endswith("\ufffd"):
                text = self.sent[r]  # half of a multi-byte character: wait for the rest
            else:
                text = text[: len(text) - _stop_prefix(text, self.stops)]
        self._send(r, text)

    def _send(self, r: int, text: str) -> None:
        sent, piece = self.sent[r], ""
        if len(text) > len(sent) and text.startswith(sent):
            self.sent[r], piece = text, text[len(sent) :]
        if self.on_token is not None:
            self.on_token(self.index[r], piece)


def generate(
    model: Model,
    prompts: str | Iterable[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    chat: bool | str = "auto",
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    batch_size: int = 8,
    on_token: OnToken | None = None,
    cancel: threading.Event | None = None,
    stacklevel: int = 4,
) -> list[Generation]:
    """What :meth:`labkit.Model.generate` does (see there); ``model`` must be a causal LM."""
    plan = prepare(
        model,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        chat=chat,
        stop=stop,
        seed=seed,
        batch_size=batch_size,
        stacklevel=stacklevel + 1,
    )
    return run_prepared(model, plan, on_token=on_token, cancel=cancel)


def run_prepared(
    model: Model,
    plan: Prepared,
    *,
    on_token: OnToken | None = None,
    cancel: threading.Event | None = None,
) -> list[Generation]:
    """Decode a :func:`prepare`'d generation; one :class:`Generation` per prompt, in order.

    Prompts are batched by length (``plan.batch_size`` at a time, left-padded), so a batch
    spends little on padding. ``on_token(row, piece)`` is called once per generated token, on
    this thread, ``row`` being the prompt's place in ``plan.prompts`` and ``piece`` the text
    that token completes: "" while its text is held back (half of a multi-byte character, the
    possible start of a stop string, a special token), all of it at the row's last token, so
    a row's pieces join to its ``Generation.text``. Once ``cancel`` is set, the next token
    made is every row's last (finish reason ``cancelled``); later batches do not start.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from labkit._utils.seed import seeded

    settings: dict[str, Any] = {"do_sample": plan.temperature > 0}
    if plan.temperature > 0:
        settings.update(temperature=plan.temperature, top_p=plan.top_p, top_k=0)
    order = sorted(range(len(plan.rows)), key=lambda i: len(plan.rows[i]))
    out: list[Generation | None] = [None] * len(plan.rows)
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode(), seeded(plan.seed, devices=_cuda_index(model.device)):
            for start in range(0, len(order), plan.batch_size):
                idx = order[start : start + plan.batch_size]
                chunk = [plan.rows[i] for i in idx]
                rec = _Recorder(model, plan, idx, on_token=on_token, cancel=cancel)
                if cancel is not None and cancel.is_set():
                    rec.done = ["cancelled"] * len(idx)
                else:
                    width = max(len(r) for r in chunk)
                    ids = torch.full((len(chunk), width), plan.pad, dtype=torch.long)
                    mask = torch.zeros((len(chunk), width), dtype=torch.long)
                    for i, r in enumerate(chunk):  # left padding: every row ends at one column
                        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
                        mask[i, width - len(r) :] = 1
                    hf: Any = model.hf  # (transformers types generate loosely)
                    hf.generate(
                        input_ids=ids.to(model.device),
                        attention_mask=mask.to(model.device),
                        pad_token_id=plan.pad,
                        max_new_tokens=plan.max_new_tokens,
                        logits_processor=LogitsProcessorList([rec.processor]),
                        stopping_criteria=StoppingCriteriaList([rec.stopping]),
                        **settings,
                    )
                gens = _results(model, [plan.prompts[i] for i in idx], rec)
                for i, g in zip(idx, gens):
                    out[i] = g
    finally:
        model.hf.train(was_training)
    return [g for g in out if g is not None]


def _cuda_index(device: torch.device) -> list[int] | None:
    if device.type != "cuda":
        return None
    return [device.index or 0]


def _results(model: Model, prompts: Sequence[str], rec: _Recorder) -> list[Generation]:
    tok = model.tokenizer
    out = []
    for r, prompt in enumerate(prompts):
        ids = rec.ids[r]
        text = str(tok.decode(ids, skip_special_tokens=True))
        reason = rec.done[r] or "length"
        if rec.stops:
            at = _first_stop(text, rec.stops)
            if at is not None:
                text, reason = text[:at], "stop"
        out.append(
            Generation(
                prompt=prompt,
                text=text,
                tokens=tuple(tok.convert_ids_to_tokens(ids)) if ids else (),
                token_ids=tuple(ids),
                logprobs=tuple(rec.logprobs[r]),
                finish_reason=reason,
            )
        )
    return out
