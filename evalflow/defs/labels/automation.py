"""What starts a label import: a sensor on the drop folder (<data>/labels/incoming/).

The import, consensus, agreement and the judge run as one job, so a drop of annotators' exports
ends with fresh consensus labels, gates and judge labels. Files are recognised by content hash
(label_files): a file dropped again, or a daemon started after `evalflow run`, launches nothing.
"""

import dagster as dg

from evalflow.defs.ingest.automation import SENSOR_LOCK_WAIT_S, files_not_landed, landing_fingerprint
from evalflow.defs.run_tags import automation_tags, plural
from evalflow.lib.common.settings import load_settings
from evalflow.lib.common.warehouse import Warehouse, WarehouseLocked

LABEL_ASSETS = ("labels", "consensus_labels", "label_agreement", "judge_calibration", "judge_labels", "eval_cases",
                "lake_tables")

labels_job = dg.define_asset_job(
    "labels_job", selection=dg.AssetSelection.assets(*LABEL_ASSETS),
    description="Import the drop folder's new label files, rebuild consensus labels, agreement, the automation "
    "gates and annotator quality, calibrate the judge, write judge labels and rebuild the eval cases. Started by "
    "label_drop_sensor.")


@dg.sensor(job=labels_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: when <data>/labels/incoming/ holds a file the warehouse has not imported "
           "(by content hash), runs labels_job.")
def label_drop_sensor(context: dg.SensorEvaluationContext):
    from evalflow.lib.labels.importer import incoming_files
    from evalflow.lib.labels.store import imported_file_hashes

    settings = load_settings()
    folder = settings.data_dir / "labels" / "incoming"
    files = incoming_files(folder)
    if not files:
        return dg.SkipReason(f"no label file in {folder}")
    fingerprint = landing_fingerprint(files)
    if fingerprint == context.cursor:
        return dg.SkipReason(f"no change in {plural(len(files), 'label file')}")
    try:
        # Read-only with a short wait: a tick never writes, and never sits out a run's write.
        known = imported_file_hashes(Warehouse(settings.warehouse_path), read_only=True, wait_s=SENSOR_LOCK_WAIT_S)
    except WarehouseLocked as locked:
        return dg.SkipReason(f"warehouse is held by {locked.holder}; will look at the drop folder again next tick")
    new = files_not_landed(files, known)
    context.update_cursor(fingerprint)
    if not new:
        return dg.SkipReason(f"{plural(len(files), 'label file')}, all already imported")
    reason = f"{plural(len(new), 'new label file')}: {', '.join(p.name for p in new[:3])}"
    context.log.info(reason)
    return dg.RunRequest(run_key=fingerprint, tags=automation_tags("label_drop_sensor", reason))
