"""labkit.attention: extraction, head summaries, diff, head importance, static HTML, bertviz glue.

Tiny config-built models (offline); the real MiniLM only in the slow test."""

from __future__ import annotations

import dataclasses
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch

import labkit
from labkit import ConfigError, InputError, LabkitWarning
from labkit._utils.eager import attn_implementation
from labkit.inspect.attention.extract import AttentionResult

TEXT = "the movie was not good"


def _raw_attentions(folder, text, pair=None):
    """Reference: transformers itself, loaded with eager attention, output_attentions=True."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager")
    hf.eval()
    enc = tok(text, pair, return_tensors="pt") if pair else tok(text, return_tensors="pt")
    with torch.no_grad():
        out = hf(**enc, output_attentions=True)
    return tok.convert_ids_to_tokens(enc["input_ids"][0]), [a[0].numpy() for a in out.attentions]


def test_weights_equal_raw_transformers_output(tiny_arch_dir):
    model = labkit.load_model(tiny_arch_dir, device="cpu")
    assert attn_implementation(model.hf) == "sdpa"
    result = labkit.attention(model, TEXT)
    tokens, raw = _raw_attentions(tiny_arch_dir, TEXT)
    assert result.tokens == tuple(tokens)
    assert result.weights.dtype == np.float32
    assert result.weights.shape == (len(raw), raw[0].shape[0], len(tokens), len(tokens))
    for layer, ref in enumerate(raw):
        np.testing.assert_array_equal(result.weights[layer], ref)
    # each row sums to 1 over the positions it may attend to
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)
    if result.causal:
        assert np.all(np.triu(result.weights, 1) == 0)
    else:
        assert np.all(result.weights > 0)
    assert attn_implementation(model.hf) == "sdpa"  # the fast kernel is back
    assert not model.hf.training


def test_decoders_are_causal_and_encoders_are_not(tiny_dirs):
    kinds = {
        arch: labkit.attention(labkit.load_model(d, device="cpu"), TEXT).causal
        for arch, d in tiny_dirs.items()
    }
    assert kinds == {
        "bert": False,
        "distilbert": False,
        "roberta": False,
        "gpt2": True,
        "llama": True,
    }


def test_special_tokens_and_pair_segments(tiny_dirs):
    model = labkit.load_model(tiny_dirs["bert"], device="cpu")
    result = labkit.attention(model, "a dull movie", pair="great fun")
    tokens, raw = _raw_attentions(tiny_dirs["bert"], "a dull movie", pair="great fun")
    assert result.tokens == tuple(tokens)
    np.testing.assert_array_equal(result.weights[0], raw[0])
    assert result.special.tolist() == [t in ("[CLS]", "[SEP]") for t in tokens]
    sep = tokens.index("[SEP]")
    assert result.segments.tolist() == (
        [-1] + [0] * (sep - 1) + [-1] + [1] * (len(tokens) - sep - 2) + [-1]
    )


def test_layers_and_heads_keep_a_slice(tiny_model):
    full = labkit.attention(tiny_model, TEXT)
    part = labkit.attention(tiny_model, TEXT, layers=[-1], heads=[3, 1])
    assert part.layers == (1,) and part.heads == (1, 3)
    np.testing.assert_array_equal(part.weights, full.weights[1:, [1, 3]])
    np.testing.assert_array_equal(part.layer(1), full.weights[1, [1, 3]])
    with pytest.raises(InputError, match="layer 0 was not kept"):
        part.layer(0)
    with pytest.raises(InputError, match="2 layers"):
        labkit.attention(tiny_model, TEXT, layers=[5])
    with pytest.raises(InputError, match="4 heads"):
        labkit.attention(tiny_model, TEXT, heads=[])


def test_lora_model_matches_its_own_forward_and_diff_finds_the_changed_heads(tiny_model):
    from peft import LoraConfig, get_peft_model

    base = labkit.attention(tiny_model, TEXT)
    peft_model = get_peft_model(
        tiny_model.hf,
        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "key"], task_type="SEQ_CLS"),
    )
    with torch.no_grad():  # a trained adapter, in effect: B is zero at init
        for name, p in peft_model.named_parameters():
            if "lora_B" in name and ".layer.1." in name:
                p.normal_(0, 2.0, generator=torch.Generator().manual_seed(0))
    peft_model.eval()
    lora = labkit.Model.wrap(peft_model, tiny_model.tokenizer, name="tiny+lora")
    assert lora.lora
    result = labkit.attention(lora, TEXT)
    assert attn_implementation(peft_model) == "sdpa"
    peft_model.get_base_model().set_attn_implementation("eager")
    with torch.no_grad():
        ref = peft_model(**lora.encode([TEXT]), output_attentions=True).attentions
    peft_model.get_base_model().set_attn_implementation("sdpa")
    for layer, att in enumerate(ref):
        np.testing.assert_array_equal(result.weights[layer], att[0].numpy())
    diff = labkit.attention_diff(base, result)
    assert diff.jsd.shape == (2, 4)
    np.testing.assert_allclose(diff.jsd[0], 0.0, atol=1e-6)  # layer 0 was not touched
    assert diff.jsd[1].min() > 1e-3
    assert {layer for layer, _, _ in diff.ranked(4)} == {1}
    assert "tiny+lora" in diff._repr_html_()


def test_fast_kernel_restored_when_the_pass_fails(tiny_model):
    def boom(*_args):
        raise RuntimeError("layer exploded")

    layer = tiny_model.hf.bert.encoder.layer[1]
    handle = layer.register_forward_pre_hook(boom)
    try:
        with pytest.raises(InputError, match="layer exploded"):
            labkit.attention(tiny_model, TEXT)
    finally:
        handle.remove()
    assert attn_implementation(tiny_model.hf) == "sdpa"
    ours = [
        h
        for m in tiny_model.hf.modules()
        for h in m._forward_hooks.values()
        if "_capture_qk" in h.__qualname__
    ]
    assert ours == []  # the query/key hooks are removed too


@pytest.mark.parametrize("text", ["", "   \n", None, ["a list"]])
def test_empty_or_non_string_text_is_refused(tiny_model, text):
    with pytest.raises(InputError, match="text"):
        labkit.attention(tiny_model, text)


def test_long_text_is_truncated_with_one_warning_naming_the_limit(tiny_model):
    long_text = " ".join(["movie"] * 400)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = labkit.attention(tiny_model, long_text)
    ours = [w for w in caught if issubclass(w.category, LabkitWarning)]
    assert len(ours) == 1
    assert str(tiny_model.max_length) in str(ours[0].message)
    assert ours[0].filename == __file__  # points at the caller, not at labkit
    assert len(result.tokens) == tiny_model.max_length == 128


def test_pair_to_a_single_sequence_model_is_refused(tiny_dirs):
    model = labkit.load_model(tiny_dirs["gpt2"], device="cpu")
    with pytest.raises(InputError, match="takes no pair"):
        labkit.attention(model, "a", pair="b")


def test_model_without_attention_weights_is_a_clear_error(tiny_model, monkeypatch):
    # every self-attention returns no weights, as a fused kernel does
    for layer in tiny_model.hf.bert.encoder.layer:
        forward = layer.attention.self.forward

        def hidden(*a, _f=forward, **k):
            out = _f(*a, **k)
            return (out[0], None, *out[2:])

        monkeypatch.setattr(layer.attention.self, "forward", hidden)
    with pytest.raises(InputError, match="returned no attention weights"):
        labkit.attention(tiny_model, TEXT)
    assert attn_implementation(tiny_model.hf) == "sdpa"


def test_a_raw_transformers_model_is_refused_with_the_fix(tiny_model):
    with pytest.raises(InputError, match=r"Model\.wrap"):
        labkit.attention(tiny_model.hf, TEXT)


def _synthetic(weights, special, tokens=None):
    t = weights.shape[-1]
    return AttentionResult(
        tokens=tuple(tokens or [f"t{i}" for i in range(t)]),
        weights=weights.astype(np.float32),
        special=np.array(special),
        model_name="synthetic",
        layers=tuple(range(weights.shape[0])),
        heads=tuple(range(weights.shape[1])),
        text="x",
    )


def test_head_summary_measures_and_roles():
    t = 8
    prev = np.eye(t, k=-1)
    prev[0, 0] = 1.0
    uniform = np.full((t, t), 1.0 / t)
    to_cls = np.zeros((t, t))
    to_cls[:, 0] = 1.0
    nxt = np.eye(t, k=1)
    nxt[-1, -1] = 1.0
    result = _synthetic(np.stack([prev, uniform, to_cls, nxt])[None], [True] + [False] * 7)
    s = result.summary
    assert s.roles == (("previous-token", "broad", "delimiter", "next-token"),)
    assert s.role(0, 2) == "delimiter"
    assert s.previous[0, 0] == pytest.approx(7 / 8)
    assert s.next[0, 3] == pytest.approx(7 / 8)
    assert s.special[0, 2] == pytest.approx(1.0)
    assert s.special[0, 1] == pytest.approx(1 / 8)
    assert s.norm_entropy[0, 1] == pytest.approx(1.0)
    assert s.entropy[0, 0] == pytest.approx(0.0)
    assert s.distance[0, 0] == pytest.approx(7 / 8)  # row 0 attends to itself
    assert s.distance[0, 2] == pytest.approx(np.arange(t).mean())
    assert s.count() == {"previous-token": 1, "broad": 1, "delimiter": 1, "next-token": 1}
    assert {r["role"] for r in s.rows()} == set(s.count())


def test_attention_diff_scores_and_ranking():
    rng = np.random.default_rng(0)
    w = rng.random((2, 3, 5, 5))
    w /= w.sum(-1, keepdims=True)
    a = _synthetic(w, [False] * 5)
    same = labkit.attention_diff(a, a)
    np.testing.assert_allclose(same.jsd, 0.0, atol=1e-7)
    moved = w.copy()
    moved[1, 2] = np.eye(5)[::-1]  # disjoint from nothing in particular, but far
    b = _synthetic(moved, [False] * 5)
    diff = labkit.attention_diff(a, b)
    assert diff.ranked(1)[0][:2] == (1, 2)
    assert np.all((diff.jsd >= 0) & (diff.jsd <= 1))
    assert diff.row_jsd.shape == (2, 3, 5)
    # disjoint rows are 1 bit apart
    one_hot = np.zeros((1, 1, 2, 2))
    one_hot[0, 0, :, 0] = 1.0
    other = one_hot[..., ::-1].copy()
    far = labkit.attention_diff(_synthetic(one_hot, [False] * 2), _synthetic(other, [False] * 2))
    assert far.jsd[0, 0] == pytest.approx(1.0)


def test_attention_diff_refuses_different_tokens_or_heads():
    w = np.full((1, 2, 3, 3), 1 / 3)
    a = _synthetic(w, [False] * 3)
    with pytest.raises(InputError, match="tokenize differently"):
        labkit.attention_diff(a, _synthetic(w, [False] * 3, tokens=["x", "y", "z"]))
    with pytest.raises(InputError, match="same layers= and heads="):
        labkit.attention_diff(a, dataclasses.replace(a, heads=(0, 3)))
    with pytest.raises(InputError, match="AttentionResult"):
        labkit.attention_diff(a, "b")


def test_head_importance_per_example_gradients(tiny_model, toy_data):
    params = list(tiny_model.hf.parameters())
    one = labkit.head_importance(
        tiny_model, toy_data, split="train", max_examples=12, batch_size=1, normalize=False
    )
    four = labkit.head_importance(
        tiny_model, toy_data, split="train", max_examples=12, batch_size=4, normalize=False
    )
    assert one.scores.shape == (2, 4) and one.examples == 12
    assert np.all(one.scores > 0)
    # |dL/dxi| is taken per example, so batching does not change the score
    np.testing.assert_allclose(one.scores, four.scores, rtol=1e-4)
    norm = labkit.head_importance(tiny_model, toy_data, split="train", max_examples=12)
    np.testing.assert_allclose(np.linalg.norm(norm.scores, axis=1), 1.0, rtol=1e-5)
    assert all(p.grad is None for p in params)
    assert not any(m._forward_pre_hooks for m in tiny_model.hf.modules())
    assert norm.ranked(1)[0][2] == pytest.approx(float(norm.scores.max()))


def test_head_importance_matches_removing_a_head_to_first_order(tiny_model, toy_data):
    """dL/dxi_h predicts the change of the loss when head h is scaled by (1 - eps)."""
    from labkit.inspect.attention.importance import _gates, _out_projections

    tiny_model.hf.double()  # float32 loss differences are too coarse for a finite difference
    imp = labkit.head_importance(
        tiny_model, toy_data, split="train", max_examples=1, normalize=False
    )
    row = toy_data.train[0]
    enc = tiny_model.encode([row["text"]])
    target = torch.tensor([tiny_model.labels.index(toy_data.labels[row["label"]])])
    modules = _out_projections(tiny_model.hf)

    def loss(scale):
        xi = torch.ones(2, 1, 4, dtype=torch.float64)
        xi[1, 0, 2] = scale
        with _gates(modules, 4, [xi]), torch.no_grad():
            return torch.nn.functional.cross_entropy(tiny_model.hf(**enc).logits, target).item()

    eps = 1e-4
    slope = abs(loss(1.0 + eps) - loss(1.0 - eps)) / (2 * eps)
    assert slope == pytest.approx(float(imp.scores[1, 2]), rel=1e-3)


def test_head_importance_bad_input(tiny_model):
    with pytest.raises(ConfigError, match="max_examples"):
        labkit.head_importance(tiny_model, None, max_examples=0)
    with pytest.raises(labkit.DataError, match="text"):
        labkit.head_importance(tiny_model, ["not", "a", "dataset"])


def _png_size(uri):
    import base64

    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    # the image data decompresses to one filter byte + one byte per pixel per row
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    assert len(zlib.decompress(data[idat + 4 : idat + 4 + length])) == height * (width + 1)
    return width, height


def test_static_html_has_one_heatmap_per_layer_and_escapes_tokens(tiny_model):
    result = labkit.attention(tiny_model, TEXT)
    tokens = list(result.tokens)
    tokens[1] = "<img src=x onerror=alert(1)>"
    result = dataclasses.replace(result, tokens=tuple(tokens))
    html = result._repr_html_()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    uris = re.findall(r"src='(data:image/png;base64,[^']+)'", html)
    assert len(uris) == len(result.layers)
    t = len(result.tokens)
    assert _png_size(uris[0]) == (len(result.heads) * (t + 2) - 2, t)
    bundle = result._repr_mimebundle_()
    assert bundle["text/html"] == html and bundle["text/plain"] == repr(result)
    assert set(result._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}


def test_to_bertviz_payload_is_trimmed_and_escaped(tiny_model):
    from bertviz import head_view

    result = labkit.attention(tiny_model, TEXT)
    tokens = list(result.tokens)
    tokens[1] = "</script><script>alert(1)</script>"
    result = dataclasses.replace(result, tokens=tuple(tokens))
    view = result.to_bertviz("head")
    assert "</script><script>alert" not in view.html
    assert "<\\/script><script>alert(1)<\\/script>" in view.html
    raw = head_view(
        [torch.from_numpy(result.weights[i][None]) for i in range(2)],
        list(result.tokens),
        html_action="return",
    ).data
    # bertviz's own script (its JSON payload) is smaller; the inlined libraries come before it
    s = '<script type="text/javascript">'
    assert len(view.html.rsplit(s, 1)[1]) < len(raw.rsplit(s, 1)[1])
    numbers = re.findall(r"\d\.\d+", view.html.split('"attention"', 1)[1].split('"left_text"')[0])
    assert numbers and max(len(n) for n in numbers) <= 5  # 3 decimals
    one = result.to_bertviz("model", layers=1, heads=[0, 2])
    assert len(one.html) < len(result.to_bertviz("model").html)
    assert 'include_layers": [1]' in one.html
    with pytest.raises(ConfigError, match="kind"):
        result.to_bertviz("matrix")
    with pytest.raises(ConfigError, match="layers"):
        labkit.attention(tiny_model, TEXT, layers=[0]).to_bertviz("head", layers=[1])


def test_neuron_view_where_supported(tiny_dirs):
    bert = labkit.attention(labkit.load_model(tiny_dirs["bert"], device="cpu"), TEXT)
    assert bert.queries.shape == (2, 4, len(bert.tokens), 8)
    assert "window.bertviz_params" in bert.to_bertviz("neuron").html
    # Llama's queries and keys carry the rotary embedding and the repeated key heads
    llama = labkit.attention(labkit.load_model(tiny_dirs["llama"], device="cpu"), TEXT)
    assert llama.queries.shape == (2, 4, len(llama.tokens), 8)
    assert "window.bertviz_params" in llama.to_bertviz("neuron").html


def test_queries_and_keys_reproduce_the_weights(tiny_dirs):
    """The captured vectors are the ones the model used: softmax(q k^T / sqrt(d)) = weights."""
    result = labkit.attention(labkit.load_model(tiny_dirs["bert"], device="cpu"), TEXT)
    q, k = result.queries.astype(np.float64), result.keys.astype(np.float64)
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, result.weights, atol=1e-5)


@pytest.mark.slow
def test_real_minilm(demo_model_session):
    model = demo_model_session
    result = labkit.attention(model, "the movie was not good, but the acting was superb")
    assert result.weights.shape[:2] == (6, 12)
    assert attn_implementation(model.hf) == "sdpa"
    tokens, raw = _raw_attentions(str(labkit.demo.model_path()), result.text)
    assert result.tokens == tuple(tokens)
    for layer, ref in enumerate(raw):
        np.testing.assert_array_equal(result.weights[layer], ref)
    roles = result.summary.count()
    assert roles.get("delimiter", 0) > 0 and len(roles) >= 3  # a pretrained model's heads differ


# -- views for people: labels, compact tables, a few significant digits -----------------------


def _too_precise(html_text, digits=3):
    """Decimals written with more than ``digits`` significant digits (raw floats)."""
    text = re.sub(r"data:image/png;base64,[^']+", "", html_text)
    numbers = re.findall(r"(?<![\w.])\d+\.\d+", text)
    return [n for n in numbers if len(n.replace(".", "").lstrip("0")) > digits]


def _visible(html_text):
    """The text of an HTML snippet as a reader sees it (tags and attributes dropped)."""
    return re.sub(r"<[^>]+>", " ", html_text)


def test_sig_writes_a_few_significant_digits():
    from labkit.render.summary import sig

    assert sig(0.123456789) == "0.123"
    assert sig(12.3456) == "12.3"
    assert sig(1234.5678) == "1,235"
    assert sig(0.000456789) == "0.000457"
    assert sig(4.2e-6) == "4.20e-06"
    assert sig(0.99996) == "1.00"  # rounding up adds no digit
    assert sig(-0.5, 2) == "-0.50"
    assert sig(0.0) == "0"
    assert sig(None) == sig(float("nan")) == "–"


def _importance(layers=6, heads=12):
    from labkit.inspect.attention.importance import HeadImportance

    rng = np.random.default_rng(0)
    scores = rng.random((layers, heads)).astype(np.float32) / 3
    scores[3, 7] = 0.987654321
    return HeadImportance(scores=scores, model_name="<b>m</b>", examples=64, normalized=True)


def test_head_importance_view_is_labelled_sorted_and_rounded():
    imp = _importance()
    html_text = imp._repr_html_()
    assert _too_precise(html_text) == []  # 0.9877 in a bare table before; now 3 digits
    assert "&lt;b&gt;m&lt;/b&gt;" in html_text and "<b>m</b>" not in html_text
    top, rest = html_text.split("<details>")
    assert "10 most important heads" in top and "rank" in top and "layer \\ head" in top
    first = re.search(r"<tbody><tr><td[^>]*>1</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>", top)
    assert first and (int(first[1]), int(first[2])) == (3, 7)
    assert "0.988" in top
    assert rest.count("<tr>") == 72 + 1  # every head ranked, one click away (+ header)
    assert imp.ranked(1)[0][2] == pytest.approx(0.987654321, rel=1e-7)  # data: full precision
    # a grid cell per head, its score written in it (2 digits) and in its tooltip (3)
    assert top.count("<td title='layer ") == 72
    assert "title='layer 3, head 7: 0.988 (rank 1 of 72)'" in top
    wide = _importance(4, 32)._repr_html_()  # too many heads to write every score
    assert wide.count("<td title='layer ") == 128 and _too_precise(wide) == []


def test_head_summary_view_is_compact_with_the_full_table_one_click_away():
    rng = np.random.default_rng(1)
    t = 10
    kinds = [np.eye(t, k=-1) + np.eye(t)[0] * np.eye(t)[0][:, None], np.full((t, t), 1 / t)]
    cls = np.zeros((t, t))
    cls[:, 0] = 1.0
    kinds.append(cls)
    heads = []
    for i in range(6 * 12):
        w = kinds[i % 3] * (0.6 + 0.4 * rng.random()) + 0.02 * rng.random((t, t))
        heads.append(w / w.sum(-1, keepdims=True))
    result = _synthetic(np.stack(heads).reshape(6, 12, t, t), [True] + [False] * (t - 1))
    s = result.summary
    assert s.count() == {"previous-token": 24, "broad": 24, "delimiter": 24}
    html_text = s._repr_html_()
    compact, full = html_text.split("<details>")
    assert _too_precise(html_text) == []
    # compact: one row per role with its count, most common first, and the clearest heads
    roles = re.findall(r"<td style='[^']*'><b>([a-z-]+)</b></td>", compact)
    assert sorted(roles) == sorted(s.count()) and len(roles) == 3
    for role in roles:
        layer, head, value = s.by_role(role, 1)[0]
        assert f"L{layer} H{head} ({sig_2(value)})" in compact
    assert compact.count(">24</td>") == 3 and compact.count(" and 21 more") == 3
    # a letter per head in the role map, the role in its tooltip
    assert compact.count("<td title='layer ") == 72
    # the full table, behind a click, with every head and every figure rounded
    assert "<summary>all 72 heads: every figure</summary>" in full
    assert full.count("<tr>") == 72 + 1
    assert s.rows()[0]["previous"] == pytest.approx(float(s.previous[0, 0]))  # full precision


def sig_2(value):
    from labkit.render.summary import sig

    return sig(value, 2)


def test_head_summary_by_role_sorts_by_the_figure_the_role_rests_on():
    t = 8
    prev = np.eye(t, k=-1)
    prev[0, 0] = 1.0
    weaker = 0.7 * prev + 0.3 / t
    uniform = np.full((t, t), 1.0 / t)
    result = _synthetic(np.stack([weaker, prev, uniform])[None], [False] * t)
    s = result.summary
    ranked = s.by_role("previous-token")
    assert [(layer, head) for layer, head, _ in ranked] == [(0, 1), (0, 0)]
    assert ranked[0][2] == pytest.approx(7 / 8)
    assert s.by_role("previous-token", 1) == ranked[:1]
    assert s.by_role("broad") == [(0, 2, pytest.approx(1.0))]
    assert s.by_role("self") == []
    with pytest.raises(InputError, match="the roles are"):
        s.by_role("prev")
    assert s.figure("self") is s.self_ and s.figure("distance") is s.distance
    with pytest.raises(InputError, match="the figures are"):
        s.figure("self_")


def test_diff_says_before_and_after_and_adds_model_names_only_when_they_differ():
    rng = np.random.default_rng(0)
    w = rng.random((2, 3, 5, 5))
    w /= w.sum(-1, keepdims=True)
    a = _synthetic(w, [False] * 5)
    diff = labkit.attention_diff(a, dataclasses.replace(a, weights=w[..., ::-1].copy()))
    assert diff.labels == ("before", "after") and diff.captions == ("before", "after")
    html_text = diff._repr_html_()
    assert "before → after" in html_text and "synthetic → synthetic" not in html_text
    assert "'before'" in repr(diff) and "synthetic" not in repr(diff)
    named = labkit.attention_diff(a, a, labels=("base", "LoRA"))
    assert named.captions == ("base", "LoRA") and "base → LoRA" in named._repr_html_()
    other = labkit.attention_diff(a, dataclasses.replace(a, model_name="<i>tuned</i>"))
    assert other.captions == ("before (synthetic)", "after (<i>tuned</i>)")
    assert "before (synthetic) → after (&lt;i&gt;tuned&lt;/i&gt;)" in other._repr_html_()
    for bad in (("before",), ("a", ""), "ab", ("a", 1)):
        with pytest.raises(InputError, match="labels must be two non-empty strings"):
            labkit.attention_diff(a, a, labels=bad)


def test_diff_static_maps_have_their_own_captions_and_token_labels():
    t = 6
    w = np.full((1, 1, t, t), 1.0 / t)
    tokens = ["[CLS]", "<img src=x onerror=alert(1)>", "\u0120movie", "was", "good", "[SEP]"]
    a = _synthetic(w, [True] + [False] * 4 + [True], tokens=tokens)
    b = dataclasses.replace(a, weights=np.eye(t)[None, None].astype(np.float32))
    html_text = labkit.attention_diff(a, b)._repr_html_()
    figures = re.findall(r"<figure class='labkit-map'.*?</figure>", html_text)
    assert len(figures) == 2
    assert [re.search(r"<figcaption[^>]*>(.*?)</figcaption>", f)[1] for f in figures] == [
        "before",
        "after",
    ]
    for figure in figures:
        keys = figure.split("labkit-map-keys", 1)[1].split("labkit-map-queries", 1)[0]
        queries = figure.split("labkit-map-queries", 1)[1]
        for axis in (keys, queries):
            shown = re.findall(r">([^<>]+)</div>", axis)
            assert shown == ["[CLS]", "&lt;img src=x…", "movie", "was", "good", "[SEP]"]
        assert "<img src=x" not in _visible(figure) and "title='token 1: &lt;img" in figure


def test_long_inputs_get_thinned_labels_that_cover_every_row():
    from labkit.render import heatmap

    t = 300
    w = np.full((t, t), 1.0 / t, dtype=np.float32)
    html_text = heatmap.labelled(w, [f"w{i}" for i in range(t)], caption="after")
    queries = html_text.split("labkit-map-queries", 1)[1]
    heights = [int(h) for h in re.findall(r"height:(\d+)px;line-height", queries)]
    side = int(re.search(r"width:(\d+)px;height:\1px", html_text)[1])
    assert 10 <= len(heights) <= 30 and sum(heights) == side  # readable, and the rows tile it
    assert all(h >= 11 for h in heights[:-1])
    titles = re.findall(r"title='(tokens \d+-\d+), from (w\d+)'", queries)
    assert titles[0] == ("tokens 0-" + titles[0][0].split("-")[1], "w0")
    last = int(re.findall(r"tokens \d+-(\d+)", queries)[-1])
    assert last == t - 1  # every token is in some label's slot
