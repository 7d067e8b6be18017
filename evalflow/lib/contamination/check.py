"""`check_cases`: every case against every corpus, by five methods, as one report; `split_leaks`:
the same methods between splits of the eval set.

The report (the CLI writes it as REPORT.json):

    {"summary": {"cases", "contaminated", "contaminated_share", "by_method": {method: cases},
                 "by_corpus": {corpus: cases}, "empty_cases", "corpora": [...], "methods": {...},
                 "config": {...}, "embedder": {...} | null},
     "cases": [{"case_id", "contaminated", "methods": {method: {"hit", "score", ...}},
                "matches": [{"corpus", "doc_id", "method", "score"}], "matches_total"}]}

One object per case, in the order given. A method's `score` is its best over every document of
every corpus (null where it does not apply to the case, with `skipped` saying why); `hit` is
whether that best reaches the method's threshold. `matches` lists the documents that reached a
threshold, best first, at most `max_matches_per_case` (`matches_total` counts them all).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from evalflow.lib.contamination.config import ContaminationConfig, Corpus
from evalflow.lib.contamination.corpora import CorpusStats, iter_documents
from evalflow.lib.contamination.index import METHODS, CaseIndex, CorpusScan
from evalflow.lib.contamination.text import case_text, for_embedding

# Which method speaks first when one document is found by several (the strongest evidence).
_STRENGTH = {m: i for i, m in enumerate(METHODS)}


def method_descriptions(config: ContaminationConfig) -> dict[str, str]:
    c = config
    return {
        "exact": "the normalised case equals the normalised document or one of its segments",
        "ngram": f"shared distinct {c.ngram_n}-grams of words over the smaller side's count >= {c.ngram_threshold} "
                 f"(cases of {c.ngram_min_tokens}-{c.ngram_n - 1} words: their whole length as n)",
        "substring": f"{c.substring_probes} seeded random {c.substring_length}-character substrings of the stripped "
                     f"case; >= {c.substring_min_found} found in one stripped document",
        "minhash": f"MinHash LSH (datasketch, {c.num_perm} permutations) of word sets without stop words and "
                   f"numbers; "
                   f"estimated Jaccard >= {c.minhash_threshold} with a segment",
        "embedding": f"cosine of the pipeline's sentence embeddings (numbers masked) >= {c.embedding_threshold} "
                     f"with a segment "
                     f"(every segment of a corpus of at most {c.embed_full_max_segments}; else the "
                     f"{c.embed_candidates_per_case} best MinHash candidates per case, estimated Jaccard >= "
                     f"{c.embed_candidate_min_jaccard})",
    }


def _threshold(config: ContaminationConfig, method: str) -> float:
    return {"exact": 1.0, "ngram": config.ngram_threshold, "minhash": config.minhash_threshold,
            "embedding": config.embedding_threshold}.get(method, 0.0)


def _normalise_cases(cases: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    out, seen = [], set()
    for i, case in enumerate(cases):
        case_id = case.get("case_id")
        if not isinstance(case_id, str) or not case_id:
            raise ValueError(f"case {i}: case_id must be a non-empty string")
        if case_id in seen:
            raise ValueError(f"case {i}: case_id {case_id!r} appears twice")
        seen.add(case_id)
        text = case_text(case)
        out.append((case_id, text if isinstance(text, str) else ""))
    return out


class _CaseVectors:
    """The cases' embeddings, computed when first needed and once: a large corpus only needs the
    cases that have MinHash candidates."""

    def __init__(self, embedder, cases: Sequence[tuple[str, str]], index: CaseIndex):
        self.embedder, self.cases, self.index = embedder, cases, index
        self.vectors: np.ndarray | None = None
        self.done = np.zeros(len(cases), dtype=bool)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.arange(len(self.cases))[rows]
        missing = [int(r) for r in np.atleast_1d(rows) if not self.done[r]]
        if missing:
            texts = [for_embedding(self.cases[r][1]) if not self.index.empty[r] else "" for r in missing]
            vectors = np.asarray(self.embedder.encode(texts), dtype=np.float32)
            if self.vectors is None:
                self.vectors = np.zeros((len(self.cases), vectors.shape[1]), dtype=np.float32)
            self.vectors[missing] = vectors
            self.done[missing] = True
        return self.vectors[rows]

    @property
    def embedded(self) -> int:
        return int(self.done.sum())


def _embed_scan(index: CaseIndex, scan: CorpusScan, case_vectors: _CaseVectors, embedder,
                config: ContaminationConfig) -> dict:
    """Embedding matches of one corpus: best cosine per case, and hits. Returns what was embedded."""
    best = np.full(index.size, np.nan)
    scan.best["embedding"] = best
    if scan.all_segments is not None:
        texts = [text for _, text in scan.all_segments]
        doc_ids = [doc_id for doc_id, _ in scan.all_segments]
        if not texts:
            return {"mode": "full", "embedded": 0}
        # A text repeated across segments (a boilerplate paragraph, a document given twice) is embedded once.
        distinct = {t: i for i, t in enumerate(dict.fromkeys(for_embedding(t) for t in texts))}
        vectors = np.asarray(embedder.encode(list(distinct)), dtype=np.float32)
        vectors = vectors[[distinct[for_embedding(t)] for t in texts]]
        for start in range(0, index.size, 512):
            sims = case_vectors[start:start + 512] @ vectors.T
            top = sims.max(axis=1)
            rows = np.arange(start, start + len(sims))
            live = ~index.empty[rows]
            best[rows[live]] = top[live]
            for r, col in zip(*np.nonzero(sims >= config.embedding_threshold)):
                case = start + int(r)
                if not index.empty[case]:
                    index._add(scan, case, "embedding", doc_ids[col], float(sims[r, col]))
        return {"mode": "full", "embedded": len(distinct)}
    wanted: dict[str, int] = {}
    for heap in scan.candidates.values():
        for _, _, _, text in heap:
            wanted.setdefault(text, len(wanted))
    if not wanted:
        return {"mode": "candidates", "embedded": 0}
    vectors = np.asarray(embedder.encode([for_embedding(t) for t in wanted]), dtype=np.float32)
    case_vectors[sorted(scan.candidates)]  # one batch for every case with candidates
    for case, heap in sorted(scan.candidates.items()):
        rows = [wanted[text] for _, _, _, text in heap]
        sims = vectors[rows] @ case_vectors[case]
        best[case] = float(sims.max())
        for (_, _, doc_id, _), sim in zip(heap, sims.tolist()):
            if sim >= config.embedding_threshold:
                index._add(scan, case, "embedding", doc_id, float(sim))
    return {"mode": "candidates", "embedded": len(wanted)}


def run_scans(cases: Sequence[tuple[str, str]], corpora: Sequence[Corpus], *, embedder=None,
              config: ContaminationConfig | None = None) -> tuple[CaseIndex, list[CorpusScan], list[dict]]:
    """Index the cases, stream each corpus through the index once, then embed. The parts of the
    report before they are assembled (check_cases and split_leaks share them)."""
    config = config or ContaminationConfig()
    if embedder is None:
        config = config.replace(embed_full_max_segments=0, embed_candidates_per_case=0)
    index = CaseIndex(cases, config)
    scans, corpus_info = [], []
    case_vectors = _CaseVectors(embedder, cases, index) if embedder is not None else None
    for corpus in corpora:
        stats = CorpusStats()
        scan = index.new_scan(corpus.name, corpus.kind)
        if embedder is None:
            scan.all_segments = None
        index.scan(iter_documents(corpus, stats), scan)
        scan.skipped = stats.skipped
        embedding = {"mode": "off", "embedded": 0}
        if embedder is not None and len(cases):
            embedding = _embed_scan(index, scan, case_vectors, embedder, config)
        scan.all_segments, scan.candidates = None, {}
        scans.append(scan)
        corpus_info.append({"name": corpus.name, "kind": corpus.kind,
                            "path": str(corpus.path) if corpus.path is not None else None,
                            "fields": list(corpus.fields), "documents": scan.documents, "skipped": scan.skipped,
                            "segments": scan.segments, "minhashed_segments": scan.minhashed,
                            "embedding": embedding["mode"], "embedded_segments": embedding["embedded"]})
    index.embedded_cases = case_vectors.embedded if case_vectors is not None else 0
    return index, scans, corpus_info


def _round(value: float) -> float:
    return round(float(value), 4)


def _case_methods(index: CaseIndex, scans: list[CorpusScan], case: int, config: ContaminationConfig,
                  embedder_used: bool) -> dict:
    not_applicable = {
        "exact": "the case has no words",
        "ngram": f"the case has fewer than {config.ngram_min_tokens} words",
        "substring": f"the stripped case is shorter than {config.substring_min_length} characters",
        "minhash": f"the case has fewer than {config.minhash_min_tokens} words that are not stop words or numbers",
        "embedding": "no segment was compared (no MinHash candidate in a corpus too large to embed whole)",
    }
    methods = {}
    for method in METHODS:
        values = [v for v in (s.best[method][case] for s in scans if method in s.best) if not math.isnan(v)]
        if method == "embedding" and not embedder_used:
            reason = "no embedder"
        elif index.empty[case]:
            reason = "the case has no words"
        elif not scans:
            reason = "no corpus"
        elif not values:
            reason = not_applicable[method]
        else:
            methods[method] = {"hit": False, "score": _round(max(values))}
            continue
        methods[method] = {"hit": False, "score": None, "skipped": reason}
    return methods


def _assemble(index: CaseIndex, scans: list[CorpusScan], case_ids: list[str], config: ContaminationConfig,
              embedder_used: bool) -> list[dict]:
    out = []
    for case, case_id in enumerate(case_ids):
        methods = _case_methods(index, scans, case, config, embedder_used)
        matches, total = [], 0
        for scan in scans:
            found = scan.matches.get(case, {})
            total += len(found) + scan.dropped.get(case, 0)
            for (method, doc_id), score in found.items():
                matches.append({"corpus": scan.name, "doc_id": doc_id, "method": method, "score": _round(score)})
        matches.sort(key=lambda m: (-m["score"], _STRENGTH[m["method"]], m["corpus"], m["doc_id"]))
        for match in matches:
            methods[match["method"]]["hit"] = True
        out.append({"case_id": case_id, "contaminated": bool(matches), "methods": methods,
                    "matches": matches[:config.max_matches_per_case], "matches_total": total})
    return out


def check_cases(cases: Sequence[Mapping[str, Any]], corpora: Sequence[Corpus], *, embedder=None,
                config: ContaminationConfig | None = None) -> dict:
    """The contamination report of `cases` ({"case_id", "text"}, or eval-case dicts: see
    text.case_text) against `corpora`. `embedder`: anything with `encode(texts) -> (n, d)
    L2-normalised float32`, the pipeline's `Embedder`; None leaves the embedding method out.
    Deterministic: the same inputs give the same report. ValueError for a case without a
    case_id or with a duplicate one."""
    config = config or ContaminationConfig()
    prepared = _normalise_cases(cases)
    index, scans, corpus_info = run_scans(prepared, corpora, embedder=embedder, config=config)
    results = _assemble(index, scans, [case_id for case_id, _ in prepared], config, embedder is not None)
    by_method = {m: sum(r["methods"][m]["hit"] for r in results) for m in METHODS}
    by_corpus = {scan.name: sum(1 for found in scan.matches.values() if found) for scan in scans}
    contaminated = sum(r["contaminated"] for r in results)
    describe = getattr(embedder, "describe", None)
    summary = {
        "cases": len(results), "contaminated": contaminated, "embedded_cases": index.embedded_cases,
        "contaminated_share": _round(contaminated / len(results)) if results else 0.0,
        "by_method": by_method, "by_corpus": by_corpus, "empty_cases": int(index.empty.sum()),
        "corpora": corpus_info, "methods": method_descriptions(config), "config": config.to_dict(),
        "embedder": describe() if callable(describe) else (None if embedder is None else type(embedder).__name__),
    }
    return {"summary": summary, "cases": results}


def split_leaks(cases_by_split: Mapping[str, Sequence[Mapping[str, Any]]],
                pairs: Sequence[tuple[str, str]] | None = None, *, embedder=None,
                config: ContaminationConfig | None = None) -> list[dict]:
    """Near-duplicates across split boundaries: for each pair (a, b) of split names (default:
    every pair of the given splits, in the order given), the cases of `a` are indexed and the
    cases of `b` streamed through as documents, by the same methods and thresholds as
    check_cases. One row per leaking pair of cases and method:
    {"split", "case_id", "other_split", "other_case_id", "method", "score", "same_case"}
    (`same_case`: the same case id on both sides, e.g. a golden case again in a rolling set).
    Sorted by split pair, then case, best score first."""
    config = config or ContaminationConfig()
    names = list(cases_by_split)
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = []
    for a, b in pairs:
        for name in (a, b):
            if name not in cases_by_split:
                raise ValueError(f"no split named {name!r} (have: {', '.join(names)})")
        left = _normalise_cases(cases_by_split[a])
        right = _normalise_cases(cases_by_split[b])
        if not left or not right:
            continue
        corpus = Corpus(_split_name(b), "dataset", documents=right)
        every = config.replace(max_matches_per_case=max(config.max_matches_per_case, len(right) * len(METHODS)))
        index, scans, _ = run_scans(left, [corpus], embedder=embedder, config=every)
        results = _assemble(index, scans, [case_id for case_id, _ in left], every, embedder is not None)
        for result in results:
            for match in result["matches"]:
                rows.append({"split": a, "case_id": result["case_id"], "other_split": b,
                             "other_case_id": match["doc_id"], "method": match["method"], "score": match["score"],
                             "same_case": match["doc_id"] == result["case_id"]})
    return rows


def _split_name(name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:64]
    return safe if safe and safe[0].isalnum() else f"s{safe}"[:64]
