"""landed_traces (parse new landing files once) and raw_traces (daily partitions of them)."""


from datetime import date

import dagster as dg

from evalflow.defs.metadata import (
    OWNERS,
    ROW_COUNT,
    add_partition_metadata,
    present,
    row_count,
    table_metadata,
    with_code_references,
)
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.dagster_metadata import share, table_rows
from evalflow.lib.common.report import markdown_table
from evalflow.lib.ingest.landing import land_new_files, landing_totals, reject_rate_for_days
from evalflow.lib.ingest.store import RAW_SCHEMA, replace_partitions

REJECT_RATE_CHECK = "reject_rate_below_threshold"
CONTRACT_CHECK = "canonical_trace_contract"


@dg.asset(
    group_name="ingest",
    kinds={"duckdb", "python"},
    pool=WAREHOUSE_POOL,
    owners=OWNERS,
    metadata=table_metadata("staged_traces", ddl=RAW_SCHEMA, store="raw"),
    description="Every file in the landing folder parsed once (by content hash) into a stage of "
    "canonical traces in the raw store; every bad line quarantined with a reason (the accounting "
    "is copied to the warehouse).",
)
def landed_traces(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()
    summary = land_new_files(settings)
    totals = landing_totals(warehouse.raw_store())
    context.log.info(
        f"{summary.files_new} new file(s), {summary.files_already_landed} already landed; "
        f"{summary.lines_read} lines: {summary.ingested} ingested, {summary.quarantined} quarantined, "
        f"{summary.deduplicated} deduplicated"
    )
    return dg.MaterializeResult(metadata=present({
        ROW_COUNT: row_count(table_rows(warehouse.raw_store(), "staged_traces")),
        "files_new": summary.files_new,
        "files_already_landed": summary.files_already_landed,
        "lines_read": summary.lines_read,
        "ingested": summary.ingested,
        "quarantined": summary.quarantined,
        # Plotted across landings; none when the landing read no line.
        "quarantine_rate": share(summary.quarantined, summary.lines_read),
        "deduplicated": summary.deduplicated,
        "traces_staged": summary.traces_staged,
        "all_files_lines_read": totals["lines_read"],
        "all_files_ingested_quarantined_deduplicated": dg.MetadataValue.text(
            f"{totals['ingested']} + {totals['quarantined']} + {totals['deduplicated']} = {totals['lines_read']}"),
        # The asset sensor reads this to know which daily partitions to rebuild.
        "event_dates": dg.MetadataValue.json(sorted(d.isoformat() for d in summary.event_dates)),
        "quarantine_reasons": dg.MetadataValue.md(markdown_table(
            ["reason", "lines"], sorted(summary.reasons.items()))),
        "raw_store": dg.MetadataValue.path(str(settings.raw_store_path)),
    }))


@dg.asset(
    group_name="ingest",
    kinds={"duckdb"},
    deps=[landed_traces],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    owners=OWNERS,
    metadata=table_metadata("raw_traces", ddl=RAW_SCHEMA, store="raw"),
    check_specs=[
        dg.AssetCheckSpec(REJECT_RATE_CHECK, asset="raw_traces", blocking=True,
                          description="Quarantined lines / lines read of the files feeding these "
                          "partitions, and of files that fed none (every line bad) landed with them "
                          "or on these days, stays under EVALFLOW_REJECT_RATE_THRESHOLD (default 1%)."),
        dg.AssetCheckSpec(CONTRACT_CHECK, asset="raw_traces", blocking=True,
                          description="Great Expectations suite: schema, non-null ids and times, "
                          "unique trace_id per partition, allowed status, non-negative numbers."),
    ],
    description="Canonical traces by event day (UTC), rebuilt from the stage in one transaction. "
    "Lives in the raw store (PII included); downstream assets read redacted_traces instead.",
)
def raw_traces(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.ingest.contract import run_trace_contract  # GX is heavy: import only here

    days = [date.fromisoformat(key) for key in context.partition_keys]
    store = warehouse.raw_store()
    rows_by_day = replace_partitions(store, days)
    # Each day's materialization carries its own row count (the landing accounting is
    # landed_traces' metadata, the reject rate of these days the check below).
    add_partition_metadata(context, {day: {ROW_COUNT: row_count(n)} for day, n in rows_by_day.items()})
    context.log.info(f"{sum(rows_by_day.values())} traces over {len(days)} day(s)")
    yield dg.MaterializeResult()
    threshold = warehouse.settings().reject_rate_threshold
    rate, quarantined, lines = reject_rate_for_days(store, days)
    yield dg.AssetCheckResult(
        check_name=REJECT_RATE_CHECK, passed=rate <= threshold,
        metadata={"reject_rate": rate, "threshold": threshold,
                  "quarantined_lines": quarantined, "lines_read": lines},
    )
    contract = run_trace_contract(store.query(
        "SELECT * FROM raw_traces WHERE event_date IN (SELECT unnest(?))", [days]))
    yield dg.AssetCheckResult(
        check_name=CONTRACT_CHECK, passed=contract.success,
        metadata={"evaluated_rows": contract.evaluated_rows,
                  "failed_expectations": len(contract.failed()),
                  "expectations": dg.MetadataValue.md(contract.markdown())},
    )


landed_traces, raw_traces = with_code_references(landed_traces, raw_traces)
