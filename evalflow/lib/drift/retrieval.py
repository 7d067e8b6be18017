"""The knowledge base as production saw it, and BM25 retrieval over it.

There is no copy of the knowledge base in the warehouse, only what retrieval returned: each
trace's `retrieved_context` lists `{doc_id, text, score}`. A window's **knowledge-base snapshot**
is every document seen there, keyed by doc id and the sha256 of its (redacted) text; when one id
was seen with two contents, the later one (by event date, then timestamp, then row order) is the
window's current content, and the id is listed as changed within the window. One content seen
under two ids (a re-id) keeps the id seen last.

Golden queries are retrieved again with BM25 (`bm25s`, Lucene's BM25 variant, k1 = 1.5,
b = 0.75) over a snapshot. Tokens: lower-cased words (`\\w+`) of two or more characters, without
bm25s's English stop words; the same for documents and queries. The top-k is every document
with a positive score, best first, ties broken by doc id, so the ranking is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Collection, Mapping, Sequence

import orjson
import polars as pl

from evalflow.lib.intents.embed.cache import text_sha256

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class KBSnapshot:
    docs: dict[str, str] = field(default_factory=dict)  # doc_id -> current text
    hashes: dict[str, str] = field(default_factory=dict)  # doc_id -> sha256 of the current text
    changed_within: dict[str, list[str]] = field(default_factory=dict)  # doc_id -> its hashes, in order seen
    superseded: dict[str, str] = field(default_factory=dict)  # old doc_id -> the id its content moved to
    sightings: dict[str, int] = field(default_factory=dict)  # doc_id -> times retrieved in the window

    def __len__(self) -> int:
        return len(self.docs)

    def retrievals(self) -> int:
        return sum(self.sightings.values())


def _contexts(value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    return [d for d in value if isinstance(d, Mapping)] if isinstance(value, list) else []


def kb_snapshot(frame: pl.DataFrame) -> KBSnapshot:
    """The window's knowledge-base snapshot from its traces' retrieved_context (module doc).
    Rows are taken in time order: by event_date, then timestamp when the frame has one, then the
    frame's own order. One content seen under two ids is a re-id: the id seen last is current
    and the other is `superseded` (it leaves docs and hashes; its sightings stay counted)."""
    snap = KBSnapshot()
    if frame.is_empty() or "retrieved_context" not in frame.columns:
        return snap
    order = [c for c in ("event_date", "timestamp") if c in frame.columns]
    rows = frame.with_row_index("_row").sort([*order, "_row"]) if order else frame
    last_seen: dict[str, int] = {}
    position = 0
    for value in rows.get_column("retrieved_context").to_list():
        for doc in _contexts(value):
            doc_id, text = doc.get("doc_id"), doc.get("text")
            if doc_id is None or not isinstance(text, str):
                continue
            doc_id = str(doc_id)
            sha = text_sha256(text)
            before = snap.hashes.get(doc_id)
            if before is not None and before != sha:
                seen = snap.changed_within.setdefault(doc_id, [before])
                if sha not in seen:
                    seen.append(sha)
            snap.docs[doc_id] = text
            snap.hashes[doc_id] = sha
            snap.sightings[doc_id] = snap.sightings.get(doc_id, 0) + 1
            position += 1
            last_seen[doc_id] = position
    newest: dict[str, str] = {}
    for doc_id in sorted(snap.hashes, key=lambda d: last_seen[d]):
        newest[snap.hashes[doc_id]] = doc_id
    for doc_id, sha in list(snap.hashes.items()):
        if newest[sha] != doc_id:
            snap.superseded[doc_id] = newest[sha]
            del snap.docs[doc_id], snap.hashes[doc_id]
            snap.changed_within.pop(doc_id, None)
    return snap


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokens(text: str) -> list[str]:
    stop = _stopwords()
    return [t for t in _WORD.findall(text.lower()) if len(t) > 1 and t not in stop]


class BM25Index:
    """BM25 (bm25s) over a snapshot's documents."""

    def __init__(self, docs: Mapping[str, str]):
        import bm25s

        self.doc_ids = sorted(docs)
        corpus = [tokens(docs[d]) or [""] for d in self.doc_ids]
        self.retriever = None
        if self.doc_ids:
            self.retriever = bm25s.BM25()
            self.retriever.index(corpus, show_progress=False)

    def top_k(self, query: str | None, k: int) -> list[str]:
        """The k best doc ids for the query (positive scores only, ties by doc id)."""
        if not query or self.retriever is None:
            return []
        words = [t for t in tokens(query) if t in self.retriever.vocab_dict]
        if not words:
            return []
        scores = self.retriever.get_scores(words)
        ranked = sorted((-float(s), d) for s, d in zip(scores, self.doc_ids) if s > 0)
        return [d for _, d in ranked[:k]]


def case_query(case: Mapping[str, Any]) -> str | None:
    payload = case.get("input_payload") or {}
    query = payload.get("user_query") if isinstance(payload, Mapping) else None
    return query if isinstance(query, str) and query.strip() else None


def golden_top_k(index: BM25Index, cases: Sequence[Mapping[str, Any]], k: int) -> dict[str, list[str]]:
    """{case_id: top-k doc ids} for every case with a user query (sorted by case id)."""
    out = {}
    for case in sorted(cases, key=lambda c: str(c.get("case_id"))):
        query = case_query(case)
        if query is not None and case.get("case_id"):
            out[str(case["case_id"])] = index.top_k(query, k)
    return out


def seen_overlap(recorded: Sequence[str], now: Sequence[str], current: Collection[str],
                 superseded: Mapping[str, str]) -> tuple[float | None, list[str]]:
    """Overlap of a recorded top-k with the top of `now`, over the recorded documents the window
    saw. A retrieval log only shows documents that were retrieved: one not seen this week may be
    rare or gone, and which is unknowable, so it is left out together with as many places at the
    bottom of `now` (a small week then does not read as a changed knowledge base). An id
    re-issued in the window under a new id (same content) counts as the new id; the new ids
    themselves are the kb_new_docs signal. Returns (|seen & now[:len(seen)]| / len(seen), or None
    when none was seen; the unseen ids)."""
    mapped = [superseded.get(d, d) for d in recorded]
    seen = [d for d in mapped if d in current]
    unseen = [d for d, m in zip(recorded, mapped) if m not in current]
    if not seen:
        return None, unseen
    return len(set(seen) & set(now[:len(seen)])) / len(seen), unseen
