"""HDBSCAN over the reduced fit sample, with min_cluster_size chosen from the data.

Candidates: min_cluster_size = c * sqrt(n) for c in CANDIDATE_FACTORS (n: distinct vectors in
the fit sample, at least 5), min_samples 5, excess-of-mass selection. The choice, recorded in
``params["hdbscan"]`` with every candidate tried:

    the finest candidate (smallest c) that leaves at most NOISE_BUDGET of the rows
    low-confidence, counted as `discover_intents` counts them (HDBSCAN noise plus
    `far_from_centroid` members, duplicates included); stop at a collapse (a candidate keeping
    fewer than COLLAPSE_GUARD of the previous one's clusters: excess of mass can merge half the
    intents at once, on the simulator 56 -> 26 clusters and ARI 0.64 -> 0.26). If no candidate
    is within the budget, the least noisy one.
    With a previous catalog, the next CONTINUITY_STEPS coarser candidates within the budget are
    tried too, and the one keeping the most rows' previous ids wins.

Why c = 0.3 first (ARI per c, noise on the nearest centroid; UMAP seed 0):

    c                      0.2    0.25   0.3    0.35   0.45   0.6
    Banking77 train (tune) 0.458  0.495  0.525  0.529  0.506  0.529   k-means told k: 0.473
      noise                9.8%   10.6%  11.0%  9.4%   7.0%   8.5%
    Banking77 test         0.554  0.565  0.563  0.551  0.505  0.461   k-means: 0.500
    simulator, first turn  0.647  0.798  0.779  0.779  0.763  0.754   k-means: 0.397

Below 0.3 the intents of the tuning set break into fragments (train c 0.2: 189 clusters for
77 intents); above it ARI on train is flat and Banking77 test and the simulator lose. On train,
c 0.3 leaves 11% low-confidence, so the budget takes c 0.35 (ARI 0.529 with HDBSCAN
membership, 0.513 once the assignment settles, see `stability.assign_to_anchors`; 9.7%).

Label-free criteria measured for this choice and not kept, because none tracked ARI:
bootstrap stability (mean ARI against 80% subsamples: on a grid 0.2-0.6 it picked c 0.55 on
Banking77 test, ARI 0.470, and with three subsamples it flipped between c 0.25 and 0.3 when 10%
rows were added); HDBSCAN's total cluster persistence (peaks at c 0.3 on all three sets, but on
the simulator's first 27 days it picked c 0.2, ARI 0.53); DBCV (hdbscan's relative_validity_:
highest at c 0.45-0.6 on both Banking77 splits). Also tried: cluster_selection_epsilon at the
90th percentile of core distances (train noise 11.0% -> 10.1% at c 0.3, test ARI 0.563 ->
0.556); leaf selection (same ARI, 13-17% noise); min_samples 10-20 (no better, more noise);
hdbscan's soft membership for noise points (train: 6 of 1,099 reach membership 0.3 in any
cluster); counting duplicate rows towards
min_cluster_size (a condensed tree weighted by rows: the simulator's big intents split by
template, ARI 0.42-0.45).

min_samples 5 rather than HDBSCAN's default (= min_cluster_size): with the default, noise was
12-19% on Banking77 train; 5 keeps it near 10% at equal ARI.

Noise policy (see `evalflow.lib.intents`): HDBSCAN noise is given the intent whose centroid
(original space) is nearest, with confidence below 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

CANDIDATE_FACTORS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
MIN_SAMPLES = 5
MIN_CLUSTER_SIZE_FLOOR = 5
SELECTION = "eom"
COLLAPSE_GUARD = 0.6
# The share of low-confidence rows a candidate may leave (the "at most 10% noise").
NOISE_BUDGET = 0.10
CONTINUITY_STEPS = 2
NEIGHBOURS = 10
# A member whose cosine to its own centroid is more than OUTLIER_MADS robust deviations below
# the typical member's is low-confidence too (see `far_from_centroid`).
OUTLIER_MADS = 5.0
MIN_TYPICAL = 10


def min_cluster_size_for(n: int, factor: float) -> int:
    return int(max(MIN_CLUSTER_SIZE_FLOOR, round(factor * np.sqrt(n))))


def run_hdbscan(z: np.ndarray, min_cluster_size: int, min_samples: int = MIN_SAMPLES):
    import hdbscan

    min_cluster_size = int(min(min_cluster_size, max(2, len(z) // 2)))
    min_samples = int(min(min_samples, min_cluster_size))
    return hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                           cluster_selection_method=SELECTION, core_dist_n_jobs=1).fit(z)


def weighted_unit_centroids(x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                            k: int | None = None) -> np.ndarray:
    """Unit-length (weighted) mean vector per label 0..k-1; rows with label < 0 are ignored."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if k is None else k
    keep = labels >= 0
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels[keep], x[keep].astype(np.float64) * w[keep, None])
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def far_from_centroid(own_sim: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Members far below their intent's typical similarity to its centroid.

    UMAP with min_dist 0 pulls even a lone, unrelated vector into some cluster, where HDBSCAN
    then counts it as a member. In the original space such a row is far from its intent's
    centroid: more than OUTLIER_MADS robust deviations (1.4826 * MAD) below the median member.
    Returns (mask over rows, the similarity floor; None when too few members to judge).
    (Banking77 test: 0.5% more rows flagged; simulator: 1%.)
    """
    members = ~noise
    if members.sum() < MIN_TYPICAL:
        return np.zeros(len(own_sim), dtype=bool), None
    typical = np.median(own_sim[members])
    spread = 1.4826 * np.median(np.abs(own_sim[members] - typical))
    floor = float(typical - OUTLIER_MADS * max(spread, 1e-3))
    return (own_sim < floor) & members, floor


def low_confidence_share(x: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows (``weights``: rows per distinct vector) `discover_intents` would flag for
    these HDBSCAN labels: noise plus `far_from_centroid` members."""
    noise = labels < 0
    if labels.max() < 0:
        return 1.0
    assigned, _ = assign_noise_to_centroids(x, labels)
    centroids = weighted_unit_centroids(x, assigned, weights)
    own_sim = np.einsum("ij,ij->i", x.astype(np.float64), centroids[assigned])
    outlier, _ = far_from_centroid(own_sim, noise)
    w = np.asarray(weights, dtype=np.float64)
    return float(w[noise | outlier].sum() / w.sum())


def assign_noise_to_centroids(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every noise point gets the cluster whose centroid (original space, cosine) is nearest.

    Returns (labels with no -1 left, cosine similarity to that centroid; 1.0 for clustered
    points). Used for the final assignment rather than neighbours in UMAP space: centroids
    barely move when a run sees 10% more data (median cosine 0.998 between runs on Banking77),
    while UMAP's layout does, so a noise row tends to land in the same intent run after run.
    """
    labels = np.asarray(labels)
    out = labels.copy()
    sim_out = np.ones(len(labels))
    noise = labels < 0
    if not noise.any() or labels.max() < 0:
        return out, sim_out
    k = int(labels.max()) + 1
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels[~noise], x[~noise].astype(np.float64))
    centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    sims = x[noise].astype(np.float64) @ centroids.T
    out[noise] = sims.argmax(axis=1)
    sim_out[noise] = sims.max(axis=1)
    return out, sim_out


def choose_clustering(z: np.ndarray, seed: int = 0, continuity=None, *, vectors: np.ndarray,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """HDBSCAN labels (-1 noise) and membership probabilities for the chosen candidate.

    ``z``: the fit sample in the reduced space; ``vectors``: the same rows in the original space
    (for the noise budget); ``weights``: rows per distinct vector (default 1 each).
    ``continuity``: with a previous catalog, a function of a candidate's labels giving the share
    of rows that would keep their previous intent id (see the module docstring). ``seed``
    is unused (HDBSCAN is deterministic); kept so callers pass one seed to every stage.
    """
    n = len(z)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    candidates: list[dict] = []
    chosen = None
    for factor in CANDIDATE_FACTORS:
        mcs = min_cluster_size_for(n, factor)
        if any(c["min_cluster_size"] == mcs for c in candidates):
            continue
        model = run_hdbscan(z, mcs)
        labels = model.labels_
        k = int(labels.max()) + 1
        cand = {"factor": factor, "min_cluster_size": mcs, "clusters": k,
                "noise_share": round(low_confidence_share(vectors, weights, labels), 4),
                "model": model}
        if candidates and k < COLLAPSE_GUARD * candidates[-1]["clusters"]:
            cand["collapsed"] = True
            candidates.append(cand)
            break
        candidates.append(cand)
        if chosen is None and k >= 2 and cand["noise_share"] <= NOISE_BUDGET:
            chosen = cand
        if chosen is not None and (continuity is None or len(candidates) > candidates.index(chosen)
                                   + CONTINUITY_STEPS):
            break
    usable = [c for c in candidates if c["clusters"] >= 2 and not c.get("collapsed")]
    if chosen is not None:
        why = (f"the finest candidate from {CANDIDATE_FACTORS[0]} * sqrt(n) up within the noise "
               f"budget ({chosen['noise_share']:.1%} <= {NOISE_BUDGET:.0%} low-confidence rows)")
        if continuity is not None:
            near = [c for c in usable if c["factor"] >= chosen["factor"]
                    and c["noise_share"] <= NOISE_BUDGET]
            for c in near:
                c["continuity"] = round(float(continuity(c["model"].labels_)), 4)
            best = max(near, key=lambda c: (c["continuity"], -c["factor"]))
            if best is not chosen:
                why = (f"{best['factor']} * sqrt(n): keeps more rows' previous ids "
                       f"({best['continuity']}) than {chosen['factor']} ({chosen['continuity']}), "
                       f"{why}")
                chosen = best
            else:
                why = f"{why}; also the most continuous with the previous catalog"
    elif usable:
        chosen = min(usable, key=lambda c: (c["noise_share"], c["factor"]))
        why = (f"no candidate within the noise budget ({NOISE_BUDGET:.0%}) before a collapse; "
               "the least noisy")
    else:
        chosen = max(candidates, key=lambda c: c["clusters"])
        why = "no candidate found two or more clusters; kept the one with the most clusters"
    model = chosen["model"]
    params = {
        "min_cluster_size": chosen["min_cluster_size"],
        "min_cluster_size_rule": f"{chosen['factor']} * sqrt({n} distinct fitted vectors)",
        "min_samples": int(min(MIN_SAMPLES, chosen["min_cluster_size"])),
        "cluster_selection_method": SELECTION,
        "selection_criterion": ("finest min_cluster_size within the noise budget"
                                + ("; then continuity with the previous catalog"
                                   if continuity else "")),
        "why": why,
        "candidates": [{k: v for k, v in c.items() if k != "model"} for c in candidates],
    }
    labels = np.asarray(model.labels_, dtype=np.int64)
    probs = np.asarray(model.probabilities_, dtype=np.float64)
    return labels, probs, params


def assign_rest(pca_fit: np.ndarray, fit_labels: np.ndarray, fit_conf: np.ndarray,
                pca_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidence for vectors outside the fit sample, from their nearest fitted ones.

    Label: the majority among the ten nearest fitted vectors (PCA space, Euclidean: on unit
    vectors the same order as cosine). Confidence: the mean confidence of the neighbours that
    voted for it, below 0.5 when they are fewer than half: a point among noise points, or
    between intents, is low-confidence like the fitted points around it.
    """
    if len(pca_rest) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    k = int(min(NEIGHBOURS, len(pca_fit)))
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(pca_fit)
    n_labels = int(fit_labels.max()) + 1
    labels = np.empty(len(pca_rest), dtype=np.int64)
    conf = np.empty(len(pca_rest))
    for start in range(0, len(pca_rest), 8192):
        chunk = pca_rest[start:start + 8192]
        _, idx = nn.kneighbors(chunk)
        votes = fit_labels[idx]
        counts = np.zeros((len(chunk), n_labels))
        rows = np.repeat(np.arange(len(chunk)), k)
        np.add.at(counts, (rows, votes.ravel()), 1.0)
        counts[np.arange(len(chunk)), votes[:, 0]] += 0.5
        best = counts.argmax(axis=1)
        agree = votes == best[:, None]
        share = agree.sum(axis=1) / k
        mean_conf = (fit_conf[idx] * agree).sum(axis=1) / np.maximum(agree.sum(axis=1), 1)
        labels[start:start + len(chunk)] = best
        conf[start:start + len(chunk)] = np.where(share >= 0.5, mean_conf,
                                                  np.minimum(mean_conf, 0.49))
    return labels, conf
