"""Bias checks on a simulated judge whose pairwise behaviour is known: position bias (both
orders, a flip is a tie, flip rate) and verbosity bias (shorter vs longer)."""

from __future__ import annotations

import pytest

from evalflow.lib.judge.bias import (
    calibration_verbosity,
    judge_pairs,
    pairwise_position_bias,
    position_bias,
    verbosity_bias_pairwise,
    verbosity_bias_single,
)
from evalflow.lib.judge.calibrate import calibrate
from evalflow.lib.judge.client import JudgeClient
from evalflow.lib.judge.config import ClientSettings
from evalflow.lib.judge.prompts import default_template
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

PAIRWISE = default_template("pairwise")
DIM = "accuracy"
# ten pairs; the passing answer is the shorter one in the first five and the longer one after
PAIRS = [{"pair_id": f"pair-{n}", "input": f"question {n}",
          "answer_a": "short right" if n < 5 else "a long and right answer " * 3,
          "answer_b": "a long and wrong answer " * 3 if n < 5 else "short wrong",
          "pass_answer": "a"} for n in range(10)]


def client_for(server) -> JudgeClient:
    return JudgeClient(ClientSettings(base_url=server.base_url, model=SIMULATED_MODEL))


def test_a_judge_that_always_prefers_the_first_answer_flips_every_pair():
    with SimulatedJudgeServer(pairwise="first") as server:
        with client_for(server) as client:
            report = pairwise_position_bias(PAIRS, PAIRWISE, client, DIM, max_flip_rate=0.10)
    assert (report["flip_rate"], report["flips"], report["usable_pairwise"]) == (1.0, 10, False)
    assert {o["preferred"] for o in report["outcomes"]} == {"tie"}  # a flip counts as a tie
    assert report["outcomes"][0] == {"pair_id": "pair-0", "a_first": "a", "b_first": "b", "flipped": True,
                                     "preferred": "tie"}
    # both orders were sent for every pair
    assert sorted(r["pair_id"] for r in server.requests) == sorted(p["pair_id"] for p in PAIRS for _ in "ab")


def test_a_judge_that_knows_the_better_answer_never_flips():
    truth = {p["pair_id"]: p["answer_a"] for p in PAIRS}
    with SimulatedJudgeServer(pairwise="truth", pair_truth=truth) as server:
        with client_for(server) as client:
            report = pairwise_position_bias(PAIRS, PAIRWISE, client, DIM, max_flip_rate=0.10)
    assert (report["flip_rate"], report["usable_pairwise"]) == (0.0, True)
    assert [o["preferred"] for o in report["outcomes"]] == ["a"] * 10


@pytest.mark.parametrize(("flipping", "usable"), [(1, True), (2, False)])
def test_the_flip_rate_limit_is_inclusive(flipping, usable):
    flip_ids = {f"pair-{n}" for n in range(flipping)}

    def policy(pair_id, dimension, first, second):
        if pair_id in flip_ids:
            return "first"
        return "first" if first.startswith(("short right", "a long and right")) else "second"

    with SimulatedJudgeServer(pairwise=policy) as server:
        with client_for(server) as client:
            report = pairwise_position_bias(PAIRS, PAIRWISE, client, DIM, max_flip_rate=0.10)
    assert report["flip_rate"] == flipping / 10 and report["usable_pairwise"] is usable


def test_a_judge_that_prefers_the_longer_answer_shows_verbosity_bias():
    with SimulatedJudgeServer(pairwise="longer") as server:
        with client_for(server) as client:
            outcomes = judge_pairs(PAIRS, PAIRWISE, client, DIM)
    report = verbosity_bias_pairwise(PAIRS, outcomes)
    assert report["pass_shorter"] == {"n": 5, "agreement": 0.0}
    assert report["pass_longer"] == {"n": 5, "agreement": 1.0}
    assert report["difference"] == 1.0
    assert position_bias(outcomes, max_flip_rate=0.1)["flip_rate"] == 0.0  # consistent, but biased


def test_a_pairwise_check_needs_the_pairwise_template():
    with SimulatedJudgeServer() as server:
        with client_for(server) as client:
            with pytest.raises(ValueError, match="pairwise template"):
                judge_pairs(PAIRS, default_template(DIM), client, DIM)


def test_single_case_verbosity_compares_the_shorter_and_longer_halves():
    items = [{"case_id": f"c{n}", "output": "x" * (n + 1), "human": "Pass", "judge": "Pass" if n >= 3 else "Fail"}
             for n in range(6)] + [{"case_id": "c9", "output": "x", "human": "Pass", "judge": None}]
    report = verbosity_bias_single(items)
    assert report["shorter_half"] == {"n": 3, "agreement": 0.0}
    assert report["longer_half"] == {"n": 3, "agreement": 1.0}
    assert (report["difference"], report["cut_length"]) == (1.0, 4)
    assert report["method"].startswith("single: agreement on the shorter half vs the longer half")


def test_single_case_verbosity_of_a_calibration_uses_its_judged_cases():
    cases = {f"case-{n:03d}": {"case_id": f"case-{n:03d}", "input": "q", "output": "w " * (n + 1),
                               "expected_behavior": None} for n in range(120)}
    truth = {c: {DIM: "Pass" if n % 2 else "Fail"} for n, c in enumerate(cases)}
    human = {c: t[DIM] for c, t in truth.items()}
    with SimulatedJudgeServer(truth=truth, error_rates={DIM: 0.2}, seed=3) as server:
        with client_for(server) as client:
            result = calibrate(cases, human, DIM, [default_template(DIM)], client, gate_open=True)
    report = calibration_verbosity(result, cases)
    judged = sorted((len(cases[c["case_id"]]["output"]), c["case_id"], c["human"] == c["judge"])
                    for c in result.cases if c["judge"] is not None)
    half = len(judged) // 2
    assert report["shorter_half"] == {"n": half, "agreement": sum(a for *_, a in judged[:half]) / half}
    assert report["longer_half"]["n"] == len(judged) - half
