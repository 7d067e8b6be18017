"""Freshness of the daily assets: a day that does not arrive shows as a failed check.

Each daily asset has a `freshness` check: has the newest day that is due been materialized, and
(for raw_traces and redacted_traces) with at least one trace? Day D is due `DUE_AFTER` after it
ends: at 02:00 UTC on D+1, after the daily ingest schedule (00:15 UTC) has rebuilt it. A day
that never arrives, or arrives empty, fails the check, with the newest day that did arrive.

Why our own check rather than Dagster's:
- `build_time_partition_freshness_checks` expects the asset's last partition, and ours is today's
  (the daily partitions end one day ahead, `end_offset=1`, so today's traces can land): it would
  ask for a day that has not ended.
- `FreshnessPolicy` looks at the newest materialization of any partition: rebuilding an old day
  would hide a missing one, and a day materialized with no trace looks fresh.

`freshness_sensor` runs the checks when a new day becomes due and after each materialization of
the asset. A run that materializes the asset has the check in its plan (Dagster adds an asset's
checks to every run of it) but the check leaves the verdict to the sensor's next run: how fresh
the asset is says nothing about a run that rebuilt, say, last month's days, and must not fail it.
"""

import json
from datetime import date, datetime, time, timedelta, timezone

import dagster as dg

from evalflow.defs.metadata import ROW_COUNT
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.run_tags import automation_tags
from evalflow.lib.common.clock import utcnow

FRESHNESS_CHECK = "freshness"
DUE_AFTER = timedelta(hours=2)  # day D is due at 02:00 UTC on D+1
# The daily assets, and whether a day with no row counts as not arrived. pii_audit has no row on
# a day without PII, and trace_embeddings none on a day whose payloads were all sampled out.
DAILY_ASSETS: dict[str, bool] = {
    "raw_traces": True,
    "redacted_traces": True,
    "pii_audit": False,
    "trace_embeddings": False,
}
SENSOR_INTERVAL_S = 300


def due_day(now: datetime) -> date:
    """The newest day whose deadline has passed at `now`."""
    return (now.astimezone(timezone.utc) - DUE_AFTER).date() - timedelta(days=1)


def due_at(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc) + DUE_AFTER


def freshness_result(instance: dg.DagsterInstance, asset: str, now: datetime) -> dg.AssetCheckResult:
    """The check's verdict on `asset` at `now`."""
    key = dg.AssetKey(asset)
    day = due_day(now)
    first = daily_partitions.start.date()
    metadata: dict = {"due_day": day.isoformat(), "due_at": dg.MetadataValue.timestamp(due_at(day))}
    if day < first:
        return dg.AssetCheckResult(asset_key=key, check_name=FRESHNESS_CHECK, passed=True, metadata=metadata,
                                   description=f"no day due yet (the first day, {first}, is due {due_at(first)})")
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1).records
    rows_value = records[0].asset_materialization.metadata.get(ROW_COUNT) if records else None
    rows = rows_value.value if rows_value is not None else None
    materialized = sorted(instance.get_materialized_partitions(key))
    newest = materialized[-1] if materialized else None
    metadata |= {"due_day_materialized": bool(records), "newest_day_materialized": newest or "none"}
    if rows is not None:
        metadata["due_day_rows"] = int(rows)
    if newest:
        metadata["days_behind"] = max((day - date.fromisoformat(newest)).days, 0)
    if not records:
        return dg.AssetCheckResult(
            asset_key=key, check_name=FRESHNESS_CHECK, passed=False, metadata=metadata,
            description=f"{day} has not arrived (due {due_at(day):%Y-%m-%d %H:%M} UTC); "
                        f"newest day materialized: {newest or 'none'}")
    if DAILY_ASSETS[asset] and not rows:
        return dg.AssetCheckResult(
            asset_key=key, check_name=FRESHNESS_CHECK, passed=False, metadata=metadata,
            description=f"{day} was materialized with no trace: no data arrived for that day")
    return dg.AssetCheckResult(asset_key=key, check_name=FRESHNESS_CHECK, passed=True, metadata=metadata,
                               description=f"{day} arrived" + (f" ({rows} rows)" if rows is not None else ""))


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(
        FRESHNESS_CHECK, asset=asset,
        description=f"The newest due day (day D is due at {DUE_AFTER.seconds // 3600:02d}:00 UTC on D+1) has been "
                    "materialized" + (" with at least one row" if needs_rows else "")
                    + ". Evaluated by freshness_sensor; a run that rebuilds the asset leaves it to the sensor.")
        for asset, needs_rows in DAILY_ASSETS.items()],
    can_subset=True,
    name="daily_freshness_checks",
    description="Freshness of the daily assets: a day that does not arrive shows as a failed check.",
)
def daily_freshness_checks(context: dg.AssetCheckExecutionContext):
    rebuilt_here = context.job_def.asset_layer.executable_asset_keys
    now = utcnow()
    for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
        if check_key.asset_key in rebuilt_here:
            context.log.info(f"{check_key.asset_key.to_user_string()}: this run rebuilds it; freshness_sensor "
                             "evaluates its freshness after the run")
            continue
        yield freshness_result(context.instance, check_key.asset_key.to_user_string(), now)


def _sensor_state(instance: dg.DagsterInstance, day: date) -> dict[str, str]:
    """Per asset: the due day and its newest materialization; a change calls for a new verdict."""
    state = {}
    for asset in DAILY_ASSETS:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
        state[asset] = f"{day}|{records[0].storage_id if records else 0}"
    return state


@dg.sensor(
    name="freshness_sensor",
    asset_selection=dg.AssetSelection.checks(daily_freshness_checks),
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the daily assets' freshness checks when a new day becomes due (02:00 UTC) and after each "
                "materialization of the asset, so a day that does not arrive shows as a failed check.",
)
def freshness_sensor(context: dg.SensorEvaluationContext):
    day = due_day(utcnow())
    before = json.loads(context.cursor) if context.cursor else {}
    now = _sensor_state(context.instance, day)
    changed = [asset for asset, token in now.items() if before.get(asset) != token]
    context.update_cursor(json.dumps(now, sort_keys=True))
    if not before:
        # A daemon that just started (e.g. `quickstart.py ui` after the demo) launches nothing:
        # the first verdicts come when the next day is due or a daily asset is materialized.
        return dg.SkipReason(f"first evaluation (due day {day}): freshness verdicts start with the next due day "
                             "or the next materialization")
    if not changed:
        return dg.SkipReason(f"due day {day}: no daily asset materialized since the last verdicts")
    return dg.RunRequest(asset_check_keys=[dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in changed],
                         tags=automation_tags("freshness_sensor", f"freshness of {', '.join(changed)} (due day {day})"))
