"""Static HTML for attributions: coloured tokens on a diverging scale, a legend, the numbers.

Used by ``AttributionResult._repr_html_`` (nbviewer, GitHub, saved notebooks), the dataset
summary and ``labkit explain --html``. Every token and label is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from labkit.render.summary import sig

if TYPE_CHECKING:
    from labkit.inspect.attribution.compare import ExplanationComparison
    from labkit.inspect.attribution.result import AttributionResult, DatasetAttribution

__all__ = [
    "AGAINST",
    "OPACITY",
    "TOWARD",
    "colour",
    "comparison_html",
    "dataset_html",
    "render",
    "scale",
    "scale_label",
    "scale_of",
    "top_score",
]

# Green pushes toward the explained label, red away from it (captum's convention); the strongest
# score is drawn at OPACITY. AttributionView draws with the same numbers (labkit.ui._base hands
# them to the front end as PALETTE.toward, PALETTE.against and PALETTE.opacity).
TOWARD = (22, 163, 74)
AGAINST = (220, 38, 38)
OPACITY = 0.85


def top_score(scores: np.ndarray, special: Sequence[bool]) -> float:
    """The largest finite |score| over non-special tokens (0.0 when there is none)."""
    keep = ~np.asarray(special, dtype=bool) if len(special) == len(scores) else slice(None)
    values = np.abs(np.asarray(scores, dtype=np.float64)[keep])
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 0.0


def scale(scores: np.ndarray, special: Sequence[bool]) -> float:
    """The largest |score| over non-special tokens (1.0 when all are zero): a result's own
    colour scale."""
    top = top_score(scores, special)
    return top if top > 0 else 1.0


def scale_of(result: AttributionResult) -> float:
    """The scale ``result`` is drawn on: its ``scale`` when set (a shared one), else its own."""
    return result.scale if result.scale is not None else scale(result.scores, result.special)


def scale_label(result: AttributionResult) -> str:
    """What the legend says of the scale: "shared scale ±0.017" or "own scale ±0.0037"."""
    kind = "own" if result.scale is None else "shared"
    return f"{kind} scale ±{scale_of(result):.2g}"


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
    top = scale_of(result)
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


def legend_html(target: str, label: str) -> str:
    """The colour legend: red for against ``target``, green for toward it, then ``label``
    (which scale the colours are on, :func:`scale_label`)."""
    e = html.escape
    neg = f"rgb{AGAINST}".replace(" ", "")
    pos = f"rgb{TOWARD}".replace(" ", "")
    return (
        '<div class="labkit-legend" style="display:flex;flex-wrap:wrap;align-items:center;'
        'gap:6px;font-size:12px;margin-top:6px">'
        f"<span>against {e(target)}</span>"
        f'<span style="display:inline-block;width:120px;height:10px;border:1px solid #ccc;'
        f'background:linear-gradient(to right,{neg},#fff,{pos})"></span>'
        f"<span>toward {e(target)}</span>"
        f'<span class="labkit-scale" style="color:#666">{e(label)}</span></div>'
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
    """One self-contained HTML block for ``result`` (drawn on ``scale_of(result)``)."""
    return (
        '<div class="labkit-attribution" style="font-family:sans-serif;line-height:1.9">'
        f'<div style="font-size:13px;margin-bottom:4px">{header_html(result)}</div>'
        f'<div style="font-size:15px">{tokens_html(result)}</div>'
        f"{legend_html(result.target, scale_label(result))}</div>"
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


_TEXT_SHOWN = 80  # characters of the explained text in a comparison's title


def comparison_html(self: ExplanationComparison) -> str:
    """Two explanations side by side: rank, then each method's token and score; the rank
    agreement in words; tokens in both top lists in bold."""
    e = html.escape
    a, b = self.a, self.b
    shared = set(self.shared)
    tops = [max((abs(v) for _, v in top), default=0.0) for top in (self.top_a, self.top_b)]
    pad = "padding:1px 6px"

    def cell(token: str | None, score: float | None, top: float) -> str:
        if token is None or score is None:
            return "<td></td><td></td>"
        weight = "font-weight:600;" if token in shared else ""
        return (
            f"<td style='{pad};text-align:left'><span style='{weight}background:"
            f"{colour(score, top)};padding:0 3px;border-radius:3px;white-space:pre'>"
            f"{e(token)}</span></td><td style='{pad};text-align:right'>{e(sig(score))}</td>"
        )

    rows = []
    for row in self.rows():
        ta = cell(row["token_a"], row["score_a"], tops[0])
        tb = cell(row["token_b"], row["score_b"], tops[1])
        rows.append(f"<tr><td style='{pad};text-align:right'>{row['rank']}</td>{ta}{tb}</tr>")
    text = a.text if len(a.text) <= _TEXT_SHOWN else a.text[: _TEXT_SHOWN - 1] + "…"
    targets = (
        f"explaining {e(a.target)}"
        if a.target == b.target
        else f"explaining {e(a.target)} / {e(b.target)}"
    )
    name_a, name_b = (r.method.replace("_", " ") for r in (a, b))
    return (
        f"<div class='labkit-explanation-comparison' style='font-family:sans-serif;"
        f"font-size:13px'><div><b>{e(name_a)}</b> vs <b>{e(name_b)}</b> · {targets} · "
        f"<span style='white-space:pre-wrap'>“{e(text)}”</span></div>"
        f"<div style='margin:2px 0 4px'>{e(self.correlation.capitalize())} rank agreement "
        f"<b>{e(sig(self.agreement, 2))}</b>: the two methods {e(self.verdict())} "
        f"<span style='color:#777'>(1 = same order, 0 = unrelated, −1 = reversed; over all "
        f"{sum(1 for s in a.special if not s) if a.special else len(a.tokens)} tokens)</span>"
        f"</div><table><thead><tr><th style='{pad}'>rank</th><th colspan='2'>{e(name_a)}</th>"
        f"<th colspan='2'>{e(name_b)}</th></tr><tr><th></th><th>token</th><th>score</th>"
        f"<th>token</th><th>score</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<div style='color:#777'>top {self.k} tokens of each; in bold: in both lists "
        f"({len(self.shared)}). Each method scores on its own scale: compare ranks, not "
        f"numbers.</div></div>"
    )
