"""The daily partitions start at the first day with data, not two years before it."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from evalflow import cli
from evalflow.lib.common.settings import SettingError, load_settings, record_first_day


def test_the_start_comes_from_the_setting_then_the_recorded_first_day_then_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EVALFLOW_PARTITIONS_START", raising=False)
    assert load_settings().partitions_start == "2024-01-01"  # nothing landed yet
    assert record_first_day(tmp_path, date(2026, 10, 1)) is True
    assert load_settings().partitions_start == "2026-10-01"
    assert record_first_day(tmp_path, date(2026, 10, 9)) is False  # later days never move it
    assert record_first_day(tmp_path, date(2026, 9, 20)) is True
    assert load_settings().partitions_start == "2026-09-20"
    monkeypatch.setenv("EVALFLOW_PARTITIONS_START", "2025-01-01")
    assert load_settings().partitions_start == "2025-01-01"


def test_a_damaged_record_is_one_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EVALFLOW_PARTITIONS_START", raising=False)
    (tmp_path / "partitions_start").write_text("yesterday\n")
    with pytest.raises(SettingError, match="partitions_start must be a date"):
        load_settings()


def test_days_landed_before_the_first_partition_are_materialized_in_the_same_run(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("EVALFLOW_PARTITIONS_START", raising=False)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    record_first_day(data, date(2026, 10, 5))  # recorded by an earlier landing
    (data / "landing").mkdir(parents=True)
    (data / "landing" / "late.jsonl").write_text(
        '{"trace_id": "t1", "timestamp": "2026-10-02T10:00:00Z", "output": "x"}\n'
        '{"trace_id": "t2", "timestamp": "2026-10-06T10:00:00Z", "output": "y"}\n')

    assert cli.main(["run", "--select", "landed_traces", "--select", "raw_traces"]) == 0

    assert "the daily partitions now start at 2026-10-02" in capsys.readouterr().err
    assert (data / "partitions_start").read_text().strip() == "2026-10-02"
    with duckdb.connect(str(data / "raw" / "raw.duckdb"), read_only=True) as con:
        days = con.execute("SELECT CAST(event_date AS VARCHAR) FROM raw_traces ORDER BY 1").fetchall()
    assert days == [("2026-10-02",), ("2026-10-06",)]
    # The runs are named jobs tagged with their phase and the command that started them.
    import dagster as dg

    runs = dg.DagsterInstance.get().get_runs()
    assert {r.job_name for r in runs} == {"landing_job", "daily_partitions_job"}
    assert {r.tags["evalflow/command"] for r in runs} == {"evalflow run --select landed_traces --select raw_traces"}
    assert {r.tags["evalflow/phase"] for r in runs} == {"landing", "daily partitions"}
