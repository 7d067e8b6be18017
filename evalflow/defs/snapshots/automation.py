"""What publishes eval-set versions by itself: a sensor on <data>/promotions/ (a reviewer's
promotion file becomes the next golden version) and a daily schedule for the rolling set."""

import dagster as dg

from evalflow.defs.run_tags import automation_tags, plural
from evalflow.lib.common.settings import load_settings

golden_set_job = dg.define_asset_job(
    "golden_set_job", selection=dg.AssetSelection.assets("golden_set"),
    description="Publish the next golden version from a promotion (launchpad config, or the pending files in "
    "<data>/promotions/). Started by promotion_file_sensor.")
rolling_set_job = dg.define_asset_job(
    "rolling_set_job", selection=dg.AssetSelection.assets("rolling_set"),
    description="Publish rolling@<day>: a stratified sample of the last 7 days' eval cases. Started by "
    "rolling_set_schedule.")


@dg.sensor(job=golden_set_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: when <data>/promotions/ holds a promotion file no golden version was made "
           "from (by sha256), runs golden_set_job.")
def promotion_file_sensor(context: dg.SensorEvaluationContext):
    from evalflow.lib.snapshots.versions import pending_promotions

    pending = pending_promotions(load_settings().data_dir)  # no lake yet: every file is pending
    if not pending:
        return dg.SkipReason("no pending promotion file")
    reason = f"{plural(len(pending), 'promotion file')}: {', '.join(p.name for p in pending[:3])}"
    return dg.RunRequest(run_key="|".join(p.name for p in pending), tags=automation_tags("promotion_file_sensor",
                                                                                          reason))


@dg.schedule(cron_schedule="30 5 * * *", job=rolling_set_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Daily at 05:30 UTC: rolling@<day> from the eval cases of the 7 days ending on the newest "
             "case's day.")
def rolling_set_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"rolling-{day}",
                         tags=automation_tags("rolling_set_schedule", f"rolling set of {day}"))
