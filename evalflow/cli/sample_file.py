"""`evalflow sample`: the sampling half of the pipeline on one trace file, without Dagster.

Reads any supported dialect (bad lines are quarantined with a reason, as ingestion does),
redacts on the way with ``redact=True`` (failures are held back, never passed through), embeds
through the warehouse's embedding cache, clusters intents, computes signals and the failure
taxonomy, and draws the stratified sample. The same functions the assets use; only the storage
differs.

Fail closed on unredacted input: without ``redact``, the input must already be redacted; if the
high-precision detectors (emails, phones, cards, SSNs, IBANs, IPs) find anything in it, the
run stops before writing and says how many values of which type were found (never the values).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from evalflow.lib.ingest.canonical import CANONICAL_FIELDS

# Sampling columns written beside the canonical fields (intent_name comes from the catalog).
OUTPUT_EXTRA = ("intent_id", "stratum", "time_bucket", "reason", "pick_order", "failure_modes", "difficulty_bucket")
# The free-text and structured payload fields; ids are pseudonymised separately by redaction.
SCANNED_FIELDS = ("user_query", "output", "messages", "retrieved_context", "tool_calls", "error_type",
                  "feedback", "metadata")


class UnredactedInput(ValueError):
    """The input holds values the leak detectors recognise; pass --redact."""


@dataclass
class FileSample:
    rows: list[dict[str, Any]]
    coverage: dict[str, Any]
    read: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    intents: int = 0


def read_traces(path: Path, ingest_options) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """(good traces, quarantine rows, outcome counts: lines_read, ingested, quarantined,
    deduplicated): one reader for every dialect."""
    from evalflow.lib.ingest.parse_file import KnownTraces, ingest_file

    result = ingest_file(path, KnownTraces(), ingest_options)
    traces = [{k: row.get(k) for k in CANONICAL_FIELDS} | {"event_date": row.get("event_date")}
              for row in result.traces]
    quarantine = [{"line_no": q["line_no"], "reason": q["reason"], "raw_sha256": q.get("raw_sha256")}
                  for q in result.quarantine]
    return traces, quarantine, {"lines_read": result.lines_read, **result.outcomes}


def _strings(value: Any):
    """Every string in a trace value, dict keys included (PII hides in tool results and metadata
    as often as in the conversation)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def leak_counts(traces: list[dict[str, Any]], allow_list=()) -> Counter:
    """Entity type -> values the high-precision detectors find anywhere in the traces' text
    fields (ids, hashes and provenance excluded)."""
    from evalflow.lib.redact.leak_scan import high_precision_scan

    found: Counter = Counter()
    for trace in traces:
        for name in SCANNED_FIELDS:
            for text in _strings(trace.get(name)):
                if text:
                    found.update(d.entity_type for d in high_precision_scan(text, allow_list=allow_list))
    return found


def redact_traces(traces: list[dict[str, Any]], redactor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(redacted traces, quarantine rows for traces whose redaction failed)."""
    result = redactor.redact([{k: t[k] for k in CANONICAL_FIELDS} for t in traces])
    failed = {f.trace_index: f for f in result.failures}
    kept, held = [], []
    for index, redacted in enumerate(result.traces):
        if index in failed or redacted is None:
            f = failed.get(index)
            held.append({"line_no": None, "reason": f.reason if f else "redaction_failed",
                         "trace_id_sha256": f.trace_id_sha256 if f else None})
        else:
            kept.append(redacted | {"event_date": traces[index]["event_date"]})
    return kept, held


def sample_traces(traces: list[dict[str, Any]], embed: Callable[[list[str]], np.ndarray], *,
                  budget: int, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """(chosen rows: canonical fields + stratum/reason/..., coverage, intents found) for redacted traces."""
    import polars as pl

    from evalflow.lib.intents import discover_intents, model_text
    from evalflow.lib.intents.store import trace_text
    from evalflow.lib.sampling import stratified_sample
    from evalflow.lib.signals import build_failure_taxonomy, compute_signals

    with_text = [i for i, t in enumerate(traces)
                 if t.get("payload_kept", True) and (t.get("user_query") or t.get("messages"))]
    texts = [trace_text(traces[i]) for i in with_text]
    vectors = np.zeros((len(traces), 384), dtype=np.float32)
    intent_ids: list[str | None] = [None] * len(traces)
    low = [False] * len(traces)
    names: dict[str, str] = {}
    if with_text:
        embedded = embed([model_text(t) for t in texts])
        vectors[with_text] = embedded
        result = discover_intents(embedded, texts, seed=seed)
        for k, i in enumerate(with_text):
            intent_ids[i], low[i] = result.intent_ids[k], bool(result.low_confidence[k])
        names = {e.intent_id: e.name for e in result.catalog}
    signals = compute_signals(traces, intent_ids, intent_low_confidence=low)
    taxonomy = build_failure_taxonomy(signals, names)
    sample = stratified_sample(signals, budget=budget, seed=seed, vectors=vectors,
                               failure_clusters=taxonomy.clusters, failure_members=taxonomy.members)
    by_id = {t["trace_id"]: t for t in traces}
    rows = []
    for pick in sample.chosen.with_columns(pl.col("time_bucket").cast(pl.String)).iter_rows(named=True):
        trace = by_id[pick["trace_id"]]
        rows.append({k: trace.get(k) for k in CANONICAL_FIELDS}
                    | {k: pick.get(k) for k in OUTPUT_EXTRA}
                    | {"intent_name": names.get(pick["intent_id"])})
    return rows, sample.coverage, len(names)
