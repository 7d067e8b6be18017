"""The index over the cases, and one pass of a corpus through it.

Nothing here compares a case with a document pair by pair. The cases are indexed once, and each
document is looked up in the index, so the work grows with the corpus's size, not with cases x
documents:

- exact: a dict from a case's normalised text to its cases; a document (and each of its
  segments) is one lookup.
- n-grams: every case's distinct 13-grams (token n-grams; a case of 8 to 12 tokens uses its own
  length as n) as 64-bit polynomial hashes in one sorted array. A batch of documents is turned into
  one array of token hashes, the hash of every window comes from prefix sums (any window length
  for the price of two vector operations), and `searchsorted` finds the windows that are some
  case's n-gram. Only those hits are looked at in Python.
- substrings: each case's probes (three seeded random 50-character substrings of its stripped
  text) are indexed by all their 16-character windows. A document's stripped text is hashed only
  at every 35th position: any occurrence of a 50-character probe covers one such position with
  the probe's whole 16-character window starting there, so a probe cannot be missed, and the
  few documents that hit are confirmed with a real substring test.
- MinHash: datasketch's MinHashLSH holds the cases' MinHashes (word sets without stop words and
  numbers);
  each segment of a document is one LSH query. Segments whose set size rules out the LSH
  threshold against every case (Jaccard <= smaller/larger) are not hashed at all.
- embedding candidates: the LSH candidates of a case, best estimated Jaccard first, capped per
  case; a small corpus keeps all its segments instead (check.py embeds them).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from evalflow.lib.contamination.config import ContaminationConfig, ContaminationConfigError
from evalflow.lib.contamination.text import TokenHasher, is_content, segments, tokens

_P = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_P_INV = np.uint64(pow(int(_P), -1, 2**64))
_K1 = np.uint64(0xC2B2AE3D27D4EB4F)
_WINDOW = 16  # bytes of a probe window
_MASK32 = np.uint64(0xFFFFFFFF)
METHODS = ("exact", "ngram", "substring", "minhash", "embedding")
# Distinct (method, document) matches kept per case and corpus; past it only the best are kept, and
# `matches_total` counts the rest without telling apart a document's repeated segments.
MATCH_STORE_LIMIT = 10_000


def _powers(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(P**t, P**-t) for t in 0..count-1, modulo 2**64."""
    if count == 0:
        empty = np.empty(0, dtype=np.uint64)
        return empty, empty
    forward = np.full(count, _P, dtype=np.uint64)
    forward[0] = 1
    backward = np.full(count, _P_INV, dtype=np.uint64)
    backward[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(forward, dtype=np.uint64), np.cumprod(backward, dtype=np.uint64)


class _Rolling:
    """Hashes of every token window of an array of token hashes, for any window length: the
    window [i, i+n) hashes to sum_t v[t] * P**(i-t), from prefix sums of v[t] * P**-t."""

    def __init__(self, values: np.ndarray):
        forward, backward = _powers(len(values))
        self.forward = forward
        with np.errstate(over="ignore"):
            self.prefix = np.concatenate(([np.uint64(0)], np.cumsum(values * backward, dtype=np.uint64)))

    def windows(self, starts: np.ndarray, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (self.prefix[starts + n] - self.prefix[starts]) * self.forward[starts]


def ngram_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """The hashes of every n-gram of one token-hash sequence (in order, repeats kept)."""
    if len(values) < n:
        return np.empty(0, dtype=np.uint64)
    return _Rolling(values).windows(np.arange(len(values) - n + 1), n)


def _byte_windows(buffer: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """64-bit hashes of the 16-byte windows of `buffer` (uint8) that start at `starts`."""
    if len(starts) == 0:
        return np.empty(0, dtype=np.uint64)
    block = buffer[starts[:, None] + np.arange(_WINDOW)]
    words = np.ascontiguousarray(block).view("<u8")
    with np.errstate(over="ignore"):
        return words[:, 0] * _K1 + words[:, 1]


def _csr(keys: list[np.ndarray], owners: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct keys, offsets, owners grouped by key): owners of keys[i] are
    grouped[offsets[i]:offsets[i+1]]."""
    if not keys:
        empty = np.empty(0, dtype=np.uint64)
        return empty, np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64)
    key = np.concatenate(keys)
    owner = np.concatenate(owners).astype(np.int64)
    order = np.lexsort((owner, key))
    key, owner = key[order], owner[order]
    pair_new = np.ones(len(key), dtype=bool)
    pair_new[1:] = (key[1:] != key[:-1]) | (owner[1:] != owner[:-1])
    key, owner = key[pair_new], owner[pair_new]
    distinct, starts = np.unique(key, return_index=True)
    return distinct, np.append(starts, len(key)).astype(np.int64), owner


def _lookup(sorted_keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in values that are keys, their index in sorted_keys)."""
    if len(sorted_keys) == 0 or len(values) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    where = np.searchsorted(sorted_keys, values)
    where[where == len(sorted_keys)] = 0
    hit = np.flatnonzero(sorted_keys[where] == values)
    return hit, where[hit]


def _expand(key_index: np.ndarray, offsets: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For hits on keys (key_index), (hit position repeated per owner, owner)."""
    counts = offsets[key_index + 1] - offsets[key_index]
    hit_of = np.repeat(np.arange(len(key_index)), counts)
    first = np.repeat(offsets[key_index], counts)
    within = np.arange(len(hit_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    return hit_of, owners[first + within]


@dataclass
class CorpusScan:
    """What one pass of a corpus found, before the embedder."""

    name: str
    kind: str
    documents: int = 0
    skipped: int = 0
    segments: int = 0
    minhashed: int = 0
    # case index -> {(method, doc_id): best score}; dropped: matches let go of to bound memory
    matches: dict[int, dict[tuple[str, str], float]] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    # method -> best score per case (NaN where never compared)
    best: dict[str, np.ndarray] = field(default_factory=dict)
    # embedding: all segments when the corpus is small enough, else capped LSH candidates per case
    all_segments: list[tuple[str, str]] | None = field(default_factory=list)
    candidates: dict[int, list] = field(default_factory=dict)


class CaseIndex:
    """The cases, indexed for every lexical method (see the module docstring)."""

    def __init__(self, cases: Sequence[tuple[str, str]], config: ContaminationConfig):
        from datasketch import MinHash, MinHashLSH

        self.config = config
        self.case_ids = [case_id for case_id, _ in cases]
        self.hasher = TokenHasher()
        n = len(cases)
        self.size = n
        self.exact: dict[str, list[int]] = {}
        self.ngram_len = np.zeros(n, dtype=np.int64)
        self.ngram_count = np.zeros(n, dtype=np.int64)
        self.probe_count = np.zeros(n, dtype=np.int64)
        self.set_size = np.zeros(n, dtype=np.int64)
        self.token_count = np.zeros(n, dtype=np.int64)
        self.empty = np.zeros(n, dtype=bool)
        self.embedded_cases = 0  # cases the embedder read (check.run_scans sets it)
        ngram_keys, ngram_owners = [], []
        probe_bytes: list[bytes] = []
        probe_case: list[int] = []
        sets: list[np.ndarray | None] = []
        for i, (case_id, text) in enumerate(cases):
            words = tokens(text)
            self.token_count[i] = len(words)
            if not words:
                self.empty[i] = True
                sets.append(None)
                continue
            self.exact.setdefault(" ".join(words), []).append(i)
            values = self.hasher(words)
            length = config.ngram_n if len(words) >= config.ngram_n else (
                len(words) if len(words) >= config.ngram_min_tokens else 0)
            if length:
                hashes = np.unique(ngram_hashes(values, length))
                self.ngram_len[i], self.ngram_count[i] = length, len(hashes)
                ngram_keys.append(hashes)
                ngram_owners.append(np.full(len(hashes), i))
            for probe in self._probes(case_id, "".join(words).encode("utf-8")):
                probe_case.append(i)
                probe_bytes.append(probe)
                self.probe_count[i] += 1
            content = np.unique(values[[is_content(w) for w in words]] & _MASK32)
            self.set_size[i] = len(content)
            sets.append(content if len(content) >= config.minhash_min_tokens else None)
        self.ngram_keys, self.ngram_offsets, self.ngram_owners = _csr(ngram_keys, ngram_owners)
        self.ngram_lengths = sorted({int(v) for v in self.ngram_len if v})
        self.probes = probe_bytes
        self.probe_case = np.asarray(probe_case, dtype=np.int64)
        self.probe_groups = self._probe_groups()
        # MinHash LSH over the cases' word sets (datasketch; affine32 scheme over our token hashes).
        self.minhash_base = MinHash(num_perm=config.num_perm, seed=config.seed + 1, hashfunc=int)
        try:
            self.lsh = MinHashLSH(threshold=config.lsh_threshold, num_perm=config.num_perm)
        except ValueError as error:  # datasketch finds no band setting (e.g. a threshold near 1)
            raise ContaminationConfigError(f"lsh_threshold {config.lsh_threshold} with num_perm {config.num_perm}: "
                                           f"no LSH band setting ({error}); lower lsh_threshold or raise num_perm"
                                           ) from None
        self.hashvalues = np.zeros((n, config.num_perm), dtype=np.uint32)
        self.minhashed = np.zeros(n, dtype=bool)
        sizes = []
        for i, content in enumerate(sets):
            if content is None:
                continue
            m = self.minhash_base.copy()
            m.update_batch(content)
            self.hashvalues[i] = m.hashvalues
            self.minhashed[i] = True
            self.lsh.insert(i, m, check_duplication=False)
            sizes.append(len(content))
        self.min_set = min(sizes) if sizes else 0
        self.max_set = max(sizes) if sizes else 0

    # ---- building ---------------------------------------------------------------------------
    def _probes(self, case_id: str, data: bytes) -> list[bytes]:
        c = self.config
        if len(data) < c.substring_min_length:
            return []
        if len(data) <= c.substring_length:
            return [data]
        rng = random.Random(f"{c.seed}:{case_id}")
        places = len(data) - c.substring_length + 1
        starts = sorted(rng.sample(range(places), min(c.substring_probes, places)))
        return [data[s:s + c.substring_length] for s in starts]

    def _probe_groups(self) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """[(document stride, window keys, offsets, probe ids)]: probes of the full length in one
        group (stride length-15), shorter probes (whole short cases) in another whose stride suits
        the shortest of them."""
        full = self.config.substring_length
        groups = []
        for is_full in (True, False):
            ids = [p for p, probe in enumerate(self.probes) if (len(probe) == full) == is_full]
            if not ids:
                continue
            stride = min(len(self.probes[p]) for p in ids) - _WINDOW + 1
            keys, owners = [], []
            for p in ids:
                buffer = np.frombuffer(self.probes[p], dtype=np.uint8)
                hashes = _byte_windows(buffer, np.arange(len(buffer) - _WINDOW + 1))
                keys.append(np.unique(hashes))
                owners.append(np.full(len(keys[-1]), p))
            groups.append((stride, *_csr(keys, owners)))
        return groups

    # ---- scanning ---------------------------------------------------------------------------
    def new_scan(self, name: str, kind: str) -> CorpusScan:
        scan = CorpusScan(name, kind)
        scan.best = {m: np.full(self.size, np.nan) for m in METHODS if m != "embedding"}
        for method, applies in (("exact", ~self.empty), ("ngram", self.ngram_count > 0),
                                ("substring", self.probe_count > 0), ("minhash", self.minhashed)):
            scan.best[method][applies] = 0.0
        return scan

    def scan(self, documents: Iterable[tuple[str, str]], scan: CorpusScan) -> CorpusScan:
        batch: list[tuple[str, str]] = []
        for doc in documents:
            batch.append(doc)
            if len(batch) >= self.config.batch_documents:
                self._scan_batch(batch, scan)
                batch = []
        if batch:
            self._scan_batch(batch, scan)
        return scan

    def _add(self, scan: CorpusScan, case: int, method: str, doc_id: str, score: float) -> None:
        found = scan.matches.setdefault(case, {})
        key = (method, doc_id)
        if score > found.get(key, -2.0):
            found[key] = score
        if len(found) > MATCH_STORE_LIMIT:  # memory stays bounded for a case that is everywhere
            keep = sorted(found.items(), key=lambda item: -item[1])[:2 * self.config.max_matches_per_case]
            scan.dropped[case] = scan.dropped.get(case, 0) + len(found) - len(keep)
            scan.matches[case] = dict(keep)

    def _best(self, scan: CorpusScan, method: str, cases: np.ndarray, scores: np.ndarray) -> None:
        if len(cases):
            np.fmax.at(scan.best[method], cases, scores)

    def _scan_batch(self, batch: list[tuple[str, str]], scan: CorpusScan) -> None:
        doc_tokens: list[list[str]] = []
        doc_values: list[np.ndarray] = []
        doc_stripped: list[bytes] = []
        for _, text in batch:
            words = tokens(text)
            doc_tokens.append(words)
            doc_values.append(self.hasher(words))
            doc_stripped.append("".join(words).encode("utf-8"))
            scan.documents += 1
        self._exact_and_segments(batch, doc_tokens, doc_values, scan)
        self._ngrams(batch, doc_values, scan)
        self._substrings(batch, doc_stripped, scan)

    # exact, MinHash and embedding candidates work on segments
    def _exact_and_segments(self, batch, doc_tokens, doc_values, scan: CorpusScan) -> None:
        c = self.config
        for (doc_id, text), words, values in zip(batch, doc_tokens, doc_values):
            if not words:
                continue
            if len(words) <= c.max_segment_tokens:
                parts = [(text, words, values)] if len(words) >= 3 else []
            else:
                parts = []
                for segment in segments(text, c.max_segment_tokens):
                    seg_words = tokens(segment)
                    parts.append((segment, seg_words, self.hasher(seg_words)))
            hits = set(self.exact.get(" ".join(words), ()))
            for segment, seg_words, seg_values in parts:
                if seg_words is not words:
                    hits.update(self.exact.get(" ".join(seg_words), ()))
                scan.segments += 1
                if scan.all_segments is not None:
                    scan.all_segments.append((doc_id, segment))
                    if len(scan.all_segments) > c.embed_full_max_segments:
                        scan.all_segments = None
                self._minhash(doc_id, segment, seg_words, seg_values, scan)
            for case in sorted(hits):
                self._add(scan, case, "exact", doc_id, 1.0)
                scan.best["exact"][case] = 1.0

    def _minhash(self, doc_id, segment, words, values, scan: CorpusScan) -> None:
        c = self.config
        if not self.max_set:
            return
        content = np.unique(values[[is_content(w) for w in words]] & _MASK32)
        size = len(content)
        if size < c.minhash_min_tokens or size < c.lsh_threshold * self.min_set or \
                size * c.lsh_threshold > self.max_set:
            return
        m = self.minhash_base.copy()
        m.update_batch(content)
        scan.minhashed += 1
        found = self.lsh.query(m)
        if not found:
            return
        cases = np.fromiter(found, dtype=np.int64, count=len(found))
        estimate = (self.hashvalues[cases] == m.hashvalues).mean(axis=1)
        self._best(scan, "minhash", cases, estimate)
        for case, score in zip(cases.tolist(), estimate.tolist()):
            if score >= c.minhash_threshold:
                self._add(scan, case, "minhash", doc_id, score)
            if c.embed_candidates_per_case and score >= c.embed_candidate_min_jaccard:
                heap = scan.candidates.setdefault(case, [])
                entry = (score, -scan.segments, doc_id, segment)
                if len(heap) < c.embed_candidates_per_case:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)

    def _ngrams(self, batch, doc_values: list[np.ndarray], scan: CorpusScan) -> None:
        c = self.config
        if not self.ngram_lengths:
            return
        lengths = np.array([len(v) for v in doc_values], dtype=np.int64)
        if not lengths.sum():
            return
        values = np.concatenate(doc_values)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ends = starts + lengths
        doc_of = np.repeat(np.arange(len(batch)), lengths)
        rolling = _Rolling(values)
        positions = np.arange(len(values))
        pair_doc, pair_case, pair_count, pair_windows = [], [], [], []
        for n in self.ngram_lengths:
            valid = positions[positions + n <= ends[doc_of]]
            if not len(valid):
                continue
            hit, key = _lookup(self.ngram_keys, rolling.windows(valid, n))
            if not len(hit):
                continue
            docs = doc_of[valid[hit]]
            # distinct (document, n-gram) first: a repeated n-gram counts once
            combined = np.unique(docs * (len(self.ngram_keys) + 1) + key)
            docs, key = combined // (len(self.ngram_keys) + 1), combined % (len(self.ngram_keys) + 1)
            hit_of, cases = _expand(key, self.ngram_offsets, self.ngram_owners)
            docs = docs[hit_of]
            keep = self.ngram_len[cases] == n
            docs, cases = docs[keep], cases[keep]
            if not len(docs):
                continue
            pairs, counts = np.unique(docs * self.size + cases, return_counts=True)
            pair_doc.append(pairs // self.size)
            pair_case.append(pairs % self.size)
            pair_count.append(counts)
            pair_windows.append(np.maximum(lengths[pairs // self.size] - n + 1, c.ngram_min_doc_windows))
        if not pair_doc:
            return
        docs, cases = np.concatenate(pair_doc), np.concatenate(pair_case)
        counts, windows = np.concatenate(pair_count), np.concatenate(pair_windows)
        scores = counts / np.minimum(self.ngram_count[cases], windows)
        scores = np.minimum(scores, 1.0)
        self._best(scan, "ngram", cases, scores)
        for doc, case, score in zip(docs.tolist(), cases.tolist(), scores.tolist()):
            if score >= c.ngram_threshold:
                self._add(scan, case, "ngram", batch[doc][0], float(score))

    def _substrings(self, batch, doc_stripped: list[bytes], scan: CorpusScan) -> None:
        c = self.config
        if not self.probe_groups:
            return
        lengths = np.array([len(b) for b in doc_stripped], dtype=np.int64)
        buffer = np.frombuffer(b"".join(doc_stripped) + b"\0" * _WINDOW, dtype=np.uint8)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        found: dict[tuple[int, int], set[int]] = {}
        for stride, keys, offsets, owners in self.probe_groups:
            counts = np.where(lengths >= _WINDOW, (lengths - _WINDOW) // stride + 1, 0)
            total = int(counts.sum())
            if not total:
                continue
            doc_of = np.repeat(np.arange(len(batch)), counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            places = starts[doc_of] + within * stride
            hit, key = _lookup(keys, _byte_windows(buffer, places))
            if not len(hit):
                continue
            hit_of, probes = _expand(key, offsets, owners)
            docs = doc_of[hit[hit_of]]
            for doc, probe in set(zip(docs.tolist(), probes.tolist())):
                if self.probes[probe] in doc_stripped[doc]:
                    found.setdefault((doc, int(self.probe_case[probe])), set()).add(probe)
        if not found:
            return
        keys = sorted(found)
        cases = np.array([case for _, case in keys], dtype=np.int64)
        scores = np.array([len(found[k]) for k in keys]) / self.probe_count[cases]
        self._best(scan, "substring", cases, scores)
        for (doc, case), score in zip(keys, scores.tolist()):
            if len(found[(doc, case)]) >= min(c.substring_min_found, self.probe_count[case]):
                self._add(scan, case, "substring", batch[doc][0], float(score))
