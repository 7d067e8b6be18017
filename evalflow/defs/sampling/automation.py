"""The monthly refresh: the newest days go through redaction and embeddings, then intents are
re-clustered (new ones surface as births in intent_events), signals and the failure taxonomy are
rebuilt, stale candidates are retired, a new sample is drawn and a new annotation batch written.

Two runs, because one Dagster run holds one partitions definition: the schedule starts the daily
part over the days not embedded yet, and a run-status sensor starts the window part when it
succeeds (a failed daily run leaves the sample as it was).
"""

import dagster as dg

from evalflow.defs.run_tags import automation_tags, plural
from evalflow.lib.sampling.refresh import days_to_refresh

refresh_days_job = dg.define_asset_job(
    "monthly_refresh_days_job",
    selection=dg.AssetSelection.assets("redacted_traces", "pii_audit", "trace_embeddings"),
    description="Redaction and embeddings for the days the monthly refresh found new.",
)
sampling_refresh_job = dg.define_asset_job(
    "sampling_refresh_job",
    selection=dg.AssetSelection.assets("intent_clusters", "intent_catalog", "trace_signals", "failure_taxonomy",
                                       "eval_candidates", "annotation_queue"),
    description="Re-cluster the window, rebuild signals and taxonomy, retire stale candidates, sample, export.",
)


@dg.schedule(cron_schedule="0 4 1 * *", job=refresh_days_job, execution_timezone="UTC",
             description="The 1st of the month at 04:00 UTC: redaction and embeddings for the ingested days not "
             "embedded yet (or the newest day again); refresh_sampling_sensor then runs the window part.",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def monthly_refresh_schedule(context: dg.ScheduleEvaluationContext):
    """On the 1st at 04:00 UTC: the ingested days whose embeddings are missing (or, when none is,
    the newest day again, so the window part still follows)."""
    ingested = context.instance.get_materialized_partitions(dg.AssetKey("raw_traces"))
    embedded = context.instance.get_materialized_partitions(dg.AssetKey("trace_embeddings"))
    days = days_to_refresh(ingested, embedded)
    if not days:
        return dg.SkipReason("no ingested day yet")
    month = context.scheduled_execution_time.strftime("%Y-%m")
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    reason = f"monthly refresh of {plural(len(days), 'day')} ({span})"
    return dg.RunRequest(run_key=f"monthly-refresh-{month}", tags={
        **automation_tags("monthly_refresh_schedule", reason),
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
        "evalflow/refresh": month,
    })


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[refresh_days_job],
                      description="When a monthly_refresh_days_job run succeeds: sampling_refresh_job re-clusters "
                      "intents, rebuilds signals and the taxonomy, draws a sample and writes its annotation batch.",
                      request_job=sampling_refresh_job, default_status=dg.DefaultSensorStatus.RUNNING)
def refresh_sampling_sensor(context: dg.RunStatusSensorContext):
    """The window part of the refresh, once its daily part has succeeded."""
    run = context.dagster_run
    refresh = run.tags.get("evalflow/refresh", "manual")
    reason = f"{run.job_name} run {run.run_id[:8]} succeeded (refresh {refresh})"
    return dg.RunRequest(run_key=f"sampling-after-{run.run_id}", tags={
        **automation_tags("refresh_sampling_sensor", reason), "evalflow/refresh": refresh})
