"""Memory budgets: attention estimates its peak before the pass and refuses with advice when
the estimate is over the budget; long inputs are truncated to the model's limit with one
warning instead of exhausting memory."""

from __future__ import annotations

import re
import warnings

import pytest

import labkit
from labkit import ConfigError, InputError, LabkitWarning
from labkit.inspect.attention.memory import attention_memory

LONG = " ".join(["the movie was not good but the actors were fun"] * 410)  # ~4,100 words


def _forward_calls(model) -> list[int]:
    calls: list[int] = []
    model.hf.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_estimate_covers_the_result_and_grows_with_the_square(tiny_model) -> None:
    result = labkit.attention(tiny_model, "the movie was not good at all")
    t = len(result.tokens)
    need = attention_memory(tiny_model, t)
    assert need.kept >= result.weights.nbytes
    assert need.maps == 2 * 4 * t * t * 4  # 2 layers x 4 heads x T^2 float32 weights
    double = attention_memory(tiny_model, 2 * t)
    assert double.maps == 4 * need.maps and double.kept == 4 * need.kept
    fewer = attention_memory(tiny_model, t, layers=[0], heads=[1, 2])
    assert fewer.kept == need.kept // 4 and fewer.maps == need.maps  # the pass still returns all


def test_over_budget_is_refused_before_the_pass_with_sizes_and_advice(tiny_model) -> None:
    calls = _forward_calls(tiny_model)
    text = " ".join(["good"] * 60)
    with pytest.raises(InputError) as info:
        labkit.attention(tiny_model, text, memory_budget=20_000)
    message = str(info.value)
    assert calls == []  # nothing ran
    assert "62 tokens" in message and "over memory_budget of 19.5 KiB" in message
    assert "layers=" in message and "heads=" in message and "memory_budget='" in message
    fit = int(re.search(r"shorten the text to about (\d+) tokens", message).group(1))
    assert 2 <= fit < 62
    assert attention_memory(tiny_model, fit).total <= 20_000
    assert attention_memory(tiny_model, fit + 1).total > 20_000
    # the advice works: that many tokens (CLS + words + SEP) pass under the same budget
    ok = labkit.attention(tiny_model, " ".join(["good"] * (fit - 2)), memory_budget=20_000)
    assert len(ok.tokens) == fit


def test_the_suggested_budget_is_enough(tiny_model) -> None:
    text = " ".join(["good"] * 60)
    with pytest.raises(InputError) as info:
        labkit.attention(tiny_model, text, memory_budget="10KB")
    suggested = re.search(r"memory_budget='([^']+)'", str(info.value)).group(1)
    result = labkit.attention(tiny_model, text, memory_budget=suggested)
    assert result.weights.shape == (2, 4, 62, 62)


def test_keeping_fewer_heads_fits_where_all_do_not(tiny_model) -> None:
    text = " ".join(["good"] * 60)
    full = attention_memory(tiny_model, 62)
    one = attention_memory(tiny_model, 62, layers=0, heads=0)
    budget = (full.total + one.total) // 2
    with pytest.raises(InputError):
        labkit.attention(tiny_model, text, memory_budget=budget)
    result = labkit.attention(tiny_model, text, layers=0, heads=0, memory_budget=budget)
    assert result.weights.shape == (1, 1, 62, 62)


def test_the_automatic_budget_refuses_and_says_so(tiny_model, monkeypatch) -> None:
    import labkit.inspect.budget

    monkeypatch.setattr(labkit.inspect.budget, "available_ram", lambda: 8192)  # half: 4 KiB
    with pytest.raises(InputError, match="automatic memory budget"):
        labkit.attention(tiny_model, "the movie was not good")


@pytest.mark.parametrize("bad", [0, -5, True, "lots", "12 parsecs", "-1GB", 1.5, None])
def test_bad_budgets_are_config_errors(tiny_model, bad) -> None:
    with pytest.raises(ConfigError, match="memory_budget must be"):
        labkit.attention(tiny_model, "fine", memory_budget=bad)


@pytest.mark.parametrize("good", ["auto", 10**9, "1GiB", " 512 mb ", "0.5GB"])
def test_budget_forms(tiny_model, good) -> None:
    assert labkit.attention(tiny_model, "fine", memory_budget=good).weights.shape[0] == 2


def test_long_text_is_truncated_with_one_warning(tiny_model) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = labkit.attention(tiny_model, LONG)
    ours = [w for w in seen if issubclass(w.category, LabkitWarning)]
    assert len(ours) == 1 and "128" in str(ours[0].message)
    assert result.weights.shape == (2, 4, 128, 128)


@pytest.mark.slow
def test_default_model_takes_a_4096_token_text(demo_model_session) -> None:
    model = demo_model_session
    assert len(model.tokenizer(LONG)["input_ids"]) > 4096
    for call in (
        lambda: labkit.attention(model, LONG),
        lambda: labkit.explain(model, LONG, method="saliency"),
    ):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result = call()
        ours = [w for w in seen if issubclass(w.category, LabkitWarning)]
        assert len(ours) == 1 and "512" in str(ours[0].message)
        assert len(result.tokens) == 512


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion"])
def test_explain_refuses_a_text_whose_smallest_pass_cannot_fit(tiny_model, method) -> None:
    from labkit.inspect.attribution.batching import bytes_per_row

    calls = _forward_calls(tiny_model)
    text = " ".join(["good"] * 60)
    with pytest.raises(InputError) as info:
        labkit.explain(tiny_model, text, method=method, memory_budget="10KB")
    message = str(info.value)
    assert calls == []  # refused before any pass, prediction included
    assert "62 tokens" in message and "over memory_budget of 9.77 KiB" in message
    fit = int(re.search(r"shorten the text to about (\d+) tokens", message).group(1))
    assert 2 <= fit < 62
    # the suggested budget is enough for the same text, and explain_dataset checks too
    suggested = re.search(r"memory_budget='([^']+)'", message).group(1)
    assert labkit.explain(tiny_model, text, method=method, memory_budget=suggested).scores.shape
    ran = len(calls)
    assert ran >= 1
    with pytest.raises(InputError, match="62 tokens"):
        labkit.explain_dataset(
            tiny_model, ["fine", text], subset="all", method=method, memory_budget="10KB"
        )
    assert len(calls) == ran  # refused before its prediction pass too
    rows = 2 if method == "integrated_gradients" else 1
    grads = method != "occlusion"
    assert rows * bytes_per_row(tiny_model, 62, backward=grads) > 10_000


def test_explain_under_the_automatic_limit_says_so(tiny_model, monkeypatch) -> None:
    import labkit.inspect.budget

    monkeypatch.setattr(labkit.inspect.budget, "available_ram", lambda: 8192)  # half: 4 KiB
    with pytest.raises(InputError, match="half the memory available now"):
        labkit.explain(tiny_model, "the movie was not good")
