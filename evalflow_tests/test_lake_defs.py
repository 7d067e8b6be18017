"""lake_tables: the analysts' tables published to the lake, only when they changed."""

from __future__ import annotations

import dagster as dg

from evalflow.defs.lake.assets import PUBLISHED, lake_tables
from evalflow.defs.resources import WarehouseResource
from evalflow.lib.common.lake import connect_lake
from evalflow.lib.common.settings import load_settings
from evalflow.lib.redact.store import analyst_warehouse


def _materialize() -> dict:
    result = dg.materialize([lake_tables], resources={"warehouse": WarehouseResource()})
    assert result.success
    return result.asset_materializations_for_node("lake_tables")[0].metadata


def test_the_warehouse_tables_analysts_read_reach_the_lake_and_an_unchanged_table_is_not_copied_again(
        tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))  # its own folder: it makes a toy eval_cases
    settings = load_settings()
    warehouse = analyst_warehouse(settings)  # creates the base tables (landed_files, quarantine)
    with warehouse.transaction() as con:
        con.execute("CREATE TABLE eval_cases (case_id VARCHAR, split VARCHAR)")
        con.execute("INSERT INTO eval_cases VALUES ('case-1', 'dev'), ('case-2', 'holdout')")
        con.execute("CREATE TABLE not_published (x INTEGER)")
    first = _materialize()
    assert "eval_cases" in first["copied"].value and first["rows_copied"].value >= 2
    with connect_lake(settings.data_dir, read_only=True) as con:
        assert con.execute("SELECT case_id, split FROM lake.eval_cases ORDER BY 1").fetchall() == [
            ("case-1", "dev"), ("case-2", "holdout")]
        lake_tables_now = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
    assert "not_published" not in lake_tables_now and "not_published" not in PUBLISHED
    again = _materialize()
    assert again["tables_copied"].value == 0 and again["lake_snapshot"].value == first["lake_snapshot"].value
    with warehouse.transaction() as con:
        con.execute("INSERT INTO eval_cases VALUES ('case-3', 'dev')")
    third = _materialize()
    assert third["copied"].value == "eval_cases" and third["lake_snapshot"].value > first["lake_snapshot"].value
