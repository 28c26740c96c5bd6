"""AttentionView / AttentionDiffView on trait state and messages, without a browser."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import labkit
from labkit.ui import attention_view as av

TEXT = "the movie was not good"


def _result(weights):
    t = weights.shape[-1]
    return labkit.AttentionResult(
        tokens=tuple(f"t{i}" for i in range(t)),
        weights=weights.astype(np.float32),
        special=np.zeros(t, dtype=bool),
        model_name="synthetic",
        layers=tuple(range(weights.shape[0])),
        heads=tuple(range(weights.shape[1])),
        text="x",
    )


def test_public_name_stays_the_function_after_the_module_is_imported():
    from labkit.inspect.attention.extract import (
        AttentionResult,  # imports the submodule labkit.attention
    )

    assert AttentionResult is labkit.AttentionResult
    assert (
        callable(labkit.attention)
        and labkit.attention.__module__ == "labkit.inspect.attention.extract"
    )


def test_view_traits_and_layer_reply(tiny_model):
    result = labkit.attention(tiny_model, TEXT, layers=[1])
    view = labkit.ui.view_for(result)
    assert isinstance(view, av.AttentionView)
    assert view.tokens == list(result.tokens) and view.layers == [1]
    assert view.special == result.special.tolist()
    s = view.thumb_size
    assert s == len(result.tokens) and len(view.thumbs) == 4 * s * s
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._on_msg(view, {"type": "layer", "layer": 0}, [])
    view._on_msg(view, {"type": "layer", "layer": 5}, [])  # out of range: ignored
    view._on_msg(view, {"type": "other"}, [])
    assert len(sent) == 1
    content, buffers = sent[0]
    assert content["format"] == "dense" and content["layer"] == 0
    dense = np.frombuffer(buffers[0], dtype=np.float16).reshape(result.weights[0].shape)
    np.testing.assert_allclose(dense, result.weights[0], atol=1e-3)
    view.layer = 7  # clamped to the layers there are
    assert view.layer == 0


def test_long_inputs_send_each_rows_strongest_links():
    rng = np.random.default_rng(0)
    t = av.DENSE_MAX + 44
    w = rng.random((1, 2, t, t)) ** 8
    w /= w.sum(-1, keepdims=True)
    content, (idx_b, val_b) = av.AttentionView(_result(w)).layer_message(0)
    k = av.SPARSE_K
    assert content["format"] == "topk" and content["k"] == k
    idx = np.frombuffer(idx_b, dtype=np.uint16).reshape(2, t, k)
    val = np.frombuffer(val_b, dtype=np.float16).reshape(2, t, k)
    expected = np.sort(w[0], axis=-1)[..., ::-1][..., :k]
    np.testing.assert_allclose(val, expected, rtol=1e-3)
    np.testing.assert_allclose(
        np.take_along_axis(w[0], idx.astype(np.int64), -1), expected, rtol=1e-6
    )
    assert len(idx_b) + len(val_b) == 2 * t * k * 4  # vs 2 * t * t * 2 bytes dense
    assert av.AttentionView(_result(w)).top_k == 8


def test_diff_view_starts_on_the_most_changed_head(tiny_model):
    a = labkit.attention(tiny_model, TEXT)
    w = a.weights.copy()
    w[1, 2] = w[1, 2][:, ::-1]
    diff = labkit.attention_diff(a, dataclasses.replace(a, weights=w))
    view = labkit.ui.view_for(diff)
    assert isinstance(view, av.AttentionDiffView)
    assert view.selected == [1, 2]
    assert view.jsd[1][2] == pytest.approx(float(diff.jsd[1, 2]), abs=1e-6)
    content, (pa, pb, rows) = view.head_message(1, 2)
    t = len(a.tokens)
    assert content["size"] == t
    np.testing.assert_allclose(
        np.frombuffer(pa, np.float16).reshape(t, t), a.weights[1, 2], atol=1e-3
    )
    np.testing.assert_allclose(np.frombuffer(pb, np.float16).reshape(t, t), w[1, 2], atol=1e-3)
    np.testing.assert_allclose(np.frombuffer(rows, np.float16), diff.row_jsd[1, 2], atol=1e-3)


def test_static_bundle_outside_a_kernel(tiny_model):
    result = labkit.attention(tiny_model, TEXT)
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # plain Python: no widget is made
    assert bundle["text/html"] == result._repr_html_()


def test_diff_view_captions_each_side_and_sends_where_pooled_rows_start():
    rng = np.random.default_rng(0)
    t = av.DIFF_MAX + 72
    w = rng.random((1, 1, t, t))
    w /= w.sum(-1, keepdims=True)
    a = _result(w)
    same = av.AttentionDiffView(labkit.attention_diff(a, dataclasses.replace(a, weights=w**2)))
    assert same.captions == ["before", "after"]  # one model before / after: no name twice
    other = dataclasses.replace(a, model_name="tuned")
    named = av.AttentionDiffView(labkit.attention_diff(a, other, labels=("base", "LoRA")))
    assert named.captions == ["base (synthetic)", "LoRA (tuned)"]
    assert (named.name_a, named.name_b) == ("synthetic", "tuned")
    content, _ = named.head_message(0, 0)
    edges = content["edges"]
    assert content["size"] == av.DIFF_MAX and len(edges) == av.DIFF_MAX + 1
    assert edges[0] == 0 and edges[-1] == t and edges == sorted(edges)
    short = av.AttentionDiffView(
        labkit.attention_diff(_result(w[..., :5, :5]), _result(w[..., :5, :5]))
    )
    assert short.head_message(0, 0)[0]["edges"] == [0, 1, 2, 3, 4, 5]
