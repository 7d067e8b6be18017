"""Runs left behind by a dead process: found and cleared while the daemon runs.

A run whose process was killed (SIGKILL, out of memory, a reboot) stays STARTED and keeps its
slot of the duckdb_warehouse pool, so every later run would wait for ever. Dagster's run
monitoring cannot see this with the default run launcher; this sensor applies the same check
as `evalflow run` and `evalflow doctor --fix` (evalflow/cli/instance.py) once a minute.
"""

import dagster as dg


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Marks runs whose process is gone (killed, out of memory, rebooted) failed and "
           "frees their duckdb_warehouse pool slots, so later runs do not wait for ever.")
def stale_run_sensor(context: dg.SensorEvaluationContext):
    from evalflow.cli.instance import recover_stale_runs

    recovery = recover_stale_runs(context.instance)
    for run in recovery.failed_runs:
        context.log.warning(f"run {run.run_id} ({run.job_name}) marked failed: {run.reason}")
    if not recovery.failed_runs and not recovery.freed_slot_runs:
        return dg.SkipReason("no stale runs")
    return dg.SkipReason(f"marked {len(recovery.failed_runs)} stale run(s) failed; freed the pool slots of "
                         f"{len(recovery.freed_slot_runs)} finished run(s)")
