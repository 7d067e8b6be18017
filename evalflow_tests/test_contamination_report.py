"""The contamination_report asset's run: the latest golden version against a registered corpus
and the eval set's own boundaries, recorded in the warehouse and the lake, with no case text in
what it writes."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from evalflow.lib.common.settings import load_settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.contamination.pipeline import contamination_run
from evalflow.lib.snapshots.versions import promote
from evalflow_tests.test_snapshots import pool, promo

QUESTIONS = [
    "How do I close the savings account I opened for my daughter last spring",
    "Why was the international wire to my landlord returned after three days",
    "Can I change the PIN of my credit card without visiting a branch office",
    "What documents do I need to add a second holder to my checking account",
    "My mortgage payment shows twice on the statement for the same month again",
    "Is there a fee when I withdraw cash abroad with the travel debit card",
]


def _cases():
    cases = pool(len(QUESTIONS) + 2)
    for case, question in zip(cases, QUESTIONS):
        case["input_payload"]["user_query"] = question
    # Two more cases ask the same thing as a case on the other side of the holdout split.
    holdout = next(c for c in cases[:len(QUESTIONS)] if c["split"] == "holdout")
    dev = next(c for c in cases[:len(QUESTIONS)] if c["split"] == "dev")
    for extra in cases[len(QUESTIONS):]:
        source = dev if extra["split"] == "holdout" else holdout
        extra["input_payload"]["user_query"] = source["input_payload"]["user_query"] + "?"
    sources = {holdout["case_id"], dev["case_id"]}
    return cases, [c for c in cases[:len(QUESTIONS)] if c["case_id"] not in sources][-2:]


@pytest.fixture
def golden(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    data_dir = load_settings().data_dir
    cases, planted = _cases()
    promote(data_dir, promo(add=[c["case_id"] for c in cases]), cases)
    corpus = data_dir / "corpora" / "sft.jsonl"
    corpus.parent.mkdir(parents=True)
    docs = [{"id": f"ex-{i}", "prompt": f"Example {i}. User: {c['input_payload']['user_query']}. Assistant: sure."}
            for i, c in enumerate(planted)]
    docs += [{"id": "ex-9", "prompt": "User: what time does the branch on Main Street open. Assistant: at nine."}]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    (data_dir / "contamination.toml").write_text(
        '[[corpus]]\nname = "sft"\nkind = "fine_tuning"\npath = "corpora/sft.jsonl"\nfields = ["prompt"]\n')
    return data_dir, cases, {c["case_id"] for c in planted}


def test_the_golden_cases_inside_a_registered_corpus_are_found_and_recorded(golden):
    data_dir, cases, planted = golden
    warehouse = Warehouse(load_settings().warehouse_path)
    outcome = contamination_run(warehouse, data_dir, run_id="run-1",
                                checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert outcome.golden == "golden@v1"
    assert {c["case_id"] for c in outcome.contaminated_cases()} == planted
    assert outcome.leak_counts().get("holdout|dev", 0) >= 1  # the repeated question across the split
    with warehouse.connect(read_only=True) as con:
        found = {r[0] for r in con.execute("SELECT DISTINCT case_id FROM contamination_findings "
                                           "WHERE corpus = 'sft' AND split IS NULL").fetchall()}
        run = con.execute("SELECT cases, contaminated FROM contamination_runs WHERE run_id = 'run-1'").fetchone()
    assert found == planted and run == (len(cases), len(planted))
    written = outcome.report_path.read_text()
    assert not any(q[:30] in written for q in QUESTIONS)  # ids and scores, never the text


def test_without_a_golden_version_the_run_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    outcome = contamination_run(Warehouse(load_settings().warehouse_path), load_settings().data_dir,
                                run_id="r", checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert outcome.skipped and "no golden version" in outcome.skipped


def test_the_asset_fails_its_check_with_error_severity_and_publishes_to_the_lake(golden):
    from evalflow.defs.contamination.assets import CLEAN_CHECK, contamination_report
    from evalflow.defs.resources import WarehouseResource
    from evalflow.lib.common.lake import connect_lake

    data_dir, _, planted = golden
    result = dg.materialize([contamination_report], resources={"warehouse": WarehouseResource()})
    assert result.success  # non-blocking: the run goes on
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == CLEAN_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    metadata = result.asset_materializations_for_node("contamination_report")[0].metadata
    assert metadata["contaminated"].value == len(planted)
    with connect_lake(data_dir, read_only=True) as con:
        lake_found = con.execute("SELECT count(DISTINCT case_id) FROM lake.main.contamination_findings "
                                 "WHERE corpus = 'sft'").fetchone()[0]
    assert lake_found == len(planted)


def test_the_asset_without_a_golden_version_passes_and_says_why(tmp_path, monkeypatch):
    from evalflow.defs.contamination.assets import contamination_report
    from evalflow.defs.resources import WarehouseResource

    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    result = dg.materialize([contamination_report], resources={"warehouse": WarehouseResource()})
    assert result.success and result.get_asset_check_evaluations()[0].passed
    status = result.asset_materializations_for_node("contamination_report")[0].metadata["status"].value
    assert "no golden version" in status
