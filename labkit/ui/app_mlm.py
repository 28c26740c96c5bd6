"""The masked-LM tabs of ``labkit.App``: Fill-mask, and a masked LM's row in the shared Train tab.

``labkit.ui.app`` keeps the frame (status line, model and data loading, the worker thread and
the locks, the snapshot) and shows these when the loaded model's ``task`` is ``"masked-lm"``:
Model | Data | Train | Fill-mask | Attention (the Attention tab is the text one every encoder
shares). Each button is one library call on the App's worker thread, under the App's model
lock:

* Fill-mask -> ``Model.fill_mask(text, top_k=...)``; once the App has trained the model, also
  under the model before training (the copy kept at full finetuning, or the LoRA adapter turned
  off), the two answers side by side;
* Train -> ``labkit.finetune(..., mask_probability=...)``: masked-LM (continued) pretraining,
  its panel showing loss, perplexity and masked-token accuracy.

Every text shown goes through ``html.escape`` (``labkit.render.fill_mask``).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.ui._form import button, field, fit, hint, label_row, text_area

if TYPE_CHECKING:
    import ipywidgets as W

    from labkit.mlm.fill import Candidates
    from labkit.ui.app import App
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = ["MLM_DATA", "MLM_DATA_PRESETS", "MLM_EXAMPLE", "Filled", "MLMTabs", "is_mlm_corpus"]

MLM_DATA = "offline: Rotten Tomatoes corpus (13,905 snippets)"
# name -> (hub dataset or file, text column, label column: hidden and unused); None:
# labkit.demo.corpus
MLM_DATA_PRESETS: dict[str, tuple[str, str, str] | None] = {
    MLM_DATA: None,
    "other: hub name, file path or upload below": ("", "text", "label"),
}
MLM_EXAMPLE = "the movie was [MASK] and long."


def is_mlm_corpus(data: Any) -> bool:
    """Whether ``data`` is the masked-LM corpus preset's (``labkit.demo.corpus``): an App given
    it without a model shows the masked-LM tabs."""
    source = str(getattr(data, "source", "") or "")
    return getattr(data, "kind", None) == "text" and "rotten_tomatoes_corpus" in source


@dataclasses.dataclass(frozen=True)
class Filled:
    """What the Fill-mask tab shows: one text's candidates per mask under the model as it is
    (``after``) and, once the App has trained it, under the model before training (``before``,
    else None); ``how`` says what "before" is (a kept copy or the adapter off)."""

    text: str
    after: list[Candidates]
    before: list[Candidates] | None
    how: str


def _masks(result: Any) -> list[Candidates]:
    """``Model.fill_mask``'s answer as one candidate list per mask (one mask gives one list)."""
    from labkit.mlm.fill import Candidates

    return [result] if isinstance(result, Candidates) else list(result)


def filled_html(f: Filled) -> str:
    """The candidates as tables (``labkit.render.fill_mask``), before and after side by side
    when there is a before."""
    from labkit.render.fill_mask import fill_mask_html

    if f.before is None:
        return fill_mask_html(f.after)
    cells = "".join(
        "<div style='flex:1 1 320px;min-width:0'>"
        f"<div style='font-weight:600'>{side}</div>{fill_mask_html(masks)}</div>"
        for side, masks in (("before training", f.before), ("after", f.after))
    )
    return (
        f"<div style='display:flex;flex-wrap:wrap;gap:8px 24px'>{cells}</div>"
        f"<p><small>before = {html.escape(f.how)}.</small></p>"
    )


def _top(masks: list[Candidates]) -> str:
    """The most likely token of each mask, quoted: 'good' or 'good', 'long'."""
    from labkit.render.summary import sig

    return ", ".join(
        f"'{m[0].token}' ({sig(100 * m[0].probability, 2)}%)" if m else "nothing" for m in masks
    )


class MLMTabs:
    """A masked LM's widgets in the App (``app.mlm``) and what their buttons do.

    ``filled`` is the last :class:`Filled` the Fill-mask tab showed.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.filled: Filled | None = None
        self.page = self._fill_tab()
        self.train_rows = self._train_rows()

    # -- the model and the data the App loaded -------------------------------------------------
    def show_model(self, model: Any) -> None:
        """A model was loaded (or none is): the answers shown were the one before's; the hint
        names this tokenizer's mask token."""
        self.filled = None
        self.fill_box.value = ""
        token = getattr(getattr(model, "tokenizer", None), "mask_token", None) or "[MASK]"
        also = "" if token == "[MASK]" else f" (or its own {html.escape(token)})"
        self.fill_hint.value = (
            "<div style='line-height:1.4'><small>Write [MASK]"
            f"{also} where a word is missing; each mask gets its most likely tokens. After "
            "training, the model before it answers alongside.</small></div>"
        )

    def show_data(self, data: Any) -> str:
        """The Data tab's preview of masked-LM data: its first texts, escaped."""
        from labkit.lm.data import LMData
        from labkit.render.run import clip

        e = html.escape
        if not isinstance(data, LMData) or data.kind != "text":
            shown = data._repr_html_() if hasattr(data, "_repr_html_") else e(repr(data))
            return (
                f"{shown}<p><b>A masked LM learns from plain text</b> (a text column): load "
                "such data here, e.g. the offline corpus.</p>"
            )
        rows = data.train.select(range(min(6, len(data.train))))["text"]
        body = "".join(f"<tr><td>{e(clip(str(t), 160))}</td></tr>" for t in rows)
        return (
            f"{data._repr_html_()}<table class='labkit-preview'><thead><tr><th>text</th></tr>"
            f"</thead><tbody>{body}</tbody></table>"
        )

    # -- Fill-mask -----------------------------------------------------------------------------
    def _fill_tab(self) -> W.VBox:
        self.fill_text = text_area(MLM_EXAMPLE, "Type a text with [MASK] where a word is missing")
        self.top_k = W.BoundedIntText(
            value=5, min=1, max=100, description="Top k", style=fit(), layout=field("9em")
        )
        self.fill_go = button("Fill", button_style="primary", icon="pencil")
        self.fill_hint = W.HTML()
        self.fill_box = W.HTML()
        self.fill_go.on_click(lambda _: self.fill())
        self.show_model(None)
        return W.VBox(
            [
                self.fill_text,
                label_row(self.top_k, self.fill_go, self.fill_hint),
                self.fill_box,
            ]
        )

    def _model_for(self, what: str) -> Any:
        """The App's masked LM, for ``what``; refused while a run trains it (its weights move,
        and a forward pass would switch it out of training mode under the run)."""
        from labkit._errors import InputError

        app = self.app
        app._need()
        model = app.model
        model.require_task("masked-lm", what)
        if model.is_training:
            raise InputError(
                f"A run is training this model: {what} when it has ended (or stop it). Its "
                "panel shows the masked-token accuracy at each evaluation."
            )
        return model

    def fill(self) -> None:
        """``model.fill_mask(text, top_k=...)`` in the Fill-mask tab; once the App has trained
        the model, the model before training answers too, side by side."""
        app = self.app
        text, top_k = self.fill_text.value, int(self.top_k.value)

        def job() -> Filled:
            with app._model_lock:  # one piece of the App's work on the model at a time
                model = self._model_for("fill masks")
                after = _masks(model.fill_mask(text, top_k=top_k))
                before, how = None, ""
                if app.run is not None and (app.base is not None or model.lora):
                    with app._before() as (earlier, how):
                        before = _masks(earlier.fill_mask(text, top_k=top_k))
            return Filled(text=text, after=after, before=before, how=how)

        def done(f: Filled) -> str:
            self.filled = f
            self.fill_box.value = filled_html(f)
            app._refresh_snapshot()
            said = f"Filled {len(f.after)} mask{'s' if len(f.after) > 1 else ''}: {_top(f.after)}"
            if f.before is not None:
                said += f"; before training: {_top(f.before)}"
            return said + "."

        app._work("Filling the masks…", job, done)

    # -- Train ---------------------------------------------------------------------------------
    def _train_rows(self) -> list[W.Widget]:
        from labkit.train.config import FinetuneConfig

        self.mask_probability = W.BoundedFloatText(
            value=FinetuneConfig().mask_probability,
            min=0.01,
            max=0.99,
            step=0.01,
            description="Mask probability",
            tooltip="the share of tokens masked in each training text (BERT's is 0.15)",
            style={"description_width": "8em"},
            layout=field("18em"),
        )
        return [
            label_row(
                self.mask_probability,
                hint(
                    "of the tokens are masked (80% become the mask token, 10% a random "
                    "token, 10% stay); the model learns to predict them."
                ),
            )
        ]

    def train_arguments(self) -> dict[str, Any]:
        """What ``labkit.finetune`` gets from a masked LM's Train row."""
        return {"mask_probability": float(self.mask_probability.value)}

    # -- the saved notebook --------------------------------------------------------------------
    def snapshot_parts(self, heading: Callable[[str], str]) -> list[str]:
        """The last fill-mask answers (before and after training, when both) as static HTML
        (escaped), under ``heading(title)``."""
        f = self.filled
        if f is None:
            return []
        return [heading(f"Fill-mask: “{html.escape(f.text[:80])}”"), filled_html(f)]
