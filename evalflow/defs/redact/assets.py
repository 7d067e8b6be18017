"""redacted_traces and pii_audit: raw text stops here; a blocking check re-scans the output."""

from datetime import date

import dagster as dg

from evalflow.defs.ingest.assets import raw_traces
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.redact.resources import RedactionResource
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.report import markdown_table
from evalflow.lib.redact.store import audit_markdown, leak_scan, purge_raw, redact_days

LEAK_CHECK = "no_pii_left"


@dg.multi_asset(
    specs=[
        dg.AssetSpec("redacted_traces", deps=[raw_traces], group_name="redact", kinds={"duckdb", "presidio"},
                     description="Canonical traces with every text field redacted (typed, keyed "
                     "pseudonyms) and user/session ids pseudonymised. The first table without raw text."),
        dg.AssetSpec("pii_audit", deps=["redacted_traces"], group_name="redact", kinds={"duckdb"},
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
    summary = redact_days(warehouse.raw_store(), store, days, redactor, versions)
    purged = purge_raw(warehouse.raw_store(), store, warehouse.settings().raw_retention_days)
    audit = audit_markdown(summary.entity_counts.items())
    yield dg.MaterializeResult(asset_key="redacted_traces", metadata={
        "rows": summary.rows_redacted,
        "rows_in": summary.rows_in,
        "quarantined": summary.quarantined,
        "quarantine_reasons": dg.MetadataValue.md(
            markdown_table(["reason", "traces"], sorted(summary.failure_reasons.items()))),
        "raw_days_purged": len(purged),
        **{f"version_{k}": v for k, v in versions.items()},
    })
    yield dg.MaterializeResult(asset_key="pii_audit", metadata={
        "detections": sum(n for *_, n in audit),
        "by_field_and_type": dg.MetadataValue.md(markdown_table(["field", "entity type", "detections"], audit)),
    })
    # Values the user allow-listed are kept on purpose; the check must not fail on them.
    allow_list = redaction.allow_list()
    hits = leak_scan(store, days, lambda text: high_precision_scan(text, allow_list=allow_list))
    yield dg.AssetCheckResult(check_name=LEAK_CHECK, asset_key="redacted_traces", passed=not hits, metadata={
        "hits": sum(hits.values()),
        "hits_by_field_and_type": dg.MetadataValue.md(markdown_table(
            ["field", "entity type", "hits"], [(f, e, n) for (f, e), n in sorted(hits.items())])),
    })
