"""The Dagster side of ingestion: assets, checks, sensors and the schedule, on a real DuckDB file."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from evalflow.defs.ingest.assets import CONTRACT_CHECK, REJECT_RATE_CHECK, landed_traces, raw_traces
from evalflow.defs.ingest.automation import (
    daily_ingest_schedule,
    landed_days_sensor,
    landing_file_sensor,
    partition_range_request,
)
from evalflow.defs.resources import WarehouseResource
from evalflow.lib.common.warehouse import Warehouse


def write_day(landing: Path, day: str, count: int, bad: int = 0, name: str | None = None) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    with (landing / (name or f"{day}.jsonl")).open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "trace_id": f"{day}-{i}", "timestamp": f"{day}T{i % 24:02d}:30:00Z", "status": "ok",
                "messages": [{"role": "user", "content": f"q{i}"}], "output": "a", "latency_ms": 100.0,
            }) + "\n")
        for _ in range(bad):
            handle.write("{broken\n")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def materialize(selection, data_dir: Path, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([landed_traces, raw_traces], selection=selection, instance=instance,
                          resources={"warehouse": WarehouseResource(data_dir=str(data_dir))},
                          raise_on_error=False, **kwargs)


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_landing_then_partitions_with_accounting_metadata(data_dir):
    write_day(data_dir / "landing", "2026-10-05", 40, bad=0)
    write_day(data_dir / "landing", "2026-10-06", 60)
    instance = dg.DagsterInstance.ephemeral()

    landing = materialize([landed_traces], data_dir, instance)
    assert landing.success
    meta = landing.asset_materializations_for_node("landed_traces")[0].metadata
    assert meta["lines_read"].value == 100 and meta["ingested"].value == 100
    assert sorted(meta["event_dates"].value) == ["2026-10-05", "2026-10-06"]

    daily = materialize([raw_traces], data_dir, instance, tags=range_tags("2026-10-05", "2026-10-06"))
    assert daily.success
    # One materialization per day, each with that day's own row count (not the run's 100).
    rows = {m.partition: m.metadata["dagster/row_count"].value
            for m in daily.asset_materializations_for_node("raw_traces")}
    assert rows == {"2026-10-05": 40, "2026-10-06": 60}
    assert check_results(daily) == {REJECT_RATE_CHECK: True, CONTRACT_CHECK: True}

    # Again, over the same days: the warehouse does not grow.
    materialize([landed_traces], data_dir, instance)
    materialize([raw_traces], data_dir, instance, tags=range_tags("2026-10-05", "2026-10-06"))
    assert Warehouse(data_dir / "raw" / "raw.duckdb").count("raw_traces") == 100


def test_reject_rate_check_fails_and_blocks_above_threshold(data_dir, monkeypatch):
    write_day(data_dir / "landing", "2026-10-05", 95, bad=5)  # 5% rejected
    instance = dg.DagsterInstance.ephemeral()
    materialize([landed_traces], data_dir, instance)

    monkeypatch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.01")
    strict = materialize([raw_traces], data_dir, instance, partition_key="2026-10-05")
    monkeypatch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.10")
    lenient = materialize([raw_traces], data_dir, instance, partition_key="2026-10-05")

    assert check_results(strict)[REJECT_RATE_CHECK] is False
    evaluation = [e for e in strict.get_asset_check_evaluations() if e.check_name == REJECT_RATE_CHECK][0]
    assert evaluation.metadata["reject_rate"].value == pytest.approx(0.05)
    assert check_results(lenient)[REJECT_RATE_CHECK] is True


def test_a_wholly_bad_file_landed_with_good_ones_counts_in_the_reject_rate_check(data_dir, monkeypatch):
    # The bad file feeds no partition (no line of it became a trace); it still landed in the
    # same landing as the day's good file, so the day's check must see it.
    write_day(data_dir / "landing", "2026-10-05", 95)
    (data_dir / "landing" / "garbage.jsonl").write_bytes(b"\x00\x01\x02 not a trace\n" * 5)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize([landed_traces], data_dir, instance).success

    monkeypatch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.01")
    strict = materialize([raw_traces], data_dir, instance, partition_key="2026-10-05")

    assert check_results(strict)[REJECT_RATE_CHECK] is False
    evaluation = [e for e in strict.get_asset_check_evaluations() if e.check_name == REJECT_RATE_CHECK][0]
    assert evaluation.metadata["quarantined_lines"].value == 5
    assert evaluation.metadata["lines_read"].value == 100

    # A later landing of good files only: its own check does not inherit the earlier bad file.
    write_day(data_dir / "landing", "2026-10-07", 50)
    materialize([landed_traces], data_dir, instance)
    later = materialize([raw_traces], data_dir, instance, partition_key="2026-10-07")
    assert check_results(later)[REJECT_RATE_CHECK] is True


def test_a_landing_of_only_bad_files_counts_on_the_day_it_landed(data_dir):
    # No partition of event time is fed, so no run follows the landing; the daily schedule
    # rebuilds the landing day's partition next, and its check counts the file.
    from evalflow.lib.ingest.landing import reject_rate_for_days

    write_day(data_dir / "landing", "2026-10-05", 0, bad=4, name="all-bad.jsonl")
    instance = dg.DagsterInstance.ephemeral()
    assert materialize([landed_traces], data_dir, instance).success
    store = Warehouse(data_dir / "raw" / "raw.duckdb")
    landed_day = store.query("SELECT landed_at FROM landed_files")["landed_at"][0].astimezone(timezone.utc).date()

    assert reject_rate_for_days(store, [landed_day]) == (1.0, 4, 4)
    assert reject_rate_for_days(store, [date(2026, 10, 5)]) == (0.0, 0, 0)


def test_landing_sensor_requests_a_run_only_when_files_change(data_dir):
    instance = dg.DagsterInstance.ephemeral()
    empty = landing_file_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(empty, dg.SkipReason)

    write_day(data_dir / "landing", "2026-10-05", 3)
    context = dg.build_sensor_context(instance=instance)
    first = landing_file_sensor(context)
    assert isinstance(first, dg.RunRequest)
    unchanged = landing_file_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(unchanged, dg.SkipReason)

    write_day(data_dir / "landing", "2026-10-06", 3)
    changed = landing_file_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(changed, dg.RunRequest) and changed.run_key != first.run_key


def test_landed_days_become_one_partition_range_run():
    request = partition_range_request(["2026-10-07", "2026-10-05", "2026-10-06"], run_key="42")
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-05"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-10-07"
    assert partition_range_request([], run_key="43") is None
    assert partition_range_request(["1990-01-01"], run_key="44") is None  # before the partitions


def test_landed_days_sensor_reads_the_materialization(data_dir):
    write_day(data_dir / "landing", "2026-10-05", 3)
    instance = dg.DagsterInstance.ephemeral()
    materialize([landed_traces], data_dir, instance)
    context = dg.build_sensor_context(instance=instance)
    requests = list(landed_days_sensor.evaluate_tick(context).run_requests)
    assert len(requests) == 1
    assert requests[0].tags["dagster/asset_partition_range_start"] == "2026-10-05"


def test_daily_schedule_rebuilds_yesterday():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 10, 9, 0, 15, tzinfo=timezone.utc))
    request = daily_ingest_schedule(context)
    assert request.partition_key == "2026-10-08"


def test_code_location_loads_every_definition():
    from evalflow.definitions import defs

    definitions = defs()
    keys = {k.to_user_string() for a in definitions.assets for k in a.keys}
    assert {"landed_traces", "raw_traces"} <= keys
    assert definitions.resolve_job_def("daily_ingest_job") is not None
    assert {s.name for s in definitions.sensors} >= {"landing_file_sensor", "landed_days_sensor"}
    assert {s.name for s in definitions.schedules} >= {"daily_ingest_schedule"}
