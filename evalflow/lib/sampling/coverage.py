"""Coverage figures of a sample against its eligible population (JSON-able, for metadata)."""

from __future__ import annotations

from collections import Counter

import polars as pl

from evalflow.lib.sampling.strata import NO_INTENT


def _is_failure(frame: pl.DataFrame) -> pl.Series:
    if "is_failure" in frame.columns:
        return frame["is_failure"].fill_null(False)
    return frame["failure_modes"].list.len().fill_null(0) > 0


def _mode_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts: Counter = Counter()
    for modes in frame["failure_modes"].to_list():
        counts.update(set(modes or ()))
    return dict(sorted(counts.items()))


def coverage_report(population: pl.DataFrame, chosen: pl.DataFrame, *, budget: int,
                    min_intent_traces: int, near_duplicates_removed: int,
                    session_skips: int, excluded: dict) -> dict:
    intent_sizes = Counter(i for i in population["_intent"].to_list() if i != NO_INTENT)
    frequent = {i for i, n in intent_sizes.items() if n >= min_intent_traces}
    sampled_intents = set(chosen["_intent"].to_list()) - {NO_INTENT}
    pop_buckets = Counter(population["time_bucket"].to_list())
    sample_buckets = Counter(chosen["time_bucket"].to_list())
    n_pop, n_chosen = population.height, chosen.height
    return {
        "budget": int(budget),
        "chosen": n_chosen,
        "population": n_pop,
        "intents_in_population": len(intent_sizes),
        "intents_with_3plus": len(frequent),
        "intents_covered": len(sampled_intents),
        "intents_with_3plus_covered": len(frequent & sampled_intents),
        "intents_with_3plus_covered_share": round(len(frequent & sampled_intents) / len(frequent), 4)
        if frequent else None,
        "min_intent_traces": int(min_intent_traces),
        "failure_share_population": round(float(_is_failure(population).mean()), 4) if n_pop else None,
        "failure_share_sample": round(float(_is_failure(chosen).mean()), 4) if n_chosen else None,
        "failure_modes_population": _mode_counts(population),
        "failure_modes_sample": _mode_counts(chosen),
        "time_buckets": {b: {"population": pop_buckets[b], "sample": sample_buckets.get(b, 0)}
                         for b in sorted(pop_buckets)},
        "strata": population["stratum"].n_unique(),
        "strata_covered": chosen["stratum"].n_unique(),
        "reasons": dict(sorted(Counter(chosen["reason"].to_list()).items())),
        "near_duplicates_removed": int(near_duplicates_removed),
        "session_limit_skips": int(session_skips),
        "excluded_traces": int(excluded["by_trace_id"] + excluded["by_session"]),
        "excluded_sessions": int(excluded["sessions"]),
    }
