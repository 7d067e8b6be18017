"""What drives ingestion: a sensor for new landing files, a sensor that rebuilds the days they
touched, and a daily schedule that catches up yesterday's partition."""


from datetime import timedelta

import dagster as dg

from evalflow.defs.ingest.assets import landed_traces, raw_traces
from evalflow.defs.partitions import daily_partitions
from evalflow.lib.common.settings import load_settings
from evalflow.lib.ingest.parse_file import iter_landing_files

landing_job = dg.define_asset_job("landing_job", selection=[landed_traces])
raw_traces_job = dg.define_asset_job("raw_traces_job", selection=[raw_traces])
daily_ingest_job = dg.define_asset_job("daily_ingest_job", selection=[landed_traces, raw_traces])


def landing_fingerprint(paths) -> str:
    """Changes whenever a file appears, grows or is rewritten; cheap (stat only, no reads)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dg.sensor(job=landing_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_file_sensor(context: dg.SensorEvaluationContext):
    files = list(iter_landing_files(load_settings().landing_dir))
    if not files:
        return dg.SkipReason("landing folder is empty")
    fingerprint = landing_fingerprint(files)
    if fingerprint == context.cursor:
        return dg.SkipReason(f"no change in {len(files)} landing file(s)")
    context.update_cursor(fingerprint)
    # Content hashes make re-landing a no-op, so a spurious change costs a scan, not rows.
    return dg.RunRequest(run_key=fingerprint)


def partition_range_request(event_dates: list[str], run_key: str) -> dg.RunRequest | None:
    """One run over the days a landing touched (single-run backfill of raw_traces)."""
    keys = set(daily_partitions.get_partition_keys())
    wanted = sorted(d for d in event_dates if d in keys)
    if not wanted:
        return None
    return dg.RunRequest(run_key=run_key, tags={
        "dagster/asset_partition_range_start": wanted[0],
        "dagster/asset_partition_range_end": wanted[-1],
    })


@dg.asset_sensor(asset_key=landed_traces.key, job=raw_traces_job,
                 default_status=dg.DefaultSensorStatus.RUNNING)
def landed_days_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    dates = materialization.metadata.get("event_dates") if materialization else None
    request = partition_range_request(list(dates.value) if dates else [], run_key=asset_event.run_id)
    return request or dg.SkipReason("the landing added no trace")


@dg.schedule(cron_schedule="15 0 * * *", job=daily_ingest_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext):
    """Just after midnight UTC: land anything the sensor missed and rebuild yesterday."""
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(partition_key=yesterday, run_key=f"daily-{yesterday}")
