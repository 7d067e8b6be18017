"""annotation_queue: the newest samples as Label Studio + CSV batches under <data>/annotation/."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.annotation.store import BATCH_SCHEMA
from evalflow.lib.common.dagster_metadata import table_rows

IMPORT_CHECK = "tasks_match_labeling_config"



class AnnotationConfig(dg.Config):
    gold_rate: float = 0.10  # share of known-answer gold tasks mixed into each batch
    known_answers_path: str = ""  # empty: EVALFLOW_KNOWN_ANSWERS, else the bundled demo cases


@dg.asset(group_name="sampling", kinds={"labelstudio", "csv"}, deps=["eval_candidates"], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("annotation_batches", ddl=BATCH_SCHEMA),
          check_specs=[dg.AssetCheckSpec(IMPORT_CHECK, asset="annotation_queue", blocking=True,
                                         description="Every task of both passes validates against its "
                                         "Label Studio labeling configuration; pass 1 never shows the output.")],
          description="Annotation batch files under `<data>/annotation/<batch>/`: Label Studio tasks + labeling "
          "configs and CSV, pass 1 (gold answer, no model output) and pass 2 (verdicts), with known-answer "
          "gold cases mixed in.")
def annotation_queue(context: dg.AssetExecutionContext, config: AnnotationConfig, warehouse: WarehouseResource):
    from evalflow.lib.annotation import load_known_answers, write_annotation_batch
    from evalflow.lib.annotation.checks import check_batch, known_answers_path
    from evalflow.lib.annotation.store import candidates_to_export, record_batch
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.sampling.store import batch_id_for

    store = warehouse.warehouse()
    out_dir = warehouse.settings().data_dir / "annotation"
    known = load_known_answers(known_answers_path(config.known_answers_path))
    manifests, problems = [], []
    # Every sample not exported yet, oldest first: one left by a run that stopped after writing
    # its batch folder is recorded here (the folder is reused when its inputs match).
    while True:
        run_id, candidates = candidates_to_export(store)
        if not candidates:
            break
        manifest = write_annotation_batch(candidates, out_dir, batch_id=batch_id_for(run_id),
                                          known_answers=known, gold_rate=config.gold_rate)
        record_batch(store, manifest, run_id, [c["trace_id"] for c in candidates], utcnow())
        problems += check_batch(manifest.path, candidates)
        manifests.append(manifest)
    if not manifests:
        yield dg.MaterializeResult(metadata={ROW_COUNT: row_count(table_rows(store, "annotation_batches")),
                                             "batch": "none: no unexported candidates"})
        yield dg.AssetCheckResult(check_name=IMPORT_CHECK, passed=True, metadata={"tasks_checked": 0})
        return
    manifest = manifests[-1]
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "annotation_batches")),
        "batch_id": manifest.data["batch_id"], "path": dg.MetadataValue.path(str(manifest.path)),
        "batches_written": len(manifests),
        "candidates": sum(m.counts["candidates"] for m in manifests),
        "gold_tasks": sum(m.counts["gold"] for m in manifests),
        "tasks": sum(m.counts["tasks"] for m in manifests), "workflow": dg.MetadataValue.md(manifest.data["workflow"]),
    })
    yield dg.AssetCheckResult(check_name=IMPORT_CHECK, passed=not problems,
                              metadata={"problems": len(problems), "first": problems[0][:200] if problems else ""})


(annotation_queue,) = with_code_references(annotation_queue)
