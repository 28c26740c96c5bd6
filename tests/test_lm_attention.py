"""labkit.attention and the attention views on causal LMs (tiny config-built GPT-2 / Llama).

Causal masks, queries and keys as the scores used them (rotary, grouped-query heads), every
view, head importance by the LM loss, and the memory the pass holds.
"""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit.inspect.attention import qk as qk_vectors

TEXT = "the movie was not good at all, and the plot was dull"


def _lm(tiny_lm_dirs, arch="llama"):
    return labkit.load_model(tiny_lm_dirs[arch], device="cpu")


def _sharpened(model, factor=25.0):
    """The same model with its matrices scaled: attention far from uniform, so that wrong
    queries/keys could not pass for right ones."""
    import torch

    with torch.no_grad():
        for p in model.hf.parameters():
            if p.dim() == 2:
                p.mul_(factor)
    return model


def _softmax_of_scores(q, k, scaling):
    t = q.shape[-2]
    s = np.einsum("lhid,lhjd->lhij", q.astype(np.float64), k.astype(np.float64)) * scaling
    s = np.where(np.triu(np.ones((t, t), bool), 1), -np.inf, s)
    s -= s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_no_weight_on_future_positions(tiny_lm_dirs, arch):
    r = labkit.attention(_lm(tiny_lm_dirs, arch), TEXT)
    t = len(r.tokens)
    assert r.causal and r.weights.shape == (2, 4, t, t)
    assert not np.triu(r.weights, 1).any()  # exactly 0 above the diagonal, every head
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    assert r.weights[:, :, 0, 0] == pytest.approx(1.0)  # the first token sees only itself


def test_prompt_and_generation_together(tiny_lm):
    g = tiny_lm.generate("the movie was", max_new_tokens=6)[0]
    r = labkit.attention(tiny_lm, g.prompt + g.text)
    ids = tiny_lm.tokenizer(g.prompt + g.text)["input_ids"]
    assert r.tokens == tuple(tiny_lm.tokenizer.convert_ids_to_tokens(ids))
    assert r.causal and not np.triu(r.weights, 1).any()


def test_a_longer_context_is_one_pass_that_holds_one_layer_at_a_time(tiny_lm_dirs):
    from labkit.inspect.attention import attention_memory

    lm = _lm(tiny_lm_dirs)
    text = " ".join(["movie"] * 120)
    r = labkit.attention(lm, text, layers=[1], heads=[0, 3])
    t = len(r.tokens)
    assert r.weights.shape == (1, 2, t, t) and r.layers == (1,) and r.heads == (0, 3)
    full = labkit.attention(lm, text)
    np.testing.assert_array_equal(r.weights[0], full.weights[1][[0, 3]])
    # the estimate counts the kept copy, not every layer's maps (each is let go once copied)
    need, fewer = attention_memory(lm, t), attention_memory(lm, t, layers=[1], heads=[0, 3])
    assert fewer.total < need.total and need.kept >= full.weights.nbytes


def test_llama_queries_and_keys_give_back_its_weights(tiny_lm_dirs):
    """Rotated by position and with the 2 key heads repeated to the 4 query heads, q . k is
    the score the layer used: softmax(q . k / sqrt(d)) under the causal mask is the map."""
    lm = _sharpened(_lm(tiny_lm_dirs))
    r = labkit.attention(lm, TEXT)
    t = len(r.tokens)
    assert r.queries is not None and r.keys is not None
    assert r.queries.shape == r.keys.shape == (2, 4, t, 8)
    np.testing.assert_array_equal(r.keys[:, 0], r.keys[:, 1])  # heads 0 and 1 share a key head
    assert not np.array_equal(r.keys[:, 1], r.keys[:, 2])
    assert r.weights.max() > 0.9  # far from uniform: a wrong q . k would not match
    np.testing.assert_allclose(_softmax_of_scores(r.queries, r.keys, 8**-0.5), r.weights, atol=1e-4)
    some = labkit.attention(lm, TEXT, layers=[1], heads=[2])
    np.testing.assert_allclose(some.queries[0, 0], r.queries[1, 2], atol=1e-6)
    assert "window.bertviz_params" in r.to_bertviz("neuron").html


def test_queries_and_keys_that_do_not_give_back_the_weights_are_left_out(tiny_lm_dirs, monkeypatch):
    """Without the rotation (what the q_proj/k_proj outputs are) q . k is not the score: the
    vectors are dropped, never shown wrong, and the neuron view says it cannot draw."""
    real = qk_vectors.finish

    def unrotated(found, num_heads):
        for parts in found.values():
            parts["position_embeddings"] = None
        return real(found, num_heads)

    monkeypatch.setattr(qk_vectors, "finish", unrotated)
    lm = _sharpened(_lm(tiny_lm_dirs))
    r = labkit.attention(lm, TEXT)
    assert r.queries is None and r.keys is None
    with pytest.raises(labkit.InputError, match="neuron view needs"):
        r.to_bertviz("neuron")


def test_gpt2_lm_queries_and_keys_give_back_its_weights(tiny_lm_dirs):
    lm = _sharpened(_lm(tiny_lm_dirs, "gpt2"), 8.0)
    r = labkit.attention(lm, TEXT)
    assert r.queries is not None
    np.testing.assert_allclose(_softmax_of_scores(r.queries, r.keys, 8**-0.5), r.weights, atol=1e-4)


def test_every_view_of_a_causal_lm(tiny_lm_dirs):
    from labkit.ui.attention_view import AttentionDiffView, AttentionView

    a = labkit.attention(_lm(tiny_lm_dirs), TEXT)
    b = labkit.attention(_sharpened(_lm(tiny_lm_dirs), 3.0), TEXT)
    assert "labkit-attention" in a._repr_html_() and "data:image/png" in a._repr_html_()
    for kind in ("head", "model"):
        html = a.to_bertviz(kind).html
        assert "requirejs(['jquery', 'd3']" in html and "cdnjs" not in html
    diff = labkit.attention_diff(a, b, labels=("base", "sharper"))
    assert diff.jsd.shape == (2, 4) and float(diff.jsd.max()) > 0
    assert diff._repr_html_()
    view = AttentionView(a)
    assert view.causal and view.layers == [0, 1] and view.heads == [0, 1, 2, 3]
    msg, buffers = view.layer_message(1)
    assert msg["format"] == "dense" and len(buffers[0]) == 4 * len(a.tokens) ** 2 * 2
    assert AttentionDiffView(diff).selected


def test_head_importance_uses_the_lm_loss(tiny_lm):
    """|dL/dxi| of each head's gate is the first-order change of the text's LM loss when the
    head is scaled down: checked against a finite difference."""
    import torch

    from labkit.inspect.attention.importance import _gates, _out_projections

    texts = ["the movie was not good", "a dull film and all"]
    r = labkit.head_importance(tiny_lm, texts, normalize=False)
    assert r.scores.shape == (2, 4) and r.examples == 2 and (r.scores > 0).all()

    hf = tiny_lm.hf.eval()
    modules = _out_projections(hf)

    def loss(text, layer, head, scale):
        # the text as finetuning reads it: its tokens, then the end-of-sequence token
        tok = tiny_lm.tokenizer
        ids = torch.tensor([[*tok(text)["input_ids"], tok.eos_token_id]])
        xi = torch.ones(2, 1, 4)
        xi[layer, 0, head] = scale
        with _gates(modules, 4, [xi]), torch.no_grad():
            logits = hf(input_ids=ids).logits[0, :-1].double()
        return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:]))

    eps = 1e-3
    for layer, head in ((0, 1), (1, 3)):
        by_hand = sum(
            abs(loss(t, layer, head, 1 + eps) - loss(t, layer, head, 1 - eps)) / (2 * eps)
            for t in texts
        ) / len(texts)
        assert r.scores[layer, head] == pytest.approx(by_hand, rel=2e-2, abs=1e-6)


def test_head_importance_reads_lm_data(tiny_lm):
    from datasets import Dataset

    texts = Dataset.from_dict({"text": ["the movie was not good", "a dull film"]})
    pairs = Dataset.from_dict({"prompt": ["Review: dull. Verdict:"], "response": [" negative"]})
    assert labkit.head_importance(tiny_lm, texts).scores.shape == (2, 4)
    assert labkit.head_importance(tiny_lm, pairs).examples == 1
    with pytest.raises(labkit.DataError, match="'text' column"):
        labkit.head_importance(tiny_lm, Dataset.from_dict({"body": ["x"]}))


def test_attention_that_returns_no_maps_is_a_clear_error(tiny_lm, monkeypatch):
    for layer in tiny_lm.hf.model.layers:
        forward = layer.self_attn.forward

        def hidden(*args, _forward=forward, **kwargs):
            out, _ = _forward(*args, **kwargs)
            return out, None

        monkeypatch.setattr(layer.self_attn, "forward", hidden)
    with pytest.raises(labkit.InputError, match="returned no attention weights"):
        labkit.attention(tiny_lm, TEXT)


def test_a_30_by_9_head_grid_stays_one_small_widget(tiny_lm_dirs, tmp_path):
    """SmolLM2's shape (30 layers x 9 heads, 3 key heads): the model view gets 270 thumbnails
    of at most 24 x 24 in one uint8 buffer, and the layers travel one at a time."""
    import transformers as tf

    from labkit.ui.attention_view import THUMB, AttentionView

    tok = tf.AutoTokenizer.from_pretrained(tiny_lm_dirs["llama"])
    cfg = tf.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=36,
        intermediate_size=72,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    tf.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    lm = _sharpened(labkit.load_model(tmp_path, device="cpu"), 10.0)
    r = labkit.attention(lm, TEXT)
    t = len(r.tokens)
    assert r.weights.shape == (30, 9, t, t) and not np.triu(r.weights, 1).any()
    assert r.queries is not None and r.queries.shape == (30, 9, t, 4)
    np.testing.assert_array_equal(r.keys[:, 0], r.keys[:, 2])  # 3 query heads per key head
    np.testing.assert_allclose(_softmax_of_scores(r.queries, r.keys, 0.5), r.weights, atol=1e-4)
    view = AttentionView(r)
    assert view.thumb_size == min(THUMB, t)
    assert len(view.thumbs) == 30 * 9 * view.thumb_size**2 < 200_000
    assert len(view.roles) == 30 and all(len(row) == 9 for row in view.roles)
