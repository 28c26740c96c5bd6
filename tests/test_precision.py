"""precision="auto" is measured on a GPU: the probe picks a candidate and leaves no trace."""

from __future__ import annotations

import torch

from labkit.train.precision import candidates, probe_precision


def _batch(model, texts):
    enc = model.tokenizer(texts, padding=True, return_tensors="pt")
    batch = dict(enc)
    if model.task == "causal-lm":
        batch["labels"] = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    else:
        batch["labels"] = torch.tensor([0, 1])
    return batch


def test_the_cpu_trains_in_fp32_without_a_probe():
    choice = probe_precision(None, {}, torch.device("cpu"))
    assert candidates(torch.device("cpu")) == ("fp32",)
    assert choice.precision == "fp32" and choice.seconds == {}
    assert "only choice" in choice.reason


def test_the_probe_times_each_candidate_and_leaves_no_trace(tiny_lm, tiny_model):
    for model in (tiny_lm, tiny_model):
        model.hf.eval()
        before = {k: v.clone() for k, v in model.hf.state_dict().items()}
        rng = torch.random.get_rng_state()
        choice = probe_precision(
            model.hf,
            _batch(model, ["a great movie", "dull"]),
            torch.device("cpu"),
            options=("fp32", "bf16"),
        )
        assert set(choice.seconds) == {"fp32", "bf16"}
        assert all(s > 0 for s in choice.seconds.values())
        fastest = min(choice.seconds, key=choice.seconds.get)
        # the faster one wins unless it is within 5% of fp32, which then wins
        expected = "fp32" if choice.seconds[fastest] > 0.95 * choice.seconds["fp32"] else fastest
        assert choice.precision == expected
        assert choice.precision in choice.reason
        after = model.hf.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert all(p.grad is None for p in model.hf.parameters())
        assert torch.equal(torch.random.get_rng_state(), rng)
        assert not model.hf.training  # its mode is given back


def test_a_run_probes_with_one_real_training_batch(tiny_lm, toy_data):
    import labkit
    from labkit.train.config import FinetuneConfig
    from labkit.train.finetune import _probe, _task_parts

    rows = [{"text": t} for t in toy_data.train["text"]]
    data = labkit.load_data(rows, task="causal-lm")
    config = FinetuneConfig(batch_size=4)
    parts = _task_parts(tiny_lm, data, 64, config)
    choice = _probe(tiny_lm, parts, config)
    assert choice.precision == "fp32"  # the CPU's only candidate
    run = labkit.finetune(tiny_lm, data, max_steps=1, progress=False)
    run.wait()
    assert run.status == "finished" and run.precision is None  # no probe on a CPU
