"""discover_intents: embeddings and texts in, intents per row plus catalog and events out."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from evalflow.lib.intents import cluster as clustering
from evalflow.lib.intents import reduce as reduction
from evalflow.lib.intents.models import CatalogEntry, IntentResult
from evalflow.lib.intents.naming import ctfidf_keywords, name_from_keywords
from evalflow.lib.intents.stability import match_clusters

# Centroid cosine similarity for "same intent as last run". Measured on Banking77 and the
# simulator (re-clustering after adding 10% rows): the same intent's centroid moves to 0.97-1.0;
# distinct intents' centroids sit at 0.30-0.90 (median nearest other 0.75; close pairs such as
# card_payment_fee_charged / transfer_fee_charged reach 0.9). 0.85 keeps nearly every true
# continuation while rejecting most neighbours; the Hungarian step resolves the rest.
MATCH_THRESHOLD = 0.85
# Fewer distinct vectors than this: no density structure to find; one intent holds everything.
MIN_DISTINCT = 10
EXAMPLES = 3


def discover_intents(embeddings: np.ndarray, texts: list[str], *,
                     previous: list[CatalogEntry] | None = None, seed: int = 0,
                     now: datetime | None = None, match_threshold: float = MATCH_THRESHOLD,
                     fit_cap: int = reduction.FIT_CAP) -> IntentResult:
    """Intents of the rows of ``embeddings`` (unit-length model vectors) with their ``texts``.

    ``previous``: the last run's catalog; matching intents keep their ids (see
    `evalflow.lib.intents.stability`). Same inputs and seed give the same result.
    """
    started = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (rows, dims), got shape {x.shape}")
    if len(texts) != len(x):
        raise ValueError(f"texts ({len(texts)}) and embeddings ({len(x)}) differ in length")
    now = now or datetime.now(timezone.utc)
    n = len(x)
    params: dict = {"rows": n, "seed": seed, "match_threshold": match_threshold}
    if n == 0:
        events = match_clusters(np.empty((0, 0)), previous, match_threshold).events if previous else []
        return IntentResult([], np.empty(0), np.empty(0, dtype=bool), [], events, params, 0.0)

    distinct = reduction.distinct_rows(x)
    u = len(distinct.vectors)
    params["distinct_rows"] = u
    timings: dict[str, float] = {}

    if u < MIN_DISTINCT:
        labels_u = np.zeros(u, dtype=np.int64)
        conf_u = np.ones(u)
        noise_u = np.zeros(u, dtype=bool)
        params["fallback"] = (f"{u} distinct vectors (< {MIN_DISTINCT}): too few for density "
                              "clustering; one intent holds every row")
    else:
        fit_idx = reduction.fit_sample(u, fit_cap, seed)
        params["fit_cap"] = fit_cap
        t = time.perf_counter()
        reduced = reduction.reduce(distinct.vectors, fit_idx, seed)
        timings["reduce_s"] = round(time.perf_counter() - t, 2)
        params.update(reduced.params)
        t = time.perf_counter()
        fit_labels, fit_probs, cluster_params = clustering.choose_clustering(reduced.fit_z, seed)
        timings["cluster_s"] = round(time.perf_counter() - t, 2)
        params["hdbscan"] = cluster_params
        t = time.perf_counter()
        if fit_labels.max() < 0:
            # No density structure at all: keep every row together rather than inventing intents.
            fit_assigned = np.zeros(len(fit_idx), dtype=np.int64)
            fit_conf = np.full(len(fit_idx), 0.25)
            params["fallback"] = "HDBSCAN found no cluster; one low-confidence intent holds every row"
        else:
            fit_assigned, vote_share = clustering.assign_noise(reduced.fit_z, fit_labels)
            fit_conf = np.where(fit_labels >= 0, 0.5 + 0.5 * fit_probs, 0.5 * vote_share)
            fit_conf = np.where((fit_labels < 0) & (fit_conf >= 0.5), 0.49, fit_conf)
        labels_u = np.empty(u, dtype=np.int64)
        conf_u = np.empty(u)
        labels_u[fit_idx] = fit_assigned
        conf_u[fit_idx] = fit_conf
        rest = np.setdiff1d(np.arange(u), fit_idx, assume_unique=True)
        if len(rest):
            rest_labels, rest_conf = clustering.assign_rest(
                reduced.pca_all[fit_idx], fit_assigned, fit_conf, reduced.pca_all[rest])
            labels_u[rest] = rest_labels
            conf_u[rest] = rest_conf
        noise_u = conf_u < 0.5
        timings["assign_s"] = round(time.perf_counter() - t, 2)

    # Relabel clusters by size (rows, duplicates included), largest first: deterministic order.
    k = int(labels_u.max()) + 1
    sizes = np.bincount(labels_u, weights=distinct.counts, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    labels_u = rank[labels_u]
    sizes = sizes[order]
    present = sizes > 0
    k = int(present.sum())  # every label has rows after assignment; kept for safety
    sizes = sizes[:k]

    # Centroids in the original space, every row counted (a repeated text weighs more).
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels_u, distinct.vectors.astype(np.float64) * distinct.counts[:, None])
    centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    t = time.perf_counter()
    distinct_texts = [texts[i] for i in distinct.first_row]
    confident = ~noise_u
    name_labels = np.where(confident, labels_u, -1)
    missing = np.setdiff1d(np.arange(k), np.unique(name_labels[name_labels >= 0]))
    if len(missing):  # an intent with only low-confidence members is still named from them
        fill = np.isin(labels_u, missing)
        name_labels[fill] = labels_u[fill]
    keywords = ctfidf_keywords(distinct_texts, name_labels, k, weights=distinct.counts)
    timings["naming_s"] = round(time.perf_counter() - t, 2)

    matching = match_clusters(centroids, previous, match_threshold)
    previous_by_id = {e.intent_id: e for e in (previous or [])}
    total = float(sizes.sum())
    sim_to_centroid = (distinct.vectors @ centroids.T.astype(np.float32))
    catalog = []
    for c in range(k):
        members = np.flatnonzero(labels_u == c)
        pool = members[confident[members]] if confident[members].any() else members
        best = pool[np.argsort(-sim_to_centroid[pool, c], kind="stable")[:EXAMPLES]]
        inherited = [previous_by_id[i] for i in matching.inherited[c] if i in previous_by_id]
        first_seen = min([e.first_seen for e in inherited], default=now)
        catalog.append(CatalogEntry(
            intent_id=matching.ids[c],
            name=name_from_keywords(keywords[c]),
            keywords=keywords[c],
            examples=[distinct_texts[i] for i in best],
            size=int(sizes[c]),
            share=round(float(sizes[c] / total), 6),
            first_seen=first_seen,
            last_seen=now,
            centroid=[float(v) for v in centroids[c].astype(np.float32)],
        ))

    row_labels = labels_u[distinct.inverse]
    intent_ids = [matching.ids[c] for c in row_labels]
    confidence = np.clip(conf_u[distinct.inverse], 0.0, 1.0)
    low_confidence = noise_u[distinct.inverse]
    timings["total_s"] = round(time.perf_counter() - started, 2)
    params["clusters"] = k
    params["timings"] = timings
    noise_share = float(low_confidence.mean())
    params["noise_share"] = round(noise_share, 4)
    params["noise_policy"] = ("nearest intent: HDBSCAN noise gets the majority intent of its 10 "
                              "nearest clustered neighbours, confidence < 0.5, low_confidence True")
    return IntentResult(intent_ids, confidence, low_confidence, catalog, matching.events, params,
                        noise_share)
