"""Small renderers for Dagster metadata and CLI output (counts only, never row values).

Dagster renders metadata markdown as HTML: an unescaped `<PERSON_1a2b>` placeholder is taken for
an HTML tag and vanishes ("my name is ."), a `|` inside a cell adds a column, and a line break
ends the row. Every table goes through `markdown_table`, whose cells go through `markdown_cell`.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

# A table cell longer than this is shortened (the full text is in the warehouse).
MAX_CELL_CHARS = 160


def markdown_cell(value: Any, max_chars: int = MAX_CELL_CHARS) -> str:
    """One table cell: HTML-escaped, `|` escaped, line breaks folded, long text shortened."""
    text = " ".join(str(value).split())  # every run of whitespace, line breaks included: one space
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    body = ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines + (body or ["| " + " | ".join("—" for _ in header) + " |"]))
