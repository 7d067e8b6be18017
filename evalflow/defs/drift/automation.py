"""What runs the drift watch by itself: the weekly report on Mondays, the nightly prompt-hash
audit, and a sensor that posts new alerts to a webhook (EVALFLOW_ALERT_WEBHOOK_URL)."""

from datetime import timedelta

import dagster as dg

from evalflow.defs.partitions import weekly_partitions
from evalflow.defs.run_tags import automation_tags, plural

drift_report_job = dg.define_asset_job(
    "drift_report_job", selection=dg.AssetSelection.assets("drift_report"),
    description="The weekly drift report of one week (Monday to Sunday, UTC), or of a range of weeks as one run. "
    "Started by drift_report_schedule on Mondays for the week that just ended.")
prompt_hash_audit_job = dg.define_asset_job(
    "prompt_hash_audit_job", selection=dg.AssetSelection.assets("prompt_hash_audit"),
    description="Compare the newest day's system-prompt, tool-schema and template hashes with the golden set's. "
    "Started by prompt_hash_audit_schedule every night.")


@dg.schedule(cron_schedule="0 6 * * 1", job=drift_report_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Mondays at 06:00 UTC: the drift report of the week that ended on Sunday.")
def drift_report_schedule(context: dg.ScheduleEvaluationContext):
    a_week_ago = context.scheduled_execution_time.date() - timedelta(days=7)
    week = a_week_ago - timedelta(days=a_week_ago.weekday())
    if week < weekly_partitions.start.date():  # the data starts this week: no week has ended yet
        return dg.SkipReason(f"no week with data has ended yet (the first starts {weekly_partitions.start.date()})")
    return dg.RunRequest(run_key=f"drift-{week.isoformat()}", partition_key=week.isoformat(),
                         tags=automation_tags("drift_report_schedule", f"weekly drift report of {week.isoformat()}"))


@dg.schedule(cron_schedule="15 2 * * *", job=prompt_hash_audit_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Nightly at 02:15 UTC: the newest day's prompt and tool-schema hashes against the golden "
             "set's.")
def prompt_hash_audit_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"prompt-hashes-{day}",
                         tags=automation_tags("prompt_hash_audit_schedule", f"nightly prompt-hash audit of {day}"))


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: posts the alerts not yet delivered (drift_report, prompt_hash_audit) as JSON "
           "to EVALFLOW_ALERT_WEBHOOK_URL, then marks them delivered; a failed post is retried next time. Does "
           "nothing while the URL is unset.")
def alert_webhook_sensor(context: dg.SensorEvaluationContext):
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.drift.webhook import deliver_pending

    outcome = deliver_pending(load_settings())
    if outcome.skipped:
        return dg.SkipReason(outcome.skipped)
    context.log.info(f"delivered {plural(outcome.delivered, 'alert')} to the webhook")
    return dg.SkipReason(f"delivered {plural(outcome.delivered, 'alert')}")
