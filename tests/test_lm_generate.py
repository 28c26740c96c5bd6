"""``Model.generate`` on tiny config-built causal LMs: greedy ids are ``hf.generate``'s, batches
are left-padded without changing any row, log-probabilities are the model's, stop strings, eos,
cancel, seeds, and every bad input refused with a clear error."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch

import labkit
from labkit import ConfigError, InputError, LabkitWarning
from labkit.lm.generate import prompt_ids

PROMPTS = ["a gorgeous movie", "the worst film of the year, painfully slow and predictable", "x"]


@pytest.fixture(scope="module")
def lms(tiny_lm_dirs):
    """gpt2, llama and the chat llama, loaded once for the module (generation is read-only)."""
    return {name: labkit.load_model(path, device="cpu") for name, path in tiny_lm_dirs.items()}


def _hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """What transformers alone makes for one prompt's ids (batch of one, no padding)."""
    x = torch.tensor([ids])
    out = model.hf.generate(
        x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=model.tokenizer.pad_token_id,
    )
    return out[0, len(ids) :].tolist()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_ids_are_hf_generates_alone_and_in_a_left_padded_batch(lms, arch):
    lm = lms[arch]
    batch = lm.generate(PROMPTS, max_new_tokens=10)
    assert [g.prompt for g in batch] == PROMPTS
    for prompt, g in zip(PROMPTS, batch):
        alone = lm.generate(prompt, max_new_tokens=10)[0]
        assert list(alone.token_ids) == _hf_greedy(lm, prompt_ids(lm, prompt, chat=False), 10)
        assert g.token_ids == alone.token_ids  # padding changed nothing
        assert g.text == lm.tokenizer.decode(list(g.token_ids), skip_special_tokens=True)
        assert len(g.tokens) == len(g.token_ids) == len(g.logprobs)
        assert g.finish_reason in ("length", "eos")
    # batches of one and two give the same rows as one batch of three
    assert [g.token_ids for g in lm.generate(PROMPTS, max_new_tokens=10, batch_size=2)] == [
        g.token_ids for g in batch
    ]


def _spy_inputs(monkeypatch, lm) -> list[list[int]]:
    """The unpadded prompt ids each hf.generate call gets."""
    seen: list[list[int]] = []
    real = lm.hf.generate

    def spy(*args, **kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        seen.extend(row[m.bool()].tolist() for row, m in zip(ids, mask))
        return real(*args, **kwargs)

    monkeypatch.setattr(lm.hf, "generate", spy)
    return seen


def test_chat_auto_wraps_the_prompt_in_the_template_only_where_there_is_one(lms, monkeypatch):
    chat, plain = lms["chat"], lms["llama"]
    seen_chat = _spy_inputs(monkeypatch, chat)
    seen_plain = _spy_inputs(monkeypatch, plain)
    chat.generate("hello there", max_new_tokens=2)
    chat.generate("hello there", max_new_tokens=2, chat=False)
    plain.generate("hello there", max_new_tokens=2)
    templated = chat.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello there"}], add_generation_prompt=True, tokenize=False
    )
    assert "assistant" in templated
    assert seen_chat[0] == chat.tokenizer(templated, add_special_tokens=False)["input_ids"]
    assert seen_chat[1] == chat.tokenizer("hello there")["input_ids"]
    assert seen_plain == [plain.tokenizer("hello there")["input_ids"]]
    with pytest.raises(ConfigError, match=r"chat=True needs a chat template.*chat=False"):
        plain.generate("hello there", chat=True)
    with pytest.raises(ConfigError, match="chat must be 'auto', True or False"):
        chat.generate("hello there", chat="yes")


def _teacher_forced(lm, prompt: list[int], generated: list[int]) -> list[float]:
    """Each generated token's log-softmax under one forward pass over prompt + generation."""
    ids = torch.tensor([prompt + generated])
    with torch.no_grad():
        logp = lm.hf(ids).logits[0].float().log_softmax(-1)
    rows = torch.arange(len(prompt) - 1, len(prompt) + len(generated) - 1)
    return logp[rows, torch.tensor(generated)].tolist()


@pytest.mark.parametrize("settings", [{}, {"temperature": 1.7, "top_p": 0.6, "seed": 3}])
def test_logprobs_are_the_models_log_softmax_before_temperature_and_top_p(lms, settings):
    lm = lms["gpt2"]
    (g,) = lm.generate(PROMPTS[1], max_new_tokens=8, **settings)
    expected = _teacher_forced(lm, prompt_ids(lm, PROMPTS[1], chat=False), list(g.token_ids))
    assert g.logprobs == pytest.approx(expected, abs=1e-4)
    assert all(lp < 0 for lp in g.logprobs)
    assert g.logprob == pytest.approx(sum(expected), abs=1e-3)
    assert g.perplexity == pytest.approx(torch.tensor(expected).neg().mean().exp().item(), 1e-3)


def test_stop_strings_cut_the_text_end_the_row_and_never_reach_on_token(lms):
    lm = lms["llama"]
    sampled = {"max_new_tokens": 24, "temperature": 1.0, "seed": 0}  # varied text, repeatable
    pieces: list[str] = []
    full = lm.generate(PROMPTS[1], **sampled, on_token=lambda r, p: pieces.append(p))[0]
    # a stop string across two tokens (its first character ends one, the rest starts the next)
    # whose first occurrence is there
    ends = [len("".join(pieces[: k + 1])) for k in range(len(pieces))]
    k = next(
        k
        for k in range(1, len(pieces) - 1)
        if pieces[k]
        and pieces[k + 1]
        and full.text.find(pieces[k][-1] + pieces[k + 1][:1]) == ends[k] - 1
    )
    stop = pieces[k][-1] + pieces[k + 1][:1]
    got: list[str] = []
    (g,) = lm.generate(
        PROMPTS[1], **sampled, stop=["never-there", stop], on_token=lambda r, p: got.append(p)
    )
    assert g.finish_reason == "stop" and g.text == full.text[: ends[k] - 1]
    assert g.token_ids == full.token_ids[: k + 2]  # it ended at the stop's last token
    assert "".join(got) == g.text  # the stop's first character was held back, never sent
    assert len(got) == len(g.token_ids)  # one call per token


def test_on_token_names_each_row_and_its_pieces_join_to_its_text(lms):
    lm = lms["gpt2"]
    pieces: dict[int, list[str]] = {0: [], 1: [], 2: []}
    gens = lm.generate(PROMPTS, max_new_tokens=6, on_token=lambda r, p: pieces[r].append(p))
    for r, g in enumerate(gens):
        assert "".join(pieces[r]) == g.text
        assert len(pieces[r]) == len(g.token_ids)


def test_half_characters_are_held_back_until_their_last_byte(lms):
    lm = lms["gpt2"]  # byte-level BPE: a sampled draw splits multi-byte characters
    pieces: list[str] = []
    (g,) = lm.generate(
        "emoji 😀 and 中文",
        max_new_tokens=40,
        temperature=1.5,
        seed=0,
        on_token=lambda r, p: pieces.append(p),
    )
    ids = list(g.token_ids)
    half = [i for i in range(1, len(ids)) if lm.tokenizer.decode(ids[:i]).endswith("\ufffd")]
    assert half  # the draw did cut characters in two
    for i in half:  # what was sent after i tokens never ends with half a character
        assert not "".join(pieces[:i]).endswith("\ufffd")
    assert "".join(pieces) == g.text and len(pieces) == len(ids)


def test_the_end_of_sequence_token_ends_a_row_and_only_that_row(lms, monkeypatch):
    lm = lms["llama"]
    free = [g.token_ids for g in lm.generate(PROMPTS[:2], max_new_tokens=8)]
    # the first token row 0 makes becomes the end-of-sequence token
    eos = free[0][0]
    monkeypatch.setattr(lm.base.generation_config, "eos_token_id", eos)
    first, second = lm.generate(PROMPTS[:2], max_new_tokens=8)
    assert first.finish_reason == "eos" and first.token_ids == (eos,)
    assert second.token_ids == (free[1][: free[1].index(eos) + 1] if eos in free[1] else free[1])
    assert second.finish_reason == ("eos" if eos in free[1] else "length")
    assert list(first.token_ids) == _hf_greedy(lm, prompt_ids(lm, PROMPTS[0], chat=False), 8)


def test_sampling_with_a_seed_repeats_and_leaves_the_callers_random_state_alone(lms):
    lm = lms["llama"]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = lm.generate(PROMPTS[0], max_new_tokens=10, temperature=1.0, seed=7)[0]
    b = lm.generate(PROMPTS[0], max_new_tokens=10, temperature=1.0, seed=7)[0]
    c = lm.generate(PROMPTS[0], max_new_tokens=10, temperature=1.0, seed=8)[0]
    assert torch.rand(1) == expected_next
    assert a.token_ids == b.token_ids and a.logprobs == b.logprobs
    assert a.token_ids != c.token_ids
    greedy = lm.generate(PROMPTS[0], max_new_tokens=10)[0]
    assert a.token_ids != greedy.token_ids  # it did sample


def test_cancel_ends_every_row_at_the_next_token(lms):
    lm = lms["gpt2"]
    cancel = threading.Event()
    seen: list[int] = []

    def on_token(row: int, piece: str) -> None:
        seen.append(row)
        if seen.count(0) == 3:
            cancel.set()  # as a Stop button on another thread would

    gens = lm.generate(
        PROMPTS[:2], max_new_tokens=30, on_token=on_token, cancel=cancel, batch_size=1
    )
    # set while the 3rd token was handed over: the 4th is the last
    assert gens[0].finish_reason == "cancelled" and len(gens[0].token_ids) == 4
    # the next batch had not started: it is cancelled before its first token
    assert gens[1].finish_reason == "cancelled" and gens[1].token_ids == ()
    assert gens[0].text == lm.tokenizer.decode(list(gens[0].token_ids), skip_special_tokens=True)


def test_generate_on_a_classifier_names_the_task(tiny_model):
    with pytest.raises(InputError, match=r"generate needs a causal-lm model.*classification"):
        tiny_model.generate("a fine film")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_new_tokens": 0}, r"max_new_tokens must be between 1 and 127.*got 0"),
        ({"max_new_tokens": -5}, "max_new_tokens must be between 1"),
        ({"max_new_tokens": 10**6}, r"context is 128 tokens.*got 1,000,000"),
        ({"max_new_tokens": 128}, "between 1 and 127"),  # no room left for the prompt
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": True}, "max_new_tokens must be a whole number"),
        ({"temperature": -0.1}, "temperature must be a number >= 0"),
        ({"temperature": float("nan")}, "temperature must be a number >= 0"),
        ({"temperature": "hot"}, "temperature must be a number >= 0"),
        ({"top_p": 0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"top_p": float("inf")}, r"top_p must be in \(0, 1\]"),
        ({"stop": ["ok", ""]}, "stop holds an empty string"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"seed": "7"}, "seed must be a whole number"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(lms, settings, message):
    with pytest.raises(ConfigError, match=message):
        lms["llama"].generate("a movie", **settings)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ([], "prompts is empty: pass at least one string"),
        (["ok", None], r"prompts\[1\] is NoneType"),
        (b"bytes", "prompts must be a string or a list of strings"),
    ],
)
def test_an_empty_prompt_list_or_a_non_text_prompt_is_refused(lms, prompts, message):
    with pytest.raises(InputError, match=message):
        lms["llama"].generate(prompts)
    with pytest.raises(InputError, match=r"stop\[0\] is int"):
        lms["llama"].generate("ok", stop=[3])


def test_an_empty_prompt_continues_from_the_start_token(lms):
    (g,) = lms["llama"].generate("", max_new_tokens=2)
    assert len(g.token_ids) == 2 and g.prompt == ""


def test_a_prompt_longer_than_the_context_is_cut_from_the_left_with_one_warning(lms):
    lm = lms["llama"]
    long = " ".join(["the worst film of the year"] * 40)
    ids = prompt_ids(lm, long, chat=False)
    assert len(ids) > lm.max_length
    with pytest.warns(LabkitWarning) as caught:
        gens = lm.generate([long, long + " again"], max_new_tokens=8)
    assert len(caught) == 1
    assert "2 prompt(s)" in str(caught[0].message) and "last 120" in str(caught[0].message)
    assert caught[0].filename == __file__  # pointed at the caller's line
    assert list(gens[0].token_ids) == _hf_greedy(lm, ids[-120:], 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.generate("short", max_new_tokens=8)  # nothing to cut: no warning


def test_generation_as_json_and_html_escapes_hostile_text(lms):
    import json

    (g,) = lms["gpt2"].generate("<img src=x onerror=alert(1)>", max_new_tokens=3)
    data = json.loads(json.dumps(g.to_dict()))
    assert data["prompt"] == g.prompt and data["token_ids"] == list(g.token_ids)
    assert data["finish_reason"] == g.finish_reason and len(data["logprobs"]) == 3
    html = g._repr_html_()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "3 tokens" in html and "log-prob" in html
    assert str(g) == g.text


@pytest.mark.slow
def test_the_offline_lm_answers_and_its_greedy_ids_are_hf_generates():
    lm = labkit.demo.lm(device="cpu")
    prompts = ["What is the capital of France?", "Name a colour."]
    pieces: list[str] = []
    gens = lm.generate(
        prompts, max_new_tokens=10, on_token=lambda r, p: pieces.append(p) if r == 0 else None
    )
    assert "Paris" in gens[0].text and "".join(pieces) == gens[0].text
    for prompt, g in zip(prompts, gens):  # in the chat template, left-padded in one batch
        ids = prompt_ids(lm, prompt, chat=True)
        assert list(g.token_ids) == _hf_greedy(lm, ids, 10)
