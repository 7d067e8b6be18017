"""HDBSCAN over the reduced fit sample, with min_cluster_size chosen from the data.

Candidates: min_cluster_size = c * sqrt(n) for c in CANDIDATE_FACTORS (n: distinct vectors in
the fit sample, at least 5), min_samples 5, excess-of-mass selection. Tuned on Banking77 train
(10,003 texts, 77 intents): over c in 0.15..0.6, ARI rises up to c ~ 0.3-0.45 and NMI is flat;
on the Banking77 test split and the simulator the best c is 0.25-0.3. Intent sets differ in how
many intents there are and how big, so the final choice among the candidates is made per run by
a stability criterion that does not look at labels:

    stability(c) = mean ARI between the clustering of the whole sample and the clusterings of
                   three seeded 80% subsamples (min_cluster_size scaled to the subsample), on
                   the subsample's rows, noise assigned to the nearest cluster in both.

A clustering whose clusters are real survives losing a fifth of its points. Stability favours
coarse clusterings that swallow several intents (excess of mass can merge half the clusters at
once when min_cluster_size crosses a threshold: on the simulator, 56 -> 26 clusters and ARI 0.64
-> 0.26), so candidates with fewer than COLLAPSE_GUARD of the finest candidate's cluster count
are not eligible.

min_samples 5 rather than HDBSCAN's default (= min_cluster_size): with the default, noise was
12-19% on Banking77 train; 5 keeps it near 10% at equal ARI. Leaf selection gave the same ARI
with 13-17% noise.

Noise policy (see `evalflow.lib.intents`): HDBSCAN noise is given the intent whose centroid
(original space) is nearest, with confidence below 0.5. (Inside the bootstrap, noise goes to the
majority of its ten nearest clustered neighbours in UMAP space: cheaper, and only compared
within one layout.)
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

CANDIDATE_FACTORS = (0.25, 0.3, 0.35, 0.45)
MIN_SAMPLES = 5
MIN_CLUSTER_SIZE_FLOOR = 5
SELECTION = "eom"
BOOTSTRAP_ROUNDS = 3
BOOTSTRAP_FRACTION = 0.8
COLLAPSE_GUARD = 0.6
STABILITY_TOLERANCE = 0.03
NEIGHBOURS = 10


def min_cluster_size_for(n: int, factor: float) -> int:
    return int(max(MIN_CLUSTER_SIZE_FLOOR, round(factor * np.sqrt(n))))


def run_hdbscan(z: np.ndarray, min_cluster_size: int, min_samples: int = MIN_SAMPLES):
    import hdbscan

    min_cluster_size = int(min(min_cluster_size, max(2, len(z) // 2)))
    min_samples = int(min(min_samples, min_cluster_size))
    return hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                           cluster_selection_method=SELECTION, core_dist_n_jobs=1).fit(z)


def assign_noise(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every noise point gets the majority label of its nearest clustered points.

    Returns (labels with no -1 left, vote share of the chosen label: 1.0 for clustered points).
    """
    labels = np.asarray(labels)
    out = labels.copy()
    share = np.ones(len(labels))
    noise = labels < 0
    clustered = np.flatnonzero(~noise)
    if not noise.any() or len(clustered) == 0:
        return out, share
    k = int(min(NEIGHBOURS, len(clustered)))
    nn = NearestNeighbors(n_neighbors=k).fit(z[clustered])
    _, idx = nn.kneighbors(z[noise])
    votes = labels[clustered][idx]  # (noise, k)
    n_labels = int(labels.max()) + 1
    counts = np.zeros((len(votes), n_labels))
    np.add.at(counts, (np.repeat(np.arange(len(votes)), k), votes.ravel()), 1.0)
    # The nearest neighbour's vote breaks ties (argmax of counts plus a small bonus).
    counts[np.arange(len(votes)), votes[:, 0]] += 0.5
    best = counts.argmax(axis=1)
    out[noise] = best
    share[noise] = np.minimum(counts[np.arange(len(votes)), best], k) / k
    return out, share


def assign_noise_to_centroids(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every noise point gets the cluster whose centroid (original space, cosine) is nearest.

    Returns (labels with no -1 left, cosine similarity to that centroid; 1.0 for clustered
    points). Used for the final assignment rather than `assign_noise`: centroids barely move
    when a run sees 10% more data (median cosine 0.998 between runs on Banking77), while UMAP's
    layout does, so a noise row tends to land in the same intent run after run.
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


def _bootstrap_stability(z: np.ndarray, full_assigned: np.ndarray, factor: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n = len(z)
    m = max(2, int(BOOTSTRAP_FRACTION * n))
    scores = []
    for _ in range(BOOTSTRAP_ROUNDS):
        sub = np.sort(rng.choice(n, m, replace=False))
        labels = run_hdbscan(z[sub], min_cluster_size_for(m, factor)).labels_
        if labels.max() < 0:
            scores.append(0.0)
            continue
        assigned, _ = assign_noise(z[sub], labels)
        scores.append(adjusted_rand_score(full_assigned[sub], assigned))
    return float(np.mean(scores))


def choose_clustering(z: np.ndarray, seed: int, continuity=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """HDBSCAN labels (-1 noise) and membership probabilities for the chosen candidate.

    ``continuity``: with a previous catalog, a function of a candidate's labels giving the share
    of rows that would keep their previous intent id. Among eligible candidates whose stability
    is within STABILITY_TOLERANCE of the best, the most continuous one wins: when the data
    support several clusterings about equally, keep the one the catalog already has (on the
    simulator a re-run with 10% more traces otherwise flipped between c = 0.25 and 0.3, ending
    four intents).
    """
    n = len(z)
    candidates = []
    for factor in CANDIDATE_FACTORS:
        mcs = min_cluster_size_for(n, factor)
        if any(c["min_cluster_size"] == mcs for c in candidates):
            continue
        model = run_hdbscan(z, mcs)
        labels = model.labels_
        k = int(labels.max()) + 1
        cand = {"factor": factor, "min_cluster_size": mcs, "clusters": k,
                "noise_share": round(float((labels < 0).mean()), 4), "model": model}
        if k >= 2:
            assigned, _ = assign_noise(z, labels)
            cand["stability"] = round(_bootstrap_stability(z, assigned, factor, seed), 4)
        else:
            cand["stability"] = 0.0
        candidates.append(cand)
    finest = max(c["clusters"] for c in candidates)
    eligible = [c for c in candidates if c["clusters"] >= 2 and c["clusters"] >= COLLAPSE_GUARD * finest]
    if eligible and continuity is not None:
        best = max(c["stability"] for c in eligible)
        near = [c for c in eligible if c["stability"] >= best - STABILITY_TOLERANCE]
        for c in near:
            c["continuity"] = round(float(continuity(c["model"].labels_)), 4)
        chosen = max(near, key=lambda c: (c["continuity"], c["stability"], -c["factor"]))
        why = (f"most continuous with the previous catalog ({chosen['continuity']} of rows keep "
               f"their id) among candidates within {STABILITY_TOLERANCE} of the best bootstrap "
               f"stability ({best}) keeping at least {COLLAPSE_GUARD:.0%} of the finest "
               f"candidate's {finest} clusters")
    elif eligible:
        chosen = max(eligible, key=lambda c: (c["stability"], -c["factor"]))
        why = (f"highest bootstrap stability ({chosen['stability']}) among candidates keeping at "
               f"least {COLLAPSE_GUARD:.0%} of the finest candidate's {finest} clusters")
    else:
        chosen = max(candidates, key=lambda c: c["clusters"])
        why = "no candidate found two or more clusters; kept the one with the most clusters"
    model = chosen["model"]
    params = {
        "min_cluster_size": chosen["min_cluster_size"],
        "min_cluster_size_rule": f"{chosen['factor']} * sqrt({n} distinct fitted vectors)",
        "min_samples": int(min(MIN_SAMPLES, chosen["min_cluster_size"])),
        "cluster_selection_method": SELECTION,
        "selection_criterion": ("bootstrap stability: mean ARI vs 3 seeded 80% subsamples"
                                + ("; then continuity with the previous catalog" if continuity else "")),
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
