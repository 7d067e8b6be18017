"""Failure signals against the simulator's planted faults: precision and recall per mode.

    .venv/bin/python benchmarks/signals_quality.py [--days 10 --per-day 1000 --seed 7]
    .venv/bin/python benchmarks/signals_quality.py --truth DIR   # an existing ground-truth folder
    .venv/bin/python benchmarks/signals_quality.py --warehouse W.duckdb --truth DIR

With --warehouse, the traces are the warehouse's `redacted_traces` (what the real redaction
stage wrote, read by `read_signal_inputs`), joined by trace id to the ground truth of the
simulation that fed it (e.g. data/ground_truth after the demo); copy the file first if another
process may hold its lock.

Input: `simulate(...)` writes traffic into a temp dir (or --truth names a folder it wrote).
The traces scored are `expected_canonical.jsonl` (the canonical trace of every good line),
with each planted PII value replaced by a typed placeholder at its ground-truth span
(`<PERSON_1a2b3c4d>`, a digest of type and value, as redaction writes them), so the rules see
what they see in production: redacted text. `--no-redact` scores the raw canonical text
instead (a benchmark of the rules only; nothing downstream ever does this). The intent id of
each trace is its TRUE intent from `traces.jsonl` (the benchmark measures the signals, not the
clustering); its faults are the labels.

Printed: for each planted fault code, the signal mode it maps to, the planted count, flagged
count, true positives, precision and recall; then the modes the simulator never plants
(flagged counts are all false positives); then, for latency, cost and verbose answers, the same
figures for a baseline that a global cut gives (the top 1% of all traces by latency, cost or
output tokens), since the issue asks for statistics relative to the intent, not one global cut.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalflow.lib.signals import FAILURE_MODES, compute_signals  # noqa: E402

# planted fault code -> signal mode
FAULT_TO_MODE = {
    "error": "error",
    "refusal": "refusal",
    "negative_feedback": "negative_feedback",
    "contradicts_context": "unsupported_answer",
    "verbose_answer": "verbose_output",
    "tool_error": "tool_error",
    "latency_outlier": "latency_outlier",
    "cost_outlier": "cost_outlier",
    "prompt_injection": "prompt_injection",
    "injection_succeeded": "injection_succeeded",
    "policy_violation": "policy_violation",
    "policy_complied": "policy_complied",
    "toxic_request": "toxic_request",
    "toxic_answer": "toxic_answer",
}
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _placeholder(kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}\x1f{value}".encode()).hexdigest()[:8]
    return f"<{kind}_{digest}>"


def redact_at_truth(trace: dict[str, Any], pii: list[dict[str, Any]]) -> dict[str, Any]:
    """Replace each ground-truth PII span by its placeholder, field by field, right to left."""
    by_field: dict[str, list[dict[str, Any]]] = {}
    for span in pii:
        by_field.setdefault(span["field"], []).append(span)
    for path, spans in by_field.items():
        steps = [int(i) if i else k for k, i in _PATH_TOKEN.findall(path)]
        parent = trace
        for step in steps[:-1]:
            parent = parent[step]
        text = parent[steps[-1]]
        if not isinstance(text, str):
            continue
        for s in sorted(spans, key=lambda s: -s["start"]):
            text = text[:s["start"]] + _placeholder(s["type"], s["value"]) + text[s["end"]:]
        parent[steps[-1]] = text
    return trace


def load(truth_dir: Path, redact: bool) -> tuple[list[dict], list[dict]]:
    truths = [json.loads(line) for line in open(truth_dir / "traces.jsonl", encoding="utf-8")]
    canon = {}
    for line in open(truth_dir / "expected_canonical.jsonl", encoding="utf-8"):
        trace = json.loads(line)
        canon[trace["trace_id"]] = trace
    traces = [canon[t["trace_id"]] for t in truths]
    if redact:
        traces = [redact_at_truth(trace, t["pii"]) for trace, t in zip(traces, truths)]
    return traces, truths


def load_warehouse(path: Path, truth_dir: Path) -> tuple[list[dict], list[dict]]:
    from evalflow.lib.signals import read_signal_inputs

    by_id = {}
    for line in open(truth_dir / "traces.jsonl", encoding="utf-8"):
        truth = json.loads(line)
        by_id[truth["trace_id"]] = truth
    traces, _intents, _low = read_signal_inputs(path)
    kept = [t for t in traces if t["trace_id"] in by_id]
    return kept, [by_id[t["trace_id"]] for t in kept]


def score(flagged: np.ndarray, planted: np.ndarray) -> tuple[int, int, int, float, float]:
    tp = int((flagged & planted).sum())
    n_flag, n_plant = int(flagged.sum()), int(planted.sum())
    precision = tp / n_flag if n_flag else float("nan")
    recall = tp / n_plant if n_plant else float("nan")
    return n_plant, n_flag, tp, precision, recall


def quality_table(traces: list[dict], truths: list[dict]) -> tuple[list[tuple], Any, float]:
    started = time.perf_counter()
    signals = compute_signals(traces, [t["intent"] for t in truths])
    seconds = time.perf_counter() - started
    modes = signals["failure_modes"].to_list()
    rows = []
    for fault, mode in FAULT_TO_MODE.items():
        planted = np.array([fault in t["faults"] for t in truths])
        flagged = np.array([mode in m for m in modes])
        rows.append((fault, mode, *score(flagged, planted)))
    return rows, signals, seconds


def global_cut_baseline(traces: list[dict], truths: list[dict]) -> list[tuple]:
    rows = []
    for fault, field in (("latency_outlier", "latency_ms"), ("cost_outlier", "cost_usd"),
                         ("verbose_answer", "output_tokens")):
        values = np.array([float(t.get(field) or 0.0) for t in traces])
        flagged = values > np.quantile(values, 0.99)
        planted = np.array([fault in t["faults"] for t in truths])
        rows.append((fault, f"global top 1% {field}", *score(flagged, planted)))
    return rows


def _print(rows: list[tuple]) -> None:
    print("| planted fault | signal | planted | flagged | TP | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    for fault, mode, n_plant, n_flag, tp, p, r in rows:
        print(f"| {fault} | {mode} | {n_plant} | {n_flag} | {tp} | {p:.3f} | {r:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--truth", type=Path, help="an existing ground-truth folder (skips simulate)")
    parser.add_argument("--no-redact", action="store_true", help="score raw canonical text")
    parser.add_argument("--warehouse", type=Path, help="score this warehouse's redacted_traces (needs --truth)")
    args = parser.parse_args()
    if args.warehouse is not None and args.truth is None:
        parser.error("--warehouse needs --truth, the ground truth of the simulation behind it")

    with tempfile.TemporaryDirectory(prefix="signals-") as tmp:
        truth_dir = args.truth
        if args.warehouse is not None:
            traces, truths = load_warehouse(args.warehouse, truth_dir)
            source = f"redacted_traces of {args.warehouse}"
        elif truth_dir is None:
            from evalflow.simulator import simulate

            truth_dir = Path(tmp) / "truth"
            simulate(Path(tmp) / "landing", truth_dir, days=args.days, per_day=args.per_day, seed=args.seed)
            print(f"simulated days={args.days} per_day={args.per_day} seed={args.seed}")
        if args.warehouse is None:
            traces, truths = load(truth_dir, redact=not args.no_redact)
            source = "raw canonical text" if args.no_redact else "PII replaced by placeholders at the true spans"

    rows, signals, seconds = quality_table(traces, truths)
    print(f"{len(traces)} traces ({source}; true intents), compute_signals {seconds:.1f} s "
          f"({len(traces) / seconds:,.0f} traces/s)\n")
    _print(rows)
    unplanted = [m for m in FAILURE_MODES if m not in FAULT_TO_MODE.values()]
    counts = {m: sum(m in modes for modes in signals["failure_modes"].to_list()) for m in unplanted}
    print("\nModes the simulator never plants (every flag is a false positive): "
          + ", ".join(f"{m} {n}" for m, n in counts.items()))
    print("\nBaseline: one global cut (top 1% of all traces), same traces\n")
    _print(global_cut_baseline(traces, truths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
