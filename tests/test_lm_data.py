"""Causal-LM data through load_data: detection, every source kind, bad input named at the door;
the instruction task built from labelled text and its generative accuracy."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import labkit
from labkit import ConfigError, DataError
from labkit.lm.data import LMData
from labkit.lm.instruct import first_word, generative_accuracy, instructions
from tests._tiny import toy_rows

PAIRS = [{"prompt": f"say {w} {i}", "response": w} for i in range(5) for w in ("yes", "no")]
TEXTS = [{"text": f"the film number {i} was fine"} for i in range(20)]


def test_prompt_and_response_columns_load_as_instruction_data():
    data = labkit.load_data(PAIRS)
    assert isinstance(data, LMData) and data.kind == "instruction"
    assert data.columns == ("prompt", "response")
    for split in data.splits.values():
        assert split.column_names == ["prompt", "response"]
    assert len(data.train) + len(data.validation) == len(PAIRS)
    assert len(data.validation) == 1  # 10% carved, as for a classifier
    assert data.test is None
    kept = {(p, r) for s in data.splits.values() for p, r in zip(s["prompt"], s["response"])}
    assert kept == {(r["prompt"], r["response"]) for r in PAIRS}


def test_a_text_column_without_labels_loads_as_text_for_language_modelling():
    data = labkit.load_data(pd.DataFrame(TEXTS), test_size=0.2)
    assert isinstance(data, LMData) and data.kind == "text"
    assert list(data.splits) == ["train", "validation", "test"]
    assert len(data.test) == 4 and len(data.validation) == 2
    assert data.train.column_names == ["text"]


def test_labelled_text_still_loads_for_a_classifier_unless_asked_for_an_lm():
    rows = toy_rows(10)
    assert isinstance(labkit.load_data(rows), labkit.TextData)
    lm = labkit.load_data(rows, task="causal-lm")
    assert isinstance(lm, LMData) and lm.kind == "text"
    assert lm.train.column_names == ["text"]  # the labels are not text to learn
    with pytest.raises(DataError, match="no text column 'text'"):
        labkit.load_data(PAIRS, task="classification")


def test_another_text_column_is_named_with_text():
    df = pd.DataFrame(TEXTS).rename(columns={"text": "body"})
    data = labkit.load_data(df, text="body")
    assert data.kind == "text" and data.train.column_names == ["text"]


@pytest.mark.parametrize(("present", "missing"), [("prompt", "response"), ("response", "prompt")])
def test_half_of_an_instruction_pair_names_the_missing_column(present, missing):
    rows = [{present: f"x {i}", "other": i} for i in range(8)]
    for task in ("auto", "causal-lm"):
        with pytest.raises(DataError, match=f"no '{missing}' column") as err:
            labkit.load_data(rows, task=task)
        assert present in str(err.value) and "other" in str(err.value)  # what was found


def test_causal_lm_data_without_any_text_column_says_what_it_needs():
    with pytest.raises(DataError, match=r"'prompt' and 'response'.*columns found: \['review'\]"):
        labkit.load_data([{"review": "fine"}] * 8, task="causal-lm")


def test_a_named_label_column_that_is_missing_still_errors_as_before():
    with pytest.raises(DataError, match="no label column 'sentiment'"):
        labkit.load_data(TEXTS, label="sentiment")
    with pytest.raises(DataError, match="no label column 'label'"):
        labkit.load_data(TEXTS, labels=["a", "b"])  # labels= asks for a classifier too


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_an_empty_or_non_text_response_names_the_split_and_row(bad):
    rows = [dict(r) for r in PAIRS]
    rows[6]["response"] = bad
    with pytest.raises(DataError, match=r"split 'train'.*row 6") as err:
        labkit.load_data(rows)
    assert "response" in str(err.value)


def test_a_non_text_prompt_names_the_split_and_row():
    rows = [dict(r) for r in PAIRS]
    rows[2]["prompt"] = float("nan")
    with pytest.raises(DataError, match=r"split 'train'.*'prompt'.*row 2"):
        labkit.load_data(rows)


def test_empty_texts_are_dropped_and_all_empty_is_refused():
    rows = [*TEXTS, {"text": ""}, {"text": "  \n"}]
    data = labkit.load_data(rows)
    assert len(data.train) + len(data.validation) == len(TEXTS)
    with pytest.raises(DataError, match="no rows with text"):
        labkit.load_data([{"text": " "}] * 6)
    with pytest.raises(DataError, match=r"row 1: 7"):
        labkit.load_data([{"text": "a"}, {"text": 7}] * 4)


@pytest.mark.parametrize("ext", [".jsonl", ".csv", ".parquet"])
def test_instruction_files(tmp_path, ext):
    df = pd.DataFrame(PAIRS)
    path = tmp_path / f"pairs{ext}"
    if ext == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in PAIRS))
    elif ext == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    data = labkit.load_data(path)
    assert data.kind == "instruction" and data.source == path.name
    assert len(data.train) + len(data.validation) == len(PAIRS)


def test_datasets_keep_their_splits():
    from datasets import Dataset, DatasetDict

    dd = DatasetDict({"train": Dataset.from_list(PAIRS), "test": Dataset.from_list(PAIRS[:4])})
    data = labkit.load_data(dd)
    assert list(data.splits) == ["train", "validation", "test"]
    assert data.test["prompt"] == [r["prompt"] for r in PAIRS[:4]]
    whole = labkit.load_data(Dataset.from_list(TEXTS))
    assert whole.kind == "text" and len(whole.train) == 18
    bad = DatasetDict({"train": Dataset.from_list(PAIRS), "test": Dataset.from_list(TEXTS)})
    with pytest.raises(DataError, match="split 'test' lacks the 'prompt' column"):
        labkit.load_data(bad)


def test_an_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="task must be"):
        labkit.load_data(PAIRS, task="seq2seq")


def test_repr_and_html_are_escaped():
    rows = [{"prompt": "<img src=x onerror=alert(1)>", "response": "<b>bold</b>"}] * 6
    data = labkit.load_data(rows, validation_size=0.2)
    assert repr(data) == "LMData('rows', kind='instruction', train=5, validation=1)"
    page = data._repr_html_()
    assert "<img" not in page and "<b>bold" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "instruction tuning" in page


def test_labelled_text_becomes_instructions_split_by_split():
    labelled = labkit.load_data(toy_rows(10), test_size=0.2)
    data = instructions(labelled)
    assert data.kind == "instruction" and list(data.splits) == list(labelled.splits)
    for name, split in labelled.splits.items():
        assert data.splits[name]["prompt"] == [
            f"Review: {t}\nIs this review positive or negative?" for t in split["text"]
        ]
        assert data.splits[name]["response"] == [labelled.labels[i] for i in split["label"]]
    custom = instructions(labelled, question="Good?", template="{question} {{not}} {text}")
    assert custom.train["prompt"][0] == f"Good? {{not}} {labelled.train['text'][0]}"


def test_instructions_refuses_bad_templates_and_unlabelled_data():
    labelled = labkit.load_data(toy_rows(4))
    with pytest.raises(ConfigError, match=r"must hold \{text\}"):
        instructions(labelled, template="Review: {question}")
    with pytest.raises(ConfigError, match="placeholder other than"):
        instructions(labelled, template="{text} {label}")
    with pytest.raises(DataError, match="labelled TextData"):
        instructions(labkit.load_data(PAIRS))


def test_first_word_ignores_case_space_and_punctuation():
    assert first_word(" Positive.") == "positive"
    assert first_word("\n**Negative** review") == "negative"
    assert first_word("... !") == ""
    assert first_word("") == ""


def test_generative_accuracy_counts_answers_by_their_first_word(tiny_lm):
    data = instructions(labkit.load_data(toy_rows(10), test_size=0.25))
    test = data.test
    answers = {
        p: (r if i % 3 else ("Negative." if r == "positive" else " I think so"))
        for i, (p, r) in enumerate(zip(test["prompt"], test["response"]))
    }
    asked: list[dict] = []

    def fake_generate(prompts, **settings):
        asked.append(settings)
        return [type("G", (), {"text": answers[p]})() for p in prompts]

    tiny_lm.generate = fake_generate  # the counting, not the model, is under test here
    acc = generative_accuracy(tiny_lm, data)
    n = len(test)
    wrong = [i for i in range(n) if i % 3 == 0]
    assert acc.n == n and acc.correct == n - len(wrong)
    assert acc.accuracy == pytest.approx((n - len(wrong)) / n)
    assert acc.unparseable == sum(test["response"][i] == "negative" for i in wrong)  # "i ..."
    assert sum(acc.answers.values()) == n
    # greedy, and a few tokens: room for the longest response and little more
    longest = max(
        len(tiny_lm.tokenizer(r, add_special_tokens=False)["input_ids"])
        for r in answers.values()
        if r in ("positive", "negative")
    )
    assert asked[0]["temperature"] == 0.0
    assert longest <= asked[0]["max_new_tokens"] <= longest + 4
    assert generative_accuracy(tiny_lm, data, limit=2).n == 2
    assert "accuracy" in acc._repr_html_()


def test_generative_accuracy_with_a_real_tiny_model_and_bad_input(tiny_lm, tiny_model):
    data = instructions(labkit.load_data(toy_rows(6), test_size=0.25))
    acc = generative_accuracy(tiny_lm, data, limit=3, batch_size=2)
    assert acc.n == 3 and 0 <= acc.correct <= 3 and sum(acc.answers.values()) == 3
    with pytest.raises(DataError, match="no split 'dev'"):
        generative_accuracy(tiny_lm, data, split="dev")
    with pytest.raises(DataError, match="instruction LMData"):
        generative_accuracy(tiny_lm, labkit.load_data(TEXTS))
    with pytest.raises(ConfigError, match="limit"):
        generative_accuracy(tiny_lm, data, limit=0)
    with pytest.raises(labkit.InputError, match="classification model"):
        generative_accuracy(tiny_model, data)
