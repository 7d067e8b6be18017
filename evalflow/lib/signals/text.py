"""Reading the parts of a canonical trace that rules look at, whatever shape a dialect left.

Message contents may be strings or lists of parts ({"type": "text", "text": ...}); JSON fields
may still be strings when a caller did not parse them. Tokens are lowercase words, numbers
(with their decimal, thousands and time separators: "4.10", "2,500", "5:00") and redaction
placeholders ("<person_1a2b3c4d>"), so a pseudonym counts as one token on both sides of a
comparison.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(r"<[a-z_]+_[0-9a-f]+>|\d+(?:[.,:]\d+)*%?|[a-z]+(?:'[a-z]+)?")
SENTENCE_BREAK = re.compile(r"(?<=[.!?:])\s+|\n+")

STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with from as is are was were be been being
it its this that these those there here i you he she we they me him her us them my your his our
their mine yours can could will would shall should may might must do does did done have has had
not no yes please thanks thank hi hello ok okay just also very too up down out over about into
than any all some each every more most other such only own same what which who whom when where
why how am s t ll d re ve
""".split())


def parsed(value: Any) -> Any:
    """A JSON field as Python, tolerating callers that pass the raw JSON text."""
    if isinstance(value, (str, bytes)) and value[:1] in ("[", "{", b"[", b"{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(content_text(part) for part in content)
    if isinstance(content, dict):
        for key in ("text", "content", "value"):
            if isinstance(content.get(key), str):
                return content[key]
        return ""
    return str(content)


def messages_of(trace: dict[str, Any]) -> list[dict[str, Any]]:
    messages = parsed(trace.get("messages")) or []
    return [m for m in messages if isinstance(m, dict)]


def user_turns(trace: dict[str, Any]) -> list[str]:
    """Every user turn of the conversation, the current query included (once)."""
    turns = [content_text(m.get("content")) for m in messages_of(trace)
             if m.get("role") in ("user", "human")]
    query = trace.get("user_query")
    if isinstance(query, str) and query and (not turns or turns[-1] != query):
        turns.append(query)
    return [t for t in turns if t]


def system_prompt(trace: dict[str, Any]) -> str:
    return "\n".join(content_text(m.get("content")) for m in messages_of(trace)
                     if m.get("role") in ("system", "developer"))


def output_text(trace: dict[str, Any]) -> str | None:
    output = trace.get("output")
    if output is None:
        return None
    return output if isinstance(output, str) else content_text(parsed(output))


def contexts(trace: dict[str, Any]) -> list[dict[str, Any]]:
    docs = parsed(trace.get("retrieved_context")) or []
    return [d for d in docs if isinstance(d, dict)]


def tool_calls(trace: dict[str, Any]) -> list[dict[str, Any]]:
    calls = parsed(trace.get("tool_calls")) or []
    return [c for c in calls if isinstance(c, dict)]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.replace("\u2019", "'").lower())


def content_tokens(toks: list[str]) -> list[str]:
    return [t for t in toks if t not in STOPWORDS]


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_BREAK.split(text) if s.strip()]


_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.\-]{0,63}$")


def safe_name(value: Any) -> str | None:
    """A tool or error type name fit for a reason: an identifier, never free text (which could
    carry what redaction left behind)."""
    return value if isinstance(value, str) and _IDENTIFIER.match(value) else None
