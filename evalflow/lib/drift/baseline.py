"""The production baseline a golden version records when it is published.

A golden set is a stratified sample: it over-represents rare intents, failures and the safety
edge set on purpose, so its own mix of cases says nothing about what production looked like.
What the drift report compares each week with is the production traffic the version was drawn
from: the traces of the days its cases come from (the cases' source_date range). Recorded at
promotion in the manifest as `production_baseline`:

    {"window": {"start", "end"}, "traces", "days_with_data",
     "intent_traces", "intent_shares": {intent_id: share}, "intent_design_effect",
     "system_prompt_hashes": {hash: share}, "tool_schema_hashes": {hash: share},
     "prompt_template_ids": {id: share},
     "safety_traces", "safety_signal_share", "safety_design_effect", "failure_rate",
     "retrieval": {"k", "kb_docs": {doc_id: content_sha256}, "superseded": {old_id: new_id},
                   "top_k": {case_id: [doc_id, ...]}}}

Shares are over the traces that have the field (intent_traces for the intents, safety_traces:
traces with signals). `top_k` is BM25 of each case's user query over the window's
knowledge-base snapshot (retrieval.py) as it stood at the window's end: `kb_docs` are its current
documents, `superseded` the ids whose content was re-issued under another id. Deterministic: the
same traces and cases give the same dict (keys sorted, shares rounded to 10 digits); plain JSON.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

import polars as pl

from evalflow.lib.drift.inputs import Traffic
from evalflow.lib.drift.retrieval import BM25Index, golden_top_k, kb_snapshot
from evalflow.lib.drift.stats import design_effect

DIGITS = 10


def shares(series: pl.Series) -> dict[str, float]:
    """{value: share} over the non-null values, sorted by value."""
    values = series.drop_nulls()
    if values.is_empty():
        return {}
    counts = values.value_counts()
    total = values.len()
    name = values.name
    return {str(v): round(c / total, DIGITS) for v, c in sorted(zip(counts.get_column(name).to_list(),
                                                                        counts.get_column("count").to_list()))}


def sessions_deff(traffic: Traffic, column: pl.Series) -> float:
    """design_effect over the traces whose value is not null (1.0 without session ids; a trace
    without a session is a session of its own)."""
    if "session_id" not in traffic.frame.columns or traffic.traces == 0:
        return 1.0
    frame = pl.DataFrame({"session": traffic.column("session_id"), "trace": traffic.column("trace_id"),
                          "value": column}).filter(pl.col("value").is_not_null())
    sessions = frame.select(pl.coalesce("session", "trace")).to_series().to_list()
    return round(design_effect(sessions, frame.get_column("value").to_list()), 6)


def true_share(flags: pl.Series) -> float | None:
    """The share of True among the non-null values; None when there is none."""
    known = flags.drop_nulls()
    return float(known.sum()) / known.len() if known.len() else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def safety_flags(traffic: Traffic) -> pl.Series:
    """Per trace: an injection or policy signal (null when the trace has no signals)."""
    frame = pl.DataFrame({"injection": traffic.column("injection"), "policy": traffic.column("policy")},
                         schema={"injection": pl.Boolean, "policy": pl.Boolean})
    known = pl.col("injection").is_not_null() | pl.col("policy").is_not_null()
    flag = pl.col("injection").fill_null(False) | pl.col("policy").fill_null(False)
    return frame.select(pl.when(known).then(flag).otherwise(None).alias("safety")).to_series()


def cases_window(cases: Sequence[Mapping[str, Any]]) -> tuple[date, date] | None:
    dates = sorted(c["source_date"] for c in cases if c.get("source_date"))
    return (date.fromisoformat(dates[0]), date.fromisoformat(dates[-1])) if dates else None


def baseline_from_traffic(traffic: Traffic, cases: Sequence[Mapping[str, Any]], *, top_k: int = 5) -> dict[str, Any]:
    """The production baseline (module doc) of `traffic` for these cases."""
    intents = traffic.column("intent_id")
    safety = safety_flags(traffic)
    snapshot = kb_snapshot(traffic.frame)
    index = BM25Index(snapshot.docs)
    return {
        "window": {"start": traffic.start.isoformat(), "end": traffic.end.isoformat()},
        "traces": traffic.traces,
        "days_with_data": traffic.days_with_data(),
        "intent_traces": int(intents.is_not_null().sum()),
        "intent_shares": shares(intents),
        "intent_design_effect": sessions_deff(traffic, intents),
        "system_prompt_hashes": shares(traffic.column("system_prompt_hash")),
        "tool_schema_hashes": shares(traffic.column("tool_schema_hash")),
        "prompt_template_ids": shares(traffic.column("prompt_template_id")),
        "safety_traces": safety.drop_nulls().len(),
        "safety_signal_share": _rounded(true_share(safety)),
        "safety_design_effect": sessions_deff(traffic, safety),
        "failure_rate": _rounded(true_share(traffic.column("is_failure"))),
        "retrieval": {"k": top_k, "kb_docs": dict(sorted(snapshot.hashes.items())),
                      "superseded": dict(sorted(snapshot.superseded.items())),
                      "top_k": golden_top_k(index, cases, top_k)},
    }


def production_baseline(warehouse_con, cases: list[dict], *, top_k: int = 5) -> dict[str, Any]:
    """The production baseline of a golden version's cases, read from the warehouse: the traffic
    of the cases' source_date range (module doc). Cases without any source date give an empty
    baseline (window null, no traces)."""
    from evalflow.lib.drift.config import DriftConfig
    from evalflow.lib.drift.inputs import empty_frame, load_traffic

    window = cases_window(cases)
    if window is None:
        empty = Traffic(date.min, date.min, empty_frame())
        baseline = baseline_from_traffic(empty, cases, top_k=top_k)
        baseline["window"] = None
        return baseline
    traffic = load_traffic(warehouse_con, window[0], window[1], DriftConfig(), embeddings=False)
    return baseline_from_traffic(traffic, cases, top_k=top_k)
