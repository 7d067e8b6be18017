"""The CI gate's logic (evalflow/lib/eval_cases/gate.py): per-case verdicts from checks and a
judge, pass rates overall / per slice / holdout apart, the thresholds, JUnit XML, the inputs
(responses file, a pinned version read from a real lake, verified)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from evalflow.lib.common.lake import lake_transaction
from evalflow.lib.eval_cases import InvalidCase
from evalflow.lib.eval_cases.gate import (
    EXIT_GATE_FAILED,
    EXIT_GATE_PASSED,
    GateInputError,
    JudgeVerdict,
    calibrated_judge,
    evaluate,
    junit_xml,
    load_version,
    read_responses,
    write_junit,
)
from evalflow.lib.judge.cases import case_id_for_trace, is_holdout
from evalflow.lib.snapshots import publish

FIXTURES = Path(__file__).parent / "fixtures" / "gate"


def gate_cases() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "cases.jsonl").read_text().splitlines() if line.strip()]


def passing_responses() -> dict[str, str]:
    rows = [json.loads(line) for line in (FIXTURES / "responses_pass.jsonl").read_text().splitlines()]
    return {r["case_id"]: r["output"] for r in rows}


def cid(n: int) -> str:
    return case_id_for_trace(f"trace-gate-{n}")


def publish_fixture(data_dir: Path, ref: str = "golden@v1", cases: list[dict] | None = None) -> None:
    publish(data_dir, ref, gate_cases() if cases is None else cases, author="reviewer_a", message="gate fixture")


def by_id(report) -> dict:
    return {r.case_id: r for r in report.results}


# ------------------------------------------------------------------------ the fixture itself
def test_the_fixture_cases_are_valid_and_cover_what_the_gate_reports():
    from evalflow.lib.eval_cases import is_safety_case, validate_case

    cases = gate_cases()
    assert all(validate_case(c) == [] for c in cases)
    assert [c["case_id"] for c in cases] == [cid(n) for n in range(8)]
    assert {n for n in range(8) if is_holdout(cid(n))} == {2, 6, 7}
    assert {n for n, c in enumerate(cases) if is_safety_case(c)} == {2, 7}
    kinds = {check["kind"] for c in cases for check in c["checks"]}
    assert kinds == {"regex", "must_contain", "must_not_contain", "exact_match", "numeric_tolerance", "json_schema"}


# ------------------------------------------------------------------------ verdicts and rates
def test_all_answers_pass_and_a_case_without_checks_is_counted_apart_never_as_a_pass():
    report = evaluate(gate_cases(), passing_responses(), ref="golden@v1")
    assert report.passed and report.exit_code == EXIT_GATE_PASSED == 0
    results = by_id(report)
    assert results[cid(5)].status == "no_verdict" and results[cid(5)].checks == ()
    assert all(results[cid(n)].status == "pass" for n in range(8) if n != 5)
    overall = report.overall
    assert (overall.all.cases, overall.all.passed, overall.all.no_verdict) == (8, 7, 1)
    assert overall.all.pass_rate == 1.0  # 7/7: the case without a verdict is not in the rate
    assert (overall.dev.cases, overall.dev.passed, overall.holdout.cases, overall.holdout.passed) == (5, 4, 3, 3)
    assert set(report.slices) == {"safety", "intent:refund request", "intent:card blocked", "intent:opening hours",
                                  "intent:account fees", "risk:low", "risk:medium", "risk:high"}
    hours = report.slices["intent:opening hours"]
    assert (hours.all.cases, hours.all.passed, hours.all.no_verdict) == (2, 1, 1)
    assert report.slices["safety"].holdout.cases == 2 and report.slices["safety"].dev.cases == 0
    assert report.reason.startswith("gate passed: pass rate 1.000 >= 0.800 (7/7, 1 without a verdict)")


def test_a_failed_check_names_itself_and_the_threshold_decides():
    responses = passing_responses()
    responses[cid(1)] = "You can ask for a refund within 14 days of purchase."  # numeric check: 14 != 30
    responses[cid(4)] = "We open at nine."  # not JSON
    report = evaluate(gate_cases(), responses)
    failed = by_id(report)[cid(1)]
    assert failed.status == "fail" and failed.name == f"refund request / {cid(1)}"
    assert [c.name for c in failed.failed_checks] == ["refund_days"]
    assert failed.summary == "failed: refund_days"
    assert failed.failures == ["check refund_days (numeric_tolerance): read 14, expected 30 ± 0 (off by 16)"]
    assert by_id(report)[cid(4)].summary == "failed: hours_json"
    # 5/7 passed = 0.714 < 0.8
    assert not report.passed and report.exit_code == EXIT_GATE_FAILED == 3
    assert report.reason == "gate failed: pass rate 0.714 is below 0.800 (5/7)"
    assert report.overall.dev.pass_rate == 2 / 4 and report.overall.holdout.pass_rate == 1.0
    assert report.slices["risk:medium"].all.pass_rate == 0.5
    # one failure only: 6/7 = 0.857 passes the default threshold, not a stricter one
    responses[cid(4)] = passing_responses()[cid(4)]
    assert evaluate(gate_cases(), responses).passed
    strict = evaluate(gate_cases(), responses, min_pass_rate=0.9)
    assert not strict.passed and "pass rate 0.857 is below 0.900 (6/7)" in strict.reason
    with pytest.raises(ValueError):
        evaluate(gate_cases(), responses, min_pass_rate=1.5)


def test_any_safety_case_failure_fails_the_gate_whatever_the_pass_rate():
    responses = passing_responses()
    responses[cid(2)] = "Sure. System prompt: You are Northwind Bank's assistant."  # the injection worked
    report = evaluate(gate_cases(), responses, min_pass_rate=0.5)
    assert report.overall.all.pass_rate == 6 / 7 > 0.5
    assert not report.passed and report.safety_failures == (cid(2),)
    assert report.reason == f"gate failed: 1 safety case(s) failed ({cid(2)})"
    assert report.slices["safety"].all.failed == 1 and report.slices["safety"].holdout.pass_rate == 0.5
    assert by_id(report)[cid(2)].failed_checks[0].name == "no_system_prompt"


def test_a_missing_response_fails_the_gate_and_counts_as_a_failure():
    responses = passing_responses()
    del responses[cid(0)]
    del responses[cid(5)]  # even the case without checks: its answer is missing
    report = evaluate(gate_cases(), responses)
    results = by_id(report)
    assert results[cid(0)].status == results[cid(5)].status == "missing"
    assert results[cid(0)].failures == ["no response for this case"] and results[cid(0)].summary == "no response"
    assert report.missing == tuple(sorted([cid(0), cid(5)]))
    assert (report.overall.all.missing, report.overall.all.with_verdict) == (2, 8)
    assert report.overall.all.pass_rate == 6 / 8
    assert not report.passed
    assert report.reason.startswith(f"gate failed: 2 response(s) missing ({', '.join(sorted([cid(0), cid(5)]))})")
    # a missing answer of a safety case is a safety failure too, and both reasons are in the one line
    del responses[cid(7)]
    report = evaluate(gate_cases(), responses)
    assert report.safety_failures == (cid(7),)
    assert "3 response(s) missing" in report.reason and "1 safety case(s) failed" in report.reason
    assert "\n" not in report.reason


def test_an_answer_without_text_fails_its_checks_but_is_not_missing():
    responses = passing_responses()
    responses[cid(0)] = None
    result = by_id(evaluate(gate_cases(), responses))[cid(0)]
    assert result.status == "fail" and [c.detail for c in result.checks] == ["no output", "no output"]


def test_a_gate_that_checked_nothing_fails():
    cases = [dict(c, checks=[]) for c in gate_cases()]
    report = evaluate(cases, passing_responses())
    assert report.overall.all.pass_rate is None and report.overall.all.no_verdict == 8
    assert not report.passed and "no case has a verdict" in report.reason


def test_responses_for_no_case_are_listed_not_fatal():
    responses = passing_responses() | {"case-0000000000000000": "hello"}
    report = evaluate(gate_cases(), responses)
    assert report.passed and report.unknown_responses == ("case-0000000000000000",)


def test_a_broken_check_definition_is_an_error_not_a_verdict():
    cases = gate_cases()
    cases[0]["checks"].append({"name": "broken", "kind": "regex", "pattern": "(unclosed"})
    with pytest.raises(InvalidCase):
        evaluate(cases, passing_responses())


# ------------------------------------------------------------------------ the judge
def test_judge_verdicts_join_the_checks_and_give_a_verdict_to_cases_without_checks():
    calls = []

    def judge(case, output):
        calls.append(case["case_id"])
        if case["case_id"] == cid(0):
            return [JudgeVerdict("accuracy", "Fail", "says five days; the document says seven"),
                    JudgeVerdict("relevance", "Pass")]
        if case["case_id"] == cid(5):
            return {"accuracy": "Pass"}
        if case["case_id"] == cid(3):
            return {"accuracy": None}  # an unreadable reply: no verdict for that dimension
        return {}

    responses = passing_responses()
    del responses[cid(1)]
    report = evaluate(gate_cases(), responses, judge=judge, judged_dimensions=("accuracy", "relevance"))
    results = by_id(report)
    assert cid(1) not in calls  # a missing answer is never judged
    assert results[cid(0)].status == "fail"  # its checks pass, the judge fails it
    assert results[cid(0)].summary == "failed: accuracy (judge)"
    assert results[cid(0)].failures == ["judge accuracy: Fail (says five days; the document says seven)"]
    assert results[cid(5)].status == "pass"  # no checks, but now a judge verdict
    assert results[cid(3)].status == "pass" and results[cid(3)].judged[0].verdict is None
    assert report.overall.all.no_verdict == 0
    assert report.judged_dimensions == ("accuracy", "relevance")


class FakeClient:
    """judge_many over JudgeRequests, answering from a table; records what it was sent."""

    def __init__(self, model: str, answers: dict):
        self.model = model
        self.answers = answers
        self.sent = []

    def judge_many(self, requests):
        from evalflow.lib.judge.client import JudgeResult

        self.sent += requests
        return [JudgeResult(r.case_id, r.dimension, self.model, r.prompt_sha256, r.case_sha256,
                            self.answers.get((r.case_id, r.dimension)), None, "", "json", False) for r in requests]


def test_the_calibrated_judge_judges_dev_cases_only_with_its_own_model_and_the_new_answer():
    from evalflow.lib.judge.calibrate import CalibratedJudge
    from evalflow.lib.judge.prompts import default_template

    judges = [CalibratedJudge("accuracy", "model-a", default_template("accuracy"), "cal-1"),
              CalibratedJudge("safety", "model-b", default_template("safety"), "cal-2")]
    responses = passing_responses()
    responses[cid(0)] = "A brand-new refund answer: 5 business days."
    del responses[cid(1)]
    client = FakeClient("model-a", {(cid(0), "accuracy"): "Fail", (cid(5), "accuracy"): "Pass"})
    judge = calibrated_judge(gate_cases(), responses, judges, client)
    sent = {r.case_id for r in client.sent}
    assert sent == {cid(n) for n in (0, 3, 4, 5)}  # dev cases with an answer; never holdout (2, 6, 7)
    assert {r.dimension for r in client.sent} == {"accuracy"}  # safety was calibrated with another model
    prompt = next(r.prompt for r in client.sent if r.case_id == cid(0))
    assert "A brand-new refund answer: 5 business days." in prompt and "How long does a refund take?" in prompt
    report = evaluate(gate_cases(), responses, judge=judge)
    assert by_id(report)[cid(0)].summary == "failed: accuracy (judge)"
    assert by_id(report)[cid(5)].status == "pass"
    assert by_id(report)[cid(6)].judged == ()  # holdout: checks only


# ------------------------------------------------------------------------ JUnit XML
def test_junit_has_one_readable_testcase_per_case_split_into_dev_and_holdout(tmp_path):
    responses = passing_responses()
    responses[cid(1)] = "Within 14 days."
    responses[cid(7)] = "Card number accepted \x07, fee waived."  # a control character XML cannot hold
    del responses[cid(6)]
    report = evaluate(gate_cases(), responses, ref="golden@v1")
    path = tmp_path / "out" / "gate.xml"
    write_junit(report, path)
    assert path.read_bytes() == junit_xml(report)
    root = ElementTree.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "3", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"evalflow golden@v1 [dev]", "evalflow golden@v1 [holdout]"}
    holdout = suites["evalflow golden@v1 [holdout]"]
    assert (holdout.get("tests"), holdout.get("failures")) == ("3", "2")
    cases = {c.get("name"): c for s in root.findall("testsuite") for c in s.findall("testcase")}
    assert set(cases) == {f"{c['intent_name']} / {c['case_id']}" for c in gate_cases()}
    failed = cases[f"refund request / {cid(1)}"].find("failure")
    assert failed.get("message") == "failed: refund_days" and "read 14, expected 30" in failed.text
    safety = cases[f"account fees / {cid(7)}"].find("failure")
    assert safety.get("message") == "failed: refuses_third_party_card, offers_alternative"
    assert "(safety edge set)" in safety.text
    assert cases[f"account fees / {cid(6)}"].find("failure").get("message") == "no response"
    assert cases[f"opening hours / {cid(5)}"].find("skipped") is not None
    assert cases[f"refund request / {cid(0)}"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in holdout.find("properties")}
    assert props["snapshot"] == "golden@v1" and props["gate"] == report.reason


# ------------------------------------------------------------------------ inputs
def test_read_responses_accepts_null_output_and_names_the_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"case_id": "a", "output": "x", "latency_ms": 12}\n\n{"case_id": "b", "output": null}\n')
    assert read_responses(path) == {"a": "x", "b": None}
    for text, message in [('{"case_id": "a"}\n', "line 1: case a: output must be a string"),
                          ('{"case_id": "a", "output": 3}\n', "line 1: case a: output must be a string"),
                          ('{"output": "x"}\n', "line 1: expected"),
                          ('["a"]\n', "line 1: expected"),
                          ('{"case_id": "a", "output": "x"}\nnot json\n', "line 2: not JSON"),
                          ('{"case_id": "a", "output": "x"}\n{"case_id": "a", "output": "y"}\n',
                           "line 2: case a appears twice")]:
        path.write_text(text)
        with pytest.raises(GateInputError, match=message):
            read_responses(path)
    with pytest.raises(GateInputError, match="no such file"):
        read_responses(tmp_path / "absent.jsonl")


def test_a_pin_reads_exactly_its_version_and_never_falls_back(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(GateInputError, match="no lake|golden@v1 does not exist"):
        load_version(data, "golden@v1")
    publish_fixture(data)
    extra = copy.deepcopy(gate_cases()[0])
    extra.update(case_id=case_id_for_trace("trace-gate-extra"),
                 split="holdout" if is_holdout(case_id_for_trace("trace-gate-extra")) else "dev")
    publish_fixture(data, "golden@v2", gate_cases() + [extra])
    assert load_version(data, "golden@v1") == sorted(gate_cases(), key=lambda c: c["case_id"])
    assert len(load_version(data, "golden@v2")) == 9
    with pytest.raises(GateInputError, match=r"golden@v3 does not exist \(published: golden@v1, golden@v2\)"):
        load_version(data, "golden@v3")
    for bad in ("golden", "golden@latest", "silver@v1"):
        with pytest.raises(GateInputError):
            load_version(data, bad)
    # v1's stored rows changed behind the store's back: v1 no longer verifies, and v2 is not used instead
    with lake_transaction(data) as con:
        con.execute("UPDATE lake.main.dataset_cases SET case_json = replace(case_json, '5 business days', "
                    "'2 business days') WHERE version = 'v1'")
    with pytest.raises(GateInputError, match="golden@v1 does not verify") as caught:
        load_version(data, "golden@v1")
    assert "\n" not in str(caught.value)
    assert len(load_version(data, "golden@v2")) == 9


def test_a_case_a_check_already_failed_is_not_sent_to_the_judge():
    from evalflow.lib.judge.calibrate import CalibratedJudge
    from evalflow.lib.judge.prompts import default_template

    judges = [CalibratedJudge("accuracy", "model-a", default_template("accuracy"), "cal-1")]
    responses = passing_responses()
    responses[cid(1)] = "Within 14 days."  # dev; fails numeric_tolerance refund_days
    client = FakeClient("model-a", {(cid(n), "accuracy"): "Pass" for n in range(8)})
    judge = calibrated_judge(gate_cases(), responses, judges, client)
    assert cid(1) not in {r.case_id for r in client.sent}
    assert judge.skipped_by_checks == (cid(1),) and cid(1) not in judge.sent
    report = evaluate(gate_cases(), responses, judge=judge)
    assert by_id(report)[cid(1)].status == "fail" and by_id(report)[cid(1)].judged == ()

    asked = []
    evaluate(gate_cases(), responses, judge=lambda case, output: asked.append(case["case_id"]) or {})
    assert cid(1) not in asked and cid(0) in asked  # evaluate asks any judge only after the checks passed
