"""Trace redaction end to end: simulated traffic -> ingest -> TraceRedactor, one run.

    .venv/bin/python benchmarks/redaction_traces.py [--days 2 --per-day 1000 --seed 7 --batch 2000]

What the redaction stage does with a day of traffic, timed: simulate `--days` x `--per-day`
traces (every dialect), ingest them to canonical rows, build the detector (not timed, warmed
up), then redact the rows in batches of `--batch` traces (the stage's batch size) with
`TraceRedactor(PiiDetector().detect_batch, Pseudonymizer)`, which walks every string of every
trace (messages, tool calls at any depth, dict keys, metadata, ...). The detector keeps its
per-text cache across batches, as it does across the days of one stage run.

Printed:
- traces/s and slots/s (a slot is one string of one trace), per batch and overall;
- analysis units: slots, distinct (text, field) units, distinct texts, texts that had to be
  analysed (not cached), NER windows run;
- the per-stage split of the time: walk/copy/write-back (TraceRedactor itself), keys (field
  context, de-duplication), NER, recognizers, per-field finish;
- the leak check the stage runs after redaction (`high_precision_scan` over every slot of the
  redacted output; emails, phones, cards, SSNs, IBANs, IPs): hits (must be 0) and its time;
- recall on the simulator's ground truth: for each planted PII value, whether it is gone from
  the redacted trace's JSON (share gone per type; target 1.0 for the high-precision types and
  >= 0.95 overall).

There is no baseline here: Presidio's usual per-text pattern on these slots takes many minutes.
benchmarks/redaction.py compares against it on a sample of texts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HIGH_PRECISION = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")


def simulated_traces(days: int, per_day: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Canonical trace rows (as ingest stages them) and the simulator's ground truth."""
    from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file
    from evalflow.simulator import simulate

    start = date(2026, 10, 1)
    today = datetime.now(timezone.utc).date()
    if start + timedelta(days=days) > today:  # simulated days in the future would be quarantined
        start = today - timedelta(days=days + 1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        simulate(tmp_path / "landing", tmp_path / "truth", days=days, per_day=per_day, seed=seed,
                 start_date=start)
        known = KnownTraces()
        options = IngestOptions(now=datetime.now(timezone.utc))
        traces: list[dict[str, Any]] = []
        for path in sorted((tmp_path / "landing").rglob("*.jsonl")):
            traces.extend(ingest_file(path, known, options).traces)
        truth = [json.loads(line) for line in
                 (tmp_path / "truth" / "traces.jsonl").read_text(encoding="utf-8").splitlines()]
    return traces, truth


def planted_recall(redacted: Sequence[dict[str, Any] | None], originals: Sequence[dict[str, Any]],
                   truth: Sequence[dict[str, Any]]) -> tuple[Counter, Counter, list[tuple[str, str]]]:
    """Per type: planted values, and those gone from their redacted trace's JSON."""
    by_id = {}
    for original, clean in zip(originals, redacted):
        by_id[original["trace_id"]] = clean
    total: Counter = Counter()
    gone: Counter = Counter()
    left: list[tuple[str, str]] = []
    dumped: dict[str, str] = {}
    for record in truth:
        clean = by_id.get(record["trace_id"], "missing")
        if clean == "missing":
            continue  # not ingested (a planted bad line, a duplicate): nothing to redact
        if record["trace_id"] not in dumped:
            dumped[record["trace_id"]] = "" if clean is None else json.dumps(clean, ensure_ascii=False, default=str)
        text = dumped[record["trace_id"]]
        for pii in record["pii"]:
            total[pii["type"]] += 1
            if pii["value"] not in text:
                gone[pii["type"]] += 1
            else:
                left.append((pii["type"], pii["value"]))
    return total, gone, left


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2000, help="traces per redact() call (the stage's)")
    parser.add_argument("--show-left", type=int, default=10, help="print N planted values left")
    args = parser.parse_args(argv)
    os.environ.setdefault("EVALFLOW_PSEUDONYM_KEY", "benchmark-key")

    from evalflow.lib.redact.config import DetectorConfig
    from evalflow.lib.redact.engine import PiiDetector
    from evalflow.lib.redact.leak_scan import high_precision_scan
    from evalflow.lib.redact.pseudonym import Pseudonymizer
    from evalflow.lib.redact.traces import TraceRedactor, report_field, trace_slots

    started = time.perf_counter()
    traces, truth = simulated_traces(args.days, args.per_day, args.seed)
    print(f"{len(traces)} canonical traces ({args.days} days x {args.per_day}, seed {args.seed}), "
          f"simulated and ingested in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    detector = PiiDetector(DetectorConfig())
    detector.detect_batch(["Warm-up: Jane Doe, jane@example.com, +44 20 7946 0958, ACC-12345678"], ["user_query"])
    detector._text_cache.clear()
    detector._ner_cache.clear()
    redactor = TraceRedactor(detector.detect_batch, Pseudonymizer(key=b"benchmark-key"))
    print(f"detector built in {time.perf_counter() - started:.1f}s (not counted)")

    stages: Counter = Counter()
    counts: Counter = Counter()
    redacted: list[dict[str, Any] | None] = []
    failures = 0
    print(f"\n{'batch':>6}{'traces':>8}{'slots':>9}{'units':>8}{'texts':>7}{'analysed':>9}"
          f"{'NER run':>8}{'seconds':>9}{'traces/s':>10}")
    total_started = time.perf_counter()
    for number, first in enumerate(range(0, len(traces), args.batch), 1):
        batch = traces[first:first + args.batch]
        batch_started = time.perf_counter()
        result = redactor.redact(batch)
        seconds = time.perf_counter() - batch_started
        stats = dict(detector.stats)
        redacted.extend(result.traces)
        failures += len(result.failures)
        stages["redactor (copy, walk, write back)"] += seconds - stats.get("total_s", 0.0)
        stages["detector: keys (field words, dedup)"] += stats.get("keys_s", 0.0)
        stages["detector: NER"] += stats.get("ner_s", 0.0)
        stages["detector: recognizers"] += stats.get("recognizers_s", 0.0)
        stages["detector: finish per field"] += stats.get("finish_s", 0.0)
        stages["detector: other"] += stats.get("total_s", 0.0) - sum(
            stats.get(k, 0.0) for k in ("keys_s", "ner_s", "recognizers_s", "finish_s"))
        analysed = stats.get("distinct_texts", 0) - stats.get("cached_texts", 0)
        for key, value in (("slots", stats.get("texts", 0)), ("units", stats.get("units", 0)),
                           ("texts", stats.get("distinct_texts", 0)), ("analysed", analysed),
                           ("ner_run", stats.get("ner_run", 0))):
            counts[key] += value
        print(f"{number:>6}{len(batch):>8}{stats.get('texts', 0):>9}{stats.get('units', 0):>8}"
              f"{stats.get('distinct_texts', 0):>7}{analysed:>9}{stats.get('ner_run', 0):>8}"
              f"{seconds:>9.2f}{len(batch) / seconds:>10.1f}")
    total = time.perf_counter() - total_started
    print(f"\nredaction: {len(traces)} traces in {total:.2f}s = {len(traces) / total:.1f} traces/s, "
          f"{counts['slots'] / total:.0f} slots/s; {failures} quarantined")
    print(f"analysis units: {counts['slots']} slots -> {counts['units']} distinct (text, field) units "
          f"(per batch) -> {counts['texts']} distinct texts, {counts['analysed']} analysed "
          f"(the rest from the cache), {counts['ner_run']} NER windows run")
    print("time split:")
    for name, seconds in stages.items():
        print(f"  {name:<40}{seconds:>8.2f}s {seconds / total:>6.1%}")

    # The stage's blocking check: high-precision detectors over every slot of the output.
    started = time.perf_counter()
    hits: Counter = Counter()
    scanned = 0
    for index, clean in enumerate(redacted):
        if clean is None:
            continue
        for slot in trace_slots(clean, index):
            scanned += 1
            for detection in high_precision_scan(slot.text):
                hits[(report_field(slot.path), detection.entity_type)] += 1
    leak_seconds = time.perf_counter() - started
    print(f"\nleak check (high_precision_scan over {scanned} redacted slots, {leak_seconds:.2f}s): "
          f"{sum(hits.values())} hits" + (f" {dict(hits)}" if hits else ""))

    total_by_type, gone, left = planted_recall(redacted, traces, truth)
    print("\nplanted PII gone from the redacted traces (ground truth):")
    print(f"  {'type':<16}{'planted':>8}{'gone':>8}{'share':>8}")
    for entity in sorted(total_by_type, key=lambda e: (e not in HIGH_PRECISION, e)):
        n = total_by_type[entity]
        print(f"  {entity:<16}{n:>8}{gone[entity]:>8}{gone[entity] / n:>8.3f}"
              + ("  (high precision: target 1.000)" if entity in HIGH_PRECISION else ""))
    n_all = sum(total_by_type.values())
    n_gone = sum(gone.values())
    print(f"  {'ALL':<16}{n_all:>8}{n_gone:>8}{n_gone / max(n_all, 1):>8.3f}  (target >= 0.95)")
    hp_ok = all(gone[e] == total_by_type[e] for e in HIGH_PRECISION if total_by_type[e])
    if args.show_left and left:
        print(f"  left (first {args.show_left}): " + ", ".join(f"{t}={v!r}" for t, v in left[:args.show_left]))
    ok = not hits and hp_ok and n_gone / max(n_all, 1) >= 0.95
    print(f"\n{'OK' if ok else 'FAILED'}: leaks {sum(hits.values())}, high-precision recall "
          f"{'1.000' if hp_ok else '< 1'}, overall {n_gone / max(n_all, 1):.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
