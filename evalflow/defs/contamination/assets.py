"""contamination_report: is the golden set in training data, fine-tuning sets, few-shot examples,
judge prompts or public benchmarks, and do its own splits leak (docs/contamination.md)?"""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.contamination.store import CONTAMINATION_SCHEMA

CLEAN_CHECK = "golden_set_uncontaminated"


@dg.asset(
    group_name="drift", kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=OWNERS, deps=["golden_set", "rolling_set"],
    metadata=table_metadata("contamination_findings", ddl=CONTAMINATION_SCHEMA),
    check_specs=[dg.AssetCheckSpec(CLEAN_CHECK, asset="contamination_report", blocking=False,
                                   description="No golden case was found in a registered corpus or in the prompts "
                                   "seen in traces, and no holdout case leaks into the development cases.")],
    description="The latest golden version against every corpus registered in <data>/contamination.toml "
    "(training, fine-tuning, few-shot, judge prompts, public benchmarks) and the system prompts and few-shot "
    "examples seen in traces: exact match, 13-gram overlap, 50-character probes, MinHash LSH and embedding "
    "similarity per case; and leaks across holdout/dev, golden/rolling and golden/known-answer cases. Rows in "
    "contamination_findings and contamination_runs.")
def contamination_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.contamination.pipeline import contamination_run
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig

    settings = warehouse.settings()
    now = utcnow()
    outcome = contamination_run(warehouse.warehouse(), settings.data_dir, run_id=f"contamination-{now:%Y%m%dT%H%M%S}",
                                checked_at=now, embedder=lambda: Embedder(EmbedderConfig(model_dir=settings.model_dir)))
    if outcome.skipped:
        context.log.info(f"contamination check skipped: {outcome.skipped}")
        yield dg.MaterializeResult(metadata={"status": outcome.skipped})
        yield dg.AssetCheckResult(check_name=CLEAN_CHECK, passed=True, metadata={"status": outcome.skipped})
        return
    from evalflow.lib.common.lake import publish_tables
    from evalflow.lib.contamination.store import TABLES

    publish_tables(settings.data_dir, warehouse.warehouse(), TABLES, message="publish the contamination tables")
    found = outcome.contaminated_cases()
    summary = outcome.report["summary"]
    holdout_leaks = summary["split_leaks"]["holdout|dev"]
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(sum(len(c["matches"]) for c in outcome.report["cases"]) + len(outcome.leaks)),
        "golden": outcome.golden, "cases": summary["cases"], "contaminated": len(found),
        "by_corpus": dg.MetadataValue.json(summary["by_corpus"]),
        "by_method": dg.MetadataValue.json(summary["by_method"]),
        "split_leaks": dg.MetadataValue.json(summary["split_leaks"]),
        "report": dg.MetadataValue.path(str(outcome.report_path)),
    })
    # A golden case in a training or prompt corpus makes its scores meaningless: ERROR. A holdout
    # case near a development case is a weaker warning: users ask alike, the split is by case.
    yield dg.AssetCheckResult(check_name=CLEAN_CHECK, passed=not found and not holdout_leaks,
                              severity=dg.AssetCheckSeverity.ERROR if found else dg.AssetCheckSeverity.WARN,
                              metadata={"contaminated_cases": len(found), "holdout_cases_leaking": holdout_leaks,
                                        "cases": ", ".join(c["case_id"] for c in found[:20]) or "none"})


(contamination_report,) = with_code_references(contamination_report)
