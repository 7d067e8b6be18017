"""labels (import from the drop folder), consensus_labels (majority, review queue, anchored gold
answers) and label_agreement (agreement, the automation gate, annotator quality)."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.dagster_metadata import table_rows
from evalflow.lib.labels.store import DERIVED_SCHEMA, LABELS_SCHEMA

QUARANTINE_CHECK = "label_quarantine_share"
GATE_CHECK = "human_agreement_gate"
QUALITY_CHECK = "annotator_accuracy"
# A drop with more than this share of its answers quarantined is worth a look (a wrong project's
# export, a changed labelling config); the labels that did import stay imported.
QUARANTINE_WARN_SHARE = 0.05


@dg.asset(group_name="labels", kinds={"labelstudio", "duckdb"}, deps=["annotation_queue"], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("labels", ddl=LABELS_SCHEMA),
          check_specs=[dg.AssetCheckSpec(QUARANTINE_CHECK, asset="labels", blocking=False,
                                         description=f"At most {QUARANTINE_WARN_SHARE:.0%} of the answers in the "
                                         "files imported by this run were quarantined (label_quarantine says why).")],
          description="What annotators handed back: Label Studio exports (JSON, JSON_MIN, CSV) and filled-in batch "
          "CSVs dropped in `<data>/labels/incoming/`, one row per annotator, item and field; annotators "
          "pseudonymised, free text redacted; bad answers in label_quarantine, replaced ones in label_audit.")
def labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.ingest.canonical import file_sha256
    from evalflow.lib.labels.importer import import_parts, incoming_files, manifest_index
    from evalflow.lib.labels.store import import_label_files, imported_file_hashes, quarantine_counts

    settings = warehouse.settings()
    store = warehouse.warehouse()
    files = incoming_files(settings.data_dir / "labels" / "incoming")
    known = imported_file_hashes(store)
    new = [path for path in files if file_sha256(path) not in known]
    summary = None
    if new:  # the redactor takes seconds to load: only when there is something to import
        pseudonymize, redact_texts = import_parts(settings)
        summary = import_label_files(store, new, manifest_index(settings.data_dir / "annotation"),
                                     pseudonymize, redact_texts, utcnow())
    added = summary.total("labels") if summary else 0
    quarantined = summary.total("quarantined") if summary else 0
    share = quarantined / (added + quarantined) if added + quarantined else 0.0
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "labels")),
        "files_in_drop_folder": len(files), "files_imported": len(new),
        "labels_added": added, "quarantined": quarantined,
        "superseded": summary.total("superseded") if summary else 0,
        "quarantine_by_reason": dg.MetadataValue.json(quarantine_counts(store)),
    })
    yield dg.AssetCheckResult(check_name=QUARANTINE_CHECK, passed=share <= QUARANTINE_WARN_SHARE,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"quarantined_share": float(round(share, 4)), "quarantined": quarantined})


@dg.asset(group_name="labels", kinds={"duckdb", "labelstudio"}, deps=[labels], pool=WAREHOUSE_POOL, owners=OWNERS,
          metadata=table_metadata("consensus_labels", ddl=DERIVED_SCHEMA),
          description="One label per item and dimension: the annotators' majority (ties and splits under "
          "EVALFLOW_CONSENSUS_MIN_AGREEMENT are `disputed`; disputed Pass/Fail verdicts go to an expert review "
          "project under `<data>/labels/review/`, and an expert's label overrides). Production thumbs alone give "
          "`feedback_only`, never `agreed`. Gold answers worded like the model output are listed in label_anchored.")
def consensus_labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.labels.pipeline import build_consensus

    settings = warehouse.settings()
    result = build_consensus(warehouse.warehouse(), settings.data_dir)
    return dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(result.rows),
        "by_status": dg.MetadataValue.json(result.by_status),
        "review_project": dg.MetadataValue.path(str(result.review_path)) if result.review_path else "none",
        "disputed_items": result.disputed_items, "anchored_gold_answers": result.anchored,
    })


@dg.asset(group_name="labels", kinds={"duckdb"}, deps=[consensus_labels], pool=WAREHOUSE_POOL, owners=OWNERS,
          metadata=table_metadata("label_agreement", ddl=DERIVED_SCHEMA),
          check_specs=[
              dg.AssetCheckSpec(GATE_CHECK, asset="label_agreement", blocking=False,
                                description="Every scoring dimension's human agreement opens the automation gate "
                                "(EVALFLOW_HUMAN_AGREEMENT_MIN on EVALFLOW_GATE_MIN_ITEMS items); a closed "
                                "dimension cannot be labelled by a judge."),
              dg.AssetCheckSpec(QUALITY_CHECK, asset="label_agreement", blocking=False,
                                description="No annotator is flagged on the gold cases (accuracy below "
                                "EVALFLOW_ANNOTATOR_MIN_ACCURACY, or fatigue)."),
          ],
          description="Inter-annotator agreement per dimension and slice (intent, risk level, batch): percent "
          "agreement, Krippendorff's alpha with a bootstrap 95% interval, Cohen's kappa per pair "
          "(label_agreement_pairs); the automation gate per dimension (label_gates); annotator accuracy on the "
          "gold cases and over the batch (annotator_quality, annotator_fatigue).")
def label_agreement(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from evalflow.lib.labels.pipeline import build_agreement

    result = build_agreement(warehouse.warehouse(), warehouse.settings().data_dir)
    yield dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(result.rows),
        "gates": dg.MetadataValue.md(result.gate_markdown),
        "flagged_annotators": ", ".join(result.flagged) or "none",
    })
    closed = [d for d, is_open in result.gates.items() if not is_open]
    shown_closed = ", ".join(closed) or ("no labels yet" if not result.gates else "none")
    yield dg.AssetCheckResult(check_name=GATE_CHECK, passed=bool(result.gates) and not closed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"closed": shown_closed,
                                        "open": ", ".join(d for d, o in result.gates.items() if o) or "none"})
    yield dg.AssetCheckResult(check_name=QUALITY_CHECK, passed=not result.flagged, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"flagged": ", ".join(result.flagged) or "none"})


labels, consensus_labels, label_agreement = with_code_references(labels, consensus_labels, label_agreement)
