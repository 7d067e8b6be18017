"""discover_intents: embeddings and texts in, intents per row plus catalog and events out."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from evalflow.lib.intents import cluster as clustering
from evalflow.lib.intents import reduce as reduction
from evalflow.lib.intents import values as request_values
from evalflow.lib.intents.models import CatalogEntry, IntentEvent, IntentResult
from evalflow.lib.intents.naming import ctfidf_keywords, name_from_keywords
from evalflow.lib.intents.overrides import Overrides, apply_overrides
from evalflow.lib.intents.stability import (
    assign_to_anchors,
    id_number,
    match_clusters,
    reconcile,
    weighted_centroids,
)
from evalflow.lib.intents.text import model_text

# Centroid cosine similarity for "same intent as last run". Measured re-clustering Banking77 test
# and the simulator after adding 10% rows: an intent's centroid moves to a median 0.998 of its
# old self (10th percentile 0.95-0.99), while within one run each intent's nearest other intent
# sits at a median 0.69-0.75 (90th percentile 0.80-0.83; the closest pairs 0.85 and 0.94). 0.85
# keeps the continuations and rejects nearly all neighbours; the Hungarian step resolves the rest.
MATCH_THRESHOLD = 0.85
# Fewer distinct vectors than this: no density structure to find; one intent holds everything.
MIN_DISTINCT = 10
EXAMPLES = 3
# Merge candidates shown to a reviewer: intents whose centroids are at least this alike. Within
# one run each intent's nearest other intent sits at a median 0.69-0.75 (90th percentile
# 0.80-0.83), so 0.8 lists the closest tenth or so.
MERGE_CANDIDATE_SIMILARITY = 0.8
MERGE_CANDIDATES = 20


def discover_intents(embeddings: np.ndarray, texts: list[str], *,
                     previous: list[CatalogEntry] | None = None, seed: int = 0,
                     now: datetime | None = None, match_threshold: float = MATCH_THRESHOLD,
                     fit_cap: int = reduction.FIT_CAP, overrides: Overrides | None = None) -> IntentResult:
    """Intents of the rows of ``embeddings`` (unit-length model vectors) with their ``texts``.

    ``previous``: the last run's catalog; matching intents keep their ids (see
    `evalflow.lib.intents.stability`). ``overrides``: a reviewer's decisions (rename, merge, split,
    pin; `evalflow.lib.intents.overrides`), honoured together with those earlier runs stored in
    ``previous``. Same inputs and seed give the same result.
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
    distinct_texts = [texts[i] for i in distinct.first_row]
    read_texts = [model_text(t) for t in distinct_texts]
    value_tokens = request_values.value_tokens(read_texts)
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

        templates = None
        if value_tokens:  # candidates are scored on the value-free view: one node per template
            keys = [request_values.value_free(read_texts[i], value_tokens) for i in fit_idx]
            index: dict[str, int] = {}
            templates = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
        fit_labels, fit_probs, cluster_params = clustering.choose_clustering(
            reduced.fit_z, seed, continuity, vectors=distinct.vectors[fit_idx],
            weights=distinct.counts[fit_idx], templates=templates)
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
            # Noise rows among their intent's members count as its members, at the edge (as a
            # member HDBSCAN gave probability 0): `clustering.surrounded_noise`.
            surrounded = clustering.surrounded_noise(distinct.vectors[fit_idx], fit_labels, fit_assigned)
            fit_conf = np.where(surrounded, 0.5, fit_conf)
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

    # Values inside requests (merchants, cities...) found from the texts; a cluster most of whose
    # texts name one of them is dissolved into the other intents (`values`).
    if value_tokens:
        labels_u, dissolved = request_values.dissolve_value_clusters(
            distinct.vectors, read_texts, labels_u, distinct.counts, value_tokens)
        params["values"] = {"tokens": len(value_tokens), "examples": sorted(value_tokens)[:20],
                            "dissolved_clusters": dissolved}

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
    ids = list(matching.ids)
    inherited_ids = [list(i) for i in matching.inherited]
    events = list(matching.events)
    decisions = None
    carried = any(e.pinned or e.anchors or e.reviewed_name or e.decision for e in previous or [])
    if (overrides is not None and not overrides.empty) or carried:
        # A reviewer's decisions (`overrides`): this run's clusters merged, split, pinned, renamed.
        refit_splits = {previous[o].intent_id: [ids[r] for r in kids]
                        for o, kids in matching.split_children.items()}
        next_number = max([id_number(i) for i in ids] + [id_number(e.intent_id) for e in previous or []],
                          default=0) + 1
        applied = apply_overrides(distinct.vectors, distinct.counts, distinct_texts, labels_u, ids,
                                  inherited_ids, previous, overrides, threshold=match_threshold,
                                  seed=seed, next_number=next_number, refit_splits=refit_splits)
        labels_u, ids, inherited_ids = applied.labels, applied.ids, applied.inherited
        centroids, decisions = applied.centroids, applied.decisions
        k = len(ids)
        events = _events_after_review(events, ids) + applied.events
        params["overrides"] = applied.report

    # HDBSCAN found the intents; each row now goes to the intent with the nearest anchor (the
    # previous run's centroid for an intent that continues, this run's otherwise), and the
    # centroids follow their members until no row moves. Noise rows get their intent this way
    # (the noise policy), and rows a re-fit moved across a boundary between two continuing
    # intents start from where the catalog had them (`stability.assign_to_anchors`: ids kept
    # with 10% more rows went from 94-97% to 97-100%; a re-run on the same rows changes none).
    # A merged intent has one anchor more per intent a reviewer merged into it.
    main = [previous_by_id[i].centroid if i in previous_by_id else centroids[c] for c, i in enumerate(ids)]
    extra = [(c, a) for c in range(k) for a in (decisions.anchors[c] if decisions else [])]
    owner = np.array(list(range(k)) + [c for c, _ in extra], dtype=np.int64)
    anchors = np.array(main + [a for _, a in extra], dtype=np.float64).reshape(len(owner), -1)
    anchors /= np.maximum(np.linalg.norm(anchors, axis=1, keepdims=True), 1e-12)
    start = labels_u
    if extra:  # each row starts at the nearest of its own intent's anchors
        sims = distinct.vectors.astype(np.float64) @ anchors.T
        sims[owner[None, :] != labels_u[:, None]] = -np.inf
        start = sims.argmax(axis=1)
    settled, _ = assign_to_anchors(distinct.vectors, start, anchors, distinct.counts)
    new_labels = owner[settled]
    params["rows_to_nearest_anchor"] = int((new_labels != labels_u).sum())
    labels_u = new_labels
    sizes = np.bincount(labels_u, weights=distinct.counts, minlength=k)
    centroids = weighted_centroids(distinct.vectors, distinct.counts, labels_u, k)
    for c in np.flatnonzero(sizes == 0):  # a pinned intent without rows keeps where it was
        centroids[c] = anchors[c]

    t = time.perf_counter()
    confident = ~noise_u
    name_labels = np.where(confident, labels_u, -1)
    missing = np.setdiff1d(np.arange(k), np.unique(name_labels[name_labels >= 0]))
    if len(missing):  # an intent with only low-confidence members is still named from them
        fill = np.isin(labels_u, missing)
        name_labels[fill] = labels_u[fill]
    keywords = ctfidf_keywords(distinct_texts, name_labels, k, weights=distinct.counts,
                               exclude=value_tokens)
    timings["naming_s"] = round(time.perf_counter() - t, 2)

    total = float(sizes.sum())
    sim_to_centroid = (distinct.vectors @ centroids.T.astype(np.float32))
    catalog = []
    for c in range(k):
        members = np.flatnonzero(labels_u == c)
        before = previous_by_id.get(ids[c])
        if len(members):
            pool = members[confident[members]] if confident[members].any() else members
            best = pool[np.argsort(-sim_to_centroid[pool, c], kind="stable")[:EXAMPLES]]
            examples, words = [distinct_texts[i] for i in best], keywords[c]
        else:  # pinned, no rows in this window: what the catalog said of it
            examples, words = list(before.examples if before else []), list(before.keywords if before else [])
        inherited = [previous_by_id[i] for i in inherited_ids[c] if i in previous_by_id]
        first_seen = min([e.first_seen for e in inherited], default=now)
        reviewed = decisions.reviewed_name[c] if decisions else None
        catalog.append(CatalogEntry(
            intent_id=ids[c],
            name=reviewed or name_from_keywords(words),
            keywords=words,
            examples=examples,
            size=int(sizes[c]),
            share=round(float(sizes[c] / total), 6),
            first_seen=first_seen,
            last_seen=now,
            centroid=[float(v) for v in centroids[c].astype(np.float32)],
            reviewed_name=reviewed,
            pinned=bool(decisions.pinned[c]) if decisions else False,
            anchors=[[float(v) for v in np.asarray(a, dtype=np.float32)] for a in decisions.anchors[c]]
            if decisions else [],
            decision=decisions.decision[c] if decisions else None,
        ))

    catalog.sort(key=lambda e: -e.size)
    row_labels = labels_u[distinct.inverse]
    intent_ids = [ids[c] for c in row_labels]
    confidence = np.clip(conf_u[distinct.inverse], 0.0, 1.0)
    low_confidence = noise_u[distinct.inverse]
    timings["total_s"] = round(time.perf_counter() - started, 2)
    params["clusters"] = k
    params["timings"] = timings
    noise_share = float(low_confidence.mean())
    params["noise_share"] = round(noise_share, 4)
    params["noise_policy"] = ("nearest intent: HDBSCAN noise (and rows far below their intent's "
                              "typical similarity) get the intent with the nearest centroid, "
                              "confidence < 0.5, low_confidence True; noise whose nearest clustered "
                              "rows (10, or half the median intent's size if fewer, at least 3) "
                              "are >= 70% that intent's members: confidence 0.5, a member")
    params["merge_candidates"] = merge_candidates(catalog)
    return IntentResult(intent_ids, confidence, low_confidence, catalog, events, params, noise_share)


def _events_after_review(events: list, ids: list[str]) -> list:
    """The id matching's events, less what a reviewer's decisions undid (a birth folded into a
    merged intent, the death of a pinned intent, the part of a re-fit split joined back)."""
    alive = set(ids)
    out = []
    for e in events:
        if e.kind == "birth" and not set(e.to_ids) & alive:
            continue
        if e.kind == "death" and set(e.from_ids) & alive:
            continue
        if e.kind == "split":
            to = [i for i in e.to_ids if i in alive]
            if len(to) < 2:
                continue
            e = IntentEvent(e.kind, e.from_ids, to, e.detail, e.similarity)
        out.append(e)
    return out


def merge_candidates(catalog: list[CatalogEntry], *, threshold: float = MERGE_CANDIDATE_SIMILARITY,
                     limit: int = MERGE_CANDIDATES) -> list[dict]:
    """Pairs of intents a reviewer may want to merge: centroid cosine of at least ``threshold``,
    most alike first (at most ``limit``)."""
    if len(catalog) < 2:
        return []
    c = np.array([e.centroid for e in catalog], dtype=np.float64)
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    sim = c @ c.T
    i, j = np.triu_indices(len(catalog), 1)
    keep = sim[i, j] >= threshold
    order = np.argsort(-sim[i, j][keep], kind="stable")[:limit]
    return [{"intents": [catalog[a].intent_id, catalog[b].intent_id],
             "names": [catalog[a].name, catalog[b].name], "similarity": round(float(sim[a, b]), 4)}
            for a, b in zip(i[keep][order], j[keep][order])]
