"""stratified_sample: signals in, the traces worth labelling out (see the package docstring)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import polars as pl

from evalflow.lib.sampling.coverage import coverage_report
from evalflow.lib.sampling.dedup import DuplicateGuard
from evalflow.lib.sampling.facets import intent_facets, typical_first
from evalflow.lib.sampling.models import SampleResult, SamplingConfig
from evalflow.lib.sampling.select import PriorityGroup, Selector
from evalflow.lib.sampling.strata import NO_INTENT, eligible_population, validate_inputs

OUTLIER_KINDS = (("latency_outlier", "latency"), ("cost_outlier", "cost"))
# Modes that the outlier groups already stand for, left out of the fallback failure groups.
OUTLIER_MODES = {"latency_outlier", "cost_outlier"}
INTERNAL = ("_row", "_session", "_intent", "primary_failure")


def stratified_sample(signals: pl.DataFrame, *, budget: int = 200, seed: int = 0,
                      vectors: np.ndarray | None = None, texts: Sequence[str] | None = None,
                      failure_members: pl.DataFrame | None = None,
                      failure_clusters: pl.DataFrame | None = None,
                      exclude_trace_ids: Iterable[str] = (), exclude_session_ids: Iterable[str] = (),
                      config: SamplingConfig = SamplingConfig()) -> SampleResult:
    """Choose at most ``budget`` traces of ``signals``; same inputs and seed, same sample
    (whatever the row order of ``signals``)."""
    validate_inputs(signals, budget, vectors, texts)
    if (failure_members is None) != (failure_clusters is None):
        raise ValueError("failure_members and failure_clusters go together: pass both or neither")
    population = eligible_population(signals, vectors, texts, exclude_trace_ids,
                                     exclude_session_ids, config.time_bucket_days)
    frame = population.frame
    guard = DuplicateGuard(population.vectors, population.texts, config.near_duplicate_cosine)
    selector = Selector(frame, int(budget), seed, config.max_per_session, guard,
                        config.novelty_window)

    groups = failure_groups(frame, failure_members, failure_clusters, config.top_failure_clusters)
    if failure_clusters is not None:
        # A taxonomy category can hold several modes (a refused and a successful injection):
        # each mode still gets one trace before the clusters' second round.
        groups += mode_groups(frame, until_represented=True)
    groups += outlier_groups(frame)
    selector.priority(groups, int(config.priority_share * budget))
    typical, facets = None, []
    if population.vectors is not None:
        rows_of = intent_rows(frame)
        typical = {i: typical_first(r, population.vectors) for i, r in rows_of.items()}
        facets = intent_facets(rows_of, population.vectors, config.min_intent_traces, seed)
    selector.intent_coverage(config.min_intent_traces, typical)
    selector.facet_coverage(facets)
    selector.floor(config.stratum_floor)
    selector.proportional()

    chosen = frame[selector.chosen].with_columns(
        pl.Series("reason", selector.reasons, dtype=pl.String),
        pl.Series("pick_order", np.arange(1, len(selector.chosen) + 1), dtype=pl.Int64),
    )
    coverage = coverage_report(
        frame, chosen, budget=int(budget), min_intent_traces=config.min_intent_traces,
        near_duplicates_removed=len(guard.rejected), session_skips=len(selector.session_blocked),
        excluded=population.excluded)
    return SampleResult(chosen.drop(INTERNAL), coverage, population.excluded)


def intent_rows(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Rows of each intent (the unassigned aside)."""
    rows_of: dict[str, list[int]] = {}
    for row, intent in enumerate(frame["_intent"].to_list()):
        if intent != NO_INTENT:
            rows_of.setdefault(intent, []).append(row)
    return {i: np.asarray(r) for i, r in rows_of.items()}


def failure_groups(frame: pl.DataFrame, members: pl.DataFrame | None,
                   clusters: pl.DataFrame | None, top: int | None) -> list[PriorityGroup]:
    """Top failure clusters in rank order; without a taxonomy, one group per failure mode
    ranked by traces x mean severity."""
    row_of = dict(zip(frame["trace_id"].to_list(), range(frame.height)))
    if clusters is not None:
        for name, table, cols in (("failure_clusters", clusters, ("failure_cluster_id", "rank")),
                                  ("failure_members", members, ("trace_id", "failure_cluster_id"))):
            missing = [c for c in cols if c not in table.columns]
            if missing:
                raise ValueError(f"{name} is missing required columns: {', '.join(missing)}")
        ranked = clusters.sort(["rank", "failure_cluster_id"])
        if top is not None:
            ranked = ranked.head(top)
        rows_of: dict[str, list[int]] = {}
        for trace_id, cluster_id in zip(members["trace_id"].to_list(),
                                        members["failure_cluster_id"].to_list()):
            if trace_id in row_of:
                rows_of.setdefault(cluster_id, []).append(row_of[trace_id])
        categories = (ranked["category"].to_list() if "category" in ranked.columns
                      else ranked["failure_cluster_id"].to_list())
        return [PriorityGroup(f"cluster:{cid}", str(cat), f"top failure cluster {cid} (rank {rank})",
                              np.asarray(sorted(rows_of[cid])))
                for cid, cat, rank in zip(ranked["failure_cluster_id"].to_list(), categories,
                                          ranked["rank"].to_list()) if rows_of.get(cid)]
    return mode_groups(frame, until_represented=False)


def mode_groups(frame: pl.DataFrame, *, until_represented: bool) -> list[PriorityGroup]:
    """One group per failure mode (outlier modes aside: the outlier groups stand for them),
    ranked by traces x mean severity."""
    exploded = frame.select(
        pl.int_range(pl.len()).alias("row"), "failure_modes",
        (pl.col("severity") if "severity" in frame.columns else pl.lit(1.0)).alias("severity"),
    ).explode("failure_modes").drop_nulls("failure_modes")
    exploded = exploded.filter(~pl.col("failure_modes").is_in(list(OUTLIER_MODES)))
    stats = (exploded.group_by("failure_modes")
             .agg(pl.col("row").sort(), (pl.len() * pl.col("severity").mean()).alias("score"))
             .sort(["score", "failure_modes"], descending=[True, False]))
    return [PriorityGroup(f"mode:{mode}", f"mode:{mode}", f"failure mode {mode}", np.asarray(rows),
                          until_mode=mode if until_represented else None)
            for mode, rows in zip(stats["failure_modes"].to_list(), stats["row"].to_list())]


def outlier_groups(frame: pl.DataFrame) -> list[PriorityGroup]:
    groups, named = [], np.zeros(frame.height, dtype=bool)
    for column, kind in OUTLIER_KINDS:
        if column in frame.columns:
            flags = frame[column].fill_null(False).to_numpy()
            named |= flags
            if flags.any():
                groups.append(PriorityGroup(f"outlier:{kind}", f"outlier:{kind}",
                                            f"outlier ({kind})", np.flatnonzero(flags)))
    other = frame["is_outlier"].fill_null(False).to_numpy() & ~named
    if other.any():
        groups.append(PriorityGroup("outlier:other", "outlier:other", "outlier (other)",
                                    np.flatnonzero(other)))
    return groups
