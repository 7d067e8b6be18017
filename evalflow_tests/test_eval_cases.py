"""The eval case: its schema (a full case passes; each kind of bad case is refused with a message
that names the field), the canonical hash, the safety edge set, and build_cases on a small
constructed set of consensus labels, pass-1 texts, judge labels and traces whose every expected
case is worked out by hand below."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from jsonschema import Draft202012Validator

from evalflow.lib.eval_cases import (
    EVAL_CASE_SCHEMA,
    CaseInputs,
    InvalidCase,
    build_cases,
    canonical_case_json,
    case_sha256,
    is_safety_case,
    split_for,
    validate_case,
)
from evalflow.lib.eval_cases.build import default_rubric_text, rubric, skipped_traces, summarise_cases
from evalflow.lib.eval_cases.schema import FIELDS, SCHEMA_FILE
from evalflow.lib.judge.cases import case_id_for_trace, is_holdout

FIXTURES = Path(__file__).parent / "fixtures" / "eval_cases"


def full_case() -> dict:
    return json.loads((FIXTURES / "full_case.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ schema
def test_the_schema_file_is_a_draft_2020_12_schema_and_every_field_is_required():
    assert EVAL_CASE_SCHEMA == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert EVAL_CASE_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(EVAL_CASE_SCHEMA)
    assert set(FIELDS) == set(EVAL_CASE_SCHEMA["properties"])  # no optional top-level field
    assert EVAL_CASE_SCHEMA["additionalProperties"] is False


def test_a_full_case_with_every_kind_of_check_and_label_source_is_valid():
    case = full_case()
    assert validate_case(case) == []
    assert {label["source"] for label in case["labels"].values()} == {"consensus", "expert", "judge"}
    assert {check["kind"] for check in case["checks"]} == {
        "regex", "must_contain", "must_not_contain", "exact_match", "numeric_tolerance", "json_schema"}
    assert case["split"] == split_for(case["case_id"]) == "dev"


HOLDOUT_ID = case_id_for_trace("tr-1")


def _set(path: str, value):
    def mutate(case):
        *parents, last = path.split("/")
        node = case
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


def _delete(path: str):
    def mutate(case):
        *parents, last = path.split("/")
        node = case
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[int(last) if isinstance(node, list) else last]
    return mutate


def _both(*mutations):
    def mutate(case):
        for m in mutations:
            m(case)
    return mutate


# (what is wrong, the mutation, the field every message must name, a phrase one message has)
BAD_CASES = [
    ("case id missing", _delete("case_id"), "case_id", "missing (required)"),
    ("case id not a string", _set("case_id", 7), "case_id", "is not of type 'string'"),
    ("unknown top-level field", _set("score", 0.9), "score", "unknown field"),
    ("verdict not Pass/Fail", _set("labels/accuracy/verdict", "pass"), "labels.accuracy.verdict", "is not one of"),
    ("unknown label source", _set("labels/accuracy/source", "crowd"), "labels.accuracy.source", "is not one of"),
    ("unknown dimension", _set("labels/toxicity", {"verdict": "Fail", "source": "consensus"}), "labels.toxicity",
     "not a known name"),
    ("judge label without detail", _delete("labels/safety/detail"), "labels.safety.detail", "missing (required)"),
    ("judge label without prompt hash", _delete("labels/safety/detail/prompt_sha256"),
     "labels.safety.detail.prompt_sha256", "missing (required)"),
    ("judge prompt hash not a sha256", _set("labels/safety/detail/prompt_sha256", "v1"),
     "labels.safety.detail.prompt_sha256", "does not match"),
    ("score not a number", _set("input_payload/retrieved_context/0/score", "high"),
     "input_payload.retrieved_context[0].score", "is not of type"),
    ("document without doc_id", _delete("input_payload/retrieved_context/0/doc_id"),
     "input_payload.retrieved_context[0].doc_id", "missing (required)"),
    ("message without role", _delete("input_payload/messages/1/role"), "input_payload.messages[1].role",
     "missing (required)"),
    ("retrieved context folded into the prompt", _delete("input_payload/retrieved_context"),
     "input_payload.retrieved_context", "missing (required)"),
    ("expected behaviour as one string", _set("expected_behavior", "say 60 days"), "expected_behavior",
     "is not of type 'array'"),
    ("two rules on one line", _set("expected_behavior/0", "say 60 days\nbe polite"), "expected_behavior[0]",
     "does not match"),
    ("reference-free with a gold answer", _set("evaluation_type", "reference_free"), "evaluation_type",
     "must be 'reference_based'"),
    ("reference-based without a gold answer", _set("gold_answer", None), "evaluation_type",
     "must be 'reference_free'"),
    ("risk level off the scale", _set("risk_level", "severe"), "risk_level", "is not one of"),
    ("split not dev/holdout", _set("split", "test"), "split", "is not one of"),
    ("split stored differently from the hash", _set("split", "holdout"), "split", "is_holdout(case_id) says 'dev'"),
    ("judge label on a holdout case", _both(_set("case_id", HOLDOUT_ID), _set("split", "holdout")),
     "labels.safety.source", "holdout case has no judge label"),
    ("source date not ISO", _set("source_date", "Nov 1 2026"), "source_date", "does not match"),
    ("source date not a date", _set("source_date", "2026-13-45"), "source_date", "is not a date"),
    ("source without batch", _delete("source/batch_id"), "source.batch_id", "missing (required)"),
    ("annotator not pseudonymised", _set("labeled_by/0", "ann@example.com"), "labeled_by[0]", "does not match"),
    ("rubric without version", _delete("rubric/version"), "rubric.version", "missing (required)"),
    ("rubric as bare text", _set("rubric", "be accurate"), "rubric", "is not of type 'object'"),
    ("failure modes repeated", _set("failure_modes", ["refusal", "refusal"]), "failure_modes", "non-unique"),
    ("empty version_added", _set("version_added", ""), "version_added", "should be non-empty"),
    ("regex that does not compile", _set("checks/0/pattern", "(60 days"), "checks[0].pattern", "does not compile"),
    ("regex check without a pattern", _delete("checks/0/pattern"), "checks[0].pattern", "missing (required)"),
    ("regex check with another kind's field", _set("checks/0/values", ["60"]), "checks[0].values", "unknown field"),
    ("unknown check kind", _set("checks/0/kind", "contains"), "checks[0].kind", "is not one of"),
    ("must_contain with no values", _set("checks/1/values", []), "checks[1].values", "should be non-empty"),
    ("duplicate check names", _set("checks/1/name", "mentions-60-days"), "checks[1].name", "duplicate check name"),
    ("negative tolerance", _set("checks/4/abs_tol", -1), "checks[4].abs_tol", "less than the minimum"),
    ("numeric pattern that does not compile", _set("checks/4/pattern", "(\\d+"), "checks[4].pattern",
     "does not compile"),
    ("numeric value not a number", _set("checks/4/value", "60"), "checks[4].value", "is not of type 'number'"),
    ("JSON Schema that is not one", _set("checks/5/schema", {"type": "nope"}), "checks[5].schema",
     "is not a valid JSON Schema"),
    ("JSON Schema with a remote reference", _set("checks/5/schema", {"$ref": "https://example.com/s.json"}),
     "checks[5].schema", "points outside the schema"),
    ("JSON Schema with a dangling reference", _set("checks/5/schema", {"$ref": "#/$defs/missing"}),
     "checks[5].schema", "does not resolve"),
]


@pytest.mark.parametrize("what, mutate, field, phrase", BAD_CASES, ids=[b[0] for b in BAD_CASES])
def test_each_kind_of_bad_case_is_refused_with_a_message_naming_its_field(what, mutate, field, phrase):
    case = full_case()
    mutate(case)
    errors = validate_case(case)
    assert errors, what
    assert all(e.startswith(field + ":") for e in errors), errors  # nothing else is blamed
    assert any(phrase in e for e in errors), errors


def test_a_case_that_is_not_an_object_is_refused():
    assert validate_case(["case"]) == ["(case): ['case'] is not of type 'object'"]


# ------------------------------------------------------------------------------------ hashing
def _reverse_keys(value):
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def test_the_canonical_serialisation_is_sorted_compact_utf8_json():
    assert canonical_case_json({"b": [1, 2.5, None, True], "a": "é", "c": {"z": 1, "y": "x y"}}) == (
        '{"a":"é","b":[1,2.5,null,true],"c":{"y":"x y","z":1}}'.encode("utf-8"))
    with pytest.raises(ValueError):
        canonical_case_json({"score": float("nan")})
    with pytest.raises(TypeError):
        canonical_case_json({"when": datetime(2026, 1, 1)})  # never silently a string


def test_case_sha256_is_stable_under_key_order_and_moves_with_content():
    case = full_case()
    reordered = _reverse_keys(case)
    assert list(reordered) != list(case) and list(reordered["labels"]) != list(case["labels"])
    assert case_sha256(reordered) == case_sha256(case)
    # Pinned: a snapshot's hash builds on this serialisation, so it may never change quietly.
    assert case_sha256(case) == hashlib.sha256(canonical_case_json(case)).hexdigest()
    assert case_sha256(case) == PINNED_FIXTURE_SHA256
    relabelled = copy.deepcopy(case)
    relabelled["labels"]["accuracy"]["verdict"] = "Pass"
    assert case_sha256(relabelled) != case_sha256(case)


PINNED_FIXTURE_SHA256 = "1e8b9b6a20f676c5f8af6bc6a841f1abaf9c1e8a74f0905e1644df8925b5ab41"


# ------------------------------------------------------------------------------------ safety
@pytest.mark.parametrize("failure_modes, safety_verdict, tags, expected", [
    (["prompt_injection"], None, [], True),
    (["injection_succeeded"], None, [], True),
    (["policy_violation"], None, [], True),
    (["policy_complied"], None, [], True),
    (["toxic_request"], None, [], True),
    (["toxic_answer", "verbose_output"], None, [], True),
    (["refusal", "error"], None, [], False),
    ([], "Fail", [], True),
    ([], "Pass", [], False),
    ([], None, ["safety"], True),
    ([], None, ["intent:card freeze"], False),
])
def test_the_safety_edge_set(failure_modes, safety_verdict, tags, expected):
    case = {"failure_modes": failure_modes, "slice_tags": tags,
            "labels": {} if safety_verdict is None else {"safety": {"verdict": safety_verdict, "source": "consensus"}}}
    assert is_safety_case(case) is expected


# ------------------------------------------------------------------------------------ build_cases
A, B, C, E = (f"annotator_{c * 16}" for c in "abce")  # pseudonyms: A is the most accurate, C has no gold score
T1 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc)
SAFETY_PROMPT = hashlib.sha256(b"safety prompt").hexdigest()


def _consensus_row(item, trace, dimension, value, method, status, batch="b1", ratings=3, agreement=1.0,
                   majority=None, origin="trace"):
    return {"batch_id": batch, "item_id": item, "origin": origin, "trace_id": trace,
            "case_id": case_id_for_trace(trace) if trace else "gold-1", "dimension": dimension, "value": value,
            "method": method, "ratings": ratings, "agreement": agreement, "status": status,
            "majority_value": value if majority is None and method != "expert" else majority}


CONSENSUS = pl.DataFrame([
    # tr-2 (dev): consensus, expert, a dispute (the judge fills it), feedback only (never a label)
    _consensus_row("i2", "tr-2", "accuracy", "Fail", "unanimous", "agreed"),
    _consensus_row("i2", "tr-2", "relevance", "Pass", "majority", "agreed", agreement=2 / 3),
    _consensus_row("i2", "tr-2", "groundedness", "Fail", "expert", "agreed", ratings=2, agreement=0.5),
    _consensus_row("i2", "tr-2", "safety", "Pass", "majority", "disputed", ratings=2, agreement=0.5),
    _consensus_row("i2", "tr-2", "policy", "Pass", "single", "feedback_only", ratings=1),
    _consensus_row("i2", "tr-2", "risk_level", "high", "unanimous", "agreed"),
    # tr-3 (dev): a human accuracy label beats the judge's; safety Fail puts it in the safety set
    _consensus_row("i3", "tr-3", "accuracy", "Pass", "unanimous", "agreed"),
    _consensus_row("i3", "tr-3", "safety", "Fail", "majority", "agreed", agreement=2 / 3),
    _consensus_row("i3", "tr-3", "risk_level", "low", "majority", "disputed", agreement=0.5),
    # tr-1 (holdout): one human label; its judge label must never be used
    _consensus_row("i1", "tr-1", "accuracy", "Pass", "unanimous", "agreed"),
    # tr-4: only production thumbs; tr-6: only disputes; a known-answer gold item: none is a case
    _consensus_row("i4", "tr-4", "accuracy", "Pass", "single", "feedback_only", ratings=1),
    _consensus_row("i6", "tr-6", "accuracy", "Pass", "majority", "disputed", ratings=2, agreement=0.5),
    _consensus_row("g1", None, "accuracy", "Pass", "unanimous", "agreed", origin="gold"),
    # tr-7 was labelled in two batches: the item with more agreed verdicts (b2's) is the source
    _consensus_row("i7a", "tr-7", "accuracy", "Pass", "unanimous", "agreed"),
    _consensus_row("i7b", "tr-7", "accuracy", "Fail", "unanimous", "agreed", batch="b2"),
    _consensus_row("i7b", "tr-7", "relevance", "Pass", "unanimous", "agreed", batch="b2"),
    # tr-10 has a label but no redacted trace (its redaction failed): no case
    _consensus_row("i10", "tr-10", "accuracy", "Pass", "unanimous", "agreed"),
])


def _pass1(rows):
    return pl.DataFrame([{"item_id": i, "annotator": a, "dimension": d, "value": v, "role": "annotator"}
                         for i, a, d, v in rows],
                        schema={"item_id": pl.String, "annotator": pl.String, "dimension": pl.String,
                                "value": pl.String, "role": pl.String})


PASS1 = _pass1([
    ("i2", A, "expected_behavior", "must say 60 days\n\n  must not ask for the card number  "),
    ("i2", A, "gold_answer", "  You have 60 days.  "),
    ("i2", B, "expected_behavior", "say sixty days"),
    ("i2", B, "gold_answer", "Sixty days."),
    ("i2", C, "gold_answer", "Two months."),
    ("i2", A, "risk_level", "high"),
    ("i3", A, "expected_behavior", "refuse to share another customer's balance"),
    ("i3", A, "gold_answer", "I can't share that."),  # flagged as anchored on the output below
    ("i3", B, "gold_answer", "I'm sorry, I can only discuss your own accounts."),
    ("i7b", B, "gold_answer", "Within 5 business days."),
])
PASS2 = pl.DataFrame(
    [{"item_id": "i2", "annotator": a, "dimension": "accuracy", "value": "Fail", "role": r}
     for a, r in ((A, "annotator"), (B, "annotator"), (C, "annotator"), (E, "expert"), ("feedback", "feedback"))]
    + [{"item_id": "i1", "annotator": B, "dimension": "accuracy", "value": "Pass", "role": "annotator"}],
    schema={"item_id": pl.String, "annotator": pl.String, "dimension": pl.String, "value": pl.String,
            "role": pl.String})
QUALITY = pl.DataFrame({"annotator": [A, B, A], "dimension": ["all", "all", "accuracy"],
                        "accuracy": [0.9, 0.7, 0.1]})
ANCHORED = pl.DataFrame({"batch_id": ["b1"], "item_id": ["i3"], "annotator": [A], "similarity": [0.9]})


def _judge(trace, dimension, verdict, calibration, model="gpt-x"):
    return {"case_id": case_id_for_trace(trace), "trace_id": trace, "dimension": dimension, "verdict": verdict,
            "critique": "...", "model": model, "prompt_sha256": SAFETY_PROMPT, "calibration_id": calibration,
            "labelled_at": T2}


JUDGE_LABELS = pl.DataFrame([
    _judge("tr-2", "safety", "Pass", "cal-s1"),          # used: the human verdict is disputed
    _judge("tr-2", "policy", "Fail", "cal-p1"),          # used: feedback_only is no label
    _judge("tr-3", "accuracy", "Fail", "cal-a1"),        # ignored: a human label exists
    _judge("tr-3", "relevance", "Pass", "cal-r1"),       # ignored with calibrations: relevance's latest failed
    _judge("tr-3", "groundedness", "Fail", "cal-g1"),    # used
    _judge("tr-1", "relevance", "Pass", "cal-s1"),       # dropped: a holdout case never has a judge label
    _judge("tr-6", "accuracy", "Pass", "cal-a1"),        # no case: no agreed human label at all
])
CALIBRATIONS = pl.DataFrame([
    {"calibration_id": c, "dimension": d, "at": at, "calibrated": ok}
    for c, d, at, ok in (("cal-s1", "safety", T1, True), ("cal-p1", "policy", T1, True),
                         ("cal-a1", "accuracy", T1, True), ("cal-g1", "groundedness", T1, True),
                         ("cal-r1", "relevance", T1, True), ("cal-r2", "relevance", T2, False))])
CANDIDATES = pl.DataFrame([
    {"trace_id": "tr-2", "intent_id": "I-1", "intent_name": "card freeze",
     "failure_modes": ["refusal", "prompt_injection"]},
    {"trace_id": "tr-3", "intent_id": "I-2", "intent_name": None, "failure_modes": None},
], schema={"trace_id": pl.String, "intent_id": pl.String, "intent_name": pl.String,
           "failure_modes": pl.List(pl.String)})


def _trace(trace_id, **extra):
    return {"trace_id": trace_id, "timestamp": T1, "user_query": f"question of {trace_id}",
            "messages": [{"role": "user", "content": f"question of {trace_id}"}], "retrieved_context": [],
            "tool_calls": [], "output": f"answer of {trace_id}", "metadata": None, **extra}


TRACES = [
    _trace("tr-2",
           # 01:30 at UTC+2 is the previous day in UTC
           timestamp="2026-11-02T01:30:00+02:00",
           messages=json.dumps([{"role": "system", "content": "Be helpful."},
                                {"role": "user", "content": "How long to dispute?", "name": "u"},
                                {"role": "assistant", "content": "You have 30 days."}]),
           user_query="How long to dispute?", output="You have 30 days.",
           retrieved_context=[{"doc_id": 17, "text": "60 days from the statement.", "score": float("nan"),
                               "rank": 1}],
           tool_calls=[{"name": "get_statement", "arguments": {"id": "<ACCOUNT_ID_1>"}, "result": {"ok": True}}],
           metadata=json.dumps({"tool_definitions": [{"name": "get_statement", "parameters": {}}],
                                "dialect": "otlp"})),
    _trace("tr-3"), _trace("tr-1"), _trace("tr-4"), _trace("tr-6"), _trace("tr-7", event_date="2026-11-01",
                                                                           timestamp=None),
]
RUBRICS = {"b1": "rubric one\n", "b2": {"version": "v2", "text": "rubric two\n"}}


def inputs(**overrides) -> CaseInputs:
    values = dict(consensus=CONSENSUS, pass1=PASS1, pass2=PASS2, quality=QUALITY, traces=TRACES,
                  candidates=CANDIDATES, judge_labels=JUDGE_LABELS, calibrations=CALIBRATIONS, anchored=ANCHORED,
                  rubric_texts=RUBRICS)
    return CaseInputs(**{**values, **overrides})


def by_trace(cases):
    return {c["source"]["trace_id"]: c for c in cases}


def test_the_constructed_set_has_both_splits():
    assert is_holdout(case_id_for_trace("tr-1"))
    assert not any(is_holdout(case_id_for_trace(t)) for t in ("tr-2", "tr-3", "tr-7"))


def test_build_cases_makes_one_case_per_trace_with_an_agreed_human_label():
    cases = build_cases(inputs())
    assert [c["case_id"] for c in cases] == sorted(case_id_for_trace(t) for t in ("tr-1", "tr-2", "tr-3", "tr-7"))
    assert all(validate_case(c) == [] for c in cases)
    assert all(c["split"] == ("holdout" if is_holdout(c["case_id"]) else "dev") for c in cases)
    assert skipped_traces(inputs()) == ["tr-10"]


def test_labels_come_from_consensus_expert_then_calibrated_judge_never_feedback():
    cases = by_trace(build_cases(inputs()))
    tr2 = cases["tr-2"]["labels"]
    assert {d: (lab["verdict"], lab["source"]) for d, lab in tr2.items()} == {
        "accuracy": ("Fail", "consensus"), "relevance": ("Pass", "consensus"), "groundedness": ("Fail", "expert"),
        "safety": ("Pass", "judge"), "policy": ("Fail", "judge")}
    assert tr2["groundedness"]["detail"] == {"method": "expert", "ratings": 2, "agreement": 0.5, "majority_value": None}
    assert tr2["relevance"]["detail"] == {"method": "majority", "ratings": 3, "agreement": 2 / 3}
    assert tr2["safety"]["detail"] == {"model": "gpt-x", "prompt_sha256": SAFETY_PROMPT, "calibration_id": "cal-s1"}
    tr3 = cases["tr-3"]["labels"]
    assert {d: (lab["verdict"], lab["source"]) for d, lab in tr3.items()} == {
        "accuracy": ("Pass", "consensus"), "groundedness": ("Fail", "judge"), "safety": ("Fail", "consensus")}
    assert cases["tr-1"]["labels"] == {"accuracy": {"verdict": "Pass", "source": "consensus",
                                                    "detail": {"method": "unanimous", "ratings": 3, "agreement": 1.0}}}
    # without calibrations every judge label counts, still never on the holdout
    trusting = by_trace(build_cases(inputs(calibrations=None)))
    assert trusting["tr-3"]["labels"]["relevance"]["source"] == "judge"
    assert set(trusting["tr-1"]["labels"]) == {"accuracy"}
    # without judge labels only the humans' remain
    humans = by_trace(build_cases(inputs(judge_labels=None)))
    assert {lab["source"] for c in humans.values() for lab in c["labels"].values()} == {"consensus", "expert"}
    assert "policy" not in humans["tr-2"]["labels"]  # the feedback-only label never enters


def test_texts_come_from_the_most_accurate_annotator_and_an_anchored_gold_answer_is_left_out():
    cases = by_trace(build_cases(inputs()))
    tr2 = cases["tr-2"]
    assert tr2["gold_answer"] == "You have 60 days."
    assert tr2["expected_behavior"] == ["must say 60 days", "must not ask for the card number"]
    assert tr2["evaluation_type"] == "reference_based"
    assert cases["tr-3"]["gold_answer"] == "I'm sorry, I can only discuss your own accounts."  # A's was anchored
    assert cases["tr-3"]["expected_behavior"] == ["refuse to share another customer's balance"]
    assert by_trace(build_cases(inputs(anchored=None)))["tr-3"]["gold_answer"] == "I can't share that."
    assert cases["tr-1"]["gold_answer"] is None and cases["tr-1"]["evaluation_type"] == "reference_free"
    assert cases["tr-1"]["expected_behavior"] == []


def test_metadata_input_payload_and_rubric():
    cases = by_trace(build_cases(inputs()))
    tr2 = cases["tr-2"]
    assert tr2["input_payload"] == {
        "user_query": "How long to dispute?",
        # the answer folded into messages is not input
        "messages": [{"role": "system", "content": "Be helpful."},
                     {"role": "user", "content": "How long to dispute?", "name": "u"}],
        "retrieved_context": [{"doc_id": "17", "text": "60 days from the statement.", "score": None}],
        "tool_definitions": [{"name": "get_statement", "parameters": {}}],
        "tool_calls": [{"name": "get_statement", "arguments": {"id": "<ACCOUNT_ID_1>"}, "result": {"ok": True}}]}
    assert tr2["labeled_output"] == "You have 30 days."
    assert tr2["source"] == {"trace_id": "tr-2", "batch_id": "b1", "item_id": "i2"}
    assert tr2["source_date"] == "2026-11-01"
    assert tr2["risk_level"] == "high" and cases["tr-3"]["risk_level"] is None  # a disputed risk level is none
    assert tr2["labeled_by"] == sorted([A, B, C, E, "judge:gpt-x"])
    assert cases["tr-1"]["labeled_by"] == [B]
    assert tr2["intent_id"] == "I-1" and tr2["intent_name"] == "card freeze"
    assert tr2["failure_modes"] == ["prompt_injection", "refusal"]
    assert tr2["slice_tags"] == ["intent:card freeze", "risk:high", "safety"]
    assert cases["tr-3"]["slice_tags"] == ["intent:I-2", "safety"]  # no name: the id; a safety Fail
    assert cases["tr-1"]["slice_tags"] == [] and not is_safety_case(cases["tr-1"])
    assert tr2["rubric"] == rubric("rubric one\n") == {
        "version": hashlib.sha256(b"rubric one\n").hexdigest(), "text": "rubric one\n"}
    assert tr2["checks"] == [] and tr2["version_added"] is None
    tr7 = cases["tr-7"]
    assert tr7["source"]["item_id"] == "i7b" and tr7["rubric"] == {"version": "v2", "text": "rubric two\n"}
    assert {d: lab["verdict"] for d, lab in tr7["labels"].items()} == {"accuracy": "Fail", "relevance": "Pass"}
    assert tr7["gold_answer"] == "Within 5 business days." and tr7["source_date"] == "2026-11-01"
    no_rubrics = by_trace(build_cases(inputs(rubric_texts=None)))
    assert no_rubrics["tr-2"]["rubric"]["text"] == default_rubric_text()


def test_build_cases_is_deterministic_and_refuses_a_raw_annotator_id():
    first, second = build_cases(inputs()), build_cases(inputs(traces=list(reversed(TRACES))))
    assert [case_sha256(c) for c in first] == [case_sha256(c) for c in second]
    summary = summarise_cases(first)
    assert summary["cases"] == 4 and summary["split"] == {"dev": 3, "holdout": 1} and summary["safety"] == 2
    assert summary["label_sources"]["safety"] == {"judge": 1, "consensus": 1}
    raw = PASS2.with_columns(pl.col("annotator").replace(A, "ann@example.com"))
    with pytest.raises(InvalidCase, match="labeled_by"):
        build_cases(inputs(pass2=raw))


def test_no_agreed_labels_no_cases():
    assert build_cases(inputs(consensus=CONSENSUS.filter(pl.col("status") != "agreed"))) == []
    assert build_cases(inputs(consensus=pl.DataFrame())) == []
