"""Generation with a causal LM: ``Generation`` (one prompt's continuation) and ``generate``.

``transformers``' own ``generate`` does the decoding, so greedy ids are exactly
``hf.generate(do_sample=False)``'s and the speed is its speed. What labkit adds around it:
checked arguments, the chat template for instruct models, left padding for batches, the prompt
cut from the left to fit the context (one warning), stop strings, per-token log-probabilities,
a per-token callback (streaming views, the terminal) and cancellation from another thread.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, InputError, LabkitWarning
from labkit._utils.text import as_texts

if TYPE_CHECKING:
    import torch

    from labkit.model import Model

__all__ = ["FINISH_REASONS", "Generation", "check_generate_args", "generate", "prompt_ids"]

# why a row ended: its end-of-sequence token, max_new_tokens, a stop string, or cancel
FINISH_REASONS = ("eos", "length", "stop", "cancelled")
# the longest generation a call may ask for, whatever the context (a typo guard: 10**6)
MAX_NEW_TOKENS_LIMIT = 32_768

OnToken = Callable[[int, str], None]


@dataclass(frozen=True)
class Generation:
    """One prompt's continuation.

    ``prompt`` is the text as given, ``text`` the generated text (special tokens dropped, cut
    before a stop string), ``tokens`` / ``token_ids`` the generated tokens only (the final
    end-of-sequence token included when the model made one), ``logprobs`` each generated
    token's log-probability under the model (its logits before temperature and top-p),
    ``finish_reason`` one of ``eos``, ``length``, ``stop``, ``cancelled``.
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

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from labkit.render.generation import generation_html

        return generation_html([self])


def _positive_int(value: Any, name: str) -> int:
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
) -> tuple[bool, tuple[str, ...]]:
    """Validate generation settings; returns (use the chat template, the stop strings)."""
    _positive_int(max_new_tokens, "max_new_tokens")
    limit = min(model.max_length, MAX_NEW_TOKENS_LIMIT)
    if not 1 <= max_new_tokens <= limit:
        raise ConfigError(
            f"max_new_tokens must be between 1 and {limit:,} (the model's context is "
            f"{model.max_length:,} tokens), got {max_new_tokens:,}."
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
    if _positive_int(batch_size, "batch_size") < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
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


class _Recorder:
    """Per-step bookkeeping during ``hf.generate``: log-probabilities, text, stops, cancel.

    Its ``processor`` sees each step's logits (before temperature/top-p, which run after
    custom processors) and keeps their log-softmax; its ``put`` (the streamer hook) receives
    the chosen tokens and keeps their log-probabilities only, so memory stays O(tokens).
    """

    def __init__(
        self,
        model: Model,
        size: int,
        *,
        eos: set[int],
        stops: tuple[str, ...],
        on_token: OnToken | None,
        cancel: threading.Event | None,
        row0: int,
    ) -> None:
        self.tok = model.tokenizer
        self.size = size
        self.eos = eos
        self.stops = stops
        self.on_token = on_token
        self.cancel = cancel
        self.row0 = row0
        self.ids: list[list[int]] = [[] for _ in range(size)]
        self.logprobs: list[list[float]] = [[] for _ in range(size)]
        self.sent: list[str] = ["" for _ in range(size)]
        self.done: list[str | None] = [None] * size
        self._logp: torch.Tensor | None = None
        self._prompt_seen = False
        self.decode_each = on_token is not None or bool(stops)

    # a LogitsProcessor (a callable is enough for transformers)
    def processor(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._logp = scores.float().log_softmax(-1)
        return scores

    # the streamer protocol: put(ids) after each step (the prompt first), end() at the end
    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        chosen = value.view(-1).tolist()
        logp = self._logp
        picked = (
            logp.gather(-1, value.view(-1, 1).to(logp.device)).view(-1).tolist()
            if logp is not None
            else [math.nan] * len(chosen)
        )
        for r, (tid, lp) in enumerate(zip(chosen, picked)):
            if self.done[r] is not None:
                continue
            self.ids[r].append(int(tid))
            self.logprobs[r].append(float(lp))
            if int(tid) in self.eos:
                self.done[r] = "eos"
            if self.decode_each:
                self._text_step(r)

    def _text_step(self, r: int) -> None:
        text = self.tok.decode(self.ids[r], skip_special_tokens=True)
        if self.stops and self.done[r] is None:
            at = _first_stop(text, self.stops)
            if at is not None:
                text = text[:at]
                self.done[r] = "stop"
        if text.endswith("\ufffd") and self.done[r] is None:
            return  # half of a multi-byte character: wait for the rest
        new = text[len(self.sent[r]) :] if text.startswith(self.sent[r]) else ""
        self.sent[r] = text
        if new and self.on_token is not None:
            self.on_token(self.row0 + r, new)

    def end(self) -> None:
        pass

    def stopping(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        import torch

        if self.cancel is not None and self.cancel.is_set():
            for r in range(self.size):
                if self.done[r] is None:
                    self.done[r] = "cancelled"
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        flags = [d == "stop" for d in self.done]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


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
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from labkit._utils.seed import seeded

    items = as_texts(prompts, what="prompts")
    use_chat, stops = check_generate_args(
        model,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        chat=chat,
        stop=stop,
        batch_size=batch_size,
    )
    rows = [prompt_ids(model, p, chat=use_chat) for p in items]
    _fit_context(rows, model.max_length - max_new_tokens, max_new_tokens, stacklevel)
    eos = _eos_ids(model)
    pad = model.tokenizer.pad_token_id
    pad = int(pad) if pad is not None else (min(eos) if eos else 0)
    sample = temperature > 0
    settings: dict[str, Any] = {"do_sample": sample, "max_new_tokens": max_new_tokens}
    if sample:
        settings.update(temperature=float(temperature), top_p=float(top_p), top_k=0)
    out: list[Generation] = []
    was_training = model.hf.training
    model.hf.eval()
    try:
        with torch.inference_mode(), seeded(seed, devices=_cuda_index(model.device)):
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                width = max(len(r) for r in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, r in enumerate(chunk):  # left padding: every row ends at the same column
                    ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
                    mask[i, width - len(r) :] = 1
                rec = _Recorder(
                    model,
                    len(chunk),
                    eos=eos,
                    stops=stops,
                    on_token=on_token,
                    cancel=cancel,
                    row0=start,
                )
                if cancel is not None and cancel.is_set():
                    rec.done = ["cancelled"] * len(chunk)
                else:
                    model.hf.generate(
                        input_ids=ids.to(model.device),
                        attention_mask=mask.to(model.device),
                        pad_token_id=pad,
                        logits_processor=LogitsProcessorList([rec.processor]),
                        stopping_criteria=StoppingCriteriaList([rec.stopping]),
                        streamer=rec,
                        **settings,
                    )
                out.extend(_results(model, items[start : start + len(chunk)], rec))
    finally:
        model.hf.train(was_training)
    return out


def _cuda_index(device: torch.device) -> list[int] | None:
    if device.type != "cuda":
        return None
    return [device.index or 0]


def _results(model: Model, prompts: Sequence[str], rec: _Recorder) -> list[Generation]:
    tok = model.tokenizer
    out = []
    for r, prompt in enumerate(prompts):
        ids = rec.ids[r]
        text = tok.decode(ids, skip_special_tokens=True)
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


def check_prompt(prompt: Any, what: str = "prompt") -> str:
    """One prompt string (a list of one is not silently taken)."""
    if not isinstance(prompt, str):
        raise InputError(f"{what} must be a string, got {type(prompt).__name__} ({prompt!r:.60}).")
    return as_texts(prompt, what=what)[0]
