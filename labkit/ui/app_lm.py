"""The causal-LM tabs of ``labkit.App``: Generate, Explain and Compare, and a causal LM's rows
in the shared Train and Attention tabs.

``labkit.ui.app`` keeps the frame (status line, model and data loading, the worker thread and
the locks, the snapshot) and shows these when the loaded model's ``task`` is ``"causal-lm"``:
Model | Data | Train | Generate | Attention | Explain | Compare. Each button is one library
call on the App's worker thread, under the App's model lock:

* Generate -> ``Model.stream(prompt, ...)``, shown live by ``labkit.ui.generation_view`` (its
  Stop, and the tab's, end the stream within a token);
* Train -> ``labkit.finetune(..., sample_prompts=[...], eval_every=...)``: the run's panel shows
  the model's answers to the sample prompts at each evaluation;
* Explain -> ``labkit.explain(lm, prompt, target=None | text, method=...)``, a
  ``GenerationAttribution`` and its view;
* Compare -> ``Model.generate`` + ``labkit.explain`` under the model before finetuning (the
  copy kept at full finetuning, or the LoRA adapter turned off) and after.

Every text shown goes through ``html.escape`` or a view that writes ``textContent``.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.ui._form import (
    button,
    field,
    fit,
    form,
    hint,
    label_row,
    labelled,
    layout,
    text_area,
)

if TYPE_CHECKING:
    import ipywidgets as W

    from labkit.lm.generate import Generation
    from labkit.ui.app import App
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["LM_DATA", "LM_DATA_PRESETS", "LM_EXAMPLE", "LMComparison", "LMTabs"]

LM_DATA = "offline: review snippets as instructions"
# name -> (hub dataset or file, text column, label column: hidden and unused, kept as the
# classifier's presets leave it); None: labkit.demo.instructions
LM_DATA_PRESETS: dict[str, tuple[str, str, str] | None] = {
    LM_DATA: None,
    "other: hub name, file path or upload below": ("", "text", "label"),
}
LM_EXAMPLE = "What is the capital of France?"
# sample prompts in their text box: separated by an empty line (a prompt may hold newlines)
_PROMPT_GAP = re.compile(r"\n[ \t]*\n")


@dataclasses.dataclass(frozen=True)
class LMComparison:
    """What the Compare tab shows for a causal LM: one prompt's greedy generation under the
    model before and after finetuning.

    ``before`` / ``after`` are the two :class:`~labkit.lm.Generation`; ``explained_before`` /
    ``explained_after`` explain each side's own generation under its own model
    (``GenerationAttribution``; None when that side generated nothing); ``how`` says what
    "before" is (a kept copy or the adapter off).
    """

    prompt: str
    before: Generation
    after: Generation
    explained_before: Any
    explained_after: Any
    how: str


def split_prompts(text: str) -> list[str]:
    """The prompts of a text box: blocks separated by an empty line, stripped, none empty."""
    return [p.strip() for p in _PROMPT_GAP.split(text) if p.strip()]


def with_generation(g: Generation) -> str:
    """The prompt followed by its generation, as one text (a space between, unless one of
    them brings its own)."""
    if not g.text or g.text[:1].isspace() or g.prompt[-1:].isspace():
        return g.prompt + g.text
    return f"{g.prompt} {g.text}"


def lm_methods() -> tuple[str, ...]:
    """The attribution methods ``labkit.explain`` has for a causal LM."""
    from labkit.inspect.attribution.generation import METHODS

    return METHODS


def _view(result: Any) -> W.Widget:
    """The interactive view of a result, or its static HTML where it has none."""
    from labkit.ui import view_for

    view = view_for(result)
    return view if view is not None else W.HTML(result._repr_html_())


def _generated(stream: Any) -> str:
    """The status line after a stream has ended."""
    from labkit.render.generation import FINISH_WORDS
    from labkit.render.summary import sig

    g = stream.generation
    n = len(g.token_ids)
    if stream.status == "stopped":
        return f"Generation stopped after {n:,} tokens."
    why = FINISH_WORDS.get(g.finish_reason, g.finish_reason)
    return f"Generated {n:,} tokens ({why}), {sig(stream.tokens_per_s)} tokens/s."


class LMTabs:
    """A causal LM's widgets in the App (``app.lm``) and what their buttons do.

    ``generation`` is the last finished generation of the Generate tab, ``explained`` the last
    ``GenerationAttribution`` of the Explain tab, ``comparison`` the last :class:`LMComparison`.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.stream: Any = None  # the Generate tab's GenerationStream, the last one started
        self.generation: Generation | None = None
        self.explained: Any = None
        self.comparison: LMComparison | None = None
        self.generate_page = self._generate_tab()
        self.train_rows = self._train_rows()
        self.attention_row = self._attention_row()
        self.explain_page = self._explain_tab()
        self.compare_page = self._compare_tab()

    # -- the model and the data the App loaded -------------------------------------------------
    def show_model(self, model: Any) -> None:
        """A model was loaded (or none is): what the tabs showed belongs to the one before; the
        chat checkbox follows the tokenizer's chat template."""
        template = model is not None and bool(getattr(model.tokenizer, "chat_template", None))
        self.chat.value, self.chat.disabled = template, not template
        self.chat.description = (
            "Chat template"
            if template or model is None
            else "Chat template (this tokenizer has none)"
        )
        self.stream = self.generation = self.explained = self.comparison = None
        for box in (self.generate_box, self.explain_box, self.compare_box):
            box.children = []
        self._show_generation()

    def show_data(self, data: Any) -> str:
        """The Data tab's preview of causal-LM data (its first rows, escaped); the sample
        prompts become its first validation prompts."""
        from labkit.lm.data import LMData
        from labkit.lm.samples import default_sample_prompts
        from labkit.render.run import clip

        e = html.escape
        if not isinstance(data, LMData):
            return (
                f"{data._repr_html_()}<p><b>This is labelled data for a classifier.</b> A causal "
                "LM learns from a text column or prompt + response columns: load such data "
                "here.</p>"
            )
        self.sample_prompts.value = "\n\n".join(default_sample_prompts(data))
        rows = data.train.select(range(min(6, len(data.train))))
        head = "".join(f"<th>{e(c)}</th>" for c in data.columns)
        body = "".join(
            # cut in the middle: an instruction's question is at its end
            "<tr>"
            + "".join(
                f"<td>{e(clip(str(rows[c][i]), 160, middle=True))}</td>" for c in data.columns
            )
            + "</tr>"
            for i in range(len(rows))
        )
        return (
            f"{data._repr_html_()}<table class='labkit-preview'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    # -- Generate ------------------------------------------------------------------------------
    def _generate_tab(self) -> W.VBox:
        from labkit.lm.generate import MAX_NEW_TOKENS_LIMIT

        self.prompt = text_area(LM_EXAMPLE, "Type a prompt", height="80px")
        self.max_new_tokens = W.BoundedIntText(
            value=64,
            min=1,
            max=MAX_NEW_TOKENS_LIMIT,
            description="Max new tokens",
            style=fit(),
            layout=field("13em"),
        )
        self.temperature = W.BoundedFloatText(
            value=0.0,
            min=0.0,
            max=10.0,
            step=0.1,
            description="Temperature",
            tooltip="0 = greedy (the most likely token each time)",
            style=fit(),
            layout=field("11em"),
        )
        self.top_p = W.BoundedFloatText(
            value=1.0,
            min=0.01,
            max=1.0,
            step=0.05,
            description="Top-p",
            tooltip="when sampling: keep the most likely tokens up to this probability",
            style=fit(),
            layout=field("9em"),
        )
        self.chat = W.Checkbox(
            value=True, description="Chat template", indent=False, layout=layout(width="auto")
        )
        self.generate_go = button("Generate", button_style="primary", icon="play")
        self.generate_stop = button("Stop", button_style="danger", icon="stop", disabled=True)
        note = hint(
            "Temperature 0 is greedy; top-p applies when sampling. Tokens appear as they are made."
        )
        self.generate_box = W.VBox()
        self.generate_go.on_click(lambda _: self.app.generate())
        self.generate_stop.on_click(lambda _: self.app.stop_generation())
        return W.VBox(
            [
                self.prompt,
                label_row(self.max_new_tokens, self.temperature, self.top_p, self.chat),
                label_row(self.generate_go, self.generate_stop, note),
                self.generate_box,
            ]
        )

    def settings(self) -> dict[str, Any]:
        """``Model.generate``'s keywords as the Generate tab has them (Compare and Explain
        use its max new tokens and chat setting too)."""
        return {
            "max_new_tokens": int(self.max_new_tokens.value),
            "temperature": float(self.temperature.value),
            "top_p": float(self.top_p.value),
            "chat": bool(self.chat.value) and not self.chat.disabled,
        }

    def _model_for(self, what: str) -> Any:
        """The App's causal LM, for ``what``; refused while a run trains it (its weights
        move, and a generation would switch it out of training mode under the run)."""
        from labkit._errors import InputError

        app = self.app
        app._need()
        model = app.model
        model.require_task("causal-lm", what)
        if model.is_training:
            raise InputError(
                f"A run is training this model: {what} when it has ended (or stop it). Its "
                "panel shows the model's answers to the sample prompts at each evaluation."
            )
        return model

    def generate(self) -> None:
        """``model.stream(prompt, ...)`` into the tab's live view; the status line says how it
        ended. Stop (here or in the view) ends it within a token."""
        from labkit.ui.generation_view import view_for_stream

        app = self.app
        prompt, settings = self.prompt.value, self.settings()

        def job() -> Any:
            with app._model_lock:  # not while Compare has the adapter off, nor mid-explanation
                model = self._model_for("generate")
                stream = model.stream(prompt, **settings)
                self.stream = stream
                self.generate_box.children = [view_for_stream(stream)]
                self.generate_stop.disabled = False
                try:
                    stream.wait()  # a failed generation raises its error here
                finally:
                    self.generate_stop.disabled = True
            return stream

        def done(stream: Any) -> str:
            self.generation = stream.generation
            self._show_generation()
            app._refresh_snapshot()
            return _generated(stream)

        app._work("Generating…", job, done)

    def stop(self) -> None:
        """End the running generation after the token being made; returns at once."""
        stream = self.stream
        if stream is not None:
            stream.stop()
        self.generate_stop.disabled = True

    def _show_generation(self) -> None:
        """The buttons that reuse the last generation work once there is one."""
        self.attention_use.disabled = self.explain_use.disabled = self.generation is None

    # -- Train ---------------------------------------------------------------------------------
    def _train_rows(self) -> list[W.Widget]:
        self.eval_every = W.BoundedIntText(
            value=0,
            min=0,
            max=10_000_000,
            description="Evaluate every",
            tooltip="steps between evaluations, each with the sample generations; 0 = each epoch",
            style=form(),
            layout=field("18em"),
        )
        self.sample_prompts = text_area("", "empty: no sample generations", "96px")
        return [
            label_row(self.eval_every, W.Label("steps (0 = each epoch)")),
            W.HTML(
                "<div style='line-height:1.4;margin-top:4px'><b>Sample prompts</b> <small>— "
                "the panel shows the model's greedy answers to these at each evaluation "
                "(default: the first 3 validation prompts). Separate prompts with an empty "
                "line.</small></div>"
            ),
            self.sample_prompts,
        ]

    def train_arguments(self) -> dict[str, Any]:
        """What ``labkit.finetune`` gets from a causal LM's Train rows."""
        return {
            "sample_prompts": split_prompts(self.sample_prompts.value),
            "eval_every": int(self.eval_every.value) or None,
        }

    # -- Attention -----------------------------------------------------------------------------
    def _attention_row(self) -> W.HBox:
        self.attention_use = button(
            "Use prompt + last generation", icon="arrow-down", disabled=True
        )
        self.attention_use.on_click(lambda _: self.use_generation(self.app.attention_text))
        return label_row(self.app.attention_go, self.attention_use)

    def use_generation(self, box: W.Textarea) -> None:
        """Put the last generation's prompt + generated text into ``box``."""
        if self.generation is not None:
            box.value = with_generation(self.generation)

    # -- Explain -------------------------------------------------------------------------------
    def _explain_tab(self) -> W.VBox:
        methods = lm_methods()
        self.explain_prompt = text_area(LM_EXAMPLE, "Type a prompt")
        self.explain_target = text_area(
            "", "empty: the model's own greedy continuation", height="48px"
        )
        self.explain_method = W.Dropdown(options=list(methods), value=methods[0])
        self.explain_go = button("Explain", button_style="primary", icon="search")
        self.explain_use = button("Use the last generation", icon="arrow-down", disabled=True)
        note = hint(
            "How much each prompt token drove each generated token: pick a generated "
            "token in the view."
        )
        self.explain_box = W.VBox()
        self.explain_go.on_click(lambda _: self.app.show_explanation())
        self.explain_use.on_click(lambda _: self._use_for_explain())
        return W.VBox(
            [
                labelled("Prompt", self.explain_prompt, "640px"),
                labelled("Target", self.explain_target, "640px"),
                labelled("Method", self.explain_method, "18em"),
                label_row(self.explain_go, self.explain_use, note),
                self.explain_box,
            ]
        )

    def _use_for_explain(self) -> None:
        g = self.generation
        if g is not None:
            self.explain_prompt.value, self.explain_target.value = g.prompt, g.text

    def _explain_options(self) -> dict[str, Any]:
        """What the Explain and Compare tabs pass to ``labkit.explain`` besides the target:
        the method, and the Generate tab's chat setting and max new tokens."""
        s = self.settings()
        return {
            "method": self.explain_method.value,
            "chat": s["chat"],
            "max_new_tokens": s["max_new_tokens"],
        }

    def explain(self) -> None:
        """``labkit.explain(lm, prompt, target=..., method=...)`` in the Explain tab: with an
        empty target, the model's own greedy continuation."""
        import labkit

        app = self.app
        prompt = self.explain_prompt.value
        target = self.explain_target.value if self.explain_target.value.strip() else None
        options = self._explain_options()

        def job() -> Any:
            with app._model_lock:
                model = self._model_for("explain")
                return labkit.explain(model, prompt, target=target, **options)

        def done(result: Any) -> str:
            from labkit.render.summary import sig

            self.explained = result
            self.explain_box.children = [_view(result)]
            n = len(result.target_tokens)
            what = "of the greedy continuation" if result.generated else "of the target"
            return (
                f"Explained {n:,} tokens {what} with {result.method} "
                f"(log-probability {sig(result.logprob)})."
            )

        app._work("Computing attributions…", job, done)

    # -- Compare -------------------------------------------------------------------------------
    def _compare_tab(self) -> W.VBox:
        self.compare_prompt = text_area(LM_EXAMPLE, "Type a prompt")
        self.compare_go = button("Compare before / after", button_style="primary", icon="columns")
        note = hint(
            "Greedy, with the Generate tab's max new tokens and chat setting; each "
            "answer explained with the Explain tab's method, on its own colour scale (the "
            "answers differ)."
        )
        self.compare_box = W.VBox()
        self.compare_go.on_click(lambda _: self.app.compare())
        return W.VBox([self.compare_prompt, label_row(self.compare_go, note), self.compare_box])

    def compare(self) -> None:
        """The same prompt under the model before and after finetuning, side by side: each
        side's greedy generation and its explanation."""
        app = self.app
        prompt = self.compare_prompt.value
        options = self._explain_options()

        def job() -> LMComparison:
            with app._model_lock:  # nothing else of the App's runs on the model meanwhile
                after = self._model_for("compare")
                g1, e1 = _answer(after, prompt, options)
                with app._before() as (before, how):
                    g0, e0 = _answer(before, prompt, options)
            return LMComparison(
                prompt=prompt,
                before=g0,
                after=g1,
                explained_before=e0,
                explained_after=e1,
                how=how,
            )

        def done(c: LMComparison) -> str:
            self.comparison = c
            self.compare_box.children = _comparison_widgets(c)
            app._refresh_snapshot()
            same = " (the same text)" if c.before.text == c.after.text else ""
            return f"Compared the model before and after finetuning{same}."

        app._work("Comparing before and after…", job, done)

    # -- the saved notebook --------------------------------------------------------------------
    def snapshot_parts(self, heading: Callable[[str], str]) -> list[str]:
        """The last generation and the last comparison as static HTML (escaped), each under
        ``heading(title)``."""
        from labkit.render.generation import generation_html

        parts: list[str] = []
        if self.generation is not None:
            parts += [heading("Generate"), generation_html([self.generation])]
        c = self.comparison
        if c is not None:
            parts += [heading(f"Compare: “{html.escape(c.prompt[:80])}”"), _comparison_html(c)]
        return parts


def _answer(model: Any, prompt: str, options: dict[str, Any]) -> tuple[Generation, Any]:
    """``model``'s greedy generation for ``prompt`` and its explanation (None when it
    generated no text: there is nothing to explain)."""
    import labkit

    g = model.generate(
        [prompt], max_new_tokens=options["max_new_tokens"], temperature=0.0, chat=options["chat"]
    )[0]
    if not g.text.strip():
        return g, None
    explained = labkit.explain(model, prompt, target=g.text, **options)
    # a static view: a recompute would run on the model as it is then (under LoRA, the
    # adapter on again), not on this side's
    return g, dataclasses.replace(explained, model=None)


def _sides(c: LMComparison) -> list[tuple[str, Generation, Any]]:
    return [("before", c.before, c.explained_before), ("after", c.after, c.explained_after)]


def _comparison_html(c: LMComparison) -> str:
    """Both sides as static HTML, side by side where there is room."""
    from labkit.render.generation import generation_html

    cells = "".join(
        "<div style='flex:1 1 320px;min-width:0'>"
        f"<div style='font-weight:600'>{side}</div>{generation_html([g])}"
        f"{explained._repr_html_() if explained is not None else ''}</div>"
        for side, g, explained in _sides(c)
    )
    return (
        f"<div style='display:flex;flex-wrap:wrap;gap:8px 24px'>{cells}</div>"
        f"<p><small>before = {html.escape(c.how)}.</small></p>"
    )


def _comparison_widgets(c: LMComparison) -> list[W.Widget]:
    from labkit.render.generation import generation_html

    def side(title: str, g: Generation, explained: Any) -> W.VBox:
        shown: list[W.Widget] = [W.HTML(f"<b>{title}</b>"), W.HTML(generation_html([g]))]
        if explained is not None:
            shown.append(_view(explained))
        else:
            shown.append(W.HTML("<small>Nothing was generated: nothing to explain.</small>"))
        return W.VBox(shown, layout=layout(flex="1 1 320px", min_width="0"))

    sides = W.HBox(
        [side(*s) for s in _sides(c)],
        layout=layout(flex_flow="row wrap", grid_gap="8px 24px"),
    )
    return [sides, W.HTML(f"<small>before = {html.escape(c.how)}.</small>")]
