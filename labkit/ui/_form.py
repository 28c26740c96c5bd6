"""The App's form layout: labels sized to their text, fields that shrink, rows that wrap.

ipywidgets cuts a description at a fixed width (80-90px: "Label colu…") and gives every button
the same 148px ("Compare befor…"). Here labels get the room their text needs, buttons fit their
text, wide fields shrink with the window and rows wrap instead of overflowing, so nothing is
cut off from a narrow window (~700 px) to a wide one. Shared by every tab of ``labkit.App``
(``labkit.ui.app``) and its causal-LM tabs (``labkit.ui.app_lm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets as W
else:  # through _base, which checks the ui extra first (MissingDependencyError naming it)
    from labkit.ui._base import ipywidgets as W

__all__ = [
    "button",
    "field",
    "fit",
    "form",
    "hint",
    "label_row",
    "labelled",
    "layout",
    "text_area",
]


def layout(**kw: Any) -> W.Layout:
    return W.Layout(**kw)


def fit() -> dict[str, str]:
    """A description as wide as its text."""
    return {"description_width": "initial"}


def form() -> dict[str, str]:
    """The labels of a stacked form: one width (in em, so it grows with the font), room for
    the longest ("Learning rate")."""
    return {"description_width": "8em"}


def field(width: str = "36em") -> W.Layout:
    """A field that is ``width`` wide where there is room and shrinks with the window."""
    return layout(width="100%", max_width=width)


def labelled(text: str, widget: W.Widget, width: str = "30em") -> W.HBox:
    """``widget`` (up to ``width`` wide) with its label on its left, or above it when the row
    is too narrow for both: a long placeholder or option keeps the room it needs."""
    widget.layout = layout(flex="1 1 18em", max_width=width, min_width="0")
    label = W.Label(text, layout=layout(width="8em", flex="none"))
    return W.HBox([label, widget], layout=layout(flex_flow="row wrap", align_items="center"))


def button(description: str, **kw: Any) -> W.Button:
    """A button as wide as its text (not stretched across a column, not cut at 148px)."""
    box = layout(width="auto", flex="none", align_self="flex-start")
    return W.Button(description=description, layout=box, **kw)


def label_row(*children: W.Widget) -> W.HBox:
    return W.HBox(
        list(children),
        layout=layout(align_items="center", flex_flow="row wrap", grid_gap="4px 16px"),
    )


def text_area(value: str, placeholder: str = "Type a text", height: str = "60px") -> W.Textarea:
    """A text box as wide as the tab allows, up to 640px."""
    return W.Textarea(
        value=value,
        placeholder=placeholder,
        layout=layout(width="100%", max_width="640px", height=height),
    )


def hint(text: str) -> W.HTML:
    """A small note (``text`` is HTML: escape what it quotes) whose lines stay close together
    when it wraps (a widget's own line height is that of a field)."""
    return W.HTML(f"<div style='line-height:1.4'><small>{text}</small></div>")
