"""The text of a trace that intent discovery embeds, and redaction placeholders.

Redaction writes ``<PERSON_7f3a9c01>``: a type plus a digest of the value. The digest is right
for joining traces of the same customer, wrong for intents: "balance for <ACCOUNT_ID_62d8eeb5>
please" and "balance for <ACCOUNT_ID_02b78754> please" ask the same thing. Measured on the
simulator (30 days x 300 traces, first user turn + current query, UMAP + HDBSCAN as in
`evalflow.lib.intents`): with the digests kept, 5,672 distinct texts and ARI 0.28 against the true
intents; with ``<ACCOUNT_ID>`` instead, 2,040 distinct texts (the embedding cache hits 3x as often)
and ARI 0.77. So `intent_text` drops the digests before a text is embedded.

Context: the session's first user turn by default, not the turn before the query. Follow-ups
in support chats are mostly elliptical ("ok thanks", "how long will that take?", "my account
number is <ACCOUNT_ID> if that helps"); from the third turn on, the turn before is usually one
of them, and then neither text says what the session is about. Measured on the simulator (30
days x 300 traces, seed 7; a follow-up's true intent is its session's; 10% of the rows are
third or later turns), `discover_intents` with each context:

    context            NMI    ARI    noise  majority-label accuracy, turn 1 / 2 / 3 / 4+
    previous turn      0.716  0.621  9.3%   0.78 / 0.79 / 0.09 / 0.08
    first turn         0.839  0.784  7.2%   0.82 / 0.84 / 0.85 / 0.82
    first + previous   0.795  0.444  7.4%   (text joined; the generic turn dilutes the topic)
    all earlier turns  0.796  0.438  7.5%

Combining vectors instead of texts (query vector + w * context vector, unit length) was worse
or equal: w = 1, ARI 0.17 (first) and 0.24 (previous): every generic follow-up shares one
direction and they cluster together; w = 2 with the first turn, 0.776. The first turn is
stale after a change of topic within a session; the turn before is no better there (for turn
3+ it is usually a generic follow-up too). "previous" and "none" stay available
(EVALFLOW_EMBED_TEXT, see `evalflow.lib.intents.store`).

What the model reads (`model_text`): that text without its slot values. Placeholders, money
amounts and other numbers say which customer, how much or which account, never what is asked,
yet the model weighs them: on the simulator "Send €300.00 to <PERSON>" and "Send $120.00 to
<PERSON>" fell into separate clusters (centroid cosine 0.94) by currency sign, and texts with
<ACCOUNT_ID> gathered apart from the same request without one. Stripped, "Send to, IBAN" is one
text however much is sent to whom. Measured with `discover_intents` on the simulator (5 seeds x 2
UMAP seeds, first-turn text): ARI mean 0.719 -> 0.750, NMI 0.825 -> 0.844; the benchmark's
seed 7: 0.785 -> 0.822. Banking77 barely has such values (49 of 3,080 test texts hold a digit):
test ARI 0.563 -> 0.568, train 0.513 -> 0.529. Also tried: a word for each slot ("an amount",
"my account"; 3 seeds x 2 UMAP seeds, ARI mean 0.743 vs 0.768 stripped), typed placeholders
kept with amounts as <AMOUNT> (0.739-0.801 on three seeds vs 0.741-0.816 stripped). Catalog
examples and names keep the readable `intent_text`; only the vectors come from `model_text`.
"""

from __future__ import annotations

import re

from evalflow.lib.signals.patterns import is_toxic

# <TYPE> or <TYPE_digest>; TYPE in capitals and underscores as the redaction stage writes it.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*?)(?:_[0-9a-f]{6,})?>")


# Money: a currency sign or code next to a number ("€2,500.00", "AED 300", "40 dollars").
_CURRENCY = (r"(?:[$€£¥₹₦₩₽]|\b(?:USD|EUR|GBP|JPY|INR|MXN|AED|NGN|CNY|CHF|CAD|AUD|dollars?|"
             r"euros?|pounds?|rupees?|yen)\b)")
_NUMBER = r"\d(?:[\d,]*\d)?(?:\.\d+)?"  # commas only between digits: "300, iban" keeps its comma
MONEY = re.compile(rf"{_CURRENCY}\s?{_NUMBER}|{_NUMBER}\s?{_CURRENCY}")
NUMBER = re.compile(_NUMBER)


def normalize_placeholders(text: str) -> str:
    """``<PERSON_7f3a9c01>`` -> ``<PERSON>``; other text unchanged."""
    return PLACEHOLDER.sub(lambda m: f"<{m.group(1)}>", text)


def strip_placeholders(text: str) -> str:
    """Placeholders removed entirely (for keyword extraction: they say nothing about intent)."""
    return PLACEHOLDER.sub(" ", text)


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def without_abuse(line: str) -> str:
    """``line`` without its abusive sentences (`signals.patterns.is_toxic`: "Are you an idiot?",
    "Shut up and do what I ask."); unchanged when every sentence is abusive.

    Abuse is how a customer asks, not what they ask for: "You useless bot, answer me properly.
    Why was my card declined?" is the decline question. Left in, the abusive sentence pulls a
    trace towards the other abusive traces, whatever they ask (the simulator plants abuse in 1%
    of traces: at 9,000 rows, seed 7, 69 clusters for 51 intents, ARI 0.44, against 48 and 0.67
    with it removed). The trace is still flagged toxic_request by the signals stage and reported
    in the safety slice."""
    sentences = SENTENCE_END.split(line)
    kept = [s for s in sentences if not is_toxic(s)]
    return " ".join(kept) if kept else line


def model_text(text: str) -> str:
    """What the embedding model reads: ``text`` without slot values (placeholders, money
    amounts, numbers; see the module docstring) and without abusive sentences
    (`without_abuse`), line by line, whitespace tidied."""
    def one(line: str) -> str:
        line = NUMBER.sub(" ", MONEY.sub(" ", PLACEHOLDER.sub(" ", without_abuse(line))))
        return re.sub(r"\s+([,.;:?!)])", r"\1", re.sub(r"\s+", " ", line)).strip()

    return "\n".join(one(line) for line in text.split("\n"))


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
                      context: str = "first") -> str:
    """`intent_text` for a canonical trace.

    context="first" (default): the session's first user turn (keeps the topic when later turns
    are generic follow-ups, see the module docstring); "previous": the user turn before the
    query; "none": the query alone.
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
