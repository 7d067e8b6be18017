"""eval_candidates: the stratified sample worth labelling, over the intent window."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.defs.signals.assets import SignalsConfig, require_window_start
from evalflow.lib.common.dagster_metadata import table_rows
from evalflow.lib.common.report import markdown_table
from evalflow.lib.sampling.store import CANDIDATE_SCHEMA

SESSION_CHECK = "no_session_in_two_batches"
class SamplingRunConfig(dg.Config):
    budget: int = 200
    seed: int = 0
    max_age_days: int = 90  # candidates older than this are retired as stale (lib/refresh.py)


def _reason_kinds(reasons: dict) -> list[tuple[str, int]]:
    """Reasons by kind ("top failure cluster F-error-intent-0001 (rank 1)" counts as "top failure
    cluster"): one line per cluster would bury the table; eval_candidates keeps the full reason."""
    kinds: dict[str, int] = {}
    for reason, n in reasons.items():
        kind = reason.split(" F-")[0] if reason.startswith("top failure cluster") else \
            "failure mode not yet sampled" if reason.startswith("failure mode ") else reason
        kinds[kind] = kinds.get(kind, 0) + n
    return sorted(kinds.items(), key=lambda item: -item[1])


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=["failure_taxonomy"], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("eval_candidates", ddl=CANDIDATE_SCHEMA),
          check_specs=[dg.AssetCheckSpec(SESSION_CHECK, asset="eval_candidates", blocking=True,
                                         description="No session has traces in two sampling runs.")],
          description="A stratified sample worth labelling (intent x failure mode x difficulty, spread over "
          "time, outliers and top failure clusters first, near-duplicates and used sessions out); stale "
          "candidates retired.")
def eval_candidates(context: dg.AssetExecutionContext, config: SamplingRunConfig, warehouse: WarehouseResource):
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.sampling import stratified_sample
    from evalflow.lib.sampling.refresh import stale_candidates
    from evalflow.lib.sampling.store import (
        current_intents,
        new_intents,
        open_candidates,
        roll_back_unexported,
        sessions_in_two_runs,
        used_before,
        window_vectors,
        write_sample,
    )
    from evalflow.lib.signals.store import read_signals, read_taxonomy

    store = warehouse.warehouse()
    annotation_dir = warehouse.settings().data_dir / "annotation"
    rolled_back = roll_back_unexported(store, lambda batch_id: (annotation_dir / batch_id).is_dir())
    if rolled_back:
        context.log.warning(f"rolled back {len(rolled_back)} sample(s) drawn but never exported "
                            f"(an earlier run stopped before annotation_queue): {', '.join(rolled_back)}")
    since = require_window_start(store, SignalsConfig().window_days)
    signals = read_signals(store, since)
    traces_now, live, newest = current_intents(store)
    stale = stale_candidates(open_candidates(store), live_intents=live, current_intent=traces_now,
                             newest_day=newest, max_age_days=config.max_age_days)
    used = used_before(store)
    born = new_intents(store)
    taxonomy = read_taxonomy(store)
    result = stratified_sample(
        signals, budget=config.budget, seed=config.seed, vectors=window_vectors(store, signals["trace_id"].to_list()),
        failure_clusters=taxonomy[0] if taxonomy else None, failure_members=taxonomy[1] if taxonomy else None,
        exclude_trace_ids=used.trace_ids, exclude_session_ids=used.session_ids)
    written = write_sample(store, result.chosen, result.coverage, stale, since=since, budget=config.budget,
                           seed=config.seed, now=utcnow())
    cov = result.coverage
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "eval_candidates")),
        "sample_run_id": written.sample_run_id, "chosen": written.chosen, "budget": config.budget,
        "rolled_back_unexported_samples": len(rolled_back),
        "retired_stale": written.retired, "stale_but_exported": written.stale_exported,
        "intents_covered": f"{cov['intents_covered']} of {cov['intents_in_population']}",
        "intents_with_3plus_covered": f"{cov['intents_with_3plus_covered']} of {cov['intents_with_3plus']}",
        "failure_share_population": cov["failure_share_population"],
        "failure_share_sample": cov["failure_share_sample"],
        "near_duplicates_removed": cov["near_duplicates_removed"],
        "excluded_traces": cov["excluded_traces"],
        "time_spread": dg.MetadataValue.md(markdown_table(
            ["time bucket", "population", "sample"],
            [(b, v["population"], v["sample"]) for b, v in sorted(cov["time_buckets"].items())])),
        "reasons": dg.MetadataValue.md(markdown_table(["reason", "traces"], _reason_kinds(cov["reasons"]))),
        "new_intents_since_last_sample": dg.MetadataValue.md(markdown_table(["intent", "name"], born[:50])),
    })
    overlap = sessions_in_two_runs(store)
    yield dg.AssetCheckResult(check_name=SESSION_CHECK, passed=overlap == 0,
                              metadata={"sessions_in_two_runs": overlap})


(eval_candidates,) = with_code_references(eval_candidates)
