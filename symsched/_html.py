"""Markdown as the summaries write it, for their HTML twins: one converter for every command.

``inline`` turns the inline Markdown used in the summaries' sentences (``**bold**``, ```code```, ``[label](href)``,
escaped ``\\|``) into HTML, escaping everything else; the summaries' HTML thus says what their Markdown says,
links included (audit of 5 December: ``summary.html`` showed raw backticks and lacked the LaTeX links).
"""

from __future__ import annotations

import html
import re

__all__ = ["inline"]


def inline(text: str) -> str:
    """Inline Markdown (``**bold**``, ```code```, ``[label](href)``, ``\\|``) as escaped HTML."""
    out = html.escape(text.replace("\\|", "|"))
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
