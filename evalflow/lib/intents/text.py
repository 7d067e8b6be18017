"""The text of a trace that intent discovery embeds, and redaction placeholders.

Redaction writes ``<PERSON_7f3a9c01>``: a type plus a digest of the value. The digest is right
for joining traces of the same customer, wrong for intents: "balance for <ACCOUNT_ID_62d8eeb5>
please" and "balance for <ACCOUNT_ID_02b78754> please" ask the same thing. Measured on the
simulator (30 days x 300 traces, first user turn + current query, UMAP + HDBSCAN as in
`evalflow.lib.intents`): with the digests kept, 5,672 distinct texts and ARI 0.28 against the true
intents; with ``<ACCOUNT_ID>`` instead, 2,040 distinct texts (the embedding cache hits 3x as often)
and ARI 0.77. So `intent_text` drops the digests before a text is embedded.
"""

from __future__ import annotations

import re

# <TYPE> or <TYPE_digest>; TYPE in capitals and underscores as the redaction stage writes it.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*?)(?:_[0-9a-f]{6,})?>")


def normalize_placeholders(text: str) -> str:
    """``<PERSON_7f3a9c01>`` -> ``<PERSON>``; other text unchanged."""
    return PLACEHOLDER.sub(lambda m: f"<{m.group(1)}>", text)


def strip_placeholders(text: str) -> str:
    """Placeholders removed entirely (for keyword extraction: they say nothing about intent)."""
    return PLACEHOLDER.sub(" ", text)


def intent_text(query: str, context: str | None = None) -> str:
    """The text to embed for a trace: an earlier user turn for context, then the query.

    Placeholder digests are dropped (see the module docstring). ``context`` is the earlier user
    message (None or empty for a first turn).
    """
    query = normalize_placeholders(query or "").strip()
    if context:
        context = normalize_placeholders(context).strip()
        if context and context != query:
            return f"{context}\n{query}"
    return query


def user_turns(messages: list[dict]) -> list[str]:
    """The user messages of a canonical trace, in order (content as text)."""
    turns = []
    for message in messages or []:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            turns.append(str(content or ""))
    return turns


def trace_intent_text(messages: list[dict], user_query: str | None = None, *,
                      context: str = "previous") -> str:
    """`intent_text` for a canonical trace.

    context="previous": the user turn before the query (the issue's default);
    "first": the session's first user turn (keeps the topic when later turns are generic
    follow-ups such as "that didn't answer my question"); "none": the query alone.
    """
    turns = user_turns(messages)
    query = user_query if user_query is not None else (turns[-1] if turns else "")
    earlier = turns[:-1] if turns and turns[-1] == query else turns
    if context == "previous":
        ctx = earlier[-1] if earlier else None
    elif context == "first":
        ctx = earlier[0] if earlier else None
    elif context == "none":
        ctx = None
    else:
        raise ValueError(f"context must be 'previous', 'first' or 'none', got {context!r}")
    return intent_text(query, ctx)
