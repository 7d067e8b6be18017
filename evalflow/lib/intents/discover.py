"""discover_intents: embeddings and texts in, intents per row plus catalog and events out."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from evalflow.lib.intents import cluster as clustering
from evalflow.lib.intents import reduce as reduction
from evalflow.lib.intents.models import CatalogEntry, IntentResult
from evalflow.lib.intents.naming import ctfidf_keywords, name_from_keywords
from evalflow.lib.intents.stability import assign_to_anchors, match_clusters, reconcile, weighted_centroids

# Centroid cosine similarity for "same intent as last run". Measured re-clustering Banking77 test
# and the simulator after adding 10% rows: an intent's centroid moves to a median 0.998 of its
# old self (10th percentile 0.95-0.99), while within one run each intent's nearest other intent
# sits at a median 0.69-0.75 (90th percentile 0.80-0.83; the closest pairs 0.85 and 0.94). 0.85
# keeps the continuations and rejects nearly all neighbours; the Hungarian step resolves the rest.
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
        continuity = None
        if previous:
            fit_vectors = distinct.vectors[fit_idx]
            fit_counts = distinct.counts[fit_idx]
            prev_total = sum(e.share for e in previous) or 1.0

            def continuity(labels: np.ndarray) -> float:
                assigned, _ = clustering.assign_noise_to_centroids(fit_vectors, labels)
                assigned, _ = reconcile(fit_vectors, fit_counts, assigned, previous, match_threshold)
                kept = match_clusters(weighted_centroids(fit_vectors, fit_counts, assigned),
                                      previous, match_threshold).new_to_old
                rows_kept = fit_counts[np.isin(assigned, list(kept))].sum() / fit_counts.sum()
                old_kept = sum(previous[c].share for c in kept.values()) / prev_total
                return float(rows_kept * old_kept)

        fit_labels, fit_probs, cluster_params = clustering.choose_clustering(
            reduced.fit_z, seed, continuity, vectors=distinct.vectors[fit_idx],
            weights=distinct.counts[fit_idx])
        timings["cluster_s"] = round(time.perf_counter() - t, 2)
        params["hdbscan"] = cluster_params
        t = time.perf_counter()
        if fit_labels.max() < 0:
            # No density structure at all: keep every row together rather than inventing intents.
            fit_assigned = np.zeros(len(fit_idx), dtype=np.int64)
            fit_conf = np.full(len(fit_idx), 0.25)
            params["fallback"] = "HDBSCAN found no cluster; one low-confidence intent holds every row"
        else:
            fit_assigned, centroid_sim = clustering.assign_noise_to_centroids(
                distinct.vectors[fit_idx], fit_labels)
            fit_conf = np.where(fit_labels >= 0, 0.5 + 0.5 * fit_probs,
                                0.5 * np.clip(centroid_sim, 0.0, 1.0))
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

    if previous:
        labels_u, reconciled = reconcile(distinct.vectors, distinct.counts, labels_u, previous,
                                         match_threshold)
        params["reconcile"] = reconciled

    # Relabel clusters by size (rows, duplicates included), largest first: deterministic order.
    k = int(labels_u.max()) + 1
    sizes = np.bincount(labels_u, weights=distinct.counts, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    labels_u = rank[labels_u]
    sizes = sizes[order]

    # Centroids in the original space, every row counted (a repeated text weighs more).
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels_u, distinct.vectors.astype(np.float64) * distinct.counts[:, None])
    centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    # Members far below their intent's typical similarity to its centroid are low-confidence
    # too (`clustering.far_from_centroid`: UMAP glues even unrelated vectors to some cluster).
    own_sim = np.einsum("ij,ij->i", distinct.vectors.astype(np.float64), centroids[labels_u])
    outlier, floor = clustering.far_from_centroid(own_sim, noise_u)
    if floor is not None:
        conf_u = np.where(outlier, 0.5 * np.clip(own_sim, 0.0, 0.98), conf_u)
        noise_u = noise_u | outlier
        params["outliers"] = {"rule": f"cosine to own centroid < median - "
                                      f"{clustering.OUTLIER_MADS} MAD",
                              "floor": round(floor, 4), "distinct_rows": int(outlier.sum())}

    matching = match_clusters(centroids, previous, match_threshold)
    previous_by_id = {e.intent_id: e for e in (previous or [])}
    # HDBSCAN found the intents; each row now goes to the intent with the nearest anchor (the
    # previous run's centroid for an intent that continues, this run's otherwise), and the
    # centroids follow their members until no row moves. Noise rows get their intent this way
    # (the noise policy), and rows a re-fit moved across a boundary between two continuing
    # intents start from where the catalog had them (`stability.assign_to_anchors`: ids kept
    # with 10% more rows went from 94-97% to 97-100%; a re-run on the same rows changes none).
    anchors = np.array([previous_by_id[i].centroid if i in previous_by_id else centroids[c]
                        for c, i in enumerate(matching.ids)], dtype=np.float64)
    anchors /= np.maximum(np.linalg.norm(anchors, axis=1, keepdims=True), 1e-12)
    labels_u, moved = assign_to_anchors(distinct.vectors, labels_u, anchors, distinct.counts)
    params["rows_to_nearest_anchor"] = moved
    if moved:
        sizes = np.bincount(labels_u, weights=distinct.counts, minlength=k)
        centroids = weighted_centroids(distinct.vectors, distinct.counts, labels_u, k)

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

    catalog.sort(key=lambda e: -e.size)
    row_labels = labels_u[distinct.inverse]
    intent_ids = [matching.ids[c] for c in row_labels]
    confidence = np.clip(conf_u[distinct.inverse], 0.0, 1.0)
    low_confidence = noise_u[distinct.inverse]
    timings["total_s"] = round(time.perf_counter() - started, 2)
    params["clusters"] = k
    params["timings"] = timings
    noise_share = float(low_confidence.mean())
    params["noise_share"] = round(noise_share, 4)
    params["noise_policy"] = ("nearest intent: HDBSCAN noise (and rows far below their intent's "
                              "typical similarity) get the intent with the nearest centroid, "
                              "confidence < 0.5, low_confidence True")
    return IntentResult(intent_ids, confidence, low_confidence, catalog, matching.events, params,
                        noise_share)
