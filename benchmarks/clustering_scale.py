"""Time and peak memory of discover_intents at 10k, 30k and 100k embeddings.

    .venv/bin/python benchmarks/clustering_scale.py [--sizes 10000,30000,100000]

Data: real MiniLM embeddings of Banking77 train+test (13,083 texts; ../shared/data) or, when
that is absent, of the simulator's queries; each size draws rows with replacement and adds
Gaussian noise (sigma 0.01 per dimension, cosine ~0.98 to the source) before normalising, so
every row is distinct: the worst case for `discover_intents`, which clusters distinct vectors
once. Texts are the source rows' texts (for naming).

Each size runs in a fresh subprocess so that peak memory (ru_maxrss) is that run's own. The
subprocess first clusters 300 rows to compile numba's UMAP kernels (reported as "warm-up": a
fresh Dagster run pays it once), then times the real call. Baseline in the same run: k-means
(k=77, n_init=1) on the same rows, the cheapest thing one could do told k.
Target: under 2 minutes at 100k on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def source(cache: Path) -> tuple[np.ndarray, list[str]]:
    from clustering_quality import BANKING77, banking77, embed, simulator_sets

    if BANKING77.is_dir():
        train, test = banking77("train")[0], banking77("test")[0]
        # embedded split by split: the same cache entries as clustering_quality.py
        return np.concatenate([embed(train, cache), embed(test, cache)]), train + test
    print("Banking77 absent: using the simulator's queries")
    texts = simulator_sets(30, 300, 7)["previous"][0]
    return embed(texts, cache), texts


def synthesize(x: np.ndarray, texts: list[str], n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), n)
    y = x[idx] + rng.normal(scale=0.01, size=(n, x.shape[1])).astype(np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return y.astype(np.float32), [texts[i] for i in idx]


def child(n: int, cache: Path) -> dict:
    from sklearn.cluster import KMeans

    from evalflow.lib.intents import discover_intents

    x, texts = source(cache)
    y, t = synthesize(x, texts, n)
    small, small_t = synthesize(x, texts, 300, seed=1)
    start = time.perf_counter()
    discover_intents(small, small_t, seed=0)
    warm = time.perf_counter() - start
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = discover_intents(y, t, seed=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    KMeans(77, n_init=1, random_state=0).fit(y)
    km = time.perf_counter() - start
    return {"n": n, "distinct": result.params["distinct_rows"],
            "fit_rows": result.params["umap"]["fit_rows"], "clusters": len(result.catalog),
            "noise": result.noise_share, "seconds": seconds, "warmup": warm, "kmeans": km,
            "peak_mb": peak, "rss_before_mb": rss_before, "timings": result.params["timings"],
            "min_cluster_size": result.params["hdbscan"]["min_cluster_size"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "evalflow_bench_embeddings")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cache)))
        return 0

    source(args.cache)  # embed once, outside the timed children
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--cache", str(args.cache)],
                             capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if out.returncode != 0:
            print(out.stderr[-3000:])
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{n}: {row['timings']} min_cluster_size {row['min_cluster_size']}", flush=True)
    load = os.getloadavg()
    print()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          "(other jobs on this machine inflate the seconds)")
    header = (f"{'rows':>7s} {'distinct':>8s} {'fitted':>6s} {'intents':>7s} {'noise':>6s} | "
              f"{'seconds':>7s} {'warm-up':>7s} {'peak MB':>7s} | {'k-means s':>9s} {'ratio':>5s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['n']:7d} {r['distinct']:8d} {r['fit_rows']:6d} {r['clusters']:7d} {r['noise']:6.1%} | "
              f"{r['seconds']:7.1f} {r['warmup']:7.1f} {r['peak_mb']:7.0f} | {r['kmeans']:9.1f} "
              f"{r['seconds'] / max(r['kmeans'], 1e-9):5.1f}")
    print("target: under 120 s at 100k rows on 2 cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
