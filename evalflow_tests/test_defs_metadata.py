"""What a data engineer sees in the Dagster UI (docs/ui.md): every asset's owners, table name,
column schema and code reference; each day's own figures on each day's materialization; a
description on every job, schedule and sensor; freshness checks that fail for a day that does not
arrive."""

from __future__ import annotations

import inspect
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from evalflow.defs import freshness
from evalflow.defs.freshness import FRESHNESS_CHECK, daily_freshness_checks, freshness_result, freshness_sensor
from evalflow.defs.ingest.assets import landed_traces, raw_traces
from evalflow.defs.metadata import OWNERS
from evalflow.defs.resources import WarehouseResource
from evalflow.defs.signals.assets import FAILURE_CLUSTERS_COLUMNS, TRACE_SIGNALS_COLUMNS
from evalflow.lib.common.catalog import TABLES
from evalflow.lib.common.dagster_metadata import RAW_TRACE_COLUMNS, ddl_columns
from evalflow.lib.ingest.store import RAW_SCHEMA

ROW_COUNT = "dagster/row_count"
RANGE = {"dagster/asset_partition_range_start": "2026-10-05", "dagster/asset_partition_range_end": "2026-10-06"}


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from evalflow.definitions import defs

    return defs()


@pytest.fixture(scope="module")
def asset_specs(definitions) -> dict[str, dg.AssetSpec]:
    graph = definitions.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def write_day(landing: Path, day: str, count: int, bad: int = 0) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    with (landing / f"{day}.jsonl").open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "trace_id": f"{day}-{i}", "timestamp": f"{day}T{i % 24:02d}:30:00Z", "status": "ok",
                "messages": [{"role": "user", "content": f"q{i}"}], "output": "a", "latency_ms": 100.0,
            }) + "\n")
        handle.write("{broken\n" * bad)


# ----------------------------------------------------------------------------- per partition
def test_a_run_over_two_days_reports_each_days_own_row_count(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.5")
    write_day(data_dir / "landing", "2026-10-05", 3, bad=1)
    write_day(data_dir / "landing", "2026-10-06", 7)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(data_dir=str(data_dir))}
    # The freshness checks go with raw_traces, as Dagster adds an asset's checks to its runs.
    assets = [landed_traces, raw_traces, daily_freshness_checks]

    landing = dg.materialize(assets, selection=[landed_traces], instance=instance, resources=resources)
    meta = landing.asset_materializations_for_node("landed_traces")[0].metadata
    assert meta[ROW_COUNT].value == 10  # staged traces in the raw store
    assert meta["quarantine_rate"].value == pytest.approx(1 / 11, abs=1e-4)

    daily = dg.materialize(assets, selection=[raw_traces], instance=instance, resources=resources, tags=RANGE)
    assert daily.success
    # What the UI reads: each partition's latest materialization, with that day's count only.
    stored = {day: instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_traces.key, asset_partitions=[day]), limit=1).records
        for day in ("2026-10-05", "2026-10-06")}
    assert {day: r[0].asset_materialization.metadata[ROW_COUNT].value for day, r in stored.items()} == {
        "2026-10-05": 3, "2026-10-06": 7}
    # No run total copied onto each day.
    for records in stored.values():
        assert set(records[0].asset_materialization.metadata) == {ROW_COUNT}
    # The run that rebuilt raw_traces left its freshness to freshness_sensor.
    assert not [e for e in daily.get_asset_check_evaluations() if e.check_name == FRESHNESS_CHECK]


@pytest.fixture(scope="module")
def demo(small_demo, tmp_path_factory):
    """A copy of the session's small demo (`evalflow demo`: every asset, as `evalflow run`
    materializes it; 2 days x 60 traces): (data dir, its Dagster instance, its two days)."""
    import shutil

    root = tmp_path_factory.mktemp("ui_demo")
    shutil.copytree(small_demo / "data", root / "data")
    shutil.copytree(small_demo / "dagster_home", root / "dagster_home")
    instance = dg.DagsterInstance.from_config(str(root / "dagster_home"))
    days = sorted(instance.get_materialized_partitions(dg.AssetKey("raw_traces")))
    assert len(days) == 2
    yield root / "data", instance, days
    instance.dispose()


def _count(data_dir: Path, sql: str, store: str = "warehouse/evalflow.duckdb"):
    with duckdb.connect(str(data_dir / store), read_only=True) as con:
        return con.execute(sql).fetchall()


DAILY_TABLES = {"raw_traces": ("raw/raw.duckdb", "raw_traces"), "redacted_traces": (None, "redacted_traces"),
                "pii_audit": (None, "pii_audit"), "trace_embeddings": (None, "trace_embeddings")}
WINDOW_TABLES = {"landed_traces": ("raw/raw.duckdb", "staged_traces"), "intent_clusters": (None, "intent_assignments"),
                 "intent_catalog": (None, "intent_catalog"), "trace_signals": (None, "trace_signals"),
                 "failure_taxonomy": (None, "failure_clusters"), "eval_candidates": (None, "eval_candidates"),
                 "annotation_queue": (None, "annotation_batches"), "labels": (None, "labels"),
                 "consensus_labels": (None, "consensus_labels"), "label_agreement": (None, "label_agreement"),
                 "judge_calibration": (None, "judge_calibrations"), "judge_labels": (None, "judge_labels"),
                 "eval_cases": (None, "eval_cases")}
# The reports' tables: drift_history per week (each week's materialization counts its own rows),
# alerts (the nightly audit's and the weekly report's), the contamination findings of a run.
REPORT_TABLES = {"drift_report": (None, "drift_history"), "prompt_hash_audit": (None, "alerts"),
                 "contamination_report": (None, "contamination_findings")}


def test_each_daily_partition_carries_its_own_figures_from_the_table(demo):
    data_dir, instance, demo_days = demo
    for asset, (store, table) in DAILY_TABLES.items():
        per_day = {str(day): n for day, n in _count(
            data_dir, f"SELECT event_date, count(*) FROM {table} GROUP BY 1", store or "warehouse/evalflow.duckdb")}
        days = sorted(instance.get_materialized_partitions(dg.AssetKey(asset)))
        assert days == demo_days, asset
        for day in days:
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1).records[0]
            assert record.asset_materialization.metadata[ROW_COUNT].value == per_day.get(day, 0), (asset, day)
    # Plotted per day: redaction's quarantine rate; detections per day add up to the table's.
    detections = 0
    for day in demo_days:
        redacted = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("redacted_traces"), asset_partitions=[day]), limit=1).records[0]
        assert 0 <= redacted.asset_materialization.metadata["quarantine_rate"].value <= 1
        audit = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("pii_audit"), asset_partitions=[day]), limit=1).records[0]
        detections += audit.asset_materialization.metadata["detections"].value
    assert detections == _count(data_dir, "SELECT sum(detections) FROM pii_audit")[0][0]


def test_run_figures_are_one_observation_not_copied_onto_each_day(demo):
    _, instance, demo_days = demo
    for day in demo_days:
        record = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("trace_embeddings"), asset_partitions=[day]), limit=1).records[0]
        assert "cache_hits" not in record.asset_materialization.metadata
    observations = instance.fetch_observations(dg.AssetKey("trace_embeddings"), limit=10).records
    assert len(observations) == 1 and observations[0].asset_observation.partition is None
    assert observations[0].asset_observation.metadata["traces"].value == 120


def test_every_other_asset_reports_its_tables_row_count(demo):
    data_dir, instance, _ = demo
    for asset, (store, table) in WINDOW_TABLES.items():
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        rows = _count(data_dir, f"SELECT count(*) FROM {table}", store or "warehouse/evalflow.duckdb")[0][0]
        assert event.asset_materialization.metadata[ROW_COUNT].value == rows, asset
    for record in instance.fetch_materializations(dg.AssetKey("drift_report"), limit=10).records:
        week = record.asset_materialization.partition
        rows = _count(data_dir, f"SELECT count(*) FROM drift_history WHERE week_start = '{week}'")[0][0]
        assert rows and record.asset_materialization.metadata[ROW_COUNT].value == rows, week
    clusters = instance.get_latest_materialization_event(dg.AssetKey("intent_clusters"))
    assert 0 <= clusters.asset_materialization.metadata["noise_share"].value <= 1
    signals = instance.get_latest_materialization_event(dg.AssetKey("trace_signals"))
    assert 0 <= signals.asset_materialization.metadata["failure_share"].value <= 1


# ----------------------------------------------------------------------------- definitions
def test_every_asset_has_owners_table_name_and_a_described_column_schema(asset_specs):
    # The lake's assets write lake tables (copies of the warehouse's; dataset versions), not a
    # warehouse table of their own.
    lake_assets = {"lake_tables": "lake.main.*", "golden_set": "lake.main.dataset_cases",
                   "rolling_set": "lake.main.dataset_cases"}
    assert set(asset_specs) == set(DAILY_TABLES) | set(WINDOW_TABLES) | set(REPORT_TABLES) | set(lake_assets)
    specs = dict(asset_specs)
    for name, table in lake_assets.items():
        lake = specs.pop(name)
        assert lake.owners == OWNERS and lake.description and lake.metadata["dagster/table_name"] == table, name
    for name, spec in specs.items():
        store, table = (DAILY_TABLES | WINDOW_TABLES | REPORT_TABLES)[name]
        assert spec.owners == OWNERS, name
        assert spec.metadata["dagster/table_name"] == f"{'raw' if store else 'warehouse'}.{table}", name
        columns = spec.metadata["dagster/column_schema"].columns
        assert columns and all(c.description and c.type for c in columns), name
        assert spec.description, name


def test_column_schemas_are_the_stores_tables(asset_specs):
    def names(asset):
        return [c.name for c in asset_specs[asset].metadata["dagster/column_schema"].columns]

    # From the DDL: the raw store's tables, with its NOT NULL and primary key.
    raw = {c.name: c for c in asset_specs["raw_traces"].metadata["dagster/column_schema"].columns}
    assert list(raw) == [c.name for c in ddl_columns(RAW_SCHEMA)["raw_traces"]]
    assert raw["trace_id"].constraints.unique and not raw["trace_id"].constraints.nullable
    assert raw["timestamp"].type == "TIMESTAMP WITH TIME ZONE"
    # Every warehouse table's columns are the catalog's (the catalog's own test ties it to the DDL
    # and docs/warehouse.md); the frame-built tables' columns are the frames' (plus the run stamp).
    for asset, (store, table) in (DAILY_TABLES | WINDOW_TABLES).items():
        if store is None:
            assert names(asset) == list(TABLES[table][1]), asset
    assert list(TRACE_SIGNALS_COLUMNS) == list(TABLES["trace_signals"][1])
    assert list(FAILURE_CLUSTERS_COLUMNS) == list(TABLES["failure_clusters"][1])


def test_raw_store_columns_never_claim_to_be_redacted():
    trace_columns = TABLES["redacted_traces"][1]
    redacted_words = {name for name, text in trace_columns.items()
                      if re.search(r"\bredacted\b|pseudonymis", text, re.I)}
    assert redacted_words <= set(RAW_TRACE_COLUMNS) <= set(trace_columns)
    assert not any("redacted." in text or text.startswith("Pseudonymised") for text in RAW_TRACE_COLUMNS.values())


def test_every_asset_links_to_its_function(asset_specs, definitions):
    functions = {key.to_user_string(): a.op.compute_fn.decorated_fn
                 for a in definitions.assets if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    for name, spec in asset_specs.items():
        (reference,) = spec.metadata["dagster/code_references"].code_references
        function = functions[name]
        assert Path(reference.file_path) == Path(inspect.getsourcefile(function)), name
        assert reference.line_number == inspect.getsourcelines(function)[1], name


def test_every_job_schedule_sensor_and_check_has_a_description(definitions):
    described = [*definitions.jobs, *definitions.schedules, *definitions.sensors]
    assert described
    assert [getattr(d, "name", d) for d in described if not d.description] == []
    graph = definitions.resolve_asset_graph()
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).description, key


# ----------------------------------------------------------------------------- freshness
def test_every_daily_asset_has_a_freshness_check(asset_specs, definitions):
    daily = {name for name, spec in asset_specs.items() if spec.partitions_def is not None
             and not isinstance(spec.partitions_def, dg.WeeklyPartitionsDefinition)}
    assert daily == set(freshness.DAILY_ASSETS)
    checks = {key.asset_key.to_user_string() for key in definitions.resolve_asset_graph().asset_check_keys
              if key.name == FRESHNESS_CHECK}
    assert checks == daily
    assert any(s.name == "freshness_sensor" for s in definitions.sensors)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def partitions_from_october(monkeypatch):
    monkeypatch.setattr(freshness, "daily_partitions", dg.DailyPartitionsDefinition(
        start_date="2026-10-01", timezone="UTC", end_offset=1))


def report(instance: dg.DagsterInstance, asset: str, day: str, rows: int) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=day, metadata={ROW_COUNT: rows}))


def test_a_day_that_does_not_arrive_fails_the_freshness_check(partitions_from_october):
    instance = dg.DagsterInstance.ephemeral()
    report(instance, "raw_traces", "2026-10-05", 40)

    # 2026-10-05 is due at 02:00 UTC on the 6th; the 6th is due at 02:00 on the 7th.
    assert freshness_result(instance, "raw_traces", at("2026-10-06T03:00")).passed
    assert freshness_result(instance, "raw_traces", at("2026-10-07T01:59")).passed
    missing = freshness_result(instance, "raw_traces", at("2026-10-07T02:00"))
    assert not missing.passed
    assert missing.metadata["due_day"].value == "2026-10-06"
    assert missing.metadata["newest_day_materialized"].value == "2026-10-05"
    assert missing.metadata["days_behind"].value == 1
    assert "2026-10-06 has not arrived" in missing.description

    # A day rebuilt with no trace has not arrived either (for the trace tables).
    report(instance, "raw_traces", "2026-10-06", 0)
    empty = freshness_result(instance, "raw_traces", at("2026-10-07T03:00"))
    assert not empty.passed and "no trace" in empty.description
    report(instance, "raw_traces", "2026-10-06", 12)
    assert freshness_result(instance, "raw_traces", at("2026-10-07T03:00")).passed
    # pii_audit has no row on a day without PII: materialized is enough.
    report(instance, "pii_audit", "2026-10-06", 0)
    assert freshness_result(instance, "pii_audit", at("2026-10-07T03:00")).passed
    # Before the first day is due, nothing is late.
    assert freshness_result(dg.DagsterInstance.ephemeral(), "raw_traces", at("2026-10-01T12:00")).passed


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None = None):
    # Closed with `with`: an unclosed context keeps the instance's state storage installed after
    # the instance is gone, and later tests' materializations fail on it.
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="freshness_sensor") as context:
        return freshness_sensor(context)


def test_freshness_sensor_asks_for_a_verdict_when_a_day_is_due_or_the_asset_changes(monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    monkeypatch.setattr(freshness, "utcnow", lambda: at("2026-10-07T03:00"))

    # A daemon that just started launches nothing (opening the UI starts no run).
    assert "first evaluation" in sensor_tick(instance).skip_message
    yesterday = json.dumps({a: "2026-10-05|0" for a in freshness.DAILY_ASSETS}, sort_keys=True)
    first = sensor_tick(instance, yesterday)  # a new day became due
    assert {k.asset_key.to_user_string() for k in first.asset_check_keys} == set(freshness.DAILY_ASSETS)
    assert first.tags["evalflow/started_by"] == "freshness_sensor"
    cursor = json.dumps({a: "2026-10-06|0" for a in freshness.DAILY_ASSETS}, sort_keys=True)
    assert isinstance(sensor_tick(instance, cursor), dg.SkipReason)

    report(instance, "raw_traces", "2026-10-06", 5)
    after = sensor_tick(instance, cursor)
    assert [k.asset_key.to_user_string() for k in after.asset_check_keys] == ["raw_traces"]

    monkeypatch.setattr(freshness, "utcnow", lambda: at("2026-10-08T02:30"))  # the 7th is due now
    next_day = sensor_tick(instance, cursor)
    assert len(next_day.asset_check_keys) == len(freshness.DAILY_ASSETS)


def test_a_check_run_evaluates_freshness(demo):
    import sys

    from evalflow.definitions import defs

    data_dir, instance, demo_days = demo
    first, last = (date.fromisoformat(d) for d in demo_days)
    definitions = defs()
    # `evalflow run` reloads the definitions when a landing moves the first day: patch the
    # freshness module these definitions were built from.
    loaded = sys.modules["evalflow.defs.freshness"]
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(
        asset_check_selection={dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in freshness.DAILY_ASSETS})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
        patch.setattr(loaded, "daily_partitions", dg.DailyPartitionsDefinition(start_date=first.isoformat()))
        # The demo's last day is due at 02:00 UTC the day after it.
        patch.setattr(loaded, "utcnow", lambda: at(f"{last + timedelta(days=1)}T03:00"))
        result = job.execute_in_process(instance=instance)
        assert {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()} == {
            a: True for a in freshness.DAILY_ASSETS}
        # Two days later: the two days after the demo's last never came.
        patch.setattr(loaded, "utcnow", lambda: at(f"{last + timedelta(days=3)}T03:00"))
        late = job.execute_in_process(instance=instance)
    verdicts = {e.asset_key.to_user_string(): e for e in late.get_asset_check_evaluations()}
    assert not any(e.passed for e in verdicts.values())
    assert f"{last + timedelta(days=2)} has not arrived" in verdicts["raw_traces"].description
    assert date.fromisoformat(verdicts["raw_traces"].metadata["newest_day_materialized"].value) == last
