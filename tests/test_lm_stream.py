"""``Model.stream``: a generation on its own thread (pieces in order, Stop within a token, a
failure kept), and its live view's traits and messages without a browser."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from labkit import ConfigError, GenerationError, InputError, LabkitWarning, TrainingError
from labkit.lm.stream import GenerationStream
from tests._jupyter import WireTap

PROMPT = "the worst film of the year"


@contextlib.contextmanager
def gated(model, *, after: int, fail: bool = False) -> Iterator[threading.Event]:
    """Hold the model's forward pass number ``after + 1`` until the event is set (or make it
    raise with ``fail``): the test decides when the generation may go on, no sleeps."""
    go = threading.Event()
    calls = [0]

    def hook(_module, _args):
        calls[0] += 1
        if calls[0] > after:
            if fail:
                raise RuntimeError("the accelerator caught fire")
            assert go.wait(30), "the test never let the generation go on"

    handle = model.hf.register_forward_pre_hook(hook)
    try:
        yield go
    finally:
        go.set()
        handle.remove()


def test_pieces_arrive_in_order_and_join_to_the_final_text(tiny_lm):
    with gated(tiny_lm, after=4) as go:
        s = tiny_lm.stream(PROMPT, max_new_tokens=12)
        assert isinstance(s, GenerationStream) and s.status == "running" and not s.done
        pieces: list[str] = []
        s.subscribe(pieces.append)  # subscribed while it runs: it has made 4 tokens at most
        with pytest.raises(GenerationError, match=r"still running.*stream\.wait"):
            _ = s.generation
        before = s.text
        go.set()
        assert s.wait(30) is s
    assert s.status == "done" and s.done and s.error is None
    assert before + "".join(pieces) == s.text == s.generation.text
    assert s.n_tokens == len(s.generation.token_ids) == 12
    assert s.finish_reason == "length" and s.tokens_per_s > 0
    (same,) = tiny_lm.generate(PROMPT, max_new_tokens=12)
    assert s.generation == same  # the same generation as Model.generate's
    assert str(s) == s.text and repr(s).endswith("[done, 12 tokens, length]")


def test_stop_answers_at_once_and_the_stream_ends_within_a_token(tiny_lm):
    with gated(tiny_lm, after=3) as go:
        s = tiny_lm.stream(PROMPT, max_new_tokens=100)
        t0 = time.perf_counter()
        s.stop()  # while the model is held mid-generation
        returned = time.perf_counter() - t0
        assert s.stop_requested and not s.done
        go.set()
        s.wait(30)
    assert returned < 0.5  # it sets an event, nothing more (a generous bound for busy CI)
    assert s.status == "stopped" and s.generation.finish_reason == "cancelled"
    # held at its 4th forward pass (prompt + 2 tokens): one more token at most
    assert 1 <= s.n_tokens <= 4
    assert s.text == s.generation.text


def test_a_failure_is_kept_shown_and_raised_by_wait(tiny_lm):
    with gated(tiny_lm, after=3, fail=True):
        s = tiny_lm.stream("<b>bold</b> prompt", max_new_tokens=50)
        with pytest.raises(RuntimeError, match="caught fire"):
            s.wait(30)
    assert s.status == "failed" and s.done and s.n_tokens == 3
    assert s.error == "RuntimeError: the accelerator caught fire"
    with pytest.raises(RuntimeError, match="caught fire"):
        s.wait()  # every time
    with pytest.raises(GenerationError, match=r"the generation failed.*caught fire") as info:
        _ = s.generation
    assert isinstance(info.value.__cause__, RuntimeError)
    html = s._repr_html_()
    assert "caught fire" in html and "&lt;b&gt;bold&lt;/b&gt; prompt" in html and "<b>" not in html
    assert "failed" in repr(s)


def test_a_subscriber_that_raises_fails_the_stream_with_its_error(tiny_lm):
    with gated(tiny_lm, after=1) as go:
        s = tiny_lm.stream(PROMPT, max_new_tokens=8)

        def broken(piece: str) -> None:
            raise ValueError("bad listener")

        s.subscribe(broken)
        go.set()
        with pytest.raises(ValueError, match="bad listener"):
            s.wait(30)
    assert s.status == "failed" and "ValueError: bad listener" in str(s.error)


def test_bad_settings_raise_at_the_call_before_any_thread_starts(tiny_lm, tiny_model):
    threads = threading.active_count()
    with pytest.raises(ConfigError, match="max_new_tokens must be between 1"):
        tiny_lm.stream(PROMPT, max_new_tokens=0)
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\]"):
        tiny_lm.stream(PROMPT, top_p=0)
    with pytest.raises(ConfigError, match=r"unknown setting.*max_tokens.*max_new_tokens"):
        tiny_lm.stream(PROMPT, max_tokens=5)
    with pytest.raises(ConfigError, match=r"on_token.*stream.subscribe\(fn\)"):
        tiny_lm.stream(PROMPT, on_token=print)
    with pytest.raises(InputError, match="prompt must be a string, got list"):
        tiny_lm.stream([PROMPT])
    with pytest.raises(InputError, match="stream needs a causal-lm model"):
        tiny_model.stream(PROMPT)
    assert threading.active_count() == threads


def test_a_model_that_a_run_is_training_is_not_streamed_from(tiny_lm):
    assert tiny_lm.claim_for_training()  # as labkit.finetune does for its run
    try:
        with pytest.raises(TrainingError, match=r"a run is training.*run\.wait\(\)"):
            tiny_lm.stream(PROMPT)
    finally:
        tiny_lm.release_training()
    assert tiny_lm.stream(PROMPT, max_new_tokens=2).wait(30).status == "done"


def test_a_prompt_cut_to_fit_warns_at_the_call(tiny_lm):
    with pytest.warns(LabkitWarning, match="did not fit the model's context") as caught:
        s = tiny_lm.stream(" ".join([PROMPT] * 40), max_new_tokens=4)
    assert caught[0].filename == __file__  # the caller's line, not the thread's
    assert s.wait(30).n_tokens == 4


def test_on_end_is_called_once_on_the_thread_that_ends_it_or_at_once(tiny_lm):
    ended: list[str] = []
    with gated(tiny_lm, after=1) as go:
        s = tiny_lm.stream(PROMPT, max_new_tokens=3)
        s.on_end(lambda st: ended.append(st.status))
        go.set()
        s.wait(30)
    s.on_end(lambda st: ended.append("late " + st.status))
    assert ended == ["done", "late done"]


# -- the live view, without a browser -------------------------------------------------------


def _replay(messages: list[tuple[dict, list[bytes]]], text: str = "") -> str:
    """What a view's store holds after these text messages (the JS store's rule)."""
    for content, _ in messages:
        if content.get("type") == "text" and content["start"] <= len(text):
            text = text[: content["start"]] + content["text"]
    return text


def test_the_view_streams_deltas_that_rebuild_the_text_and_answers_a_sync(tiny_lm):
    from labkit.ui.generation_view import GenerationView

    with gated(tiny_lm, after=0) as go:  # nothing generated before the tap listens
        s = tiny_lm.stream("<script>alert(1)</script>", max_new_tokens=30)
        view = GenerationView(s, interval=0.01)
        tap = WireTap(view)
        assert view.prompt == "<script>alert(1)</script>" and view.max_new_tokens == 30
        assert view.status == "running" and view.finish_reason == "" and view.length == 0
        go.set()
        s.wait(30)
        view.flush()  # whatever the view's thread has not sent yet
    assert view.status == "done" and view.finish_reason == "length"
    assert view.finish_label == "max_new_tokens reached"
    assert view.n_tokens == 30 and view.length == len(s.text) and view.tokens_per_s > 0
    texts = [m for m in tap.custom() if m[0]["type"] == "text"]
    assert texts and all(not m[0]["reply"] for m in texts)
    assert _replay(texts) == s.text
    # at most one message per interval however fast the tokens came, and never one per token
    assert len(texts) <= 30
    # a view that holds the first 5 characters asks for the rest
    tap.clear()
    tap.from_front_end({"type": "sync", "have": 5})
    ((reply, _),) = tap.custom()
    assert reply == {"type": "text", "start": 5, "text": s.text[5:], "reply": True}
    assert _replay([(reply, [])], s.text[:5]) == s.text
    tap.from_front_end({"type": "sync", "have": 10**6})  # more than there is: nothing lost
    assert tap.custom()[-1][0]["start"] == len(s.text)
    view.close()


def test_stop_from_the_view_stops_the_stream_and_says_so(tiny_lm):
    from labkit.ui.generation_view import GenerationView, view_for_stream

    with gated(tiny_lm, after=3) as go:
        s = tiny_lm.stream(PROMPT, max_new_tokens=100)
        view = view_for_stream(s)
        assert view_for_stream(s) is view  # every display shares one widget
        tap = WireTap(view)
        tap.from_front_end({"type": "control", "action": "stop"})  # returns at once
        assert s.stop_requested and view.stop_requested
        tap.from_front_end({"type": "control", "action": "nonsense"})  # ignored, never raises
        tap.from_front_end("not even a dict")
        go.set()
        s.wait(30)
        view.flush()
    assert isinstance(view, GenerationView)
    assert view.status == "stopped" and view.finish_reason == "cancelled"
    assert view.finish_label == "cancelled" and view.n_tokens <= 4
    view.close()


def test_a_view_of_an_ended_stream_has_its_final_state_at_once(tiny_lm):
    from labkit.ui.generation_view import GenerationView

    s = tiny_lm.stream(PROMPT, max_new_tokens=5).wait(30)
    view = GenerationView(s)
    assert view._thread is None  # nothing left to follow
    assert (view.status, view.length, view.n_tokens) == ("done", len(s.text), 5)
    view.close()


def test_static_html_while_running_and_at_the_end(tiny_lm):
    with gated(tiny_lm, after=3) as go:
        s = tiny_lm.stream("<img src=x onerror=alert(1)>", max_new_tokens=6)
        running = s._repr_html_()
        go.set()
        s.wait(30)
    final = s._repr_html_()
    for html in (running, final):
        assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "running" in running and "/ 6 tokens" in running and "▌" in running
    assert "done" in final and "6 tokens" in final and "▌" not in final
    assert "max_new_tokens reached" in final


def test_the_stream_shows_as_its_snapshot_outside_a_kernel(tiny_lm):
    s = tiny_lm.stream(PROMPT, max_new_tokens=3).wait(30)
    bundle = s._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no kernel here: no widget
    assert bundle["text/plain"] == repr(s) and s.text in bundle["text/html"]


def test_a_stream_displayed_while_running_ends_with_the_final_snapshot(tiny_lm, monkeypatch):
    """In a kernel: the live view next to the snapshot, and when the stream ends the saved
    output is updated in place, once, with the final text (same widget)."""
    import sys
    from types import ModuleType

    import labkit.ui._live

    shown: list[tuple[dict, list[dict]]] = []

    class Handle:
        def __init__(self) -> None:
            self.updates: list[dict] = []

        def update(self, bundle: dict, raw: bool = False) -> None:
            assert raw
            self.updates.append(bundle)

    def display(bundle: dict, raw: bool = False, display_id: object = None) -> Handle:
        assert raw and display_id is True
        handle = Handle()
        shown.append((bundle, handle.updates))
        return handle

    monkeypatch.setattr(labkit.ui._live, "ipython_display", display)
    kernel = ModuleType("ipykernel")  # "in a kernel", as labkit.render.display checks it
    kernel.version_info = (6, 29, 0)  # type: ignore[attr-defined]  # read by ipywidgets
    monkeypatch.setitem(sys.modules, "ipykernel", kernel)
    with gated(tiny_lm, after=2) as go:
        s = tiny_lm.stream("<i>hi</i>", max_new_tokens=6)
        s._ipython_display_()
        go.set()
        s.wait(30)
    ((bundle, updates),) = shown
    widget = "application/vnd.jupyter.widget-view+json"
    assert widget in bundle and "application/vnd.labkit.view+json" in bundle
    assert "running" in bundle["text/html"]
    (final,) = updates  # exactly once, at the end
    assert final[widget] == bundle[widget]  # the same live view
    assert "done" in final["text/html"] and "6 tokens" in final["text/html"]
    assert final["text/plain"] == repr(s) and "&lt;i&gt;hi&lt;/i&gt;" in final["text/html"]
    from labkit.ui.generation_view import view_for_stream

    view_for_stream(s).close()


def test_an_explanation_during_a_stream_waits_for_it_instead_of_catching_its_passes(tiny_lm):
    """explain hooks the embedding layer; a stream's forward passes on another thread must not
    run through those hooks (captum then finds its input unused: a RuntimeError)."""
    import labkit

    prompt = "the movie was"
    stream = tiny_lm.stream(prompt, max_new_tokens=100, temperature=0.8, seed=0)
    result = labkit.explain(tiny_lm, prompt, method="gradient_x_input", max_new_tokens=4)
    assert stream.done  # the explanation waited for the generation
    assert result.scores.shape == (len(result.target_tokens), len(result.tokens))
    alone = labkit.explain(tiny_lm, prompt, method="gradient_x_input", max_new_tokens=4)
    np.testing.assert_allclose(result.scores, alone.scores, rtol=1e-5, atol=1e-6)
