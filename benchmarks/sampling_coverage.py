"""Stratified coverage sampling against a uniform random sample of the same budget.

    .venv/bin/python benchmarks/sampling_coverage.py [--budgets 100 200 500] [--seeds 5]
        [--cache /tmp/evalflow_bench_sampling] [--days 14 --per-day 1000]

Populations:
  banking77: every utterance of Banking77 train + test (../shared/data/intents/banking77;
    skipped with a message when ../shared/data is absent) as one trace: the utterance is the
    user query, a fixed neutral answer is the output, timestamps are spread uniformly over 28
    days, every session holds one trace, latency and tokens are drawn from a lognormal. The
    true category is kept apart and only used to score. Banking77 has no planted failures.
  simulator: `simulate(days=14, per_day=1000, seed=7)` into the cache folder;
    expected_canonical.jsonl gives the traces, redacted at the ground-truth PII spans (every
    field, as typed placeholders) before anything else reads them; traces.jsonl gives the true
    intent, the rare-intent flag and the planted fault codes.

Pipeline, as in production: `model_text(trace_text(trace))` -> `Embedder` (the CPU default backend;
vectors cached in --cache by a hash of the texts) -> `discover_intents(seed=0)` (cached too) ->
`compute_signals` -> `build_failure_taxonomy` -> `stratified_sample(budget, seed, vectors, texts,
taxonomy)`. Nothing of the ground truth reaches the sampler.

Figures, each averaged over --seeds seeds (0..n-1) for both methods:
  true strata: intents>=3 for the same sampler given the TRUE intents as intent_id (what sampling
    achieves when intent discovery separates every intent)
  intents>=3: share of TRUE intents with at least 3 traces that have a trace in the sample
  rare: share of rare true intents in the sample (simulator: the intents it flags is_rare;
    Banking77: the quarter of categories with the fewest utterances)
  fault share: share of the sample that carries a planted fault (population share beside it)
  captured: planted-fault traces in the sample / planted-fault traces in the population
  codes: planted fault codes with at least one trace in the sample / codes present
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalflow.lib.intents import discover_intents, model_text
from evalflow.lib.intents.store import trace_text  # noqa: E402
from evalflow.lib.sampling import stratified_sample  # noqa: E402

BANKING77 = ROOT.parent / "shared" / "data" / "intents" / "banking77"
START = datetime(2026, 10, 1, tzinfo=timezone.utc)
NEUTRAL_ANSWER = "Thanks for reaching out. Here is how we can help with that request."
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


# -- populations ----------------------------------------------------------------------------

def banking77_population(seed: int = 0) -> tuple[list[dict], dict]:
    rows = []
    for split in ("train", "test"):
        with open(BANKING77 / f"{split}.csv", newline="") as f:
            rows += list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    offsets = np.sort(rng.uniform(0, 28 * 86400, len(rows)))
    latency = rng.lognormal(np.log(1200), 0.35, len(rows))
    traces, labels = [], []
    for i, (j, offset) in enumerate(zip(order, offsets)):
        text, label = rows[j]["text"], rows[j]["category"]
        ts = START + timedelta(seconds=float(offset))
        input_tokens = 180 + len(text) // 4
        output_tokens = int(rng.integers(14, 30))
        traces.append({
            "trace_id": f"b77-{i:05d}", "session_id": f"b77-s-{i:05d}", "event_date": ts.date(),
            "timestamp": ts, "messages": [{"role": "user", "content": text}], "user_query": text,
            "retrieved_context": [], "tool_calls": [], "output": NEUTRAL_ANSWER,
            "latency_ms": float(round(latency[i], 1)), "input_tokens": input_tokens,
            "output_tokens": output_tokens, "cost_usd": (input_tokens * 0.15 + output_tokens * 0.6) / 1e6,
            "status": "ok", "error_type": None, "feedback": None, "metadata": {}, "payload_kept": True,
        })
        labels.append(label)
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    by_size = sorted(counts, key=lambda k: (counts[k], k))
    rare = set(by_size[: len(by_size) // 4])
    truth = {"intent": labels, "rare": rare, "faults": None}
    return traces, truth


def _set_path(obj, path: str, value) -> None:
    keys = [int(i) if i else k for k, i in _PATH_TOKEN.findall(path)]
    for key in keys[:-1]:
        obj = obj[key]
    obj[keys[-1]] = value


def _get_path(obj, path: str):
    for k, i in _PATH_TOKEN.findall(path):
        obj = obj[int(i) if i else k]
    return obj


def redact_at_truth(trace: dict, spans: list[dict]) -> dict:
    """Typed placeholders at the ground-truth PII spans, in every field (what redaction writes)."""
    by_field: dict[str, list[dict]] = {}
    for span in spans:
        by_field.setdefault(span["field"], []).append(span)
    for path, field_spans in by_field.items():
        text = _get_path(trace, path)
        for s in sorted(field_spans, key=lambda s: -s["start"]):
            digest = hashlib.sha256(f"{s['type']}\x1f{s['value']}".encode()).hexdigest()[:8]
            text = text[:s["start"]] + f"<{s['type']}_{digest}>" + text[s["end"]:]
        _set_path(trace, path, text)
    return trace


def simulator_population(cache: Path, days: int, per_day: int) -> tuple[list[dict], dict]:
    from evalflow.simulator import simulate

    folder = cache / f"sim-{days}x{per_day}-seed7"
    gt = folder / "gt"
    if not (gt / "expected_canonical.jsonl").exists():
        simulate(folder / "landing", gt, days=days, per_day=per_day, seed=7)
    truth_rows = [json.loads(line) for line in open(gt / "traces.jsonl")]
    canon = [json.loads(line) for line in open(gt / "expected_canonical.jsonl")]
    traces = []
    for t, c in zip(truth_rows, canon):
        assert t["trace_id"] == c["trace_id"]
        c = redact_at_truth(c, t["pii"])
        c["timestamp"] = datetime.fromisoformat(c["timestamp"].replace("Z", "+00:00")).astimezone(timezone.utc)
        c["event_date"] = c["timestamp"].date()
        traces.append(c)
    truth = {"intent": [t["intent"] for t in truth_rows],
             "rare": {t["intent"] for t in truth_rows if t["is_rare"]},
             "faults": [t["faults"] for t in truth_rows]}
    return traces, truth


# -- pipeline -------------------------------------------------------------------------------

def _key(texts: list[str]) -> str:
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:20]


def embed(texts: list[str], cache: Path, model_dir: Path) -> np.ndarray:
    path = cache / f"vectors-{_key(texts)}.npy"
    if path.exists():
        return np.load(path)
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig

    embedder = Embedder(EmbedderConfig(model_dir=model_dir))
    distinct = sorted(set(texts))
    t = time.perf_counter()
    vectors = embedder.encode(distinct)
    print(f"  embedded {len(distinct)} distinct texts with {embedder.backend} in "
          f"{time.perf_counter() - t:.0f}s", flush=True)
    index = {text: i for i, text in enumerate(distinct)}
    out = vectors[[index[text] for text in texts]].astype(np.float32)
    np.save(path, out)
    return out


def _method_key() -> str:
    """A digest of intent discovery's code: a cached clustering is reused only by the same code."""
    folder = ROOT / "evalflow" / "lib" / "intents"
    return _key([f.read_text(encoding="utf-8") for f in sorted(folder.glob("*.py"))])[:8]


def intents(vectors: np.ndarray, texts: list[str], cache: Path) -> tuple[list[str], list[bool]]:
    path = cache / f"intents-{_key(texts)}-{_method_key()}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["intent_ids"], saved["low_confidence"]
    t = time.perf_counter()
    result = discover_intents(vectors, texts, seed=0)
    print(f"  discovered {len(result.catalog)} intents in {time.perf_counter() - t:.0f}s "
          f"(noise share {result.noise_share:.1%})", flush=True)
    saved = {"intent_ids": list(result.intent_ids),
             "low_confidence": [bool(x) for x in result.low_confidence]}
    path.write_text(json.dumps(saved))
    return saved["intent_ids"], saved["low_confidence"]


# -- scoring --------------------------------------------------------------------------------

def score(rows: np.ndarray, truth: dict, frequent: set, codes_present: set, faulty: np.ndarray) -> dict:
    sampled_intents = {truth["intent"][i] for i in rows}
    out = {"intents3": len(frequent & sampled_intents) / len(frequent),
           "rare": len(truth["rare"] & sampled_intents) / len(truth["rare"]) if truth["rare"] else float("nan")}
    if truth["faults"] is not None:
        codes = {c for i in rows for c in truth["faults"][i]}
        out.update(fault_share=float(faulty[rows].mean()), captured=float(faulty[rows].sum() / faulty.sum()),
                   codes=len(codes & codes_present), missing=sorted(codes_present - codes))
    return out


def run_population(name: str, traces: list[dict], truth: dict, args) -> list[dict]:
    from evalflow.lib.signals import build_failure_taxonomy, compute_signals

    print(f"{name}: {len(traces)} traces", flush=True)
    texts = [trace_text(t) for t in traces]
    vectors = embed([model_text(t) for t in texts], args.cache, args.model_dir)
    intent_ids, low_conf = intents(vectors, texts, args.cache)
    t = time.perf_counter()
    signals = compute_signals(traces, intent_ids, intent_low_confidence=low_conf)
    taxonomy = build_failure_taxonomy(signals)
    print(f"  signals + taxonomy in {time.perf_counter() - t:.0f}s: "
          f"{int(signals['is_failure'].sum())} failed traces, {taxonomy.clusters.height} failure clusters",
          flush=True)
    row_of = {tid: i for i, tid in enumerate(t["trace_id"] for t in traces)}

    counts: dict[str, int] = {}
    for label in truth["intent"]:
        counts[label] = counts.get(label, 0) + 1
    frequent = {k for k, n in counts.items() if n >= 3}
    faulty = np.array([bool(f) for f in truth["faults"]]) if truth["faults"] is not None else None
    codes_present = {c for f in truth["faults"] for c in f} if truth["faults"] is not None else set()

    # The same sampler given the TRUE intents as strata: separates what sampling does from
    # what intent discovery does (a discovered intent that merges rare true intents hides them).
    oracle_signals = compute_signals(traces, truth["intent"])
    oracle_taxonomy = build_failure_taxonomy(oracle_signals)

    results = []
    for budget in args.budgets:
        per_method: dict[str, list[dict]] = {"stratified": [], "uniform": []}
        seconds, oracle = [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            sample = stratified_sample(signals, budget=budget, seed=seed, vectors=vectors, texts=texts,
                                       failure_members=taxonomy.members,
                                       failure_clusters=taxonomy.clusters)
            seconds.append(time.perf_counter() - t)
            chosen = np.array([row_of[tid] for tid in sample.chosen["trace_id"]])
            per_method["stratified"].append(score(chosen, truth, frequent, codes_present, faulty))
            uniform = np.random.default_rng(seed).choice(len(traces), size=budget, replace=False)
            per_method["uniform"].append(score(uniform, truth, frequent, codes_present, faulty))
            told = stratified_sample(oracle_signals, budget=budget, seed=seed, vectors=vectors, texts=texts,
                                     failure_members=oracle_taxonomy.members,
                                     failure_clusters=oracle_taxonomy.clusters)
            told_rows = np.array([row_of[tid] for tid in told.chosen["trace_id"]])
            oracle.append(score(told_rows, truth, frequent, codes_present, faulty)["intents3"])
        for method, scores in per_method.items():
            row = {"population": name, "budget": budget, "method": method,
                   "frequent_intents": len(frequent), "rare_intents": len(truth["rare"]),
                   "population_fault_share": float(faulty.mean()) if faulty is not None else None,
                   "codes_present": len(codes_present)}
            for key in scores[0]:
                if key == "missing":
                    row[key] = sorted({c for s in scores for c in s[key]})
                    row["missing_any_seed"] = sum(bool(s[key]) for s in scores)
                else:
                    row[key] = float(np.mean([s[key] for s in scores]))
                    row[key + "_min"] = float(np.min([s[key] for s in scores]))
            if method == "stratified":
                row["sample_seconds"] = float(np.mean(seconds))
                row["intents3_true_strata"] = float(np.mean(oracle))
            results.append(row)
    return results


def print_table(rows: list[dict]) -> None:
    header = (f"{'population':10s} {'budget':>6s} | {'intents>=3':>10s} {'rare':>6s} | "
              f"{'fault share':>11s} {'captured':>8s} {'codes':>7s} || uniform: {'intents>=3':>10s} "
              f"{'rare':>6s} | {'fault share':>11s} {'captured':>8s} {'codes':>7s} || true strata: "
              f"{'intents>=3':>10s}")
    print(header)
    print("-" * len(header))
    for strat, unif in zip(rows[0::2], rows[1::2]):
        def cells(r):
            base = f"{r['intents3']:10.1%} {r['rare']:6.1%} | "
            if r.get("fault_share") is None:
                return base + f"{'n/a':>11s} {'n/a':>8s} {'n/a':>7s}"
            return base + (f"{r['fault_share']:11.1%} {r['captured']:8.2%} "
                           f"{r['codes']:4.1f}/{r['codes_present']:<2d}")
        print(f"{strat['population']:10s} {strat['budget']:6d} | {cells(strat)} || uniform: {cells(unif)} "
              f"|| true strata: {strat['intents3_true_strata']:10.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "evalflow_bench_sampling")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="where the ONNX export lives (default: <cache>/models)")
    parser.add_argument("--only", choices=["banking77", "simulator"], help="run one population")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    args.model_dir = args.model_dir or args.cache / "models"

    rows: list[dict] = []
    if args.only in (None, "banking77"):
        if BANKING77.is_dir():
            rows += run_population("banking77", *banking77_population(), args)
        else:
            print(f"skipping Banking77: {BANKING77} not found (../shared/data is absent)")
    if args.only in (None, "simulator"):
        rows += run_population("simulator", *simulator_population(args.cache, args.days, args.per_day), args)

    print()
    print(f"stratified vs uniform random, mean over {args.seeds} seeds; intents = TRUE labels")
    print_table(rows)
    for r in rows:
        if r["method"] == "stratified" and r.get("missing"):
            print(f"  {r['population']} budget {r['budget']}: codes missed in {r['missing_any_seed']} "
                  f"of {args.seeds} seeds: {', '.join(r['missing'])}")
    for r in rows:
        if r["method"] == "uniform" and r.get("population_fault_share") is not None and r["budget"] == args.budgets[0]:
            print(f"  {r['population']}: planted-fault share of the population {r['population_fault_share']:.1%}, "
                  f"{r['frequent_intents']} true intents with >= 3 traces, {r['rare_intents']} rare")
    for r in rows:
        if r["method"] == "stratified":
            print(f"  {r['population']} budget {r['budget']}: worst seed intents>=3 {r['intents3_min']:.1%}, "
                  f"rare {r['rare_min']:.1%}")
    print("true strata: the same sampler given the true intents instead of the discovered ones")
    print("targets at budget 200: intents>=3 >= 95%, every planted fault code represented")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
