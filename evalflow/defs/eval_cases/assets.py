"""eval_cases: every labelled production trace as an eval case in one schema (docs/eval-cases.md)."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.eval_cases.store import EVAL_CASES_SCHEMA


@dg.asset(group_name="eval_sets", kinds={"duckdb", "jsonschema"}, deps=["consensus_labels", "judge_labels"],
          pool=WAREHOUSE_POOL, owners=OWNERS, metadata=table_metadata("eval_cases", ddl=EVAL_CASES_SCHEMA),
          description="One eval case per production trace with an agreed human verdict: the input (question, "
          "history, retrieved context kept apart, tools), expected behaviour, gold answer, per-dimension labels with "
          "their source (consensus, expert, calibrated judge), the rubric it was labelled under, deterministic "
          "checks, and its split (20% holdout by case-id hash). Every case is validated against the JSON Schema "
          "before the table is replaced.")
def eval_cases(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.eval_cases.build import build_cases, summarise_cases
    from evalflow.lib.eval_cases.store import load_case_inputs, replace_eval_cases

    store = warehouse.warehouse()
    cases = build_cases(load_case_inputs(store, warehouse.settings().data_dir / "annotation"))
    summary = replace_eval_cases(store, cases, utcnow())
    figures = summarise_cases(cases)
    return dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(summary.cases), "added": summary.added, "changed": summary.changed,
        "removed": summary.removed, "holdout": figures["split"]["holdout"], "safety_edge_set": figures["safety"],
        "reference_based": figures["reference_based"],
        "label_sources": dg.MetadataValue.json(figures["label_sources"]),
    })


(eval_cases,) = with_code_references(eval_cases)
