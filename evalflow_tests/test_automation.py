"""Sensors and schedules as the daemon evaluates them: no replay of what `evalflow run` already
did, a launch for what is new, and tags on every run saying what started it and why."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from evalflow.defs.ingest import automation
from evalflow.defs.ingest.assets import landed_traces, raw_traces
from evalflow.defs.ingest.automation import daily_ingest_schedule, landed_days_sensor, landing_file_sensor
from evalflow.defs.resources import WarehouseResource
from evalflow.defs.run_tags import REASON_TAG, STARTED_BY_TAG


def write_day(landing: Path, day: str, count: int = 3) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / f"{day}.jsonl"
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "trace_id": f"{day}-{i}", "timestamp": f"{day}T{i % 24:02d}:30:00Z", "status": "ok",
                "messages": [{"role": "user", "content": f"q{i}"}], "output": "a", "latency_ms": 100.0,
            }) + "\n")
    return path


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:  # a temporary DAGSTER_HOME with SQLite storage
        yield instance


def materialize(selection, data_dir: Path, instance: dg.DagsterInstance, tags=None) -> dg.ExecuteInProcessResult:
    """What a daemon-launched run does (no `evalflow run` tags unless given)."""
    result = dg.materialize([landed_traces, raw_traces], selection=selection, instance=instance,
                            resources={"warehouse": WarehouseResource(data_dir=str(data_dir))}, tags=tags)
    assert result.success
    return result


def day_range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def landing_tick(instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="landing_file_sensor") as context:
        return landing_file_sensor(context), context.cursor


def days_tick(instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="landed_days_sensor") as context:
        return landed_days_sensor(context), context.cursor


def test_after_evalflow_run_a_fresh_daemon_launches_nothing_until_a_file_lands(data_dir, instance):
    from evalflow.cli.runner import run_pipeline

    landing = data_dir / "landing"
    for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
        write_day(landing, day)
    # The demo's path: `evalflow run` lands the folder, then builds the daily partitions.
    results = run_pipeline(instance, progress=lambda line: None, selection=["landed_traces", "raw_traces"],
                           command="evalflow run --select landed_traces --select raw_traces")
    assert [r.success for r in results] == [True, True]

    # A fresh daemon: no cursor on either sensor.
    landing_result, landing_cursor = landing_tick(instance)
    assert isinstance(landing_result, dg.SkipReason)
    assert landing_result.skip_message == "3 landing files, all already landed"
    assert landing_cursor == automation.landing_fingerprint(sorted(landing.glob("*.jsonl")))
    days_result, days_cursor = days_tick(instance)
    assert isinstance(days_result, dg.SkipReason)
    assert "days 2026-10-05..2026-10-07, rebuilt since by run" in days_result.skip_message
    assert "(evalflow " in days_result.skip_message  # the covering run's evalflow/command tag
    assert days_cursor is not None
    assert isinstance(days_tick(instance, days_cursor)[0], dg.SkipReason)

    # A new file lands: the landing sensor launches, saying why.
    write_day(landing, "2026-10-08")
    request, landing_cursor = landing_tick(instance, landing_cursor)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[STARTED_BY_TAG] == "landing_file_sensor"
    assert request.tags[REASON_TAG] == "1 new landing file: 2026-10-08.jsonl"

    # The daemon's landing_job lands it: the days sensor launches raw_traces for its day only.
    materialize([landed_traces], data_dir, instance, tags=request.tags)
    request, days_cursor = days_tick(instance, days_cursor)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[STARTED_BY_TAG] == "landed_days_sensor"
    assert request.tags[REASON_TAG] == "day 2026-10-08 landed"
    assert {k: request.tags[k] for k in day_range("", "")} == day_range("2026-10-08", "2026-10-08")
    assert isinstance(days_tick(instance, days_cursor)[0], dg.SkipReason)
    # ...and the landing sensor, the folder unchanged since, does not ask again.
    assert isinstance(landing_tick(instance, landing_cursor)[0], dg.SkipReason)


def test_landing_sensor_hashes_only_when_the_folder_changed_and_counts_only_new_files(
        data_dir, instance, monkeypatch):
    landing = data_dir / "landing"
    write_day(landing, "2026-10-05")
    materialize([landed_traces], data_dir, instance)
    hashed: list[Path] = []
    real_hash = automation.file_sha256
    monkeypatch.setattr(automation, "file_sha256", lambda path: hashed.append(path) or real_hash(path))

    skip, cursor = landing_tick(instance)
    assert isinstance(skip, dg.SkipReason) and len(hashed) == 1
    hashed.clear()
    assert isinstance(landing_tick(instance, cursor)[0], dg.SkipReason)
    assert hashed == []  # unchanged folder: stat only

    write_day(landing, "2026-10-06")
    write_day(landing, "2026-10-07")
    (landing / "copy-of-05.jsonl").write_bytes((landing / "2026-10-05.jsonl").read_bytes())
    request, new_cursor = landing_tick(instance, cursor)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[REASON_TAG] == "2 new landing files: 2026-10-06.jsonl, 2026-10-07.jsonl"
    assert request.run_key == new_cursor != cursor

    # A file touched but not changed: hashed once, nothing launched.
    materialize([landed_traces], data_dir, instance)
    os.utime(landing / "2026-10-06.jsonl", ns=(1, 1))
    skip, _ = landing_tick(instance, new_cursor)
    assert isinstance(skip, dg.SkipReason) and skip.skip_message == "4 landing files, all already landed"


HOLD_THE_FILE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def test_landing_sensor_skips_the_tick_while_a_run_holds_the_raw_store(data_dir, instance, monkeypatch):
    write_day(data_dir / "landing", "2026-10-05")
    materialize([landed_traces], data_dir, instance)
    write_day(data_dir / "landing", "2026-10-06")
    monkeypatch.setattr(automation, "SENSOR_LOCK_WAIT_S", 0.3)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_FILE, str(data_dir / "raw" / "raw.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        skip, cursor = landing_tick(instance)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert isinstance(skip, dg.SkipReason)
    assert f"PID {holder.pid}" in skip.skip_message and "next tick" in skip.skip_message
    assert cursor is None  # looked at again next tick
    request, _ = landing_tick(instance)
    assert isinstance(request, dg.RunRequest) and request.tags[REASON_TAG] == "1 new landing file: 2026-10-06.jsonl"


def test_days_sensor_launches_for_the_daemons_own_landing_even_without_a_cursor(data_dir, instance):
    write_day(data_dir / "landing", "2026-10-05")
    materialize([landed_traces], data_dir, instance, tags={STARTED_BY_TAG: "landing_file_sensor"})
    request, cursor = days_tick(instance)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-05"
    assert request.tags[REASON_TAG] == "day 2026-10-05 landed"
    assert cursor is not None


def test_days_sensor_rebuilds_only_the_days_not_rebuilt_since_and_joins_landings(data_dir, instance):
    landing = data_dir / "landing"
    write_day(landing, "2026-10-05")
    materialize([landed_traces], data_dir, instance)
    _, cursor = days_tick(instance)

    # Two landings between ticks; one of the second's days rebuilt by hand since.
    write_day(landing, "2026-10-06")
    materialize([landed_traces], data_dir, instance)
    write_day(landing, "2026-10-07")
    write_day(landing, "2026-10-09")
    materialize([landed_traces], data_dir, instance)
    materialize([raw_traces], data_dir, instance, tags=day_range("2026-10-09", "2026-10-09"))
    request, cursor = days_tick(instance, cursor)
    assert isinstance(request, dg.RunRequest)
    assert {k: request.tags[k] for k in day_range("", "")} == day_range("2026-10-06", "2026-10-07")
    assert request.tags[REASON_TAG] == "days 2026-10-06..2026-10-07 landed (2 landings)"
    assert isinstance(days_tick(instance, cursor)[0], dg.SkipReason)


def test_days_sensor_leaves_the_days_to_a_running_evalflow_run(data_dir, instance, monkeypatch):
    from evalflow.cli.instance import HOST_TAG, PID_TAG

    write_day(data_dir / "landing", "2026-10-05")
    runner = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), "evalflow/phase": "landing"}
    materialize([landed_traces], data_dir, instance, tags=runner)

    # Just landed by a live `evalflow run`: its own daily run follows, so wait (cursor kept).
    skip, cursor = days_tick(instance)
    assert isinstance(skip, dg.SkipReason) and skip.skip_message.startswith("waiting:")
    assert f"PID {os.getpid()}" in skip.skip_message and cursor is None
    # The runner built the day: nothing to do.
    materialize([raw_traces], data_dir, instance, tags={**runner, "evalflow/phase": "daily partitions",
                                                         **day_range("2026-10-05", "2026-10-05")})
    skip, cursor = days_tick(instance)
    assert isinstance(skip, dg.SkipReason) and "rebuilt since" in skip.skip_message and cursor is not None

    # A runner that landed without building (`evalflow run --select landed_traces`): once the
    # grace time is over, the sensor builds the days itself.
    write_day(data_dir / "landing", "2026-10-06")
    materialize([landed_traces], data_dir, instance, tags=runner)
    assert isinstance(days_tick(instance, cursor)[0], dg.SkipReason)
    monkeypatch.setattr(automation, "RUNNER_GRACE_S", 0.0)
    request, _ = days_tick(instance, cursor)
    assert isinstance(request, dg.RunRequest) and request.tags[REASON_TAG] == "day 2026-10-06 landed"


def test_daily_schedule_says_why():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 10, 9, 0, 15, tzinfo=timezone.utc))
    request = daily_ingest_schedule(context)
    assert request.tags[STARTED_BY_TAG] == "daily_ingest_schedule"
    assert "2026-10-08" in request.tags[REASON_TAG]
