"""compute_signals: one row of failure modes, outlier scores and difficulty per redacted trace.

Rules that need one trace live in rules.py and grounding.py; rules that compare a trace with
its intent (latency, cost, answer length) in outliers.py; difficulty in difficulty.py. Every
trace gets a row, metadata-only traces (no texts) included: they still get status, feedback,
latency and cost signals, and null text-based scores.

`is_failure` is true when any mode fired (attack attempts and outliers included: the sampler
wants them all represented); `severity` is the largest severity of the trace's modes
(config.SEVERITY), 0 without one. `is_outlier` is a latency or cost outlier, or a trace whose
intent assignment had low confidence.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Sequence

import numpy as np
import polars as pl

from evalflow.lib.signals import config as c
from evalflow.lib.signals.difficulty import difficulty_buckets, difficulty_scores, recorded_prompt_tokens
from evalflow.lib.signals.grounding import context_sentences, contradicts_context, support_score
from evalflow.lib.signals.outliers import compute_outliers
from evalflow.lib.signals.rules import apply_rules, request_failed
from evalflow.lib.signals.text import output_text

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String,
    "session_id": pl.String,
    "event_date": pl.Date,
    "timestamp": pl.Datetime("us", "UTC"),
    "intent_id": pl.String,
    "failure_modes": pl.List(pl.String),
    "is_failure": pl.Boolean,
    "severity": pl.Float64,
    "latency_outlier": pl.Boolean,
    "cost_outlier": pl.Boolean,
    "latency_score": pl.Float64,
    "cost_score": pl.Float64,
    "is_outlier": pl.Boolean,
    "difficulty": pl.Float64,
    "difficulty_bucket": pl.String,
    "support_score": pl.Float64,
    "retrieval_max_score": pl.Float64,
    "signal_reasons": pl.List(pl.String),
    # added for the taxonomy, the sampler's metadata and debugging
    "low_confidence_intent": pl.Boolean,
    "model": pl.String,
    "status": pl.String,
    "latency_ms": pl.Float64,
    "cost_usd": pl.Float64,
    "output_tokens": pl.Int64,
    "turns": pl.Int64,
    "context_tokens": pl.Int64,
    "tool_call_count": pl.Int64,
    "intent_share": pl.Float64,
    "payload_kept": pl.Boolean,
}


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return None


def _event_date(trace: dict[str, Any], ts: datetime | None) -> date | None:
    value = trace.get("event_date")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return ts.date() if ts else None


def _as_float(value: Any) -> float | None:
    """An int or float (not a bool) as a float; None for anything else, numeric strings included."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _output_length(trace: dict[str, Any], text: str | None) -> float | None:
    tokens = _as_float(trace.get("output_tokens"))
    if tokens is not None:
        return tokens
    return len(text) / 4 if text else None


def _nullable(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def compute_signals(traces: list[dict], intent_ids: Sequence[str | None], *,
                    intent_low_confidence: Sequence[bool] | None = None,
                    config: c.SignalConfig = c.SignalConfig()) -> pl.DataFrame:
    """Signals of each trace (see SIGNAL_SCHEMA for the columns), in the order given."""
    if len(intent_ids) != len(traces):
        raise ValueError(f"intent_ids has {len(intent_ids)} entries for {len(traces)} traces")
    if intent_low_confidence is not None and len(intent_low_confidence) != len(traces):
        raise ValueError("intent_low_confidence must have one entry per trace")
    low_conf = [bool(x) for x in intent_low_confidence] if intent_low_confidence is not None else [False] * len(traces)

    outcomes, outputs, supports = [], [], []
    for trace in traces:
        outcome = apply_rules(trace, config)
        text = output_text(trace)
        support = None
        if text and text.strip() and not request_failed(trace):
            sources = context_sentences(trace)
            if sources and contradicts_context(text, sources, min_tokens=config.restate_min_tokens,
                                               min_share=config.restate_min_share):
                outcome.add(c.UNSUPPORTED_ANSWER, "the answer restates a retrieved passage with a different fact")
            support = support_score(trace, text)
        outcomes.append(outcome)
        outputs.append(text)
        supports.append(support)

    failed = np.array([request_failed(t) for t in traces], dtype=bool)
    models = [t.get("model") if isinstance(t.get("model"), str) else None for t in traces]
    found = compute_outliers(
        latency_ms=[_as_float(t.get("latency_ms")) for t in traces],
        cost_usd=[_as_float(t.get("cost_usd")) for t in traces],
        output_length=[_output_length(t, o) for t, o in zip(traces, outputs)],
        prompt_length=[recorded_prompt_tokens(t) for t in traces],
        retrieval_max=[o.retrieval_max_score for o in outcomes],
        failed=failed, error_types=[t.get("error_type") or "<unknown error>" for t in traces],
        intent_ids=list(intent_ids), models=models, z_min=config.outlier_z,
        min_ratio=config.outlier_min_ratio, min_group=config.min_group_size,
        verbose_min_tokens=config.verbose_min_tokens)
    for i, outcome in enumerate(outcomes):
        if found.verbose[i]:
            ratio = found.output_length_ratio[i]
            outcome.add(c.VERBOSE_OUTPUT, f"answer {ratio:.0f}x the typical length for its intent")
        if found.latency_outlier[i]:
            compared = "a failure of its kind" if failed[i] else "its intent"
            z = found.latency_score[i]
            outcome.add(c.LATENCY_OUTLIER, f"latency unusually high for {compared} (robust z {z:.1f})")
        if found.cost_outlier[i]:
            z = found.cost_score[i]
            outcome.add(c.COST_OUTLIER,
                        f"cost unusually high for its intent and what the trace shows (robust z {z:.1f})")
        if found.low_retrieval_relative[i] and c.LOW_RETRIEVAL_SCORE not in outcome.modes:
            outcome.add(c.LOW_RETRIEVAL_SCORE, "best retrieval score unusually low for its intent")
        if low_conf[i]:
            outcome.reasons.append("intent assignment has low confidence")

    difficulty, features = difficulty_scores(
        traces, intent_ids, weights=config.difficulty_weights,
        tokens_easy=config.context_tokens_easy, tokens_hard=config.context_tokens_hard)
    buckets = difficulty_buckets(difficulty, config.difficulty_cuts)

    timestamps = [_utc(t.get("timestamp")) for t in traces]
    modes = [sorted(o.modes) for o in outcomes]
    columns = {
        "trace_id": [t.get("trace_id") for t in traces],
        "session_id": [t.get("session_id") for t in traces],
        "event_date": [_event_date(t, ts) for t, ts in zip(traces, timestamps)],
        "timestamp": timestamps,
        "intent_id": list(intent_ids),
        "failure_modes": modes,
        "is_failure": [bool(m) for m in modes],
        "severity": [max((c.SEVERITY[x] for x in m), default=0.0) for m in modes],
        "latency_outlier": found.latency_outlier.tolist(),
        "cost_outlier": found.cost_outlier.tolist(),
        "latency_score": _nullable(found.latency_score),
        "cost_score": _nullable(found.cost_score),
        "is_outlier": [bool(a or b or lc) for a, b, lc in zip(found.latency_outlier, found.cost_outlier, low_conf)],
        "difficulty": difficulty.tolist(),
        "difficulty_bucket": buckets,
        "support_score": supports,
        "retrieval_max_score": [o.retrieval_max_score for o in outcomes],
        "signal_reasons": [o.reasons for o in outcomes],
        "low_confidence_intent": low_conf,
        "model": models,
        "status": [t.get("status") for t in traces],
        "latency_ms": [_as_float(t.get("latency_ms")) for t in traces],
        "cost_usd": [_as_float(t.get("cost_usd")) for t in traces],
        "output_tokens": [None if _as_float(t.get("output_tokens")) is None else int(t["output_tokens"])
                          for t in traces],
        "turns": features["turns"].tolist(),
        "context_tokens": features["context_tokens"].tolist(),
        "tool_call_count": features["tool_calls"].tolist(),
        "intent_share": _nullable(features["intent_share"]),
        "payload_kept": [t.get("payload_kept") is not False for t in traces],
    }
    return pl.DataFrame(columns, schema=SIGNAL_SCHEMA)
