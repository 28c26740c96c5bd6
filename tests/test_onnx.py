"""``labkit.export_onnx`` and the onnxruntime backend: tiny BERT / DistilBERT / RoBERTa exported,
loaded back with ``labkit.load_model``, and held to the torch model's probabilities."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch

import labkit
from labkit.compress.measure import size_on_disk
from labkit.compress.onnx import PARITY_TEXTS, ExportedPath, OnnxExport

LABELS = ["negative", "positive"]
# mixed lengths: a padded batch of these has rows of 1 to ~20 real tokens
MIXED = [
    "ok",
    "a gorgeous, witty, seductive movie",
    "terrible acting and a boring plot that never ends, scene after scene after scene",
    "great fun",
    "emoji 😀 and 中文 text",
    "the worst film of the year",
]


def _probs(model: labkit.Model, texts: list[str], batch_size: int) -> torch.Tensor:
    return torch.tensor(
        [[p.probs[n] for n in model.labels] for p in model.predict(texts, batch_size=batch_size)]
    )


@pytest.fixture(scope="module")
def bert_export(tiny_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The tiny BERT and its ONNX export (made once for the tests that only read it)."""
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    done = labkit.export_onnx(model, tmp_path_factory.mktemp("onnx") / "bert")
    return model, done


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_each_family_exports_and_predicts_like_torch(arch, tiny_dirs, toy_data, tmp_path):
    model = labkit.load_model(tiny_dirs[arch], labels=LABELS, device="cpu")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        done = labkit.export_onnx(model, tmp_path / "out")
    assert [str(w.message) for w in seen] == []  # nothing from the tracer reaches the user
    assert isinstance(done, OnnxExport) and done.path == str(tmp_path / "out")
    assert done.max_prob_diff < 1e-4 and done.texts_checked == len(PARITY_TEXTS)
    assert {"model.onnx", "config.json", "labkit.json", "tokenizer_config.json"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }
    assert not list(tmp_path.glob(".staging*"))

    onnx_model = labkit.load_model(done, device="cpu")
    assert onnx_model.backend == "onnxruntime" and onnx_model.labels == tuple(LABELS)
    assert onnx_model.num_parameters == model.num_parameters
    for batch_size in (1, len(MIXED)):  # alone, and one padded batch of mixed lengths
        ours, theirs = _probs(model, MIXED, batch_size), _probs(onnx_model, MIXED, batch_size)
        assert (ours - theirs).abs().max() < 1e-4, batch_size
    assert [p.label for p in onnx_model.predict(MIXED)] == [p.label for p in model.predict(MIXED)]

    expected, got = model.evaluate(toy_data), onnx_model.evaluate(toy_data)
    assert got.accuracy == expected.accuracy and got.f1 == expected.f1
    assert got.loss == pytest.approx(expected.loss, abs=1e-4)


def test_the_graph_has_dynamic_axes_and_the_folder_says_what_it_is(bert_export):
    import onnx

    model, done = bert_export
    graph = onnx.load(str(Path(done.path) / "model.onnx"), load_external_data=False).graph
    inputs = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    # BERT takes token type ids (DistilBERT and RoBERTa's tokenizer do not: their graphs have two)
    assert inputs == {
        "input_ids": ["batch", "sequence"],
        "attention_mask": ["batch", "sequence"],
        "token_type_ids": ["batch", "sequence"],
    }
    assert [o.name for o in graph.output] == ["logits"]
    meta = json.loads((Path(done.path) / "labkit.json").read_text())
    assert meta["format"] == "onnx" and meta["labels"] == LABELS
    assert meta["task"] == "classification" and meta["source"] == model.name
    assert meta["opset"] == 17 and meta["labkit"] == labkit.__version__
    assert meta["parity"]["max_prob_diff"] == done.max_prob_diff
    assert meta["parity"]["texts_checked"] == len(PARITY_TEXTS)
    assert str(done) == done.path and Path(done) == Path(done.path)


def test_size_parameters_and_labels_of_a_loaded_export(bert_export):
    _, done = bert_export
    onnx_model = labkit.load_model(done.path, device="cpu")
    assert size_on_disk(onnx_model) == done.size_bytes > 0
    assert done.size_bytes == (Path(done.path) / "model.onnx").stat().st_size
    renamed = labkit.load_model(done.path, labels=["bad", "good"], device="cpu")
    assert renamed.labels == ("bad", "good")
    assert renamed.predict("great fun")[0].label in ("bad", "good")
    with pytest.raises(labkit.ConfigError, match=r"3 names but the ONNX graph .* has 2 outputs"):
        labkit.load_model(done.path, labels=["a", "b", "c"], device="cpu")
    assert "backend='onnxruntime'" in repr(onnx_model)
    twin = copy.deepcopy(onnx_model)  # what a comparison table does to keep a model apart
    assert twin.backend == "onnxruntime" and twin.hf is not onnx_model.hf
    assert torch.equal(twin.logits(MIXED), onnx_model.logits(MIXED))
    assert "parameters" in onnx_model._repr_html_()


def test_what_needs_torch_weights_refuses_an_onnx_model(bert_export, toy_data):
    onnx_model = labkit.load_model(bert_export[1].path, device="cpu")
    calls = {
        "attention": lambda: labkit.attention(onnx_model, "great fun"),
        "explain": lambda: labkit.explain(onnx_model, "great fun"),
        "head_importance": lambda: labkit.head_importance(onnx_model, toy_data),
        "finetune": lambda: labkit.finetune(onnx_model, toy_data, max_steps=1, progress=False),
    }
    for what, call in calls.items():
        with pytest.raises(
            labkit.InputError, match=rf"{what} needs the model's float torch weights"
        ):
            call()
    with pytest.raises(labkit.ConfigError, match="already an ONNX export"):
        labkit.export_onnx(onnx_model, Path(bert_export[1].path).parent / "again")


def test_an_existing_path_is_refused_unless_overwrite(bert_export, tmp_path):
    model, _ = bert_export
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(labkit.ConfigError, match="already exists; pass overwrite=True"):
        labkit.export_onnx(model, target)
    assert (target / "keep.txt").read_text() == "mine"
    # overwrite=True replaces an earlier export, never a folder of someone's own files
    with pytest.raises(labkit.ConfigError, match=r"not an exported model folder .*keep\.txt"):
        labkit.export_onnx(model, target, overwrite=True)
    assert (target / "keep.txt").read_text() == "mine"
    earlier = tmp_path / "earlier"
    labkit.export_onnx(model, earlier, texts=["fine"])
    done = labkit.export_onnx(model, earlier, overwrite=True, texts=["great fun", "awful mess"])
    assert done.texts_checked == 2
    assert labkit.load_model(earlier, device="cpu").backend == "onnxruntime"
    # a run's folder (its record and checkpoints) is not an export either
    run_folder = tmp_path / "run"
    (run_folder / "checkpoint-3").mkdir(parents=True)
    (run_folder / "events.jsonl").write_text("{}\n")
    with pytest.raises(labkit.ConfigError, match="not an exported model folder"):
        labkit.export_onnx(model, run_folder, overwrite=True)
    assert (run_folder / "checkpoint-3").is_dir()


def test_a_relative_path_without_a_name_and_a_non_model(bert_export, tmp_path, monkeypatch):
    model, done = bert_export
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.ipynb").write_text("{}")
    with pytest.raises(labkit.ConfigError, match="not an exported model folder"):
        labkit.export_onnx(model, ".", overwrite=True)
    assert (tmp_path / "notes.ipynb").exists()
    with pytest.raises(labkit.InputError, match=r"needs a labkit\.Model, got str"):
        labkit.export_onnx("notamodel", tmp_path / "x")
    # an ONNX model has no safetensors weights to write
    from labkit.train.run import _export

    onnx_model = labkit.load_model(done.path, device="cpu")
    with pytest.raises(labkit.InputError, match="safetensors export needs the model's float"):
        _export(onnx_model, tmp_path / "st", merge_lora=True)


def test_a_graph_that_disagrees_with_torch_is_refused_and_nothing_is_left(tiny_model, tmp_path):
    """A forward that branches on its input in Python: the tracer fixes the branch to the
    example it ran, so onnxruntime and torch part ways on other lengths."""

    def branch(module, args, kwargs, output):
        if kwargs["input_ids"].shape[1] > 8:  # the trace example is longer: its branch is kept
            output.logits = output.logits + 5.0 * torch.arange(output.logits.shape[-1])
        return output

    target = tmp_path / "out"
    target.mkdir()
    (target / "labkit.json").write_text('{"format": "onnx"}')  # an earlier export's folder
    (target / "keep.txt").write_text("the previous export")
    handle = tiny_model.hf.register_forward_hook(branch, with_kwargs=True)
    try:
        with pytest.raises(labkit.ModelLoadError, match=r"differ from torch's by up to .* texts"):
            labkit.export_onnx(tiny_model, target, overwrite=True)
        with pytest.raises(labkit.ModelLoadError, match="nothing was written"):
            labkit.export_onnx(tiny_model, tmp_path / "fresh")
    finally:
        handle.remove()
    assert (target / "keep.txt").read_text() == "the previous export"
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_a_pruned_model_with_unequal_heads_exports(tiny_model, tmp_path):
    pruned = labkit.prune_heads(tiny_model, heads={0: [0, 2]})
    layer = pruned.hf.bert.encoder.layer
    assert (
        layer[0].attention.self.query.weight.shape[0]
        < layer[1].attention.self.query.weight.shape[0]
    )
    done = labkit.export_onnx(pruned, tmp_path / "out")
    onnx_model = labkit.load_model(done, device="cpu")
    assert done.max_prob_diff < 1e-4
    assert (
        _probs(pruned, MIXED, len(MIXED)) - _probs(onnx_model, MIXED, len(MIXED))
    ).abs().max() < 1e-4
    assert onnx_model.num_parameters == pruned.num_parameters < tiny_model.num_parameters


def test_an_int8_copy_is_refused_with_the_onnx_way(tiny_model, tmp_path):
    int8 = labkit.quantize(tiny_model)
    with pytest.raises(
        labkit.ConfigError, match=r"Export the float model.*onnxruntime\.quantization"
    ):
        labkit.export_onnx(int8, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_arguments_are_refused(tiny_model, tiny_lm, tmp_path):
    with pytest.raises(labkit.ConfigError, match="opset must be an int from 14"):
        labkit.export_onnx(tiny_model, tmp_path / "a", opset=9)
    with pytest.raises(labkit.ConfigError, match="tolerance must be"):
        labkit.export_onnx(tiny_model, tmp_path / "a", tolerance=-1)
    with pytest.raises(labkit.InputError):
        labkit.export_onnx(tiny_model, tmp_path / "a", texts=[])
    with pytest.raises(labkit.InputError, match="export_onnx needs a classification model"):
        labkit.export_onnx(tiny_lm, tmp_path / "a")
    (tmp_path / "file").write_text("x")
    with pytest.raises(labkit.ConfigError, match="is a file"):
        labkit.export_onnx(tiny_model, tmp_path / "file", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_run_export_onnx_merges_lora_and_keeps_the_run_adapter(tiny_dirs, toy_data, tmp_path):
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    run = labkit.finetune(
        model,
        toy_data,
        lora=True,
        max_steps=3,
        batch_size=8,
        lr=5e-2,
        output_dir=tmp_path / "run",
        progress=False,
    ).wait()
    with pytest.raises(labkit.ConfigError, match="format must be 'safetensors' or 'onnx'"):
        run.export(tmp_path / "x", format="torchscript")
    with pytest.raises(labkit.ConfigError, match="merge_lora=False writes the adapter alone"):
        run.export(tmp_path / "x", format="onnx", merge_lora=False)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        path = run.export(tmp_path / "onnx", format="onnx")
    assert [str(w.message) for w in seen] == []
    assert isinstance(path, ExportedPath) and isinstance(path, str)
    assert path == str(tmp_path / "onnx") and path.file_format == "onnx"
    assert path.max_prob_diff < 1e-4
    assert model.lora  # the run's model keeps its adapter: a copy was merged
    onnx_model = labkit.load_model(path, device="cpu")
    ours = _probs(model, MIXED, len(MIXED))
    assert (ours - _probs(onnx_model, MIXED, len(MIXED))).abs().max() < 1e-4
    with model.hf.disable_adapter():  # the adapter moved the probabilities: it is in the graph
        assert (ours - _probs(model, MIXED, len(MIXED))).abs().max() > 1e-3

    st = run.export(tmp_path / "st")
    assert st.file_format == "safetensors" and st.max_prob_diff < 1e-4
    assert st.texts_checked == len(PARITY_TEXTS) and st.size_bytes > 0
    assert (Path(st) / "model.safetensors").exists()
    with pytest.raises(labkit.ConfigError, match="already exists"):
        run.export(tmp_path / "st")
    assert run.export(tmp_path / "st", overwrite=True) == st


def test_a_safetensors_export_that_loads_back_different_is_refused(tiny_dirs, toy_data, tmp_path):
    """The parity check of the safetensors export: a change the saved weights do not carry (a
    forward hook) makes the folder load back as another model."""
    model = labkit.load_model(tiny_dirs["bert"], labels=LABELS, device="cpu")
    run = labkit.finetune(
        model, toy_data, max_steps=1, batch_size=8, output_dir=tmp_path / "run", progress=False
    ).wait()

    def shift(module, args, output):
        output.logits = output.logits + torch.tensor([0.0, 1.0])
        return output

    handle = model.hf.register_forward_hook(shift)
    try:
        with pytest.raises(labkit.ModelLoadError, match=r"does not reproduce .* differ by up to"):
            run.export(tmp_path / "st")
    finally:
        handle.remove()
    assert not (tmp_path / "st").exists()
    assert not list(tmp_path.glob(".staging*"))


def test_without_onnxruntime_the_onnx_extra_is_named(bert_export, tiny_dirs, tmp_path):
    """In a fresh interpreter where onnxruntime cannot be imported: exporting and loading an
    export both raise MissingDependencyError naming it and the extra."""
    import subprocess
    import sys

    code = f"""
import json, sys
sys.modules["onnxruntime"] = None  # importing it raises ModuleNotFoundError, as when missing
import labkit
out = {{}}
for what, call in {{
    "export": lambda: labkit.export_onnx(
        labkit.load_model({str(tiny_dirs["bert"])!r}, device="cpu"), {str(tmp_path / "x")!r}),
    "load": lambda: labkit.load_model({bert_export[1].path!r}, device="cpu"),
}}.items():
    try:
        call()
        out[what] = None
    except labkit.MissingDependencyError as exc:
        out[what] = [exc.name, str(exc)]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for what in ("export", "load"):
        name, message = out[what]
        assert name == "onnxruntime", what
        assert 'pip install "labkit[onnx]"' in message, what
    assert not (tmp_path / "x").exists()
