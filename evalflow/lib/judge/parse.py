"""Reading a judge's reply: a verdict is read, never guessed.

Accepted, in this order:
1. the whole reply is a JSON object: {"verdict": "Pass"|"Fail", "critique": "..."};
2. JSON objects inside ``` code fences (```json or plain ```): they must all give the same
   verdict;
3. plain text whose last word is Pass or Fail (any case; punctuation and markdown around the
   word are stripped: "Verdict: **Fail**." reads as Fail).

Anything else is unparseable (verdict None): an object without a valid verdict, a reply that
starts like JSON but does not parse (a truncated object is not read by its last word), fenced
objects that disagree, or text that ends in any other word. Verdict words are matched without
regard to case, and written back as "Pass"/"Fail".

The same rules read a pairwise reply, with "preferred" and first/second/tie instead.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any, Sequence

VERDICTS = ("Pass", "Fail")
PREFERENCES = ("first", "second", "tie")
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_STRIP = string.punctuation + "\u201c\u201d\u2018\u2019\u2026"


@dataclass(frozen=True)
class Reply:
    verdict: str | None  # "Pass", "Fail" (or first/second/tie for pairwise); None: unparseable
    critique: str | None
    how: str  # "json", "fenced_json", "last_word" or "unparseable"

    @property
    def parsed(self) -> bool:
        return self.verdict is not None


UNPARSEABLE = Reply(None, None, "unparseable")


def _choice(value: Any, choices: Sequence[str]) -> str | None:
    if not isinstance(value, str):
        return None
    by_lower = {c.lower(): c for c in choices}
    return by_lower.get(value.strip().lower())


def _from_object(obj: Any, key: str, choices: Sequence[str]) -> tuple[str | None, str | None]:
    if not isinstance(obj, dict):
        return None, None
    critique = obj.get("critique")
    return _choice(obj.get(key), choices), critique if isinstance(critique, str) else None


def _read(text: str | None, key: str, choices: Sequence[str]) -> Reply:
    if not isinstance(text, str) or not text.strip():
        return UNPARSEABLE
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
    except ValueError:
        whole = None
        if stripped.startswith(("{", "[")):  # JSON that does not parse (truncated, broken): never guessed
            return UNPARSEABLE
    else:
        if isinstance(whole, dict):
            value, critique = _from_object(whole, key, choices)
            return Reply(value, critique, "json") if value else UNPARSEABLE
        if not isinstance(whole, str):  # a number, list, true/false/null: not a reply
            return UNPARSEABLE
        # a quoted string ("Pass") is text: read by its last word below

    fenced = []
    for block in _FENCE.findall(stripped):
        try:
            fenced.append(json.loads(block.strip()))
        except ValueError:
            continue
    objects = [obj for obj in fenced if isinstance(obj, dict)]
    if objects:
        read = [_from_object(obj, key, choices) for obj in objects]
        values = {value for value, _ in read}
        if len(values) == 1 and None not in values:
            return Reply(read[0][0], read[0][1], "fenced_json")
        return UNPARSEABLE

    words = stripped.split()
    value = _choice(words[-1].strip(_STRIP), choices)
    if value is None:
        return UNPARSEABLE
    return Reply(value, stripped, "last_word")


def parse_reply(text: str | None) -> Reply:
    """A Pass/Fail reply."""
    return _read(text, "verdict", VERDICTS)


def parse_pairwise_reply(text: str | None) -> Reply:
    """A pairwise reply: which answer is better, "first", "second" or "tie"."""
    return _read(text, "preferred", PREFERENCES)
