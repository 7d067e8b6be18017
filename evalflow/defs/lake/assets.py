"""lake_tables: the warehouse tables analysts read, published to the lake (DuckLake, docs/warehouse.md)
at the end of each run, so they can query while the next run writes the working warehouse."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource

# What an analyst reads: traces (redacted), intents, the sample, labels, judge, cases, accounting.
PUBLISHED = ("redacted_traces", "pii_audit", "intent_catalog", "intent_assignments", "intent_events",
             "trace_signals", "failure_clusters", "eval_candidates", "sample_runs", "annotation_batches",
             "labels", "label_quarantine", "consensus_labels", "label_agreement", "label_gates",
             "annotator_quality", "judge_calibrations", "judge_labels", "eval_cases", "landed_files", "quarantine")
UPSTREAM = ("eval_cases", "judge_labels", "label_agreement", "annotation_queue", "failure_taxonomy", "intent_catalog")


@dg.asset(group_name="eval_sets", kinds={"ducklake", "parquet"}, deps=list(UPSTREAM), pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata={"dagster/table_name": "lake.main.*"},
          description="The tables analysts read, copied from the working warehouse to the lake (DuckLake: "
          "`<data>/lake/catalog.sqlite` + Parquet under `<data>/lake/files/`) in one lake snapshot; a table that did "
          "not change is not copied again. Analysts ATTACH the lake read-only (`evalflow query --attach-sql`) and "
          "query while a run writes.")
def lake_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.common.lake import connect_lake, publish_tables, snapshot_id

    data_dir = warehouse.settings().data_dir
    copied = publish_tables(data_dir, warehouse.warehouse(), PUBLISHED, message="publish the current tables")
    with connect_lake(data_dir, read_only=True) as con:
        snapshot = snapshot_id(con)
    return dg.MaterializeResult(metadata={
        "tables_copied": len(copied), "rows_copied": sum(copied.values()),
        "copied": ", ".join(sorted(copied)) or "none (nothing changed)", "lake_snapshot": snapshot,
    })


(lake_tables,) = with_code_references(lake_tables)
