"""Values inside requests (merchants, cities, products) found from the data, so they do not
become intents.

Redaction removes personal data, and `text.model_text` removes placeholders, amounts and numbers,
but a merchant or a city is neither: "Why was my card declined at Spotify?" keeps "Spotify". In
templated traffic the value can outweigh the request: on the simulator, 12-17 of the intents were
"payment <merchant>" clusters, each holding disputes and declines that name the same merchant.
No list of merchants is assumed; a value is recognised by how it is used:

**A value token** fills a slot: there are distinct texts that are identical but for that one token,
with at least ``MIN_FILLERS`` different tokens in that place ("why was my card declined at _"
with spotify, lidl, uber...). A token is a value when it fills such a slot in at least
``MIN_SLOTS`` texts and in at least ``MIN_SLOT_SHARE`` of the distinct texts it appears in. Words
that carry the request fill slots too ("how do I _ my card": activate, freeze, cancel), but they
appear in many other texts where they fill none, which the share rules out. Measured: every
merchant, city and currency code of the simulator is found (30-32 tokens per 9,000 traces, 13-19
per 1,000) and nothing else; on Banking77 (train and test) and SNIPS no token at all.

**A value cluster** is a cluster most of whose texts name the same value token (at least
``DOMINANCE``). A request that is defined by its value (a support line for one partner) would
look the same, but then the value does not fill a slot shared with other values: the rule above
would not call it a value. Value clusters that are the same request about different values are
joined (their value-free centroids alike), and the rows of any value cluster left go to the
nearest other intent in the **value-free view**: a text's vector is replaced by the mean vector
of the distinct texts that read the same once value tokens are dropped (its template, with every
value it was seen with), so what is left is the request. (Clustering in that view from the start was measured and is
worse: without their values, a template's texts are one point and the clusters follow
phrasings; simulator ARI 0.62-0.74 -> 0.45-0.47 at 9,000 traces.)

Names (c-TF-IDF, `naming`) leave value tokens out too, so an intent is named by what is asked.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

MIN_FILLERS = 3
MIN_SLOTS = 3
MIN_SLOT_SHARE = 0.3
DOMINANCE = 0.5
# Value-free centroids at least this alike: the same request about different values.
VALUE_TWIN = 0.95
# A token: letters, with inner dots, slashes, ampersands, apostrophes or hyphens ("Booking.com",
# "Apple.com/bill", "AT&T", "don't").
TOKEN = re.compile(r"[^\W\d_](?:[\w'.&/-]*[^\W\d_])?")


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


def value_tokens(texts) -> set[str]:
    """The value tokens of a collection of texts (see the module docstring)."""
    distinct = set(texts)
    fillers: dict[tuple, set[str]] = defaultdict(set)
    seen_in = Counter()
    for text in distinct:
        toks = tokens(text)
        seen_in.update(set(toks))
        for i, tok in enumerate(toks):
            fillers[(*toks[:i], "\x00", *toks[i + 1:])].add(tok)
    slots = Counter()
    for fill in fillers.values():
        if len(fill) >= MIN_FILLERS:
            slots.update(fill)
    return {t for t, n in slots.items() if n >= MIN_SLOTS and n / seen_in[t] >= MIN_SLOT_SHARE}


def value_free(text: str, values: set[str]) -> str:
    """The text's tokens without value tokens (lower case, one space apart): its template."""
    return " ".join(t for t in tokens(text) if t not in values)


def value_free_vectors(vectors: np.ndarray, texts: list[str], values: set[str]) -> np.ndarray:
    """Each row's vector replaced by the unit mean of the rows whose texts share its template."""
    keys = [value_free(t, values) for t in texts]
    index: dict[str, int] = {}
    group = np.array([index.setdefault(k, len(index)) for k in keys])
    sums = np.zeros((len(index), vectors.shape[1]))
    np.add.at(sums, group, np.asarray(vectors, dtype=np.float64))
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums[group]


def dominant_values(texts: list[str], labels: np.ndarray, values: set[str], k: int) -> list[tuple[str, float] | None]:
    """Per cluster 0..k-1: (the value token most of its texts name, their share), when that share
    is at least DOMINANCE; else None."""
    out: list[tuple[str, float] | None] = [None] * k
    named = [set(tokens(t)) & values for t in texts]
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        counts = Counter(v for i in members for v in named[i])
        if counts:
            value, n = counts.most_common(1)[0]
            if n / len(members) >= DOMINANCE:
                out[c] = (value, round(n / len(members), 3))
    return out


def dissolve_value_clusters(vectors: np.ndarray, texts: list[str], labels: np.ndarray,
                            weights: np.ndarray, values: set[str]) -> tuple[np.ndarray, list[dict]]:
    """Clusters that differ only by a value joined, then the rows of the value clusters left sent
    to the nearest other cluster, both in the value-free view. Returns the new labels (0..k'-1)
    and what was done.

    1. Two clusters whose value-free centroids are alike (cosine >= ``VALUE_TWIN``), one of them a
       value cluster, are the same request about different values ("declined at Spotify",
       "declined at Lidl"): joined.
    2. A value cluster still left (several requests that name one value: disputes and declines
       at Spotify) gives each of its rows to the nearest cluster that is not a value cluster.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    k = int(labels.max()) + 1 if len(labels) else 0
    if not values or k < 2:
        return labels, []
    dominant = dominant_values(texts, labels, values, k)
    if not any(dominant):
        return labels, []
    free = value_free_vectors(vectors, texts, values)
    w = np.asarray(weights, dtype=np.float64)
    report: list[dict] = []

    def free_centroids(lab, n):
        sums = np.zeros((n, free.shape[1]))
        np.add.at(sums, lab, free * w[:, None])
        return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    # 1. value twins
    cent = free_centroids(labels, k)
    sim = cent @ cent.T
    root = list(range(k))

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a in range(k):
        for b in range(a + 1, k):
            if (dominant[a] or dominant[b]) and sim[a, b] >= VALUE_TWIN and find(a) != find(b):
                root[find(b)] = find(a)
    joined = np.array([find(c) for c in range(k)])
    if (joined != np.arange(k)).any():
        report.append({"joined_value_twins": int(k - len(set(joined.tolist())))})
        labels = np.unique(joined, return_inverse=True)[1][labels]
        k = int(labels.max()) + 1
        dominant = dominant_values(texts, labels, values, k)
    # 2. value clusters left
    dissolved = [c for c in range(k) if dominant[c] is not None]
    keep = [c for c in range(k) if dominant[c] is None]
    if dissolved and keep:
        cent = free_centroids(labels, k)[keep]
        moved = np.isin(labels, dissolved)
        report += [{"value": dominant[c][0], "share": dominant[c][1], "rows": int(w[labels == c].sum())}
                   for c in dissolved]
        labels[moved] = np.asarray(keep)[(free[moved] @ cent.T).argmax(axis=1)]
        labels = np.unique(labels, return_inverse=True)[1].astype(np.int64)
    return labels, report
