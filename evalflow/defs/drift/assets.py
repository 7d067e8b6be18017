"""drift_report: one report per week (Monday to Sunday, UTC) comparing the week's production
traffic with the golden set's and with the week before (docs/drift.md)."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.partitions import weekly_partitions
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.drift.checks import CHECK_DESCRIPTIONS
from evalflow.lib.drift.store import DRIFT_SCHEMA


def _severity(name: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if name == "ERROR" else dg.AssetCheckSeverity.WARN


@dg.asset(
    group_name="drift", kinds={"duckdb", "html"}, partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(), pool=WAREHOUSE_POOL, owners=OWNERS,
    deps=["golden_set", "rolling_set", "trace_signals", "eval_cases", "lake_tables"],
    metadata=table_metadata("drift_history", ddl=DRIFT_SCHEMA),
    check_specs=[dg.AssetCheckSpec(name, asset="drift_report", blocking=False, description=text)
                 for name, text in CHECK_DESCRIPTIONS.items()],
    description="The weekly drift report: the week's intent mix (JS divergence, per-intent contributions), "
    "embeddings (centroid distance, MMD permutation test), prompt templates and tool schemas (new and vanished "
    "hashes), retrieval (BM25 overlap@k of the golden queries over the week's knowledge base, changed documents), "
    "staleness, the safety slice and score inflation, against the golden set's production baseline and the week "
    "before. Writes drift_history and alerts (published to the lake) and an offline HTML report under "
    "<data>/reports/drift/<week>/.")
def drift_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.drift.checks import check_results
    from evalflow.lib.drift.weekly import publish_drift_tables, report_weeks

    settings = warehouse.settings()
    weeks = sorted(context.partition_keys)
    outcomes = report_weeks(warehouse.warehouse(), settings.data_dir, weeks, log=context.log.info)
    publish_drift_tables(settings.data_dir, warehouse.warehouse())
    for outcome in outcomes:  # each week's figures on that week's materialization
        context.add_asset_metadata({ROW_COUNT: row_count(len(outcome.report.history_rows())), **outcome.figures(),
                                    "report": dg.MetadataValue.path(str(outcome.html_path)),
                                    "summary": dg.MetadataValue.md(outcome.markdown)},
                                   partition_key=outcome.week)
    yield dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name=check.name, passed=check.passed, severity=_severity(check.severity),
                            metadata=check.metadata)
        for check in check_results(outcomes)])


(drift_report,) = with_code_references(drift_report)


@dg.asset(
    group_name="drift", kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=OWNERS,
    deps=["golden_set", "trace_signals"], metadata=table_metadata("alerts", ddl=DRIFT_SCHEMA),
    check_specs=[dg.AssetCheckSpec("prompt_hashes_match_golden", asset="prompt_hash_audit", blocking=False,
                                   description="No system-prompt hash, tool-schema hash or template id that the "
                                   "golden set's production baseline never had carries the threshold share (1% by "
                                   "default) of the newest day's traffic.")],
    description="The nightly prompt-hash audit: the newest day's system-prompt hashes, tool-schema hashes and "
    "template ids against those of the traffic the golden set was drawn from; a hash the golden set never saw "
    "adds a row to `alerts` (signals system_prompt_nightly, tool_schema_nightly, prompt_template_nightly).")
def prompt_hash_audit(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.drift.weekly import audit_prompt_hashes

    settings = warehouse.settings()
    outcome = audit_prompt_hashes(warehouse.warehouse(), settings.data_dir)
    context.log.info(outcome.summary)
    worst = outcome.worst_severity()
    metadata = {ROW_COUNT: row_count(outcome.alert_rows), **outcome.metadata()}
    yield dg.MaterializeResult(metadata=metadata, check_results=[
        dg.AssetCheckResult(check_name="prompt_hashes_match_golden", passed=worst is None,
                            severity=_severity(worst or "WARN"), metadata={"detail": outcome.summary})])


(prompt_hash_audit,) = with_code_references(prompt_hash_audit)
