"""Self-contained HTML reports: one file, no scripts, nothing fetched.

A report is a title and a list of sections; each section is a heading plus HTML produced by
labkit's own static renderers (which escape every piece of data) or plain text/tables that
this module escapes. The page carries a Content-Security-Policy that forbids scripts and any
network request, so a report stays inert and offline whatever the data held.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit._version import __version__

__all__ = ["Report", "Section"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1040px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
.meta { color: #57606a; } table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #eaeef2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
section { overflow-x: auto; }
"""


@dataclass(frozen=True)
class Section:
    """One part of a report; ``body_html`` must come from a labkit renderer or ``Report`` helpers."""

    title: str
    body_html: str


@dataclass
class Report:
    """Build a report section by section, then ``.html()`` or ``.write(path)``."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def add_html(self, title: str, body_html: str) -> Report:
        """A section from already-escaped HTML (a result's ``_repr_html_``)."""
        self.sections.append(Section(title, body_html))
        return self

    def add_text(self, title: str, text: str) -> Report:
        """A section of preformatted text (escaped)."""
        return self.add_html(title, f"<pre>{html.escape(text)}</pre>")

    def add_table(self, title: str, rows: Sequence[Mapping[str, Any]], *, note: str = "") -> Report:
        """A section holding a table; every cell is escaped, floats get 4 digits."""
        if not rows:
            return self.add_text(title, "(empty)")
        cols = list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = []
        for row in rows:
            cells = []
            for c in cols:
                v = row.get(c)
                if isinstance(v, float):
                    cells.append(f"<td class='num'>{v:.4f}</td>")
                elif isinstance(v, int):
                    cells.append(f"<td class='num'>{v}</td>")
                else:
                    cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        note_html = f"<p class='meta'>{html.escape(note)}</p>" if note else ""
        return self.add_html(
            title,
            f"{note_html}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>",
        )

    def html(self) -> str:
        e = html.escape
        stamp = time.strftime("%Y-%m-%d %H:%M")
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{e(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{e(self.title)}</h1>",
            f"<p class='meta'>{e(self.subtitle)}{' — ' if self.subtitle else ''}labkit "
            f"{e(__version__)}, {e(stamp)}</p>",
        ]
        for s in self.sections:
            parts.append(f"<section><h2>{e(s.title)}</h2>{s.body_html}</section>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report atomically and return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(self.html(), encoding="utf-8")
        os.replace(tmp, target)
        return target
