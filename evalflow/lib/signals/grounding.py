"""Is the answer supported by the retrieved context? A lexical test, no model.

Contradiction (the `unsupported_answer` mode). Answers grounded in a knowledge base restate its
sentences. For each answer sentence we find the context sentence it restates best: the one with
the most tokens matched in order (difflib's longest matching blocks over token lists). It
*restates* that sentence when at least 4 of its tokens, and at least 30% of them, come back in
order (30%, not half: a fact such as "Monday to Friday, 9:00 am to 5:00 pm" can be most of its
sentence, and swapping it leaves only the frame "most branches are open" matched). A restated
sentence contradicts its source when, between matched stretches, the answer puts different
words in place of the source's (a "replace" edit, e.g. "within 60 days"
-> "within 7 days", "5:00 pm" -> "11:00 pm", "overnight" -> "once a month") where the source's
side holds a content word or a number and the answer's side holds a content word or number the
source sentence does not have, or when one side adds or drops a negation ("not", "never",
"can't" ...). Paraphrases that share less than that are not judged (the test
misses them rather than guessing), and so are edits that only touch stopwords or redaction
placeholders (a name is PII, not a fact this test can check).

Support score (`support_score`, null without retrieved context): the share of the answer's
content tokens (stopwords dropped) found anywhere in the evidence: retrieved context, tool
results and the user's turns. It is a continuous signal for sampling, not a rule: answers
built from tool results or small talk legitimately score low.

Known blind spots: a contradiction stated in new words (no restated sentence), a wrong claim
absent from the context, and contradictions across two sentences.
"""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

from evalflow.lib.signals.text import STOPWORDS, content_tokens, contexts, sentences, tokens, tool_calls, user_turns

NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without",
                       "can't", "cannot", "won't", "isn't", "aren't", "wasn't", "weren't", "don't",
                       "doesn't", "didn't", "shouldn't", "couldn't", "wouldn't", "hasn't", "haven't"})


def _meaningful(tok: str) -> bool:
    # A redaction placeholder is not a checkable fact: the same entity can come out as two
    # placeholders when the detector's spans differ between the answer and the context.
    if tok.startswith("<"):
        return False
    return tok not in STOPWORDS or tok in NEGATIONS


def _contradiction(source: list[str], answer: list[str], min_tokens: int, min_share: float) -> bool:
    matcher = SequenceMatcher(None, source, answer, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    if matched < min_tokens or matched < min_share * len(source):
        return False
    source_set = set(source)
    ops = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            continue
        before, after = source[i1:i2], answer[j1:j2]
        # An added or dropped negation flips the claim; a leading "No," or a trailing remark
        # outside the restated stretch does not.
        between_matches = 0 < index < len(ops) - 1
        if (tag == "replace" or between_matches) and \
                NEGATIONS.intersection(before) != NEGATIONS.intersection(after):
            return True
        if tag != "replace":
            continue
        if not any(_meaningful(t) for t in before):
            continue
        if any(_meaningful(t) and t not in source_set for t in after):
            return True
    return False


def context_sentences(trace: dict[str, Any]) -> list[list[str]]:
    out = []
    for doc in contexts(trace):
        text = doc.get("text") or doc.get("content") or doc.get("page_content")
        if isinstance(text, str):
            out.extend(tokens(s) for s in sentences(text))
    return out


def contradicts_context(answer: str, source_sentences: list[list[str]], *,
                        min_tokens: int = 4, min_share: float = 0.3) -> bool:
    sources = [s for s in source_sentences if len(s) >= min_tokens]
    if not sources:
        return False
    for sentence in sentences(answer):
        toks = tokens(sentence)
        if len(toks) < min_tokens:
            continue
        toks_set = set(toks)
        # cheap prefilter: a restated sentence shares several tokens with its source
        candidates = [s for s in sources if len(toks_set.intersection(s)) >= min_tokens]
        if not candidates:
            continue
        best = max(candidates, key=lambda s: _matched(s, toks))
        if _contradiction(best, toks, min_tokens, min_share):
            return True
    return False


def _matched(source: list[str], answer: list[str]) -> int:
    return sum(b.size for b in SequenceMatcher(None, source, answer, autojunk=False).get_matching_blocks())


def support_score(trace: dict[str, Any], answer: str) -> float | None:
    docs = contexts(trace)
    if not docs:
        return None
    answer_tokens = content_tokens(tokens(answer))
    if not answer_tokens:
        return None
    evidence: set[str] = set()
    for doc in docs:
        text = doc.get("text") or doc.get("content") or doc.get("page_content")
        if isinstance(text, str):
            evidence.update(tokens(text))
    for call in tool_calls(trace):
        evidence.update(tokens(json.dumps(call.get("result"), ensure_ascii=False, default=str)))
        evidence.update(tokens(json.dumps(call.get("arguments"), ensure_ascii=False, default=str)))
    for turn in user_turns(trace):
        evidence.update(tokens(turn))
    return sum(t in evidence for t in answer_tokens) / len(answer_tokens)
