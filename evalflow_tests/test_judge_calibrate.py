"""Judge calibration against a real local chat-completions server with seeded, known behaviour
(the simulated judge): the figures evalflow reports equal what the server was made to do."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.judge.calibrate import (
    HoldoutLeak,
    VariantResult,
    calibrate,
    choose_variant,
    figures,
    human_verdicts,
    judge_unlabelled,
    requests_for,
)
from evalflow.lib.judge.cases import case_split, is_holdout
from evalflow.lib.judge.client import JudgeClient
from evalflow.lib.judge.config import CalibrationThresholds, ClientSettings
from evalflow.lib.judge.prompts import PromptTemplate, default_template
from evalflow.lib.judge.store import VerdictCacheStore, latest_calibrations, record_calibration, record_judge_labels
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

DIM = "accuracy"
SLOPPY = "MARKER-SLOPPY"
DEFAULT = default_template(DIM)
SLOPPY_TEMPLATE = PromptTemplate(DIM, "sloppy", DEFAULT.text + f"\n{SLOPPY}: skim the answer.\n")


def make_cases(n: int, seed: int = 11, prefix: str = "case") -> tuple[dict, dict]:
    rng = random.Random(seed)
    cases, truth = {}, {}
    for i in range(n):
        case_id = f"{prefix}-{i:04d}"
        cases[case_id] = {"case_id": case_id, "input": {"user_query": f"question {i}"},
                          "output": "answer " + "words " * rng.randint(1, 40), "expected_behavior": ["be right"]}
        truth[case_id] = {DIM: "Fail" if rng.random() < 0.35 else "Pass"}
    return cases, truth


CASES, TRUTH = make_cases(300)
HUMAN = {c: t[DIM] for c, t in TRUTH.items()}


def client_for(server, cache=None) -> JudgeClient:
    return JudgeClient(ClientSettings(base_url=server.base_url, model=SIMULATED_MODEL, backoff_s=0.001,
                                      backoff_max_s=0.01), cache=cache, sleep=lambda s: None)


def expected_figures(server: SimulatedJudgeServer, case_ids, marker: str = "") -> dict:
    """What the server was made to do, counted by hand (kappa by its formula, not scikit-learn)."""
    tp = fn = fp = tn = unparseable = 0
    for case_id in case_ids:
        reply = server.expected_reply(case_id, DIM, marker)
        human = HUMAN[case_id]
        if reply.verdict is None:
            unparseable += 1
        elif human == "Fail":
            tp, fn = tp + (reply.verdict == "Fail"), fn + (reply.verdict == "Pass")
        else:
            fp, tn = fp + (reply.verdict == "Fail"), tn + (reply.verdict == "Pass")
    n = tp + fn + fp + tn
    observed = (tp + tn) / n
    chance = ((tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)) / n ** 2
    return {"n": n, "agreement": observed, "kappa": pytest.approx((observed - chance) / (1 - chance), abs=1e-12),
            "tpr": tp / (tp + fn), "tnr": tn / (tn + fp), "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
            "unparseable": unparseable}


def part(name: str) -> list[str]:
    return sorted(c for c in HUMAN if case_split(c) == name)


def test_the_figures_equal_what_the_server_was_made_to_do():
    with SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.12}, malformed_rate=0.05,
                              transient_error_rate=0.1, seed=4) as server:
        with client_for(server) as client:
            result = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True)
    report = result.to_report()
    assert report["tune"] == expected_figures(server, part("tune"))
    assert report["test"] == expected_figures(server, part("test"))
    assert report["unparseable"] == report["tune"]["unparseable"] + report["test"]["unparseable"] > 0
    assert client.stats.retries > 0  # transient errors happened and were retried
    assert report["prompt_sha256"] == DEFAULT.sha256 and report["model"] == SIMULATED_MODEL
    by_case = {c["case_id"]: c for c in report["cases"]}
    assert sorted(by_case) == sorted(HUMAN)
    for case_id, row in by_case.items():
        expected_judge = None if row["split"] == "holdout" else server.expected_reply(case_id, DIM).verdict
        assert (row["split"], row["human"], row["judge"]) == (case_split(case_id), HUMAN[case_id], expected_judge)


def test_over_many_cases_the_measured_error_rate_is_the_servers():
    cases, truth = make_cases(1500, seed=5)
    human = {c: t[DIM] for c, t in truth.items()}
    with SimulatedJudgeServer(truth=truth, error_rates={DIM: 0.10}, seed=9) as server:
        with client_for(server) as client:
            report = calibrate(cases, human, DIM, [DEFAULT], client, gate_open=True).to_report()
    scored = report["tune"]["n"] + report["test"]["n"]
    agree = report["tune"]["agreement"] * report["tune"]["n"] + report["test"]["agreement"] * report["test"]["n"]
    # 1 - agreement is the share of flipped verdicts: 0.10 within 4 standard deviations (about 0.035)
    assert abs((1 - agree / scored) - 0.10) < 4 * (0.1 * 0.9 / scored) ** 0.5


def test_no_holdout_case_ever_reaches_the_server():
    with SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: {SLOPPY: 0.4, "": 0.1}}, seed=2) as server:
        with client_for(server) as client:
            report = calibrate(CASES, HUMAN, DIM, [DEFAULT, SLOPPY_TEMPLATE], client, gate_open=True).to_report()
    holdout = {c for c in HUMAN if is_holdout(c)}
    assert len(holdout) > 40
    assert server.case_ids_seen == set(part("tune")) | set(part("test"))
    assert server.case_ids_seen.isdisjoint(holdout)
    rows = [c for c in report["cases"] if c["split"] == "holdout"]
    assert {c["case_id"] for c in rows} == holdout and all(c["judge"] is None for c in rows)
    assert report["holdout"] == len(holdout)


def test_a_rerun_sends_nothing(tmp_path):
    cache = VerdictCacheStore(Warehouse(tmp_path / "cache.duckdb"), describe=False)
    with SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.1}, malformed_rate=0.05, seed=6) as server:
        with client_for(server, cache) as client:
            first = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True).to_report()
        sent = server.request_count
        with client_for(server, cache) as again:
            second = calibrate(CASES, HUMAN, DIM, [DEFAULT], again, gate_open=True).to_report()
        assert server.request_count == sent
    judged = len(part("tune")) + len(part("test"))
    assert (again.stats.requests_sent, again.stats.cache_hits) == (0, judged)
    assert second == first


def test_the_best_variant_is_chosen_on_the_tuning_part_only():
    # the sloppy variant is much worse: it loses on the tuning part and never sees the test part
    rates = {DIM: {SLOPPY: 0.45, "": 0.05}}
    with SimulatedJudgeServer(truth=TRUTH, error_rates=rates, seed=8) as server:
        with client_for(server) as client:
            result = calibrate(CASES, HUMAN, DIM, [SLOPPY_TEMPLATE, DEFAULT], client, gate_open=True)
    assert result.template.variant == "default"
    by_variant = {v.template.variant: v.tune.as_dict() for v in result.variants}
    assert by_variant["sloppy"] == expected_figures(server, part("tune"), SLOPPY)
    assert by_variant["default"] == expected_figures(server, part("tune"), "")
    sloppy_cases = {r["case_id"] for r in server.requests if r["variant"] == SLOPPY}
    default_cases = {r["case_id"] for r in server.requests if r["variant"] == ""}
    assert sloppy_cases == set(part("tune"))
    assert default_cases == set(part("tune")) | set(part("test"))


def test_a_variant_that_is_better_on_tune_wins_even_if_listed_last():
    rates = {DIM: {SLOPPY: 0.0, "": 0.3}}  # here the marked variant is the good one
    with SimulatedJudgeServer(truth=TRUTH, error_rates=rates, seed=8) as server:
        with client_for(server) as client:
            result = calibrate(CASES, HUMAN, DIM, [DEFAULT, SLOPPY_TEMPLATE], client, gate_open=True)
    assert result.template.variant == "sloppy"
    assert result.to_report()["test"] == expected_figures(server, part("test"), SLOPPY)
    assert {r["case_id"] for r in server.requests if r["variant"] == ""} == set(part("tune"))


def test_equal_variants_on_tune_go_to_the_lower_sha256():
    other = PromptTemplate(DIM, "reworded", DEFAULT.text.replace("single dimension", "one dimension"))
    with SimulatedJudgeServer(truth=TRUTH, seed=1) as server:  # no errors: both agree perfectly
        with client_for(server) as client:
            result = calibrate(CASES, HUMAN, DIM, [DEFAULT, other], client, gate_open=True)
    assert [v.tune.agreement for v in result.variants] == [1.0, 1.0]
    assert result.template.sha256 == min(DEFAULT.sha256, other.sha256)


def test_an_agreement_tie_goes_to_the_higher_kappa_before_the_sha256():
    # same agreement (0.8) on 10 cases; the first variant's errors fall on the rare class
    balanced = [("Fail", "Fail")] * 2 + [("Pass", "Pass")] * 6 + [("Fail", "Pass"), ("Pass", "Fail")]
    lopsided = [("Fail", "Fail")] * 0 + [("Pass", "Pass")] * 8 + [("Fail", "Pass")] * 2
    low, high = sorted([DEFAULT, SLOPPY_TEMPLATE], key=lambda t: t.sha256)
    variants = [VariantResult(low, figures(lopsided), {}), VariantResult(high, figures(balanced), {})]
    assert variants[0].tune.agreement == variants[1].tune.agreement == 0.8
    assert variants[1].tune.kappa > variants[0].tune.kappa
    assert choose_variant(variants).template is high
    assert choose_variant([variants[0], VariantResult(high, figures(lopsided), {})]).template is low


@pytest.mark.parametrize(("error", "gate", "min_test", "calibrated", "shortfall"), [
    (0.03, True, 20, True, None),
    (0.03, False, 20, False, "gate is closed"),
    (0.03, True, 10_000, False, "test cases"),
    (0.30, True, 20, False, "test agreement"),
])
def test_calibrated_needs_agreement_kappa_enough_cases_and_the_gate(error, gate, min_test, calibrated, shortfall):
    thresholds = CalibrationThresholds(min_agreement=0.85, min_kappa=0.6, min_test_cases=min_test)
    with SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: error}, seed=3) as server:
        with client_for(server) as client:
            result = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=gate, thresholds=thresholds)
    assert result.calibrated is calibrated
    if shortfall is None:
        assert result.shortfalls() == []
    else:
        assert any(shortfall in s for s in result.shortfalls())


def test_unparseable_replies_are_counted_and_never_guessed():
    with SimulatedJudgeServer(truth=TRUTH, malformed_rate=0.3, seed=12) as server:
        with client_for(server) as client:
            report = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True).to_report()
    malformed = {c for c in part("tune") + part("test") if server.expected_reply(c, DIM).malformed}
    assert report["unparseable"] == len(malformed) > 20
    rows = {c["case_id"]: c for c in report["cases"]}
    assert all(rows[c]["judge"] is None and rows[c]["unparseable"] for c in malformed)
    # no error rate: every readable verdict agrees, so a guess would show as a disagreement
    assert report["tune"]["agreement"] == report["test"]["agreement"] == 1.0


def test_a_request_for_a_holdout_case_is_refused_before_anything_is_sent():
    holdout = next(c for c in CASES if is_holdout(c))
    with pytest.raises(HoldoutLeak, match=f"1 holdout case\\(s\\) would reach the judge, e.g. {holdout}"):
        requests_for(DEFAULT, [CASES[holdout]], DIM)


def test_only_agreed_consensus_rows_are_human_verdicts():
    import polars as pl

    consensus = pl.DataFrame({
        "item_id": ["a", "b", "c", "d", "e"], "dimension": [DIM, DIM, DIM, DIM, "policy"],
        "value": ["Pass", "Fail", None, "Pass", "Fail"],
        "status": ["agreed", "agreed", "disputed", "feedback_only", "agreed"]})
    assert human_verdicts(consensus, DIM) == {"a": "Pass", "b": "Fail"}


def test_undefined_figures_are_none_not_zero():
    assert figures([]).as_dict() == {"n": 0, "agreement": None, "kappa": None, "tpr": None, "tnr": None,
                                     "confusion": {"tp": 0, "fn": 0, "fp": 0, "tn": 0}, "unparseable": 0}
    one_class = figures([("Pass", "Pass"), ("Pass", "Pass"), ("Pass", None)])
    assert (one_class.agreement, one_class.kappa, one_class.tpr, one_class.tnr, one_class.unparseable) == (
        1.0, None, None, 1.0, 1)


def test_judge_labels_come_only_from_a_calibrated_judge_and_skip_the_holdout(tmp_path):
    unlabelled, unlabelled_truth = make_cases(60, seed=21, prefix="new")
    truth = TRUTH | unlabelled_truth
    for case_id, case in unlabelled.items():
        case["trace_id"] = f"trace-{case_id}"
    with SimulatedJudgeServer(truth=truth, error_rates={DIM: 0.02}, malformed_rate=0.05, seed=5) as server:
        with client_for(server) as client:
            good = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True)
            closed = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=False)
            before = server.request_count
            assert judge_unlabelled(unlabelled.values(), closed, client) == []
            assert server.request_count == before  # an uncalibrated judge sends nothing
            rows = judge_unlabelled(unlabelled.values(), good, client)
    assert good.calibrated and not closed.calibrated
    eligible = [c for c in unlabelled if not is_holdout(c)]
    readable = [c for c in eligible if server.expected_reply(c, DIM).verdict is not None]
    assert len(eligible) < len(unlabelled)  # some were holdout
    assert [r["case_id"] for r in rows] == readable
    for row in rows:
        assert row == {"case_id": row["case_id"], "trace_id": f"trace-{row['case_id']}", "dimension": DIM,
                       "verdict": server.expected_reply(row["case_id"], DIM).verdict, "critique": row["critique"],
                       "model": SIMULATED_MODEL, "prompt_sha256": DEFAULT.sha256,
                       "calibration_id": good.calibration_id}
    assert server.case_ids_seen.isdisjoint(c for c in truth if is_holdout(c))

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    at = datetime(2026, 10, 5, tzinfo=timezone.utc)
    record_calibration(warehouse, good, at=at)
    record_calibration(warehouse, good, at=at)  # the same calibration again replaces its rows
    assert record_judge_labels(warehouse, rows, at=at) == len(rows)
    record_judge_labels(warehouse, rows, at=at)
    assert warehouse.count("judge_calibrations") == 1
    assert warehouse.count("judge_calibration_cases") == len(HUMAN)
    assert warehouse.count("judge_calibration_cases", "split = 'holdout' AND judge IS NULL") == sum(
        is_holdout(c) for c in HUMAN)
    assert warehouse.count("judge_labels") == len(rows)
    latest = latest_calibrations(warehouse).row(0, named=True)
    test = good.to_report()["test"]
    assert (latest["dimension"], latest["calibration_id"], latest["prompt_sha256"], latest["n_test"],
            latest["agreement"], latest["calibrated"], latest["gate_open"]) == (
        DIM, good.calibration_id, DEFAULT.sha256, test["n"], test["agreement"], True, True)


def test_the_same_calibration_gets_the_same_id_and_other_labels_another():
    with SimulatedJudgeServer(truth=TRUTH, seed=5) as server:
        with client_for(server) as client:
            a = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True)
            b = calibrate(CASES, HUMAN, DIM, [DEFAULT], client, gate_open=True)
            flipped = dict(HUMAN)
            first = next(iter(flipped))
            flipped[first] = "Pass" if flipped[first] == "Fail" else "Fail"
            c = calibrate(CASES, flipped, DIM, [DEFAULT], client, gate_open=True)
    assert a.calibration_id == b.calibration_id != c.calibration_id
