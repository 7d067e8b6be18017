"""Eval case ids, the 20% holdout and the tune/test split: stable hashes of the case id."""

from __future__ import annotations

import hashlib

from evalflow.lib.judge.cases import (
    calibration_split,
    case_from_trace,
    case_id_for_trace,
    case_sha256,
    case_split,
    is_holdout,
)

CASE = {"case_id": "ka-001", "input": {"user_query": "How long to dispute?"}, "output": "60 days.",
        "expected_behavior": ["must say 60 days"]}


def test_case_id_of_a_trace_is_the_pinned_hash():
    expected = "case-" + hashlib.sha256("trace\x1ftrace-42".encode()).hexdigest()[:16]
    assert case_id_for_trace("trace-42") == expected
    assert case_id_for_trace("trace-42") != case_id_for_trace("trace-43")


def test_holdout_and_split_follow_the_pinned_rules():
    for n in range(200):
        case_id = f"case-{n}"
        holdout = int(hashlib.sha256(f"holdout\x1f{case_id}".encode()).hexdigest()[:8], 16) % 100 < 20
        part = int(hashlib.sha256(f"calibration\x1f{case_id}".encode()).hexdigest()[:8], 16) % 2
        assert is_holdout(case_id) == holdout
        assert calibration_split(case_id) == ("tune" if part == 0 else "test")
        assert case_split(case_id) == ("holdout" if holdout else calibration_split(case_id))


def test_about_a_fifth_is_holdout_and_the_rest_splits_in_halves():
    ids = [case_id_for_trace(f"t{n}") for n in range(10_000)]
    parts = [case_split(c) for c in ids]
    # binomial: 2000 +- 4 standard deviations (40)
    assert abs(parts.count("holdout") - 2000) < 160
    assert abs(parts.count("tune") - parts.count("test")) < 250


def test_a_case_keeps_its_part_however_the_set_grows():
    small = {c: case_split(c) for c in (f"case-{n}" for n in range(50))}
    large = {c: case_split(c) for c in (f"case-{n}" for n in range(5000))}
    assert all(large[c] == part for c, part in small.items())


def test_case_sha256_changes_with_what_the_judge_sees_only():
    base = case_sha256(CASE, "accuracy")
    assert case_sha256(dict(CASE), "accuracy") == base
    assert case_sha256({**CASE, "output": "30 days."}, "accuracy") != base
    assert case_sha256({**CASE, "expected_behavior": ["x"]}, "accuracy") != base
    assert case_sha256({**CASE, "rubric": "be strict"}, "accuracy") != base
    assert case_sha256(CASE, "policy") != base
    # not seen by the judge: annotation bookkeeping, and another dimension's rubric
    assert case_sha256({**CASE, "trace_id": "t1", "intent": "x"}, "accuracy") == base
    assert case_sha256({**CASE, "rubric": {"policy": "no refunds"}}, "accuracy") == base
    assert case_sha256({**CASE, "rubric": {"accuracy": "exact days"}}, "accuracy") != base


def test_case_from_trace_keeps_the_input_parts_and_the_id():
    trace = {"trace_id": "t-9", "user_query": "q", "messages": [], "retrieved_context": [{"doc_id": "d"}],
             "tool_calls": None, "output": "a", "session_id": "s"}
    case = case_from_trace(trace, expected_behavior=["say a"])
    assert case == {"case_id": case_id_for_trace("t-9"), "trace_id": "t-9",
                    "input": {"user_query": "q", "retrieved_context": [{"doc_id": "d"}]}, "output": "a",
                    "expected_behavior": ["say a"]}
