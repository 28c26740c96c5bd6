"""Static HTML for attributions: coloured tokens on a diverging scale, a legend, the numbers.

Used by ``AttributionResult._repr_html_`` (nbviewer, GitHub, saved notebooks), the dataset
summary and ``labkit explain --html``. Every token and label is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from labkit.inspect.attribution.result import AttributionResult, DatasetAttribution

__all__ = ["AGAINST", "OPACITY", "TOWARD", "colour", "dataset_html", "render", "scale"]

# Green pushes toward the explained label, red away from it (captum's convention); the strongest
# score is drawn at OPACITY. AttributionView draws with the same numbers (labkit.ui._base hands
# them to the front end as PALETTE.toward, PALETTE.against and PALETTE.opacity).
TOWARD = (22, 163, 74)
AGAINST = (220, 38, 38)
OPACITY = 0.85


def scale(scores: np.ndarray, special: Sequence[bool]) -> float:
    """The largest |score| over non-special tokens (1.0 when all are zero)."""
    keep = ~np.asarray(special, dtype=bool) if len(special) == len(scores) else slice(None)
    values = np.abs(np.asarray(scores, dtype=np.float64)[keep])
    top = float(values.max()) if values.size else 0.0
    return top if top > 0 and np.isfinite(top) else 1.0


def colour(value: float, top: float) -> str:
    """CSS background for ``value`` on a scale whose ends are ±``top``."""
    x = max(-1.0, min(1.0, value / top)) if top else 0.0
    r, g, b = TOWARD if x >= 0 else AGAINST
    return f"rgba({r},{g},{b},{abs(x) * OPACITY:.3f})"


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def tokens_html(result: AttributionResult) -> str:
    """The coloured token spans of one result (no header, no legend)."""
    e = html.escape
    top = scale(result.scores, result.special)
    spans = []
    for i, (token, value) in enumerate(zip(result.tokens, result.scores.tolist())):
        special = bool(result.special[i]) if result.special else False
        space = " " if i and (not result.spaces or result.spaces[i]) else ""
        style = f"background:{colour(value, top)};padding:1px 2px;border-radius:3px"
        if special:
            style += ";color:#888;font-style:italic"
        spans.append(
            f'{space}<span class="labkit-token" style="{style}" '
            f'title="{e(f"{token}: {value:+.4g}")}">{e(token)}</span>'
        )
    return "".join(spans)


def legend_html(target: str, top: float) -> str:
    e = html.escape
    neg = f"rgb{AGAINST}".replace(" ", "")
    pos = f"rgb{TOWARD}".replace(" ", "")
    return (
        '<div class="labkit-legend" style="display:flex;align-items:center;gap:6px;'
        'font-size:12px;margin-top:6px">'
        f"<span>against {e(target)} (−{top:.3g})</span>"
        f'<span style="display:inline-block;width:120px;height:10px;border:1px solid #ccc;'
        f'background:linear-gradient(to right,{neg},#fff,{pos})"></span>'
        f"<span>toward {e(target)} (+{top:.3g})</span></div>"
    )


def header_html(result: AttributionResult) -> str:
    e = html.escape
    parts = [f"<b>{e(result.target)}</b> (p={result.probs.get(result.target, float('nan')):.3f})"]
    if result.predicted != result.target:
        parts.append(
            f"predicted <b>{e(result.predicted)}</b> (p={result.probs[result.predicted]:.3f})"
        )
    parts.append(e(result.method.replace("_", " ")))
    if result.delta is not None:
        steps = result.options.get("n_steps")
        parts.append(
            f"completeness error {_fmt(result.delta, 4)}"
            + (f" at {int(steps)} steps" if steps else "")
        )
    if result.comprehensiveness is not None:
        parts.append(
            f"AOPC comprehensiveness {_fmt(result.comprehensiveness)}, "
            f"sufficiency {_fmt(result.sufficiency)}"
        )
    return " · ".join(parts)


def render(result: AttributionResult) -> str:
    """One self-contained HTML block for ``result``."""
    top = scale(result.scores, result.special)
    return (
        '<div class="labkit-attribution" style="font-family:sans-serif;line-height:1.9">'
        f'<div style="font-size:13px;margin-bottom:4px">{header_html(result)}</div>'
        f'<div style="font-size:15px">{tokens_html(result)}</div>'
        f"{legend_html(result.target, top)}</div>"
    )


def dataset_html(self: DatasetAttribution) -> str:
    """Static summary of a dataset's explanations: per label, the tokens that push it most."""
    e = html.escape
    parts = [
        f"<div class='labkit-dataset-attribution'><b>{len(self.results)}</b> examples "
        f"explained by {e(self.method.replace('_', ' '))}"
    ]
    if len(self.table) and self.table["comprehensiveness"].notna().any():
        parts.append(
            f" · mean comprehensiveness {self.table['comprehensiveness'].mean():.3f},"
            f" sufficiency {self.table['sufficiency'].mean():.3f}"
        )
    parts.append("<table><tr><th>label</th><th>tokens that push it most (total score)</th></tr>")
    for label in sorted(set(self.influence["label"])) if len(self.influence) else []:
        top = self.top_tokens(label, 10)
        cells = ", ".join(f"{e(t)} ({v:+.2f})" for t, v in zip(top["token"], top["total"]))
        parts.append(f"<tr><td>{e(label)}</td><td>{cells}</td></tr>")
    parts.append("</table></div>")
    return "".join(parts)
