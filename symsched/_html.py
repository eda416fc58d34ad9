"""Markdown as the summaries write it, for their HTML twins: one converter for every command.

``table`` and ``tables`` write the summaries' tables (from rows, or from their Markdown) with every cell through
``inline``. ``inline`` turns the inline Markdown used in the summaries' sentences (``**bold**``, ``*italic*``, ```code```,
``[label](href)``, escaped ``\\|``) into HTML, escaping everything else; the summaries' HTML thus says what their
Markdown says, links included (audit of 5 December: ``summary.html`` showed raw backticks and lacked the LaTeX
links). Code spans stay literal, and a link is made only to a relative path or an http(s) address, so that a user's
text (a spectrum path such as ``[x](javascript:...)``) never becomes markup (review of 5 December).
"""

from __future__ import annotations

import html
import re

__all__ = ["inline", "table", "tables"]

_TOKEN = re.compile(r"(`[^`]+`)|\[((?:[^\]`]|`[^`]*`)+)\]\(([^()\s]+)\)")  # a code span or a link, leftmost first
_SAFE_HREF = re.compile(r"(?:https?://|(?![a-zA-Z][a-zA-Z0-9+.-]*:))[^\"'<>\s]*\Z")


def _emphasis(escaped: str) -> str:
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", out)


def inline(text: str, links: bool = True) -> str:
    """Inline Markdown (``**bold**``, ``*italic*``, ```code```, ``[label](href)``, ``\\|``) as escaped HTML: code spans
    literal, emphasis only between them, links only to relative paths or http(s) addresses (else left as text)."""
    text = text.replace("\\|", "|")
    out, last = [], 0
    for m in _TOKEN.finditer(text):
        out.append(_emphasis(html.escape(text[last:m.start()])))
        last = m.end()
        if m.group(1):
            out.append(f"<code>{html.escape(m.group(1)[1:-1])}</code>")
        elif links and _SAFE_HREF.match(m.group(3)):
            out.append(f'<a href="{html.escape(m.group(3))}">{inline(m.group(2), links=False)}</a>')
        else:  # an unsafe or nested link: its text, escaped (code spans in it still literal)
            out.append(html.escape("[") + inline(m.group(2), links=False) + html.escape(f"]({m.group(3)})"))
    out.append(_emphasis(html.escape(text[last:])))
    return "".join(out)


_CELL = re.compile(r"(?<!\\)\|")  # a cell boundary: a pipe not escaped as ``\|``


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table of ``header`` and ``rows`` (cells as inline Markdown: ``**best**`` in bold)."""
    out = ["<table>", "<tr>" + "".join(f"<th>{inline(h)}</th>" for h in header) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows]
    return "\n".join(out + ["</table>"])


def tables(markdown: str) -> str:
    """GitHub Markdown tables (cells split at unescaped pipes, the ``---`` row dropped) and the lines between them
    (one paragraph each) as HTML."""
    out: list[str] = []
    rows: list[list[str]] = []
    for line in markdown.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            cells = [c.strip() for c in _CELL.split(line.strip().strip("|"))]
            if not all(set(c) <= {"-", ":"} for c in cells):
                rows.append(cells)
            continue
        if rows:
            out.append(table(rows[0], rows[1:]))
            rows = []
        if line.strip():
            out.append(f"<p>{inline(line)}</p>")
    return "\n".join(out)
