"""`evalflow check`: the CI gate on a pinned version, through the real command line (cli.main),
against a lake in tmp_path; --judge against the simulated judge server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from xml.etree import ElementTree

import pytest

from evalflow.cli import main
from evalflow.lib.common.lake import lake_transaction
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.judge.cases import is_holdout
from evalflow.lib.judge.prompts import default_template
from evalflow.lib.judge.store import CALIBRATION_SCHEMA
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer
from evalflow_tests.test_gate import cid, gate_cases, passing_responses, publish_fixture


@pytest.fixture
def data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data))
    for name in ("EVALFLOW_JUDGE_BASE_URL", "EVALFLOW_JUDGE_MODEL", "EVALFLOW_JUDGE_API_KEY",
                 "EVALFLOW_JUDGE_PROMPTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    publish_fixture(data)
    return data


def write_responses(path, responses: dict) -> str:
    path.write_text("".join(json.dumps({"case_id": k, "output": v}) + "\n" for k, v in responses.items()))
    return str(path)


def check(capsys, *argv) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_passing_gate_exits_0_with_rates_per_slice_and_the_holdout_apart(data, tmp_path, capsys):
    responses = write_responses(tmp_path / "r.jsonl", passing_responses())
    junit = tmp_path / "gate.xml"
    code, out, err = check(capsys, "--snapshot", "golden@v1", "--responses", responses, "--junit", str(junit))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "golden@v1: 8 cases (5 dev, 3 holdout)"
    assert "judge: not asked (checks only)" in lines
    header = next(line for line in lines if line.startswith("slice"))
    assert header.split() == ["slice", "cases", "passed", "failed", "missing", "no", "verdict", "pass", "rate",
                              "dev", "holdout"]
    rows = {line.split("  ")[0]: line.split() for line in lines if line.startswith(("overall", "safety", "intent:",
                                                                                     "risk:"))}
    assert rows["overall"][-6:] == ["0", "0", "1", "1.000", "1.000", "1.000"]
    assert rows["safety"][1:3] == ["2", "2"] and rows["safety"][-2:] == ["-", "1.000"]  # both holdout
    assert {"intent:refund request", "intent:card blocked", "intent:opening hours", "intent:account fees",
            "risk:low", "risk:medium", "risk:high"} <= set(rows)
    assert lines[-1].startswith("gate passed: pass rate 1.000 >= 0.800")
    assert f"wrote {junit}" in lines
    assert len(ElementTree.parse(junit).getroot().findall("testsuite/testcase")) == 8


def test_a_failed_threshold_or_safety_case_or_missing_answer_exits_3_with_one_line(data, tmp_path, capsys):
    responses = passing_responses()
    responses[cid(1)] = "Within 14 days."
    responses[cid(4)] = "We open at nine."
    path = write_responses(tmp_path / "r.jsonl", responses)
    code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", path)
    assert code == 3
    assert out.splitlines()[-1] == "gate failed: pass rate 0.714 is below 0.800 (5/7)"
    assert f"  refund request / {cid(1)} [dev]: failed: refund_days" in out
    # the same answers pass a lower threshold
    code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", path, "--min-pass-rate", "0.7")
    assert code == 0 and out.splitlines()[-1].startswith("gate passed: pass rate 0.714 >= 0.700")

    responses = passing_responses()
    responses[cid(7)] = "Card number accepted, the fee is waived."
    code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", write_responses(tmp_path / "s.jsonl",
                                                                                             responses))
    assert code == 3 and out.splitlines()[-1] == f"gate failed: 1 safety case(s) failed ({cid(7)})"
    assert f"account fees / {cid(7)} [holdout, safety]" in out

    responses = passing_responses()
    del responses[cid(3)]
    responses["case-ffffffffffffffff"] = "an answer to a case of another version"
    code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", write_responses(tmp_path / "m.jsonl",
                                                                                             responses))
    assert code == 3 and out.splitlines()[-1] == f"gate failed: 1 response(s) missing ({cid(3)})"
    assert "1 response(s) name no case of golden@v1 (ignored): case-ffffffffffffffff" in out


def test_a_pin_that_does_not_exist_or_does_not_verify_exits_1_never_another_version(data, tmp_path, capsys):
    path = write_responses(tmp_path / "r.jsonl", passing_responses())
    publish_fixture(data, "golden@v2")
    for pin, message in [("golden@v9", "golden@v9 does not exist (published: golden@v1, golden@v2)"),
                         ("golden", "'golden' names no version")]:
        code, out, err = check(capsys, "--snapshot", pin, "--responses", path)
        assert code == 1 and out == ""
        assert err.startswith(f"evalflow: error: {message}") and err.count("\n") == 1
    with lake_transaction(data) as con:
        con.execute("UPDATE lake.main.dataset_cases SET split = 'dev' WHERE version = 'v1' AND split = 'holdout'")
    code, out, err = check(capsys, "--snapshot", "golden@v1", "--responses", path)
    assert code == 1 and out == "" and err.startswith("evalflow: error: golden@v1 does not verify")
    assert err.count("\n") == 1
    code, _, _ = check(capsys, "--snapshot", "golden@v2", "--responses", path)
    assert code == 0


def test_unreadable_input_exits_1_and_bad_usage_exits_2(data, tmp_path, capsys):
    code, _, err = check(capsys, "--snapshot", "golden@v1", "--responses", str(tmp_path / "absent.jsonl"))
    assert code == 1 and err == f"evalflow: error: no such file: {tmp_path / 'absent.jsonl'}\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"case_id": "x", "output": "y"}\n{"case_id": "x"\n')
    code, _, err = check(capsys, "--snapshot", "golden@v1", "--responses", str(bad))
    assert code == 1 and err == f"evalflow: error: {bad} line 2: not JSON\n"
    with pytest.raises(SystemExit) as exited:
        main(["check", "--snapshot", "golden@v1", "--responses", str(bad), "--min-pass-rate", "1.5"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["check", "--responses", str(bad)])
    assert exited.value.code == 2


def write_calibration(data, dimension: str, model: str = SIMULATED_MODEL, calibrated: bool = True) -> None:
    with Warehouse(data / "warehouse" / "evalflow.duckdb").transaction() as con:
        con.execute(CALIBRATION_SCHEMA)
        con.execute("INSERT INTO judge_calibrations VALUES (?, ?, ?, ?, 'default', 40, 40, 0.9, 0.8, 0.9, 0.9, ?, "
                    "true, ?)", [f"cal-{dimension}", dimension, model, default_template(dimension).sha256,
                                 calibrated, datetime(2026, 10, 1, tzinfo=timezone.utc)])


def test_judge_uses_the_calibrated_dimensions_on_dev_cases_only(data, tmp_path, capsys, monkeypatch):
    path = write_responses(tmp_path / "r.jsonl", passing_responses())
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
    code, _, err = check(capsys, "--snapshot", "golden@v1", "--responses", path, "--judge")
    assert code == 1 and "EVALFLOW_JUDGE_BASE_URL" in err and err.count("\n") == 1  # asked for, not configured

    dev = [c["case_id"] for c in gate_cases() if not is_holdout(c["case_id"])]
    truth = {case_id: {"accuracy": "Pass", "groundedness": "Pass"} for case_id in dev}
    truth[cid(3)]["accuracy"] = "Fail"
    with SimulatedJudgeServer(truth=truth, seed=3) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", path, "--judge")
        assert code == 0  # no warehouse, so no calibration: it says so and runs the checks only
        assert "no calibrated judge (no warehouse at" in out and server.request_count == 0

        write_calibration(data, "accuracy")
        write_calibration(data, "groundedness", calibrated=False)
        argv = ("--snapshot", "golden@v1", "--responses", path, "--judge", "--min-pass-rate", "0.9")
        code, out, _ = check(capsys, *argv)
        seen = server.case_ids_seen
        sent = server.request_count
        again, _, _ = check(capsys, *argv)
        assert again == code and server.request_count == sent  # the verdicts come from the cache
    assert seen == set(dev)  # every dev case, no holdout case
    assert f"judge: accuracy by {SIMULATED_MODEL} (calibrated prompts); dev cases only" in out
    assert "judge: not judged: groundedness: not calibrated" in out
    assert f"card blocked / {cid(3)} [dev]: failed: accuracy (judge)" in out
    # the case without checks has the judge's verdict now: 8 cases with a verdict, 7 passed
    overall = next(line for line in out.splitlines() if line.startswith("overall")).split()
    assert overall[1:7] == ["8", "7", "1", "0", "0", "0.875"]
    assert code == 3 and out.splitlines()[-1] == "gate failed: pass rate 0.875 is below 0.900 (7/8)"


def test_checks_run_before_the_judge_a_case_a_check_failed_sends_no_request(data, tmp_path, capsys, monkeypatch):
    responses = passing_responses()
    responses[cid(0)] = "Your money comes back soon."  # fails must_contain "5 business days" and the regex
    path = write_responses(tmp_path / "r.jsonl", responses)
    dev = [c["case_id"] for c in gate_cases() if not is_holdout(c["case_id"])]
    assert cid(0) in dev
    truth = {case_id: {"accuracy": "Pass"} for case_id in dev}
    write_calibration(data, "accuracy")
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
    with SimulatedJudgeServer(truth=truth, seed=3) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        code, out, _ = check(capsys, "--snapshot", "golden@v1", "--responses", path, "--judge")
        assert server.requests_for(cid(0)) == 0
        assert server.case_ids_seen == set(dev) - {cid(0)}
    assert f"judge: {len(dev) - 1} dev case(s) judged; 1 not sent (a deterministic check already failed them)" in out
    assert f"refund request / {cid(0)} [dev]: failed: mentions_refund_window, says_refund" in out
    assert code == 0  # 7 of 8 pass: above the default 0.8
