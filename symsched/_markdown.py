"""GitHub Markdown tables, one writer for every table of symsched (results, summaries, the command line's files).

Every cell goes through :func:`md_cell`: a ``|`` in a cell (a user's label, a schedule name, ``max |Δlog-SNR|``)
is escaped as ``\\|`` and a line break becomes a space, so that no text can add a column or end a row (audit of
6 December: a sweep labelled ``'a|b'`` gave rows with extra columns). :func:`symsched._html.tables` reads the
escapes back.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

__all__ = ["md_cell", "md_table"]


def md_cell(text: Any) -> str:
    """``text`` as one table cell: ``|`` escaped as ``\\|``, line breaks as spaces."""
    return " ".join(str(text).replace("|", "\\|").splitlines())


def md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], align: Union[str, Sequence[str]] = "---") -> str:
    """A Markdown table (with a final newline): ``align`` is the delimiter of every column (``"---"``, ``"---:"``)
    or one per column."""
    delims = [align] * len(header) if isinstance(align, str) else list(align)
    if len(delims) != len(header):
        raise ValueError(f"align must have one entry per column ({len(header)}), got {len(delims)}")
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "|".join(delims) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def count(n: int, noun: str) -> str:
    """``"1 seed"``, ``"3 seeds"``: ``n`` and ``noun``, plural unless ``n`` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
