"""How texts are compared: normalisation, tokens, the stripped form, segments, token hashes.

- `normalise(text)`: Unicode NFKC, case-folded, every run of characters that are not letters,
  digits or underscore becomes one space. "What's  the TOTAL?" and "what s the total" are equal.
- `tokens(text)`: the words of the normalised text (`\\w+`), the unit of n-grams and MinHash sets.
- `stripped(text)`: the tokens joined with nothing (no spaces, no symbols), the form the 50-character
  substring probes are drawn from and searched in (as in the GPT-4 technical report's check).
- `segments(text)`: the pieces of a document that MinHash and the embedder compare with a case:
  the whole document when it has at most `max_tokens` tokens; else its paragraphs (blank-line
  separated), and a paragraph that is still longer is cut into windows of `max_tokens` tokens
  that overlap by half. So a question inside a long few-shot prompt is compared on its own
  paragraph, not diluted by the rest of the prompt.
- `for_embedding(text)`: what the embedder reads: every number (a run of digits, with its . and ,
  separators) becomes `#`, in cases and segments alike, so a problem with its numbers changed is
  still the same problem. The MinHash sets leave numbers out for the same reason.
- `TokenHasher`: a stable 64-bit hash per token (blake2b, the same in every process and
  run), cached per distinct token.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

_NON_WORD = re.compile(r"[\W]+", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)
_PARAGRAPH = re.compile(r"\n\s*\n")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

# Words too common to say anything about whether two texts share content: left out of the
# MinHash sets only (n-grams, probes and exact matches keep every word).
STOPWORDS = frozenset("""
a about after all also am an and any are as at be because been before being but by can could
did do does doing for from had has have having he her here hers him his how i if in into is it its
just me more most my no nor not of off on once only or other our ours out over own same she should
so some such than that the their theirs them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours
s t ll ve re d m
""".split())


def normalise(text: str) -> str:
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def stripped(text: str) -> str:
    return "".join(tokens(text))


def for_embedding(text: str) -> str:
    return _NUMBER.sub("#", text)


def is_content(word: str) -> bool:
    """Whether a token goes into the MinHash set: not a stop word, not a number."""
    return word not in STOPWORDS and not word.isdigit()


def segments(text: str, max_tokens: int = 256, min_tokens: int = 3) -> list[str]:
    """The document itself when short enough, else its paragraphs and windows (see the module)."""
    words = tokens(text)
    if len(words) <= max_tokens:
        return [text] if len(words) >= min_tokens else []
    out: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        words = tokens(paragraph)
        if len(words) < min_tokens:
            continue
        if len(words) <= max_tokens:
            out.append(paragraph.strip())
            continue
        step = max(1, max_tokens // 2)
        for start in range(0, len(words) - step, step):
            out.append(" ".join(words[start:start + max_tokens]))
    return out


class TokenHasher:
    """Stable 64-bit token hashes (blake2b of the UTF-8 token), cached per distinct token. The
    cache is emptied when it passes `max_cached` entries, so a huge vocabulary cannot grow it
    without bound."""

    def __init__(self, max_cached: int = 2_000_000):
        self._cache: dict[str, int] = {}
        self._max = max_cached

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        cache = self._cache
        out = np.empty(len(words), dtype=np.uint64)
        for i, word in enumerate(words):
            value = cache.get(word)
            if value is None:
                if len(cache) >= self._max:
                    cache.clear()
                value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
                cache[word] = value
            out[i] = value
        return out


def case_text(case: Mapping[str, Any]) -> str:
    """The text of a case that contamination is about: `text` when the case has one (the CLI's
    {"case_id", "text"}); for an eval case (docs/eval-cases.md), the user's turns of the history
    and the user query, one per line (the query once when it repeats the last user turn). The
    retrieved context, tool results and the expected answer are not the case's question."""
    text = case.get("text")
    if isinstance(text, str):
        return text
    payload = case.get("input_payload") or case.get("input") or {}
    parts: list[str] = []
    for message in payload.get("messages") or []:
        if isinstance(message, Mapping) and message.get("role") == "user" and isinstance(message.get("content"), str):
            parts.append(message["content"])
    query = payload.get("user_query")
    if isinstance(query, str) and query.strip() and (not parts or parts[-1].strip() != query.strip()):
        parts.append(query)
    return "\n".join(p for p in parts if p.strip())


def joined_fields(record: Mapping[str, Any], fields: Iterable[str]) -> str:
    """The named fields of a record as one text (lists of strings joined by new lines)."""
    parts = []
    for name in fields:
        value = record.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(v if isinstance(v, str) else str(v) for v in value if v is not None)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)
