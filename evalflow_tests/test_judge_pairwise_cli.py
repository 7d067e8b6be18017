"""`evalflow judge pairwise` on a file of pairs, against the simulated judge server on 127.0.0.1
with a seeded position bias: the flip rate it reports is the one the server was made to show."""

from __future__ import annotations

import argparse
import json

import pytest

from evalflow.cli import UserError
from evalflow.cli.judge import configure, run
from evalflow.lib.judge.cases import is_holdout
from evalflow.lib.judge.prompts import default_template
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

DIM = "accuracy"
N_PAIRS = 80
FLIPPING = {f"pw-{n:03d}" for n in range(N_PAIRS) if n % 5 == 0}  # the server prefers whichever is shown first


def pair(n: int) -> dict:
    right, wrong = ("short right", "a long and wrong answer " * 3) if n % 2 else ("a long and right answer " * 3,
                                                                                  "short wrong")
    a_right = n % 3 != 0
    return {"case_id": f"pw-{n:03d}", "input": {"user_query": f"question {n}"},
            "output_a": right if a_right else wrong, "output_b": wrong if a_right else right,
            "expected_behavior": ["answer the question"], "human": "a" if a_right else "b"}


PAIRS = [pair(n) for n in range(N_PAIRS)]
RIGHT = {p["case_id"]: p["output_a"] if p["human"] == "a" else p["output_b"] for p in PAIRS}


def seeded_bias(pair_id, dimension, first, second):
    if pair_id in FLIPPING:
        return "first"
    return "first" if first == RIGHT[pair_id] else "second"


def parse(argv):
    parser = argparse.ArgumentParser(prog="evalflow judge")
    configure(parser)
    return parser.parse_args(argv)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EVALFLOW_JUDGE_PROMPTS_DIR", raising=False)
    monkeypatch.delenv("EVALFLOW_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("EVALFLOW_JUDGE_MAX_FLIP_RATE", raising=False)
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return tmp_path


def pairwise_args(tmp_path, *extra):
    return parse(["pairwise", "--pairs", str(tmp_path / "pairs.jsonl"), "--dimension", DIM,
                  "-o", str(tmp_path / "report.json"), *extra])


def test_the_reported_flip_rate_is_the_seeded_one_holdout_is_never_sent_and_a_rerun_sends_nothing(
        env, monkeypatch, capsys):
    tmp_path = env
    monkeypatch.setenv("EVALFLOW_JUDGE_MAX_FLIP_RATE", "0.5")
    judged = [p["case_id"] for p in PAIRS if not is_holdout(p["case_id"])]
    assert 0 < len(judged) < N_PAIRS  # some pairs are in the holdout
    with SimulatedJudgeServer(pairwise=seeded_bias, transient_error_rate=0.2, seed=4) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        assert run(pairwise_args(tmp_path)) == 0
        out = capsys.readouterr().out
        pair_requests = sorted(r["pair_id"] for r in server.requests if r.get("status") == 200)
        sent = server.request_count
        assert run(pairwise_args(tmp_path)) == 0  # a re-run: everything from the cache
        assert server.request_count == sent
    rerun = json.loads((tmp_path / "report.json").read_text())
    assert rerun["usage"]["requests_sent"] == 0 and rerun["usage"]["cache_hits"] == 2 * len(judged)
    # both orders of every judged pair, never a holdout pair
    assert pair_requests == sorted(c for c in judged for _ in "ab")
    flips = [c for c in judged if c in FLIPPING]
    assert (rerun["judged"], rerun["holdout"], rerun["scored"]) == (len(judged), N_PAIRS - len(judged), len(judged))
    assert rerun["flips"] == len(flips) > 0
    assert rerun["flip_rate"] == len(flips) / len(judged)
    assert rerun["usable_pairwise"] is True and rerun["max_flip_rate"] == 0.5
    assert (rerun["model"], rerun["prompt_sha256"]) == (SIMULATED_MODEL, default_template("pairwise").sha256)
    by_id = {row["case_id"]: row for row in rerun["cases"]}
    for p in PAIRS:
        row = by_id[p["case_id"]]
        if is_holdout(p["case_id"]):
            assert row["split"] == "holdout" and row["preferred"] is None
        elif p["case_id"] in FLIPPING:
            assert (row["flipped"], row["preferred"]) == (True, "tie")  # a flip counts as a tie
        else:
            assert (row["flipped"], row["preferred"]) == (False, p["human"])
    # agreement with the human: every flip is a tie, so a disagreement
    assert rerun["human_agreement"] == {"n": len(judged), "agreement": 1 - len(flips) / len(judged)}
    # verbosity: agreement on pairs whose Pass answer is the shorter vs the longer one
    shorter = [c for c in judged if len(RIGHT[c]) < 20]
    longer = [c for c in judged if len(RIGHT[c]) >= 20]
    verbosity = rerun["verbosity"]
    assert verbosity["pass_shorter"] == {"n": len(shorter),
                                         "agreement": sum(c not in FLIPPING for c in shorter) / len(shorter)}
    assert verbosity["pass_longer"] == {"n": len(longer),
                                        "agreement": sum(c not in FLIPPING for c in longer) / len(longer)}
    assert "order flips (ties)" in out and "Pass answer shorter" in out and "usable pairwise: yes" in out


def test_a_flip_rate_above_the_max_exits_non_zero_with_the_reason(env, monkeypatch, capsys):
    tmp_path = env
    with SimulatedJudgeServer(pairwise=seeded_bias, seed=4) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        assert run(pairwise_args(tmp_path)) == 1  # the seeded rate (about 0.2) is above the default 0.10
    err = capsys.readouterr().err.strip().splitlines()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["flip_rate"] > 0.10 and report["usable_pairwise"] is False and report["max_flip_rate"] == 0.10
    assert err == [f"evalflow: judge not usable pairwise for {DIM}: flip rate {report['flip_rate']:.3f} is above "
                   "the max 0.100 (EVALFLOW_JUDGE_MAX_FLIP_RATE)"]


def test_a_bad_pair_line_is_a_user_error_naming_it(env, monkeypatch):
    tmp_path = env
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"case_id": "x", "output_a": "a"}) + "\n")
    with pytest.raises(UserError, match="line 1: pair x has no output_b"):
        run(pairwise_args(tmp_path))
    path.write_text(json.dumps({"case_id": "x", "output_a": "a", "output_b": "b", "human": "maybe"}) + "\n")
    with pytest.raises(UserError, match="human must be"):
        run(pairwise_args(tmp_path))
