"""Readable intent names: class-based TF-IDF (c-TF-IDF, as in BERTopic) over each cluster's texts.

All texts of a cluster form one document. A term's weight in cluster c is
``tf(t, c) * log(1 + A / f(t))``: its frequency in c (normalised by c's length), times how rare
it is across clusters (A: average number of words per cluster, f(t): the term's count over all
clusters). English stop words (sklearn's list plus chat filler) are dropped, terms are 1- and
2-grams of letters only, and
redaction placeholders (``<PERSON_7f3a9c01>``) are removed first: they carry no intent and would
otherwise name every cluster that mentions a customer.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from evalflow.lib.intents.text import strip_placeholders

# Letters only (no digits, no digests), at least two: "2fa" and amounts say little as names.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"
NAME_TERMS = 2
KEYWORDS = 8
# Chat filler that sklearn's list lacks, and contraction stubs its tokenizer leaves ("won't" ->
# "won"): they would otherwise name clusters ("long does", "app won").
EXTRA_STOP_WORDS = frozenset({
    "does", "did", "don", "doesn", "didn", "won", "isn", "wasn", "aren", "hasn", "haven", "hadn",
    "couldn", "wouldn", "shouldn", "ll", "ve", "re", "let", "hi", "hello", "hey", "thanks",
    "thank", "ok", "okay", "please", "pls", "just", "like", "know", "tell", "want", "need",
})


def ctfidf_keywords(texts: list[str], labels: np.ndarray, n_clusters: int, *,
                    weights: np.ndarray | None = None, top: int = KEYWORDS,
                    exclude: set[str] | None = None) -> list[list[str]]:
    """Top c-TF-IDF terms per cluster (labels 0..n_clusters-1; other labels are ignored).

    ``weights`` counts how many rows each text stands for (texts are usually distinct, with
    their number of occurrences as weight). ``exclude``: value tokens (`values.value_tokens`:
    merchants, cities...) left out of the terms, so a name says what is asked, not of what.
    """
    labels = np.asarray(labels)
    keep = (labels >= 0) & (labels < n_clusters)
    cleaned = [strip_placeholders(t) for t in texts]
    if exclude:
        from evalflow.lib.intents.values import TOKEN

        cleaned = [TOKEN.sub(lambda m: " " if m.group(0).lower() in exclude else m.group(0), t) for t in cleaned]
    vectorizer = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | EXTRA_STOP_WORDS), ngram_range=(1, 2),
                                 token_pattern=TOKEN_PATTERN, lowercase=True)
    try:
        counts = vectorizer.fit_transform(cleaned)
    except ValueError:  # nothing but stop words and placeholders
        return [[] for _ in range(n_clusters)]
    w = np.ones(len(texts)) if weights is None else np.asarray(weights, dtype=np.float64)
    rows = np.flatnonzero(keep)
    membership = sparse.csr_matrix((w[rows], (labels[rows], rows)), shape=(n_clusters, len(texts)))
    per_class = (membership @ counts).toarray()  # clusters x terms
    class_len = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(class_len, 1.0)
    term_total = per_class.sum(axis=0)
    avg_words = max(float(class_len.mean()), 1.0)
    idf = np.log1p(avg_words / np.maximum(term_total, 1e-12))
    scores = tf * idf
    vocab = vectorizer.get_feature_names_out()
    result = []
    for c in range(n_clusters):
        order = np.argsort(-scores[c], kind="stable")
        result.append([str(vocab[i]) for i in order[:top] if scores[c, i] > 0])
    return result


def name_from_keywords(keywords: list[str], terms: int = NAME_TERMS, lookahead: int = 6) -> str:
    """Join the best keywords into a name; a phrase beats its own word, and nothing is said twice.

    ["pin", "change pin", "card pin", "blocked"] -> "change pin / blocked": a top word is replaced
    by the best-ranked two-word term among the first ``lookahead`` that contains it, and a term
    sharing a word with one already chosen is skipped.
    """
    chosen: list[str] = []
    used: set[str] = set()
    for kw in keywords:
        if set(kw.split()) & used:
            continue
        if " " not in kw:
            phrase = next((p for p in keywords[:lookahead]
                           if " " in p and kw in p.split() and not set(p.split()) & used), None)
            kw = phrase or kw
        chosen.append(kw)
        used.update(kw.split())
        if len(chosen) == terms:
            break
    return " / ".join(chosen) if chosen else "(no keywords)"
