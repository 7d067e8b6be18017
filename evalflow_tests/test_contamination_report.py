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
    assert outcome.report["summary"]["split_leaks"]["holdout|dev"] >= 1  # the repeated question across the split
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


class CountingEmbedder:
    """Hashed bag of words (L2-normalised), recording every text it is asked to embed."""

    def __init__(self):
        self.texts: list[str] = []

    def encode(self, texts):
        import numpy as np

        from evalflow.lib.contamination.text import tokens

        self.texts += texts
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokens(text):
                out[i, sum(word.encode()) % 256] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_each_golden_case_is_embedded_once_in_a_run(golden):
    data_dir, cases, _ = golden
    embedder = CountingEmbedder()
    outcome = contamination_run(Warehouse(load_settings().warehouse_path), data_dir, run_id="run-e",
                                checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc), embedder=lambda: embedder)
    assert outcome.report["summary"]["embedded_cases"] == len(cases)
    questions = [t for t in embedder.texts if any(q in t for q in QUESTIONS)]
    # check_cases, then split_leaks (golden and holdout as cases, dev as documents): one embedding each
    assert questions and len(questions) == len(set(questions))


def test_a_run_without_a_golden_version_makes_no_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))

    def no_model():
        raise AssertionError("the model was loaded for a run that checks nothing")

    outcome = contamination_run(Warehouse(load_settings().warehouse_path), load_settings().data_dir, run_id="r",
                                checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc), embedder=no_model)
    assert outcome.skipped


def test_the_known_answers_are_those_the_annotation_stage_uses(golden, tmp_path, monkeypatch):
    data_dir, cases, _ = golden
    known = {"case_id": "ka-mine", "input": {"user_query": QUESTIONS[0], "messages": []},
             "expected_behavior": ["x"], "key_facts": ["x"], "output": "x", "verdicts": {"accuracy": "Pass"}}
    path = tmp_path / "known.jsonl"
    path.write_text(json.dumps(known) + "\n")
    monkeypatch.setenv("EVALFLOW_KNOWN_ANSWERS", str(path))
    outcome = contamination_run(Warehouse(load_settings().warehouse_path), data_dir, run_id="run-k",
                                checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert {x["other_case_id"] for x in outcome.leaks if x["other_split"] == "known_answers"} == {"ka-mine"}


def test_the_demo_corpus_plants_golden_cases_and_the_printout_finds_them(golden):
    from evalflow.cli.demo_reports import CORPUS_NAME, contamination_lines, write_demo_corpus

    data_dir, _, _ = golden
    settings = load_settings()
    assert contamination_lines(settings) == ["no contamination run yet"]
    path = write_demo_corpus(settings)
    planted = json.loads((settings.ground_truth_dir / "contamination.json").read_text())["planted_case_ids"]
    assert path is not None and len(planted) == 5
    contamination_run(Warehouse(settings.warehouse_path), data_dir, run_id="run-demo",
                      checked_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    lines = contamination_lines(settings)
    assert f"planted in {CORPUS_NAME}: 5; found: 5" in "\n".join(lines)
    assert not any(q[:30] in line for q in QUESTIONS for line in lines)  # ids and counts, never the text
