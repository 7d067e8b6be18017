"""The eval_cases table: replaced whole in one transaction (a failure part-way leaves the previous
cases), unchanged cases keep their updated_at, and nothing invalid is written. Then the whole
path on the labels pipeline's small world: load_case_inputs reads the real tables and the batch
folder, and build_cases gives a valid case for every trace item with an agreed verdict."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from test_labels_pipeline import BATCH_ID, World, build_world, import_incoming

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.eval_cases import InvalidCase, build_cases, case_sha256, is_safety_case, validate_case
from evalflow.lib.eval_cases import store as case_store
from evalflow.lib.eval_cases.build import batch_rubric_text, default_rubric_text, rubric
from evalflow.lib.eval_cases.store import eval_case_rows, load_case_inputs, read_eval_cases, replace_eval_cases
from evalflow.lib.intents.store import INTENT_SCHEMA
from evalflow.lib.judge.cases import case_id_for_trace, is_holdout
from evalflow.lib.labels.pipeline import build_agreement, build_consensus
from evalflow.lib.labels.store import table_frame

FIXTURE = Path(__file__).parent / "fixtures" / "eval_cases" / "full_case.json"
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=1)


def fixture_case() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def variant(trace_id: str, **changes) -> dict:
    case = fixture_case()
    case["case_id"] = case_id_for_trace(trace_id)
    case["split"] = "holdout" if is_holdout(case["case_id"]) else "dev"
    if case["split"] == "holdout":
        del case["labels"]["safety"]  # a holdout case has no judge label
    case["source"]["trace_id"] = trace_id
    case.update(changes)
    return case


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_replace_writes_every_case_and_reads_them_back(warehouse):
    cases = [variant("tr-2"), variant("tr-1", failure_modes=["prompt_injection"], slice_tags=["safety"])]
    summary = replace_eval_cases(warehouse, cases, NOW)
    assert (summary.cases, summary.added, summary.changed, summary.unchanged, summary.removed) == (2, 2, 0, 0, 0)
    assert read_eval_cases(warehouse) == sorted(cases, key=lambda c: c["case_id"])
    rows = eval_case_rows(warehouse)
    by_id = {r["case_id"]: r for r in rows.iter_rows(named=True)}
    holdout = by_id[case_id_for_trace("tr-1")]
    assert holdout["split"] == "holdout" and holdout["safety"] is True
    dev = by_id[case_id_for_trace("tr-2")]
    assert (dev["split"], dev["intent_id"], dev["risk_level"], dev["safety"]) == ("dev", "I-7", "high", False)
    assert dev["source_date"].isoformat() == "2026-11-01"
    assert dev["case_sha256"] == case_sha256(cases[0])
    with warehouse.connect(read_only=True) as con:  # analysts can query into the JSON
        verdict = con.execute("SELECT case_json->>'$.labels.accuracy.verdict' FROM eval_cases WHERE case_id = ?",
                              [cases[0]["case_id"]]).fetchall()[0][0]
    assert verdict == "Fail"


def test_a_rebuild_keeps_the_time_of_unchanged_cases_and_drops_retired_ones(warehouse):
    a, b, c = variant("tr-2"), variant("tr-3"), variant("tr-4")
    replace_eval_cases(warehouse, [a, b, c], NOW)
    relabelled = copy.deepcopy(b)
    relabelled["labels"]["accuracy"]["verdict"] = "Pass"
    summary = replace_eval_cases(warehouse, [a, relabelled], LATER)
    assert (summary.added, summary.changed, summary.unchanged, summary.removed) == (0, 1, 1, 1)
    times = dict(eval_case_rows(warehouse).select("case_id", "updated_at").iter_rows())
    assert times == {a["case_id"]: NOW, b["case_id"]: LATER}
    assert [x["labels"]["accuracy"]["verdict"] for x in read_eval_cases(warehouse, [b["case_id"]])] == ["Pass"]


def test_nothing_invalid_or_duplicated_is_written(warehouse):
    replace_eval_cases(warehouse, [variant("tr-2")], NOW)
    bad = variant("tr-3")
    bad["split"] = "holdout" if bad["split"] == "dev" else "dev"
    with pytest.raises(InvalidCase, match="split"):
        replace_eval_cases(warehouse, [variant("tr-4"), bad], LATER)
    with pytest.raises(ValueError, match="duplicate case ids"):
        replace_eval_cases(warehouse, [variant("tr-4"), variant("tr-4")], LATER)
    assert [c["case_id"] for c in read_eval_cases(warehouse)] == [case_id_for_trace("tr-2")]


def test_a_failure_inside_the_write_leaves_the_previous_cases(warehouse, monkeypatch):
    before = [variant("tr-2"), variant("tr-3")]
    replace_eval_cases(warehouse, before, NOW)

    def fail(con):  # runs after DELETE and INSERT, inside the transaction
        assert con.execute("SELECT count(*) FROM eval_cases").fetchall()[0][0] == 1
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(case_store, "_describe", fail)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        replace_eval_cases(warehouse, [variant("tr-4")], LATER)
    assert read_eval_cases(warehouse) == sorted(before, key=lambda c: c["case_id"])


def test_reads_of_a_missing_table_are_empty(warehouse):
    assert read_eval_cases(warehouse) == [] and eval_case_rows(warehouse).is_empty()
    assert "case_sha256" in eval_case_rows(warehouse).columns


# ---------------------------------------------------------------------------- the labels world
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("eval-cases") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root))
        world = build_world(root)
        import_incoming(world)
        build_consensus(world.warehouse, root)
        build_agreement(world.warehouse, root)
    return world


def test_the_labels_world_gives_a_valid_case_for_every_labelled_trace(world):
    # the sample's record of one labelled trace, with its intent's catalog name and its signals
    first = world.batch_traces[0]
    with world.warehouse.transaction() as con:
        con.execute(INTENT_SCHEMA)
        con.execute("INSERT INTO intent_catalog (intent_id, name) VALUES ('I-9', 'card freeze')")
        con.execute("INSERT INTO eval_candidates (trace_id, intent_id, failure_modes, sample_run_id, sampled_at, "
                    "status, batch_id) VALUES (?, 'I-9', ['prompt_injection', 'refusal'], 'run-0', ?, 'exported', ?)",
                    [first, NOW, BATCH_ID])
    inputs = load_case_inputs(world.warehouse, world.data_dir / "annotation")
    assert inputs.judge_labels is None and inputs.calibrations.is_empty()  # no judge in this world
    cases = build_cases(inputs)
    consensus = table_frame(world.warehouse, "consensus_labels")
    agreed = consensus.filter((pl.col("origin") == "trace") & (pl.col("status") == "agreed")
                              & (pl.col("dimension") != "risk_level"))
    assert {c["source"]["trace_id"] for c in cases} == set(agreed["trace_id"].to_list())
    assert all(validate_case(c) == [] for c in cases)
    expected = {(case_id_for_trace(t), d): v for t, d, v in agreed.select("trace_id", "dimension", "value").iter_rows()}
    got = {(c["case_id"], d): label["verdict"] for c in cases for d, label in c["labels"].items()}
    assert got == expected
    assert {label["source"] for c in cases for label in c["labels"].values()} <= {"consensus", "expert"}
    assert {c["split"] for c in cases} == {"dev", "holdout"}
    assert all(c["split"] == ("holdout" if is_holdout(c["case_id"]) else "dev") for c in cases)
    # the batch's own rubric (its configuration files), which a batch written by this code shares
    text = batch_rubric_text(world.data_dir / "annotation" / BATCH_ID)
    assert text == default_rubric_text()
    assert {c["rubric"]["version"] for c in cases} == {rubric(text)["version"]}
    assert all(c["source"]["batch_id"] == BATCH_ID for c in cases)
    assert all(c["labeled_by"] and all(x.startswith("annotator_") for x in c["labeled_by"]) for c in cases)
    assert sum(c["gold_answer"] is not None for c in cases) > len(cases) // 2
    # planted injections (the simulator's traces answer them) are in the safety set via a Fail on safety
    assert any(is_safety_case(c) for c in cases)
    [sampled] = [c for c in cases if c["source"]["trace_id"] == first]
    assert (sampled["intent_id"], sampled["intent_name"], sampled["failure_modes"]) == (
        "I-9", "card freeze", ["prompt_injection", "refusal"])
    assert {"safety", "intent:card freeze"} <= set(sampled["slice_tags"])
    replace_eval_cases(world.warehouse, cases, NOW)
    assert read_eval_cases(world.warehouse) == cases
