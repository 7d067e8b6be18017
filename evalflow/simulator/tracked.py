"""Text that remembers where its PII is.

The simulator builds every field from templates. A `Pii` is one value of a known entity type; a
`Tracked` is rendered text with the character spans of the PII inside it. `collect` turns a
trace built from these into plain JSON and lists each PII occurrence by field path, so the
ground truth offsets come from construction, never from searching the text afterwards (which
would miss a name repeated in a sentence, or find a digit run that is not a card).
"""

from __future__ import annotations

import re
import string
from typing import Any

_FORMATTER = string.Formatter()
_TEMPLATE_CACHE: dict[str, list[tuple[str, str | None]]] = {}
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class Pii:
    """One PII value; `value` is exactly the text written into the trace."""

    __slots__ = ("value", "type")

    def __init__(self, value: str, type_: str):
        self.value = value
        self.type = type_

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Pii({self.value!r}, {self.type!r})"


class Tracked:
    """Rendered text plus (start, end, type, value) spans of the PII inside it."""

    __slots__ = ("text", "spans")

    def __init__(self, text: str, spans: tuple[tuple[int, int, str, str], ...] = ()):
        self.text = text
        self.spans = spans

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Tracked({self.text!r}, {self.spans!r})"


def _parsed(template: str) -> list[tuple[str, str | None]]:
    parsed = _TEMPLATE_CACHE.get(template)
    if parsed is None:
        parsed = [(literal, field) for literal, field, _spec, _conv in _FORMATTER.parse(template)]
        _TEMPLATE_CACHE[template] = parsed
    return parsed


def join(parts: list[Any], sep: str = "") -> Tracked:
    """Concatenate str / Pii / Tracked pieces, shifting the spans."""
    chunks: list[str] = []
    spans: list[tuple[int, int, str, str]] = []
    pos = 0
    for i, part in enumerate(parts):
        if i and sep:
            chunks.append(sep)
            pos += len(sep)
        if isinstance(part, Pii):
            spans.append((pos, pos + len(part.value), part.type, part.value))
            text = part.value
        elif isinstance(part, Tracked):
            spans.extend((s + pos, e + pos, t, v) for s, e, t, v in part.spans)
            text = part.text
        else:
            text = str(part)
        chunks.append(text)
        pos += len(text)
    return Tracked("".join(chunks), tuple(spans))


def render(template: str, slots: dict[str, Any]) -> Tracked:
    """`str.format`-style rendering where slot values may be Pii or Tracked."""
    parts: list[Any] = []
    for literal, field in _parsed(template):
        if literal:
            parts.append(literal)
        if field is not None:
            parts.append(slots[field])
    return join(parts)


def collect(value: Any, path: str, found: list[dict[str, Any]]) -> Any:
    """Plain JSON for `value`; every PII occurrence is appended to `found` with its path."""
    if isinstance(value, Tracked):
        for start, end, type_, pii_value in value.spans:
            found.append(
                {"field": path, "start": start, "end": end, "type": type_, "value": pii_value}
            )
        return value.text
    if isinstance(value, Pii):
        found.append(
            {"field": path, "start": 0, "end": len(value.value), "type": value.type,
             "value": value.value}
        )
        return value.value
    if isinstance(value, dict):
        prefix = f"{path}." if path else ""
        return {key: collect(item, prefix + key, found) for key, item in value.items()}
    if isinstance(value, list):
        return [collect(item, f"{path}[{i}]", found) for i, item in enumerate(value)]
    return value


def resolve_path(document: Any, path: str) -> Any:
    """The value at a ground-truth field path such as ``tool_calls[0].result[1].merchant``."""
    node = document
    for key, index in _PATH_TOKEN.findall(path):
        node = node[int(index)] if index else node[key]
    return node
