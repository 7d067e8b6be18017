"""How a text reaches the recognizers: context words from its field path, pieces of a long
text, and a view of it with literal escapes as whitespace. Offsets are kept throughout."""

from __future__ import annotations

import re


def context_from_path(path: str | None) -> tuple[str, ...]:
    """Context words from a field path: "tool_calls[0].result.holder_name" -> (..., holder, name)."""
    if not path:
        return ()
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", path)
    return tuple(w for w in re.findall(r"[a-z]+", spaced.lower()) if len(w) > 1)


def chunks(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(offset, chunk) pieces of at most `size` chars; neighbours share `overlap` chars."""
    if len(text) <= size:
        return [(0, text)]
    if size <= 2 * overlap:
        raise ValueError("max_chunk_chars must be more than twice chunk_overlap")
    out = []
    start = 0
    while True:
        end = min(len(text), start + size)
        if end < len(text):
            # cut at whitespace when there is some near the end, so words stay whole
            cut = text.rfind(" ", start + size - overlap // 2, end)
            if cut > start:
                end = cut
        out.append((start, text[start:end]))
        if end >= len(text):
            return out
        start = end - overlap


# Not where the backslash is itself escaped (C:\\Users\\ntaylor in JSON text) or follows a
# Windows user-folder name (C:\Users\ntaylor): there backslash-n is a separator and a letter.
_ESCAPED_BREAK = re.compile(r"(?<!\\)(?<!(?i:users))(?<!(?i:settings))\\[nrt]")


def unescaped_view(text: str) -> str:
    """The text with JSON-style escapes (a literal backslash-n) as real whitespace, same length.

    Tool results and logs often carry "\\n" literally; "Phone:\\n0480 66 01 75" then reads as
    one token "n0480" to every recognizer. Offsets are unchanged, so results map back 1:1.
    """
    if "\\" not in text:
        return text
    return _ESCAPED_BREAK.sub(lambda m: " \n" if m.group() == "\\n" else "  ", text)


def worth_scanning(text: str) -> bool:
    """Every PII type we find holds at least one letter or digit."""
    return any(c.isalnum() for c in text)
