"""judge_calibration (the judge measured against human consensus, per dimension) and judge_labels
(labels from calibrated judges only)."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.dagster_metadata import table_rows
from evalflow.lib.judge.store import CALIBRATION_SCHEMA, LABELS_SCHEMA

CALIBRATED_CHECK = "judge_calibrated"


def _figure(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _calibration_markdown(run) -> str:
    from evalflow.lib.common.report import markdown_table

    rows = [[d, v, nt, ns, _figure(a), _figure(k), _figure(tpr), _figure(tnr), "open" if g else "closed",
             "yes" if c else "no", f"{_figure(short)} / {_figure(long_)}"]
            for d, v, nt, ns, a, k, tpr, tnr, g, c, short, long_ in run.table()]
    return markdown_table(["dimension", "prompt", "tune n", "test n", "test agreement", "kappa", "TPR (Fail)", "TNR",
                           "human gate", "calibrated", "agreement on shorter / longer answers"], rows)


def _usage(stats: dict) -> dict:
    return {f"judge_{k}": v for k, v in stats.items()}


@dg.asset(group_name="judge", kinds={"duckdb", "openai"}, deps=["consensus_labels", "label_agreement"],
          pool=WAREHOUSE_POOL, owners=OWNERS, metadata=table_metadata("judge_calibrations", ddl=CALIBRATION_SCHEMA),
          check_specs=[dg.AssetCheckSpec(CALIBRATED_CHECK, asset="judge_calibration", blocking=False,
                                         description="Every dimension calibrated in this run passed: test agreement "
                                         ">= EVALFLOW_JUDGE_MIN_AGREEMENT and kappa >= EVALFLOW_JUDGE_MIN_KAPPA on "
                                         "held-back human labels, with the human agreement gate open.")],
          description="The LLM judge (EVALFLOW_JUDGE_BASE_URL, any OpenAI-compatible endpoint) against human "
          "consensus labels, per dimension and prompt variant: the best variant on the tuning cases, measured on "
          "the test cases; holdout cases are never sent. Only a `calibrated` (model, prompt) may write "
          "judge_labels.")
def judge_calibration(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.judge.pipeline import calibrate_dimensions

    store = warehouse.warehouse()
    run = calibrate_dimensions(store, warehouse.settings())
    if run.skipped:
        context.log.info(f"judge calibration skipped: {run.skipped}")
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "judge_calibrations")),
        "status": run.skipped or f"{len(run.calibrations)} dimension(s) calibrated against human labels",
        "calibrations": dg.MetadataValue.md(_calibration_markdown(run)) if run.calibrations else "none",
        "calibrated_dimensions": ", ".join(c.dimension for c in run.calibrations if c.calibrated) or "none",
        **_usage(run.stats),
    })
    failed = [c.dimension for c in run.calibrations if not c.calibrated]
    yield dg.AssetCheckResult(check_name=CALIBRATED_CHECK, passed=bool(run.calibrations) and not failed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"not_calibrated": ", ".join(failed) or ("none" if run.calibrations
                                                                                 else run.skipped or "none")})


@dg.asset(group_name="judge", kinds={"duckdb", "openai"}, deps=[judge_calibration], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("judge_labels", ddl=LABELS_SCHEMA),
          description="Pass/Fail labels a calibrated judge wrote for cases no human consensus covers (holdout cases "
          "excepted), one per case and dimension, each naming its model, prompt sha256 and calibration.")
def judge_labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.judge.pipeline import label_with_judge

    store = warehouse.warehouse()
    run = label_with_judge(store, warehouse.settings())
    if run.skipped:
        context.log.info(f"no judge labels: {run.skipped}")
    return dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "judge_labels")),
        "labels_written": run.labels_written, "status": run.skipped or "labelled",
        "dimensions_without_judge": "; ".join(run.refused) or "none", **_usage(run.stats),
    })


judge_calibration, judge_labels = with_code_references(judge_calibration, judge_labels)
