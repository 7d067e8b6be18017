"""redacted_traces and pii_audit: raw text stops here; a blocking check re-scans the output."""

from datetime import date

import dagster as dg

from evalflow.defs.ingest.assets import raw_traces
from evalflow.defs.metadata import (
    OWNERS,
    ROW_COUNT,
    add_partition_metadata,
    log_run_figures,
    row_count,
    table_metadata,
    with_code_references,
)
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.redact.resources import RedactionResource
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.dagster_metadata import counts_by_day, rows_by_day, share
from evalflow.lib.common.report import markdown_table
from evalflow.lib.redact.store import WAREHOUSE_SCHEMA, audit_markdown, leak_scan, purge_raw, redact_days

LEAK_CHECK = "no_pii_left"


@dg.multi_asset(
    specs=[
        dg.AssetSpec("redacted_traces", deps=[raw_traces], group_name="redact", kinds={"duckdb", "presidio"},
                     owners=OWNERS, metadata=table_metadata("redacted_traces", ddl=WAREHOUSE_SCHEMA),
                     description="Canonical traces with every text field redacted (typed, keyed "
                     "pseudonyms) and user/session ids pseudonymised. The first table without raw text."),
        dg.AssetSpec("pii_audit", deps=["redacted_traces"], group_name="redact", kinds={"duckdb"},
                     owners=OWNERS, metadata=table_metadata("pii_audit", ddl=WAREHOUSE_SCHEMA),
                     description="Detections per day, field and entity type: counts, never values."),
    ],
    check_specs=[dg.AssetCheckSpec(LEAK_CHECK, asset="redacted_traces", blocking=True,
                                   description="High-precision detectors (email of any domain, phone, card, SSN, "
                                   "IBAN, IP, URL credentials, home-path user names) find nothing in the "
                                   "redacted output.")],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def redaction_assets(context: dg.AssetExecutionContext, warehouse: WarehouseResource, redaction: RedactionResource):
    from evalflow.lib.redact.leak_scan import high_precision_scan

    days = [date.fromisoformat(key) for key in context.partition_keys]
    redactor, versions = redaction.redactor(warehouse.settings().data_dir, context.log)
    store = warehouse.warehouse()
    rows_in = rows_by_day(warehouse.raw_store(), "raw_traces", days)  # before the purge below
    summary = redact_days(warehouse.raw_store(), store, days, redactor, versions)
    purged = purge_raw(warehouse.raw_store(), store, warehouse.settings().raw_retention_days)

    # Each day's own figures on its materialization; the detector versions redacted every day.
    redacted = rows_by_day(store, "redacted_traces", days)
    held = counts_by_day(store, "redaction_quarantine", days, "reason")
    audit_rows = rows_by_day(store, "pii_audit", days)
    detections = rows_by_day(store, "pii_audit", days, "sum(detections)")
    add_partition_metadata(context, {day: {
        ROW_COUNT: row_count(redacted[day]),
        "rows_in": rows_in[day],
        "quarantined": sum(held[day].values()),
        "quarantine_rate": share(sum(held[day].values()), rows_in[day]),
        "quarantine_reasons": dg.MetadataValue.md(markdown_table(["reason", "traces"], held[day].items())),
    } for day in days}, asset_key="redacted_traces")
    add_partition_metadata(context, {day: {
        ROW_COUNT: row_count(audit_rows[day]),
        "detections": detections[day],
        "by_field_and_type": dg.MetadataValue.md(markdown_table(
            ["field", "entity type", "detections"],
            audit_markdown((k, n) for k, n in summary.entity_counts.items() if k[0] == day))),
    } for day in days}, asset_key="pii_audit")
    log_run_figures(context, "redacted_traces", {
        "rows_in": summary.rows_in, "rows_redacted": summary.rows_redacted, "quarantined": summary.quarantined,
        "raw_days_purged": len(purged)})
    yield dg.MaterializeResult(asset_key="redacted_traces",
                               metadata={f"version_{k}": v for k, v in versions.items()})
    yield dg.MaterializeResult(asset_key="pii_audit")
    # Values the user allow-listed are kept on purpose; the check must not fail on them.
    allow_list = redaction.allow_list()
    hits = leak_scan(store, days, lambda text: high_precision_scan(text, allow_list=allow_list))
    yield dg.AssetCheckResult(check_name=LEAK_CHECK, asset_key="redacted_traces", passed=not hits, metadata={
        "hits": sum(hits.values()),
        "hits_by_field_and_type": dg.MetadataValue.md(markdown_table(
            ["field", "entity type", "hits"], [(f, e, n) for (f, e), n in sorted(hits.items())])),
    })


(redaction_assets,) = with_code_references(redaction_assets)
