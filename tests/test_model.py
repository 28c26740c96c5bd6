"""Loading models and predicting with them (tiny config-built models, offline)."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

import labkit
from labkit import InputError, LabkitWarning, ModelLoadError


def test_load_and_predict_every_architecture(tiny_arch_dir):
    model = labkit.load_model(tiny_arch_dir, labels=["negative", "positive"], device="cpu")
    assert model.labels == ("negative", "positive")
    assert model.device.type == "cpu"
    preds = model.predict(["a great movie", "a dull movie"])
    assert [p.text for p in preds] == ["a great movie", "a dull movie"]
    for p in preds:
        assert set(p.probs) == {"negative", "positive"}
        assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.label == max(p.probs, key=p.probs.get)


def test_checkpoint_labels_are_used_when_none_given(tiny_dirs):
    model = labkit.load_model(tiny_dirs["bert"], device="cpu")
    assert model.labels == ("L0", "L1")


def test_new_labels_make_a_new_head(tiny_dirs):
    model = labkit.load_model(tiny_dirs["bert"], labels=["a", "b", "c"], device="cpu")
    assert model.hf.config.num_labels == 3
    assert model.hf.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert len(model.predict("x")[0].probs) == 3


def test_seeded_head_is_reproducible(tiny_dirs):
    a = labkit.load_model(tiny_dirs["bert"], labels=["x", "y", "z"], device="cpu", seed=1)
    b = labkit.load_model(tiny_dirs["bert"], labels=["x", "y", "z"], device="cpu", seed=1)
    assert torch.equal(a.logits(["same text"]), b.logits(["same text"]))


def test_batched_predictions_equal_one_by_one(tiny_model):
    texts = ["short", "a much longer text about a film that goes on and on", "", "mid length one"]
    batched = tiny_model.logits(texts, batch_size=2)
    single = torch.cat([tiny_model.logits([t]) for t in texts])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_single_string_counts_as_one_text(tiny_model):
    preds = tiny_model.predict("just one")
    assert len(preds) == 1 and preds[0].text == "just one"


@pytest.mark.parametrize("arch", ["bert", "gpt2", "llama"])
def test_awkward_texts_predict_without_crashing(tiny_dirs, arch):
    model = labkit.load_model(tiny_dirs[arch], labels=["n", "p"], device="cpu")
    texts = [
        "",
        "   ",
        "😀🎬🍿",
        "中文影评很好看",
        "עברית טקסט",
        "nul\x00byte",
        "lone \ud800 surrogate",
        "<img src=x onerror=alert(1)>",
    ]
    preds = model.predict(texts)
    assert len(preds) == len(texts)
    assert all(abs(sum(p.probs.values()) - 1) < 1e-5 for p in preds)


def test_long_text_is_truncated_with_one_warning(tiny_model):
    long = "word " * 20_000  # 100k characters
    with pytest.warns(LabkitWarning, match=r"limit of 128 tokens") as caught:
        preds = tiny_model.predict([long, long, "short"])
    assert len([w for w in caught if issubclass(w.category, LabkitWarning)]) == 1
    assert "2 of 3" in str(caught[0].message)
    assert len(preds) == 3


def test_text_exactly_at_the_limit_is_not_reported_as_truncated(tiny_model):
    ids = tiny_model.tokenizer("word " * 500, truncation=True, max_length=128)["input_ids"]
    exact = tiny_model.tokenizer.decode(ids[1:-1])  # 126 word pieces + [CLS]/[SEP] = 128
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabkitWarning)
        tiny_model.predict([exact])


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "empty"),
        ([1, 2], r"texts\[0\] is int"),
        (["ok", None], r"texts\[1\] is NoneType"),
        (None, "must be a string"),
        (b"bytes", "must be a string"),
    ],
)
def test_bad_texts_are_clear_errors(tiny_model, bad, match):
    with pytest.raises(InputError, match=match):
        tiny_model.predict(bad)


def test_missing_path_says_it_does_not_exist(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        labkit.load_model(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="does not exist"):
        labkit.load_model("./models/missing")


def test_unknown_hub_name_says_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="hub is unreachable") as info:
        labkit.load_model("someone/not-a-real-model-xyz")
    assert "labkit.demo.model()" in str(info.value)


def test_pickle_only_folder_is_refused_unless_opted_in(tiny_dirs, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_dirs["bert"], folder)
    model = labkit.load_model(folder, device="cpu")
    torch.save(model.hf.state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        labkit.load_model(folder, device="cpu")
    loaded = labkit.load_model(folder, device="cpu", allow_pickle=True)
    torch.testing.assert_close(loaded.logits(["same"]), model.logits(["same"]))


def test_folder_without_model_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        labkit.load_model(tmp_path)


def test_trust_remote_code_is_off_by_default(tiny_dirs, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoModelForSequenceClassification.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", spy)
    labkit.load_model(tiny_dirs["bert"], device="cpu")
    assert seen["trust_remote_code"] is False
    assert seen["use_safetensors"] is True


def test_bad_device_and_dtype_are_config_errors(tiny_dirs):
    with pytest.raises(labkit.ConfigError, match="device"):
        labkit.load_model(tiny_dirs["bert"], device="tpu-9000")
    with pytest.raises(labkit.ConfigError, match="dtype"):
        labkit.load_model(tiny_dirs["bert"], device="cpu", dtype="float8")


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from labkit._utils.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"


def test_dtype_auto_keeps_float32_weights_everywhere_and_names_are_accepted():
    from labkit._utils.device import pick_dtype

    # float32 master weights: mixed-precision training autocasts the compute, not the weights
    for device in ("cpu", "cuda", "mps"):
        assert pick_dtype("auto", torch.device(device)) == torch.float32
    assert pick_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cuda")) == torch.float16
    assert pick_dtype(torch.bfloat16, torch.device("cpu")) == torch.bfloat16


def test_auto_precision_is_bf16_only_where_tensor_cores_have_it(monkeypatch):
    from labkit.train.finetune import FinetuneConfig, _precision

    asked = []

    def capability(device=None):
        asked.append(device)
        return major, 0

    # torch.cuda.is_bf16_supported() says True on a T4 (Colab), where bf16 is emulated and
    # slower than fp32: labkit reads the compute capability of the device it trains on
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", None)
    auto = FinetuneConfig()
    major = 8  # Ampere or later
    assert _precision(auto, torch.device("cuda:1")) == "bf16"
    assert asked == [torch.device("cuda:1")]
    major = 7  # a T4 or a V100
    assert _precision(auto, torch.device("cuda")) == "fp16"
    assert _precision(auto, torch.device("cpu")) == "fp32"
    assert _precision(FinetuneConfig(precision="bf16"), torch.device("cpu")) == "bf16"


def test_wrap_an_existing_hf_model(tiny_dirs):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf = AutoModelForSequenceClassification.from_pretrained(tiny_dirs["gpt2"])
    tok = AutoTokenizer.from_pretrained(tiny_dirs["gpt2"])
    model = labkit.Model.wrap(hf, tok)
    assert model.labels == ("L0", "L1")
    assert len(model.predict(["a", "a longer one"])) == 2


def test_saved_adapter_folder_loads_base_plus_adapter(tiny_dirs, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = labkit.load_model(tiny_dirs["bert"], labels=["n", "p"], device="cpu", seed=0)
    peft_model = get_peft_model(
        base.hf, LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS")
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    peft_model.peft_config["default"].base_model_name_or_path = str(tiny_dirs["bert"])
    peft_model.save_pretrained(tmp_path / "adapter")
    model = labkit.Model.wrap(peft_model, base.tokenizer, labels=["n", "p"])
    loaded = labkit.load_model(tmp_path / "adapter", labels=["n", "p"], device="cpu")
    assert loaded.lora
    torch.testing.assert_close(
        loaded.logits(["a test"]), model.logits(["a test"]), atol=1e-5, rtol=1e-4
    )


def test_html_repr_escapes_the_name(tiny_model):
    tiny_model.name = "<script>alert(1)</script>"
    html = tiny_model._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
