"""The monthly refresh: which days it brings in, which candidates it retires, and its schedule
and sensor as Dagster evaluates them."""

from datetime import date, datetime, timezone

import dagster as dg
import pytest

from evalflow.lib.sampling.refresh import days_to_refresh, stale_candidates


def test_refresh_covers_every_ingested_day_without_embeddings():
    result = days_to_refresh(["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"],
                             ["2026-10-01", "2026-10-02"])
    assert result == ["2026-10-03", "2026-10-04"]


def test_refresh_reruns_the_newest_day_when_nothing_is_missing():
    assert days_to_refresh(["2026-10-02", "2026-10-01"], ["2026-10-01", "2026-10-02"]) == ["2026-10-02"]
    assert days_to_refresh([], []) == []


def _candidate(trace_id, intent_id, day):
    return {"trace_id": trace_id, "intent_id": intent_id, "event_date": day}


def test_stale_candidates_name_their_reason():
    newest = date(2026, 12, 31)
    candidates = [
        _candidate("fresh", "I-0001", date(2026, 12, 1)),
        _candidate("old", "I-0001", date(2026, 9, 1)),
        _candidate("dead-intent", "I-0009", date(2026, 12, 1)),
        _candidate("moved", "I-0001", date(2026, 12, 1)),
        _candidate("gone", "I-0001", date(2026, 12, 1)),
    ]
    current = {"fresh": "I-0001", "old": "I-0001", "dead-intent": "I-0002", "moved": "I-0002"}
    result = {s.trace_id: s.reason for s in stale_candidates(
        candidates, live_intents={"I-0001", "I-0002"}, current_intent=current, newest_day=newest)}
    assert result == {
        "old": "older than 90 days",
        "dead-intent": "intent I-0009 is no longer in the catalog",
        "moved": "trace moved from intent I-0001 to I-0002",
        "gone": "trace no longer in the warehouse",
    }


def test_stale_age_is_configurable_and_validated():
    candidates = [_candidate("t", "I-0001", date(2026, 12, 20))]
    current = {"t": "I-0001"}
    assert stale_candidates(candidates, live_intents={"I-0001"}, current_intent=current,
                            newest_day=date(2026, 12, 31), max_age_days=30) == []
    assert [s.reason for s in stale_candidates(candidates, live_intents={"I-0001"}, current_intent=current,
                                               newest_day=date(2026, 12, 31), max_age_days=7)] == ["older than 7 days"]
    with pytest.raises(ValueError, match="max_age_days"):
        stale_candidates(candidates, live_intents=set(), current_intent=current, newest_day=date(2026, 12, 31),
                         max_age_days=0)


def _report(instance, asset, day):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=day))


def test_monthly_schedule_requests_the_days_not_embedded_yet():
    from evalflow.defs.sampling.automation import monthly_refresh_schedule

    with dg.instance_for_test() as instance:
        for day in ("2026-10-01", "2026-10-02", "2026-10-03"):
            _report(instance, "raw_traces", day)
        _report(instance, "trace_embeddings", "2026-10-01")
        # Closed with `with`: an unclosed context keeps the instance's state storage installed
        # after the instance is gone, and later tests' materializations fail on it.
        with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime(2026, 11, 1, 4, tzinfo=timezone.utc)) as context:
            result = monthly_refresh_schedule(context)
    assert isinstance(result, dg.RunRequest)
    assert result.tags["dagster/asset_partition_range_start"] == "2026-10-02"
    assert result.tags["dagster/asset_partition_range_end"] == "2026-10-03"
    assert result.run_key == "monthly-refresh-2026-11"
    assert result.tags["evalflow/started_by"] == "monthly_refresh_schedule"
    assert result.tags["evalflow/reason"] == "monthly refresh of 2 days (2026-10-02..2026-10-03)"


def test_refresh_sensor_starts_the_window_part_and_says_why():
    from evalflow.defs.sampling.automation import refresh_sampling_sensor

    @dg.op
    def noop():
        pass

    @dg.job(name="monthly_refresh_days_job")
    def days_job():
        noop()

    with dg.instance_for_test() as instance:
        run_id = days_job.execute_in_process(instance=instance, tags={"evalflow/refresh": "2026-11"}).run_id
        run = instance.get_run_by_id(run_id)
        success = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event
                   and e.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS][0]
        with dg.build_run_status_sensor_context(
                sensor_name="refresh_sampling_sensor", dagster_event=success, dagster_instance=instance,
                dagster_run=run) as context:
            request = refresh_sampling_sensor(context)
    assert request.run_key == f"sampling-after-{run_id}"
    assert request.tags["evalflow/refresh"] == "2026-11"
    assert request.tags["evalflow/started_by"] == "refresh_sampling_sensor"
    assert request.tags["evalflow/reason"] == f"monthly_refresh_days_job run {run_id[:8]} succeeded (refresh 2026-11)"


def test_monthly_schedule_skips_before_anything_was_ingested():
    from evalflow.defs.sampling.automation import monthly_refresh_schedule

    with dg.instance_for_test() as instance:
        # Closed with `with`: an unclosed context keeps the instance's state storage installed
        # after the instance is gone, and later tests' materializations fail on it.
        with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime(2026, 11, 1, 4, tzinfo=timezone.utc)) as context:
            result = monthly_refresh_schedule(context)
    assert isinstance(result, dg.SkipReason)


def test_refresh_jobs_select_the_assets_they_name():
    from evalflow.definitions import defs

    with dg.instance_for_test():  # loading and resolving asset jobs needs an instance
        definitions = defs()
        days_job = definitions.resolve_job_def("monthly_refresh_days_job")
        window_job = definitions.resolve_job_def("sampling_refresh_job")
    days_keys = {k.to_user_string() for k in days_job.asset_layer.executable_asset_keys}
    window_keys = {k.to_user_string() for k in window_job.asset_layer.executable_asset_keys}
    assert {"redacted_traces", "trace_embeddings"} <= days_keys
    assert {"intent_clusters", "trace_signals", "eval_candidates", "annotation_queue"} <= window_keys
    assert "redacted_traces" not in window_keys
