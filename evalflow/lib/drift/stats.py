"""The statistics behind the drift signals: divergences between two categorical mixes with each
category's contribution, their null distribution at a given sample size, the design effect of
session-clustered traffic, a kernel two-sample test (MMD with permutations) and a one-sided
two-proportion test (Fisher's exact). Pure numpy/scipy, seeded, no I/O.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.special import rel_entr
from scipy.stats import fisher_exact

LN2 = math.log(2.0)


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by `seed` and the parts (week, signal, baseline): the same inputs
    always draw the same numbers, and different signals draw independent ones."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int.from_bytes(digest[:8], "little")])


# ----------------------------------------------------------------------------- divergences
@dataclass(frozen=True)
class Divergence:
    categories: list[str]
    week_share: list[float]
    baseline_share: list[float]
    js: float  # Jensen-Shannon divergence, base 2, in [0, 1]
    kl: float  # KL(week || baseline), bits, after Lidstone smoothing of both
    js_contrib: list[float]  # each category's term of js (each >= 0; they sum to js)
    kl_contrib: list[float]  # each category's term of kl (may be negative; they sum to kl)


def _aligned(week: Mapping[str, float], baseline: Mapping[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    categories = sorted(set(week) | set(baseline))
    return (categories, np.array([float(week.get(c, 0.0)) for c in categories]),
            np.array([float(baseline.get(c, 0.0)) for c in categories]))


def js_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS divergence (base 2) between the rows of two arrays of distributions (last axis)."""
    m = 0.5 * (p + q)
    return 0.5 * (rel_entr(p, m).sum(axis=-1) + rel_entr(q, m).sum(axis=-1)) / LN2


def divergence(week_counts: Mapping[str, float], baseline_counts: Mapping[str, float],
               pseudocount: float = 0.5) -> Divergence:
    """JS and smoothed KL between the week's mix and the baseline's, from counts (a baseline known
    only as shares can pass shares x its trace count).

    JS uses the raw shares: it is finite with zeros, symmetric, and in [0, 1] in bits; its
    per-category terms 0.5*p*log2(p/m) + 0.5*q*log2(q/m) are each >= 0 (log-sum inequality), so
    they say which categories moved. KL(week || baseline) is infinite for a category the baseline
    lacks, so both mixes get `pseudocount` added to every category of their union first (Lidstone;
    0.5 is the Jeffreys / Krichevsky-Trofimov choice)."""
    categories, w, b = _aligned(week_counts, baseline_counts)
    if not categories or w.sum() <= 0 or b.sum() <= 0:
        raise ValueError("both mixes need at least one count")
    p, q = w / w.sum(), b / b.sum()
    m = 0.5 * (p + q)
    js_terms = 0.5 * (rel_entr(p, m) + rel_entr(q, m)) / LN2
    ps = (w + pseudocount) / (w.sum() + pseudocount * len(w))
    qs = (b + pseudocount) / (b.sum() + pseudocount * len(b))
    kl_terms = ps * np.log2(ps / qs)
    return Divergence(categories, p.tolist(), q.tolist(), float(min(1.0, max(0.0, js_terms.sum()))),
                      float(kl_terms.sum()), js_terms.tolist(), kl_terms.tolist())


def js_null(shares: Sequence[float], n_week: float, n_baseline: float, draws: int,
            rng: np.random.Generator) -> np.ndarray:
    """JS (bits) between two independent multinomial samples of `shares`, of sizes n_week and
    n_baseline: the divergence sampling noise alone gives at these sizes. A baseline of infinite
    size (n_baseline = inf) compares one sample with the shares themselves."""
    p = np.asarray(shares, dtype=float)
    p = p / p.sum()
    nw = max(1, int(round(n_week)))
    a = rng.multinomial(nw, p, size=draws) / nw
    if math.isinf(n_baseline):
        b = np.broadcast_to(p, a.shape)
    else:
        nb = max(1, int(round(n_baseline)))
        b = rng.multinomial(nb, p, size=draws) / nb
    return js_bits(a, b)


# ----------------------------------------------------------------------------- design effect
def design_effect(sessions: Sequence[object], categories: Sequence[object]) -> float:
    """The mean design effect of session-clustered categorical data (Rao and Scott's first-order
    correction for chi-square tests on cluster samples): sum over categories of the cluster-robust
    variance of the category's count, divided by its binomial variance n*p*(1-p).

    Traces of one session share their intent, so n traces carry the information of fewer
    independent ones; the null then uses n / deff. 1.0 when every session has one trace (or the
    categories vary freely within sessions); about the mean session size when sessions are
    homogeneous. Never below 1 (the correction only ever widens the null)."""
    n = len(categories)
    if n < 2 or len(sessions) != n:
        return 1.0
    sess_index: dict[object, int] = {}
    cat_index: dict[object, int] = {}
    si = np.fromiter((sess_index.setdefault(s, len(sess_index)) for s in sessions), dtype=np.int64, count=n)
    ci = np.fromiter((cat_index.setdefault(c, len(cat_index)) for c in categories), dtype=np.int64, count=n)
    s_count, k_count = len(sess_index), len(cat_index)
    if s_count < 2 or k_count < 2:
        return 1.0
    y = np.zeros((s_count, k_count))
    np.add.at(y, (si, ci), 1.0)
    m = y.sum(axis=1)
    p = y.sum(axis=0) / n
    # sum_s (y_sk - m_s p_k)^2 for every k, with the with-replacement small-sample factor.
    resid = y - np.outer(m, p)
    robust = (s_count / (s_count - 1)) * (resid ** 2).sum(axis=0)
    binomial = n * p * (1 - p)
    total = binomial.sum()
    if total <= 0:
        return 1.0
    return float(max(1.0, robust.sum() / total))


# ----------------------------------------------------------------------------- MMD
# Gaussian kernel widths, as multiples of the pooled sample's median squared distance. The median
# alone (the usual heuristic) smooths over the cluster structure of sentence embeddings, where a
# shift between intents lives; narrower kernels see it. Testing several widths and taking the
# maximum of their standardised statistics, with the permutation null of that maximum, keeps the
# test exact (the aggregated MMD test of Schrab et al. 2023, in its simplest form).
MMD_SCALES = (0.1, 0.25, 1.0)


@dataclass(frozen=True)
class MMDResult:
    statistic: float  # max over kernel widths of (MMD^2 - permutation mean) / permutation sd
    p_value: float  # (1 + permutations whose statistic >= observed) / (1 + permutations)
    null_quantile: float  # the permutation null's (1 - alpha) quantile of the statistic, when alpha was given
    mmd2: float  # biased (V-statistic) squared MMD at the median-heuristic width
    bandwidth: float  # that width's sigma
    centroid_distance: float  # Euclidean distance between the two samples' mean vectors
    n_x: int
    n_y: int
    permutations: int


def mmd_test(x: np.ndarray, y: np.ndarray, permutations: int, rng: np.random.Generator,
             alpha: float | None = None) -> MMDResult:
    """Kernel two-sample test (Gretton et al. 2012) with Gaussian kernels of several widths
    (MMD_SCALES) and a permutation p-value for the largest standardised statistic.

    Each squared MMD is w' K w with w = +1/n_x on x and -1/n_y on y; every permutation reuses the
    kernel matrices (K @ W for all permutations at once), so the cost is one n x n x P product per
    width."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    nx, ny = len(x), len(y)
    z = np.vstack([x, y])
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    upper = d2[np.triu_indices(len(z), k=1)]
    positive = upper[upper > 0]
    median = float(np.median(positive)) if positive.size else 1.0
    w = np.concatenate([np.full(nx, 1.0 / nx), np.full(ny, -1.0 / ny)])
    perms = np.empty((len(z), permutations))
    for j in range(permutations):
        perms[:, j] = w[rng.permutation(len(z))]
    observed_z, null_z = -np.inf, np.full(permutations, -np.inf)
    mmd2 = 0.0
    for scale in MMD_SCALES:
        k = np.exp(-d2 / (2.0 * scale * median))
        observed = float(w @ k @ w)
        null = np.einsum("ij,ij->j", perms, k @ perms)
        spread = float(null.std()) or 1.0
        observed_z = max(observed_z, (observed - float(null.mean())) / spread)
        null_z = np.maximum(null_z, (null - null.mean()) / spread)
        if scale == 1.0:
            mmd2 = max(0.0, observed)
    exceed = int((null_z >= observed_z - 1e-12).sum())
    quantile = float(np.quantile(null_z, 1.0 - alpha)) if alpha is not None else float("nan")
    return MMDResult(statistic=float(observed_z), p_value=(1 + exceed) / (1 + permutations), null_quantile=quantile,
                     mmd2=mmd2, bandwidth=math.sqrt(median),
                     centroid_distance=float(np.linalg.norm(x.mean(0) - y.mean(0))), n_x=nx, n_y=ny,
                     permutations=permutations)


# ----------------------------------------------------------------------------- proportions
def fisher_greater(x1: float, n1: float, x2: float, n2: float) -> float:
    """One-sided p-value that proportion 1 exceeds proportion 2 by Fisher's exact test on the
    counts rounded to whole numbers (effective counts n / deff are fractional). Exact at small
    counts, where the z-test's normal approximation gives p-values far too small (a handful of
    injections in a small week); 1.0 when undefined."""
    a, n1r = int(round(x1)), int(round(n1))
    c, n2r = int(round(x2)), int(round(n2))
    if n1r <= 0 or n2r <= 0:
        return 1.0
    a, c = min(a, n1r), min(c, n2r)
    return float(fisher_exact([[a, n1r - a], [c, n2r - c]], alternative="greater").pvalue)
