"""What drives ingestion: a sensor for new landing files, a sensor that rebuilds the days they
touched, and a daily schedule that catches up yesterday's partition.

Neither sensor replays history. A daemon started after `evalflow run` (the demo) launches
nothing until new files land: the landing sensor, when the folder changed or it has no cursor
yet, compares the files' content hashes with the raw store's `landed_files`; the days sensor
launches only for days that no raw_traces materialization has rebuilt since their landing.
Every run they and the schedule start says what started it and why (defs/run_tags.py).
"""

import socket
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from evalflow.defs.ingest.assets import landed_traces, raw_traces
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.run_tags import STARTED_BY_TAG, automation_tags, plural
from evalflow.lib.common.settings import load_settings
from evalflow.lib.common.warehouse import Warehouse, WarehouseLocked
from evalflow.lib.ingest.parse_file import file_sha256, iter_landing_files
from evalflow.lib.ingest.store import landed_file_hashes

landing_job = dg.define_asset_job("landing_job", selection=[landed_traces],
                                  description="Parse the landing folder's new files once into the raw store's "
                                  "stage (landed_traces). Started by landing_file_sensor.")
raw_traces_job = dg.define_asset_job("raw_traces_job", selection=[raw_traces],
                                     description="Rebuild raw_traces over the days a landing touched, in one run. "
                                     "Started by landed_days_sensor.")
daily_ingest_job = dg.define_asset_job("daily_ingest_job", selection=[landed_traces, raw_traces],
                                       description="Land any file the sensor missed, then rebuild one day of "
                                       "raw_traces. Started by daily_ingest_schedule for yesterday.")

# A sensor tick must not sit out a run's write (EVALFLOW_LOCK_WAIT_S is minutes): it waits this
# long for the raw store, then skips the tick and looks again at the next one.
SENSOR_LOCK_WAIT_S = 3.0
# `evalflow run` starts its daily-partitions run right after its landing run: for this long
# after such a landing, while its process lives, the days sensor leaves the days to it.
RUNNER_GRACE_S = 120.0
# Landings the days sensor handles in one tick (the rest at the next ticks).
MAX_LANDINGS_PER_TICK = 100
UNFINISHED_RUN_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                           dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                           dg.DagsterRunStatus.CANCELING]


def landing_fingerprint(paths) -> str:
    """Changes whenever a file appears, grows or is rewritten; cheap (stat only, no reads)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def files_not_landed(paths: list[Path], landed: set[str]) -> list[Path]:
    """The files whose content is not in `landed` (one per content; a file gone since is skipped)."""
    new: list[Path] = []
    seen = set(landed)
    for path in paths:
        try:
            digest = file_sha256(path)
        except FileNotFoundError:
            continue
        if digest not in seen:
            seen.add(digest)
            new.append(path)
    return new


def _names(paths: list[Path], root: Path, shown: int = 3) -> str:
    names = [str(p.relative_to(root)) if p.is_relative_to(root) else p.name for p in paths[:shown]]
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(names) + more


@dg.sensor(job=landing_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: when the landing folder holds files the raw store has not landed yet "
           "(by content hash), runs landing_job.")
def landing_file_sensor(context: dg.SensorEvaluationContext):
    """Launches landing_job when the landing folder holds content the raw store has not landed
    (files are hashed only when the folder changed, or on a fresh daemon's first tick)."""
    settings = load_settings()
    files = list(iter_landing_files(settings.landing_dir))
    if not files:
        return dg.SkipReason("landing folder is empty")
    fingerprint = landing_fingerprint(files)
    if fingerprint == context.cursor:
        return dg.SkipReason(f"no change in {plural(len(files), 'landing file')}")
    # The folder changed, or this is a fresh daemon's first tick (no cursor): only then read
    # the files, and launch only for content the raw store has not landed yet, so a daemon
    # started after `evalflow run` does not land the same folder again.
    try:
        landed = landed_file_hashes(Warehouse(settings.raw_store_path), read_only=True, wait_s=SENSOR_LOCK_WAIT_S)
    except WarehouseLocked as locked:
        # The cursor stays: the next tick looks again.
        return dg.SkipReason(f"raw store is held by {locked.holder} (a run writing it?); "
                             "will look at the landing folder again next tick")
    new = files_not_landed(files, landed)
    context.update_cursor(fingerprint)
    if not new:
        return dg.SkipReason(f"{plural(len(files), 'landing file')}, all already landed")
    reason = f"{plural(len(new), 'new landing file')}: {_names(new, settings.landing_dir)}"
    context.log.info(reason)
    return dg.RunRequest(run_key=fingerprint, tags=automation_tags("landing_file_sensor", reason))


def _day_span(days: list[str]) -> str:
    return f"day {days[0]}" if len(days) == 1 else f"days {days[0]}..{days[-1]}"


def partition_range_request(event_dates: list[str], run_key: str,
                            tags: dict[str, str] | None = None) -> dg.RunRequest | None:
    """One run over the days a landing touched (single-run backfill of raw_traces)."""
    keys = set(daily_partitions.get_partition_keys())
    wanted = sorted(d for d in event_dates if d in keys)
    if not wanted:
        return None
    return dg.RunRequest(run_key=run_key, tags={
        **(tags or {}),
        "dagster/asset_partition_range_start": wanted[0],
        "dagster/asset_partition_range_end": wanted[-1],
    })


def landing_days(record) -> list[str]:
    """The daily partitions a landed_traces materialization touched (its `event_dates`)."""
    materialization = record.asset_materialization
    dates = materialization.metadata.get("event_dates") if materialization else None
    keys = set(daily_partitions.get_partition_keys())
    return sorted(d for d in (dates.value if dates else []) if d in keys)


def days_not_rebuilt_since(instance: dg.DagsterInstance, days: list[str], storage_id: int
                           ) -> tuple[list[str], list[str]]:
    """(days with no raw_traces materialization after `storage_id`, the runs that rebuilt the others)."""
    missing, rebuilt_by = set(days), []
    cursor = None
    while missing:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=raw_traces.key, asset_partitions=sorted(missing),
                                  after_storage_id=storage_id),
            limit=1000, cursor=cursor, ascending=True)
        for record in page.records:
            if record.partition_key in missing and record.run_id not in rebuilt_by:
                rebuilt_by.append(record.run_id)
            missing.discard(record.partition_key)
        if not page.has_more:
            break
        cursor = page.cursor
    return sorted(missing), rebuilt_by


def describe_run(instance: dg.DagsterInstance, run_id: str) -> str:
    """'run 1a2b3c4d (evalflow run)', '(landed_days_sensor)' or '(raw_traces_job)': what started it."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id[:8]}"
    started_by = run.tags.get("evalflow/command") or run.tags.get(STARTED_BY_TAG) or run.job_name
    return f"run {run_id[:8]} ({started_by})"


def runner_still_going(instance: dg.DagsterInstance, record, now: float | None = None) -> str | None:
    """Why to leave a landing's days alone for now, when `evalflow run` landed it and may still
    rebuild them itself (its daily-partitions run follows its landing run); else None."""
    from evalflow.cli.instance import HOST_TAG, PID_TAG
    from evalflow.lib.common.processes import process_alive

    run = instance.get_run_by_id(record.run_id)
    if run is None or "evalflow/phase" not in run.tags or not run.tags.get(PID_TAG, "").isdigit():
        return None
    pid, host = run.tags[PID_TAG], run.tags.get(HOST_TAG)
    same_process = {PID_TAG: pid, **({HOST_TAG: host} if host else {})}
    busy = instance.get_runs(dg.RunsFilter(tags=same_process, statuses=UNFINISHED_RUN_STATUSES), limit=1)
    if busy:
        return (f"evalflow run (PID {pid}) that landed them is still running ({busy[0].job_name}, "
                f"run {busy[0].run_id[:8]}) and may rebuild them itself")
    age = (now or time.time()) - record.timestamp
    if (age < RUNNER_GRACE_S and host in (None, socket.gethostname())
            and process_alive(int(pid), recorded_at=record.timestamp)):
        return f"evalflow run (PID {pid}) landed them {age:.0f} s ago and is still running"
    return None


@dg.sensor(job=raw_traces_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After each landing, runs raw_traces_job over the days it touched, unless a raw_traces "
           "run has rebuilt them since (as `evalflow run` does).")
def landed_days_sensor(context: dg.SensorEvaluationContext):
    """Rebuilds the days each landed_traces materialization touched, unless a raw_traces
    materialization has rebuilt them since (as `evalflow run` does right after landing)."""
    instance = context.instance
    after = int(context.cursor) if (context.cursor or "").isdigit() else None
    if after is None:  # a fresh daemon: the latest landing only, as Dagster's asset sensors do
        records = instance.fetch_materializations(landed_traces.key, limit=1).records
    else:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=landed_traces.key, after_storage_id=after),
            limit=MAX_LANDINGS_PER_TICK, ascending=True).records
    if not records:
        return dg.SkipReason("no landing since the last one handled" if after else "nothing landed yet")

    to_build: set[str] = set()
    launched_for: list[str] = []
    notes: list[str] = []
    waiting = None
    handled = after
    for record in records:
        days = landing_days(record)
        missing, rebuilt_by = days_not_rebuilt_since(instance, days, record.storage_id) if days else ([], [])
        if missing:
            waiting = runner_still_going(instance, record)
            if waiting:
                waiting = f"the landing of run {record.run_id[:8]} touched {_day_span(missing)}; {waiting}"
                break
            to_build.update(missing)
            launched_for.append(record.run_id)
        elif days:
            notes.append(f"the landing of run {record.run_id[:8]} touched {_day_span(days)}, rebuilt since "
                         f"by {', '.join(describe_run(instance, r) for r in rebuilt_by[:3])}")
        else:
            notes.append(f"the landing of run {record.run_id[:8]} added no trace")
        handled = record.storage_id
    if handled is not None and handled != after:
        context.update_cursor(str(handled))

    if to_build:
        days = sorted(to_build)
        reason = f"{_day_span(days)} landed" + (
            f" ({len(launched_for)} landings)" if len(launched_for) > 1 else "")
        context.log.info(reason)
        return partition_range_request(days, run_key=launched_for[-1],
                                       tags=automation_tags("landed_days_sensor", reason))
    if waiting:
        return dg.SkipReason(f"waiting: {waiting}")
    if len(notes) > 3:
        notes = notes[:2] + [f"{len(notes) - 2} more landings, each rebuilt since or without traces"]
    return dg.SkipReason("; ".join(notes) + ": nothing to rebuild")


@dg.schedule(cron_schedule="15 0 * * *", job=daily_ingest_job, execution_timezone="UTC",
             description="00:15 UTC every day: land any file the sensor missed and rebuild yesterday's "
             "raw_traces partition.",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext):
    """Just after midnight UTC: land anything the sensor missed and rebuild yesterday."""
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(partition_key=yesterday, run_key=f"daily-{yesterday}", tags=automation_tags(
        "daily_ingest_schedule", f"daily catch-up: land missed files, rebuild {yesterday}"))
