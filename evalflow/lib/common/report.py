"""Small renderers for Dagster metadata and CLI output (counts only, never row values)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    body = ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines + (body or ["| " + " | ".join("—" for _ in header) + " |"]))
