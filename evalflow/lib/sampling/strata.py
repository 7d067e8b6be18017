"""The eligible population: validation, exclusions, strata and time buckets.

A trace's stratum is ``intent=<intent_id>|failure=<primary mode>|difficulty=<bucket>``. The
primary mode of a trace with several failure modes is its rarest one in the eligible population
(ties by name), so a rare mode gets a stratum of its own instead of hiding behind a common one;
a trace with none has ``failure=none``. A missing intent reads ``unassigned``, a missing
difficulty ``unknown``.

Time buckets cut the window into ``time_bucket_days``-wide spans from the UTC day of the oldest
eligible trace; a bucket is named by its first day (ISO date).

Exclusions: rows whose trace_id is excluded (e.g. already in the golden set) are dropped, and so
is every other row of their sessions, so that no session spans two splits; rows of excluded
sessions (sessions already used) are dropped too. A null session_id counts as a session of its
own trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Sequence

import numpy as np
import polars as pl

REQUIRED_COLUMNS = ("trace_id", "session_id", "timestamp", "intent_id", "failure_modes",
                    "difficulty_bucket", "is_outlier")
NO_FAILURE = "none"
NO_INTENT = "unassigned"
NO_DIFFICULTY = "unknown"
NORM_TOLERANCE = 1e-3


@dataclass
class Population:
    """Eligible rows sorted by trace_id (so input order never changes the sample), with the
    derived columns ``_session``, ``_intent``, ``primary_failure``, ``stratum``, ``time_bucket``;
    vectors and texts re-aligned to those rows."""

    frame: pl.DataFrame
    vectors: np.ndarray | None
    texts: list[str] | None
    excluded: dict


def validate_inputs(signals: pl.DataFrame, budget: int, vectors, texts) -> None:
    if not isinstance(signals, pl.DataFrame):
        raise TypeError(f"signals must be a polars DataFrame, got {type(signals).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in signals.columns]
    if missing:
        raise ValueError(f"signals is missing required columns: {', '.join(missing)}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    if signals["trace_id"].null_count():
        raise ValueError("signals has null trace_id values")
    if signals["trace_id"].n_unique() != signals.height:
        raise ValueError("signals has duplicate trace_id values")
    if not isinstance(signals.schema["timestamp"], pl.Datetime):
        raise ValueError(f"timestamp must be a Datetime column, got {signals.schema['timestamp']}")
    if signals["timestamp"].null_count():
        raise ValueError("signals has null timestamp values")
    if vectors is not None:
        v = np.asarray(vectors)
        if v.ndim != 2 or v.shape[0] != signals.height:
            raise ValueError(f"vectors must have shape ({signals.height}, dims), got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("vectors contain NaN or infinite values")
        norms = np.linalg.norm(v, axis=1)
        # A zero row stands for a trace without text (metadata only): it duplicates nothing.
        off = (np.abs(norms - 1.0) > NORM_TOLERANCE) & (norms > 0)
        if off.any():
            raise ValueError("vectors must be L2-normalised (unit-length rows, or zero rows for no text)")
    if texts is not None and len(texts) != signals.height:
        raise ValueError(f"texts ({len(texts)}) and signals ({signals.height}) differ in length")


def eligible_population(signals: pl.DataFrame, vectors, texts: Sequence[str] | None,
                        exclude_trace_ids: Iterable[str], exclude_session_ids: Iterable[str],
                        time_bucket_days: int) -> Population:
    frame = signals.with_row_index("_row").with_columns(
        pl.coalesce(pl.col("session_id").cast(pl.String), pl.col("trace_id").cast(pl.String))
        .alias("_session"))
    excluded_ids = {str(t) for t in exclude_trace_ids}
    hit_by_id = frame["trace_id"].cast(pl.String).is_in(list(excluded_ids))
    sessions_of_ids = set(frame.filter(hit_by_id)["_session"].to_list())
    excluded_sessions = {str(s) for s in exclude_session_ids} | sessions_of_ids
    hit_by_session = frame["_session"].is_in(list(excluded_sessions)) & ~hit_by_id
    dropped = hit_by_id | hit_by_session
    excluded = {
        "by_trace_id": int(hit_by_id.sum()),
        "by_session": int(hit_by_session.sum()),
        "sessions": int(frame.filter(dropped)["_session"].n_unique()),
    }
    frame = frame.filter(~dropped).sort("trace_id")
    frame = _with_strata(frame, time_bucket_days)
    rows = frame["_row"].to_numpy()
    v = None if vectors is None else np.asarray(vectors, dtype=np.float32)[rows]
    t = None if texts is None else [texts[i] for i in rows]
    return Population(frame, v, t, excluded)


def _with_strata(frame: pl.DataFrame, time_bucket_days: int) -> pl.DataFrame:
    modes = frame["failure_modes"].to_list()
    counts: dict[str, int] = {}
    for row in modes:
        for m in set(row or ()):
            counts[m] = counts.get(m, 0) + 1
    primary = [min(set(row), key=lambda m: (counts[m], m)) if row else NO_FAILURE for row in modes]
    frame = frame.with_columns(
        pl.col("intent_id").cast(pl.String).fill_null(NO_INTENT).alias("_intent"),
        pl.Series("primary_failure", primary, dtype=pl.String),
        pl.col("difficulty_bucket").cast(pl.String).fill_null(NO_DIFFICULTY).alias("_difficulty"),
    )
    frame = frame.with_columns(
        pl.format("intent={}|failure={}|difficulty={}", "_intent", "primary_failure", "_difficulty")
        .alias("stratum"),
        time_buckets(frame["timestamp"], time_bucket_days).alias("time_bucket"),
    )
    return frame.drop("_difficulty")


def time_buckets(timestamps: pl.Series, days: int) -> pl.Series:
    """ISO date of the first day of each timestamp's bucket (UTC days from the oldest one)."""
    if timestamps.len() == 0:
        return pl.Series("time_bucket", [], dtype=pl.String)
    ts = timestamps.dt.convert_time_zone("UTC") if timestamps.dtype.time_zone else timestamps
    day = ts.dt.date()
    start = day.min()
    index = (day - start).dt.total_days() // days
    firsts = [(start + timedelta(days=int(i) * days)).isoformat() for i in index.to_list()]
    return pl.Series("time_bucket", firsts, dtype=pl.String)
