"""Masked LMs on tiny config-built BERT / RoBERTa models: fill-mask, masking, evaluation and a
short continued-pretraining run (fast, offline)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import labkit as lk
from labkit._errors import ConfigError, DataError, InputError, LabkitWarning
from tests import _tiny

TEXTS = [t for t in _tiny.CORPUS if "<img" not in t] * 3


def _build(arch: str, folder: Path, *, head: bool = True) -> Path:
    """A tiny ``arch`` masked LM (``head=False``: a BERT encoder saved without its head)."""
    import transformers as tf

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if arch == "bert":
        from labkit.demo import model_path

        # the sizes of tests/_tiny.py's BERT classifier: the two share an encoder's shapes
        tok = tf.AutoTokenizer.from_pretrained(str(model_path()), model_max_length=64)
        cfg = tf.BertConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        model = tf.BertForMaskedLM(cfg) if head else tf.BertModel(cfg)
    else:
        tok = _tiny._bpe(folder.parent / "_bpe", roberta=True, max_positions=64)
        cfg = tf.RobertaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            pad_token_id=tok.pad_token_id,
            max_position_embeddings=66,
        )
        model = tf.RobertaForMaskedLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mlm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-mlm")
    return {
        "bert": _build("bert", root / "bert"),
        "roberta": _build("roberta", root / "roberta"),
        "headless": _build("bert", root / "headless", head=False),
    }


@pytest.fixture
def bert(mlm_dirs: dict[str, Path]) -> lk.Model:
    return lk.load_model(mlm_dirs["bert"], task="masked-lm")


@pytest.fixture
def roberta(mlm_dirs: dict[str, Path]) -> lk.Model:
    return lk.load_model(mlm_dirs["roberta"], task="masked-lm")


# -- loading -------------------------------------------------------------------------------------
def test_load_masked_lm_task(bert: lk.Model) -> None:
    assert bert.task == "masked-lm"
    assert bert.labels == ()
    assert type(bert.hf).__name__ == "BertForMaskedLM"


def test_headless_checkpoint_warns_and_ties_decoder(mlm_dirs: dict[str, Path]) -> None:
    from labkit.mlm.load import output_tied

    with pytest.warns(LabkitWarning, match="no masked-LM head") as seen:
        a = lk.load_model(mlm_dirs["headless"], task="masked-lm", seed=3)
    assert "cls.predictions.transform.dense.weight" in str(seen[0].message)
    assert output_tied(a.hf)
    assert a.hf.cls.predictions.decoder.weight is a.hf.bert.embeddings.word_embeddings.weight
    with pytest.warns(LabkitWarning):
        b = lk.load_model(mlm_dirs["headless"], task="masked-lm", seed=3)
    dense = "cls.predictions.transform.dense.weight"
    assert torch.equal(a.hf.state_dict()[dense], b.hf.state_dict()[dense])  # seeded


# -- fill-mask -----------------------------------------------------------------------------------
def test_fill_one_mask(bert: lk.Model) -> None:
    from labkit.mlm import Candidate, Candidates

    out = bert.fill_mask("a [MASK] movie", top_k=4)
    assert isinstance(out, Candidates) and len(out) == 4
    assert all(isinstance(c, Candidate) for c in out)
    probs = [c.probability for c in out]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    for c in out:
        assert "[MASK]" not in c.text
        word = c.token[2:] if c.token.startswith("##") else c.token
        assert word in c.text


def test_fill_several_masks(bert: lk.Model) -> None:
    out = bert.fill_mask("a [MASK] movie and a [MASK] plot", top_k=2)
    assert len(out) == 2 and [len(x) for x in out] == [2, 2]
    assert [x.mask for x in out] == [0, 1]
    # filling the first mask leaves the second as it was
    assert all(c.text.count("[MASK]") == 1 for c in out[0])
    assert all(c.text.startswith("a ") and c.text.endswith(" plot") for c in out[1])


def test_generic_mask_maps_to_tokenizer_own(roberta: lk.Model) -> None:
    assert roberta.tokenizer.mask_token == "<mask>"
    generic = roberta.fill_mask("a [MASK] movie", top_k=3)
    own = roberta.fill_mask("a <mask> movie", top_k=3)
    assert [c.token_id for c in generic] == [c.token_id for c in own]
    assert all("<mask>" not in c.text and "[MASK]" not in c.text for c in generic)


def test_subword_candidate_joins_the_word(bert: lk.Model) -> None:
    from labkit.mlm.fill import _candidate

    tok = bert.tokenizer
    text = "a walk [MASK] movie"
    start = text.index("[MASK]")
    ing = tok.convert_tokens_to_ids("##ing")
    c = _candidate(tok, ing, 0.5, text, start, start + 6, False)
    assert c.token == "##ing" and c.text == "a walking movie"


def test_fill_mask_html_escapes(bert: lk.Model) -> None:
    from labkit.mlm.fill import Candidate, Candidates

    evil = "<img src=x onerror=alert(1)>"
    cands = Candidates(
        [Candidate(token=evil, token_id=1, probability=0.5, text=f"a {evil} movie")],
        text="a [MASK] movie",
    )
    html = cands._repr_html_()
    assert "<img" not in html and "&lt;img" in html
    assert "<td>" in bert.fill_mask("a [MASK] movie")._repr_html_()


def test_fill_mask_bad_input(bert: lk.Model, tiny_model: lk.Model) -> None:
    with pytest.raises(InputError, match=r"no mask token.*\[MASK\]"):
        bert.fill_mask("no mask here")
    with pytest.raises(InputError, match="top_k"):
        bert.fill_mask("a [MASK]", top_k=0)
    with pytest.raises(InputError, match="top_k"):
        bert.fill_mask("a [MASK]", top_k=2.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at most"):
        bert.fill_mask("word " * 100 + "[MASK]")
    with pytest.raises(InputError, match="masked-lm"):
        tiny_model.fill_mask("a [MASK]")


def test_roberta_mask_hint(roberta: lk.Model) -> None:
    with pytest.raises(InputError, match=r"'<mask>'.*\[MASK\] works too"):
        roberta.fill_mask("nothing")


# -- masking and loss ----------------------------------------------------------------------------
def test_training_masks_only_ordinary_tokens_and_loss_only_there(bert: lk.Model) -> None:
    from labkit.mlm.masking import IGNORE_INDEX, MLMCollator, token_ids

    ids = token_ids(bert, TEXTS[:8], 64)
    collate = MLMCollator(bert.tokenizer, 0.5, seed=1)
    batch = collate([{"input_ids": r} for r in ids])
    labels, inputs = batch["labels"], batch["input_ids"]
    special = torch.tensor(bert.tokenizer.all_special_ids)
    chosen = labels != IGNORE_INDEX
    assert chosen.any()
    assert not torch.isin(labels[chosen], special).any()  # [CLS], [SEP], padding never chosen
    original = torch.full_like(inputs, bert.tokenizer.pad_token_id)
    for i, r in enumerate(ids):
        original[i, : len(r)] = torch.tensor(r)
    assert torch.equal(inputs[~chosen], original[~chosen])  # unchosen tokens are untouched
    assert torch.equal(labels[chosen], original[chosen])  # chosen ones are learned as they were
    # the model's loss is the mean cross-entropy over the chosen positions only
    out = bert.hf(**batch)
    manual = torch.nn.functional.cross_entropy(out.logits[chosen], labels[chosen])
    assert torch.allclose(out.loss, manual, atol=1e-5)
    # the same seed masks the same way; the collator never touches the global RNG
    state = torch.get_rng_state()
    again = MLMCollator(bert.tokenizer, 0.5, seed=1)([{"input_ids": r} for r in ids])
    assert torch.equal(again["labels"], labels)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_batch_always_has_a_masked_token(bert: lk.Model) -> None:
    from labkit.mlm.masking import IGNORE_INDEX, MLMCollator, token_ids

    ids = token_ids(bert, ["great fun"], 64)
    collate = MLMCollator(bert.tokenizer, 0.01, seed=0)  # chance alone would mask nothing
    for _ in range(5):
        batch = collate([{"input_ids": r} for r in ids])
        chosen = batch["labels"] != IGNORE_INDEX
        assert chosen.sum() >= 1
        assert torch.isfinite(bert.hf(**batch).loss)


def test_eval_masks_are_fixed(bert: lk.Model) -> None:
    from labkit.mlm.masking import IGNORE_INDEX, masked_rows, token_ids

    ids = token_ids(bert, TEXTS, 64)
    a = masked_rows(bert, ids, 0.15)
    b = masked_rows(bert, ids, 0.15)
    assert a == b
    mask_id = bert.tokenizer.mask_token_id
    for row in a:
        chosen = [j for j, lab in enumerate(row["labels"]) if lab != IGNORE_INDEX]
        assert chosen  # at least one mask per text
        assert all(row["input_ids"][j] == mask_id for j in chosen)
    assert masked_rows(bert, ids, 0.15, seed=5) != a


def test_evaluate_is_deterministic_and_matches_sums(bert: lk.Model) -> None:
    from labkit.mlm import MLMMetrics

    m1 = bert.evaluate(TEXTS)
    m2 = lk.mlm.evaluate_mlm(bert, TEXTS, batch_size=3)
    assert isinstance(m1, MLMMetrics)
    assert m1.masked_tokens == m2.masked_tokens > 0
    assert math.isclose(m1.loss, m2.loss, rel_tol=1e-5)
    assert math.isclose(m1.perplexity, math.exp(m1.loss), rel_tol=1e-9)
    assert 0 <= m1.masked_accuracy <= 1
    assert set(m1.as_dict()) == {"loss", "perplexity", "masked_accuracy"}
    assert "masked-token accuracy" in m1._repr_html_()


def test_masked_stats_counts() -> None:
    from labkit.mlm.masking import masked_stats

    logits = torch.zeros(2, 3, 4)
    logits[0, 1, 2] = 10.0  # right
    logits[1, 0, 1] = 10.0  # wrong (label 3)
    labels = torch.tensor([[-100, 2, -100], [3, -100, -100]])
    out = masked_stats(logits, labels)
    assert out[:, 1].tolist() == [1.0, 1.0]
    assert out[:, 2].tolist() == [1.0, 0.0]
    assert out[0, 0] < 0.01 < out[1, 0]


def test_evaluate_bad_input(bert: lk.Model) -> None:
    with pytest.raises(DataError):
        bert.evaluate([])
    with pytest.raises(ConfigError, match="mask_probability"):
        lk.mlm.evaluate_mlm(bert, TEXTS, mask_probability=1.5)
    with pytest.raises(ConfigError, match="batch_size"):
        lk.mlm.evaluate_mlm(bert, TEXTS, batch_size=0)


# -- continued pretraining -----------------------------------------------------------------------
def test_finetune_masked_lm(roberta: lk.Model, tmp_path: Path) -> None:
    data = lk.load_data([{"text": t} for t in TEXTS * 3], task="masked-lm")
    before = roberta.evaluate(data, split="validation")
    run = lk.finetune(
        roberta,
        data,
        max_steps=8,
        batch_size=8,
        eval_every=4,
        lr=3e-3,
        progress=False,
        output_dir=tmp_path / "run",
    ).wait()
    assert run.status == "finished"
    assert set(run.metrics) >= {"loss", "perplexity", "masked_accuracy"}
    assert "masked_accuracy" in run._repr_html_()  # the panel's static snapshot shows it
    after = roberta.evaluate(data, split="validation")
    # the run's last evaluation scored the same fixed masks as Model.evaluate
    assert math.isclose(run.evaluation.loss, after.loss, rel_tol=1e-4)
    assert after.masked_tokens == before.masked_tokens
    assert after.loss < before.loss
    reopened = lk.load_run(tmp_path / "run")
    assert "masked_accuracy" in reopened.metrics
    # the checkpoint holds the whole head: it reloads as a masked LM with no fresh weights
    again = lk.load_model(run.checkpoints[-1], task="masked-lm")
    # the checkpoint says what it is: loaded with task auto it is a masked LM, not a classifier
    assert lk.load_model(run.checkpoints[-1]).task == "masked-lm"
    from labkit.ui.app import _checkpoint_task

    assert _checkpoint_task(run.checkpoints[-1]) == "masked-lm"
    assert math.isclose(again.evaluate(data, split="validation").loss, after.loss, rel_tol=1e-5)


def test_lora_on_a_masked_lm_trains_the_head_transform_and_keeps_the_decoder_tied(
    bert: lk.Model, tmp_path: Path
) -> None:
    import copy

    model = copy.deepcopy(bert)
    head = model.hf.cls.predictions.transform.dense.weight.detach().clone()
    data = lk.load_data([{"text": t} for t in TEXTS * 3], task="masked-lm")
    run = lk.finetune(
        model,
        data,
        lora=True,
        max_steps=4,
        batch_size=8,
        lr=3e-3,
        progress=False,
        output_dir=tmp_path / "run",
    ).wait()
    assert run.status == "finished", run.error
    base = model.base
    trained = {n for n, p in model.hf.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trained)
    assert any("transform" in n for n in trained)  # the (possibly fresh) head transform trains
    # the head's copy in the adapter moved; the decoder is still the word embeddings
    live = dict(model.hf.named_parameters())
    moved = [n for n in trained if "transform.modules_to_save" in n and n.endswith("dense.weight")]
    assert moved and not torch.equal(live[moved[0]].detach(), head)
    assert base.cls.predictions.decoder.weight is base.bert.embeddings.word_embeddings.weight
    assert model.fill_mask("the movie was [MASK] .", top_k=3)


def test_lora_trains_each_familys_masked_lm_head() -> None:
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        DistilBertConfig,
        DistilBertForMaskedLM,
        RobertaConfig,
        RobertaForMaskedLM,
    )

    from labkit.train.lora import head_modules

    small = {"vocab_size": 100, "num_hidden_layers": 1, "num_attention_heads": 2}
    bert = BertForMaskedLM(BertConfig(hidden_size=16, intermediate_size=32, **small))
    roberta = RobertaForMaskedLM(RobertaConfig(hidden_size=16, intermediate_size=32, **small))
    distil = DistilBertForMaskedLM(
        DistilBertConfig(vocab_size=100, dim=16, hidden_dim=32, n_layers=1, n_heads=2)
    )
    assert head_modules(bert) == ["cls.predictions.transform"]
    assert head_modules(roberta) == ["lm_head.dense", "lm_head.layer_norm"]
    assert head_modules(distil) == ["vocab_layer_norm", "vocab_transform"]


def test_finetune_masked_lm_refuses_labelled_data(bert: lk.Model, toy_data) -> None:
    with pytest.raises(DataError, match="masked-lm"):
        lk.finetune(bert, toy_data, max_steps=1, progress=False)


# -- domain adaptation ---------------------------------------------------------------------------
def test_adapt_encoder_copies_encoder_keeps_head(bert: lk.Model, tiny_dirs) -> None:
    clf = lk.load_model(tiny_dirs["bert"], seed=0)
    head = clf.hf.classifier.weight.clone()
    pooler = clf.hf.bert.pooler.dense.weight.clone()
    lk.mlm.adapt_encoder(clf, bert)
    assert torch.equal(
        clf.hf.bert.embeddings.word_embeddings.weight,
        bert.hf.bert.embeddings.word_embeddings.weight,
    )
    assert torch.equal(clf.hf.classifier.weight, head)
    assert torch.equal(clf.hf.bert.pooler.dense.weight, pooler)


def test_adapt_encoder_refuses_other_shapes(roberta: lk.Model, tiny_dirs) -> None:
    clf = lk.load_model(tiny_dirs["bert"], seed=0)
    with pytest.raises(ConfigError, match="does not fit"):
        lk.mlm.adapt_encoder(clf, roberta)


def test_domain_adaptation_runs(bert: lk.Model, tiny_dirs, tmp_path: Path) -> None:
    from labkit.mlm import DomainAdaptation

    corpus = lk.load_data([{"text": t} for t in TEXTS * 2], task="masked-lm", test_size=0.2)
    data = lk.load_data(_tiny.toy_rows(8), test_size=0.25)
    result = lk.mlm.domain_adaptation(
        masked_lm=bert,
        corpus=corpus,
        data=data,
        classifier=str(tiny_dirs["bert"]),
        seeds=(0, 1),
        pretrain_steps=2,
        finetune_steps=2,
        batch_size=8,
        max_length=32,
        output_dir=tmp_path,
    )
    assert isinstance(result, DomainAdaptation)
    assert len(result.original) == len(result.adapted) == 2
    assert all(0 <= a <= 1 for a in result.original + result.adapted)
    table = result.table()
    assert [r["encoder"] for r in table] == ["original", "adapted (continued MLM)"]
    assert {"mean", "spread", "seed 0", "seed 1"} <= set(table[0])
    assert "<table" in result._repr_html_() and "seed 1" in result._repr_html_()
    with pytest.raises(ConfigError, match="finetune_steps"):
        lk.mlm.domain_adaptation(masked_lm=bert, corpus=corpus, data=data, finetune_steps=0)


def test_a_list_of_strings_is_masked_lm_text() -> None:
    data = lk.load_data(TEXTS * 3, task="masked-lm")
    assert isinstance(data, lk.LMData) and data.kind == "text"
    assert sorted([*data.train["text"], *data.validation["text"]]) == sorted(TEXTS * 3)
