"""Consensus labels: majority, ties, the agreement threshold, expert overrides, feedback-only labels;
the disagreement queue as an expert review project."""

from __future__ import annotations

import json

import polars as pl
import pytest

from evalflow.lib.annotation.task_validation import validate_tasks
from evalflow.lib.common.settings import SettingError
from evalflow.lib.labels import review as review_module
from evalflow.lib.labels.consensus import consensus_min_agreement, feedback_ratings, majority_vote
from evalflow.lib.labels.review import ReviewConflictError, disputed_items, write_review_project


def ratings(rows: list[tuple], role: bool = False) -> pl.DataFrame:
    columns = ["item_id", "annotator", "dimension", "value"] + (["role"] if role else [])
    return pl.DataFrame(rows, schema=columns, orient="row")


def one(result: pl.DataFrame, item_id: str, dimension: str = "accuracy") -> dict:
    rows = result.filter((pl.col("item_id") == item_id) & (pl.col("dimension") == dimension)).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_majority_unanimous_and_agreement_share():
    result = majority_vote(ratings([
        ("i1", "a", "accuracy", "Pass"), ("i1", "b", "accuracy", "Pass"), ("i1", "c", "accuracy", "Fail"),
        ("i2", "a", "accuracy", "Fail"), ("i2", "b", "accuracy", "Fail"), ("i2", "c", "accuracy", "Fail"),
    ]))
    expected = [
        {"item_id": "i1", "dimension": "accuracy", "value": "Pass", "method": "majority", "ratings": 3,
         "agreement": pytest.approx(2 / 3), "status": "agreed", "majority_value": "Pass"},
        {"item_id": "i2", "dimension": "accuracy", "value": "Fail", "method": "unanimous", "ratings": 3,
         "agreement": 1.0, "status": "agreed", "majority_value": "Fail"},
    ]
    assert result.to_dicts() == expected


def test_tie_is_disputed_with_no_value():
    result = majority_vote(ratings([("i1", "a", "policy", "Pass"), ("i1", "b", "policy", "Fail")]))
    assert one(result, "i1", "policy") == {
        "item_id": "i1", "dimension": "policy", "value": None, "method": "majority", "ratings": 2,
        "agreement": 0.5, "status": "disputed", "majority_value": None}


def test_majority_below_min_agreement_is_disputed_but_keeps_its_leaning():
    rows = [("i1", "a", "accuracy", "Pass"), ("i1", "b", "accuracy", "Pass"), ("i1", "c", "accuracy", "Fail")]
    result = one(majority_vote(ratings(rows), min_agreement=0.75), "i1")
    assert (result["status"], result["value"], result["agreement"]) == ("disputed", "Pass", pytest.approx(2 / 3))
    assert one(majority_vote(ratings(rows), min_agreement=2 / 3), "i1")["status"] == "agreed"


def test_min_agreement_setting(monkeypatch):
    assert consensus_min_agreement() == 0.5
    monkeypatch.setenv("EVALFLOW_CONSENSUS_MIN_AGREEMENT", "0.7")
    rows = [("i1", "a", "accuracy", "Pass"), ("i1", "b", "accuracy", "Pass"), ("i1", "c", "accuracy", "Fail")]
    assert one(majority_vote(ratings(rows), consensus_min_agreement()), "i1")["status"] == "disputed"
    monkeypatch.setenv("EVALFLOW_CONSENSUS_MIN_AGREEMENT", "2")
    with pytest.raises(SettingError, match="EVALFLOW_CONSENSUS_MIN_AGREEMENT must be at least 0 and at most 1"):
        consensus_min_agreement()


def test_missing_values_are_no_rating():
    result = one(majority_vote(ratings([
        ("i1", "a", "accuracy", "Pass"), ("i1", "b", "accuracy", None), ("i1", "c", "accuracy", " "),
        ("i1", "d", "accuracy", "Pass"),
    ])), "i1")
    assert (result["ratings"], result["method"], result["status"]) == (2, "unanimous", "agreed")


def test_single_rating_needs_allow_single_to_count():
    rows = ratings([("i1", "a", "accuracy", "Fail")])
    assert one(majority_vote(rows), "i1")["status"] == "disputed"
    result = one(majority_vote(rows, allow_single=True), "i1")
    assert (result["method"], result["status"], result["value"]) == ("single", "agreed", "Fail")


def test_expert_overrides_the_majority_and_the_override_is_recorded():
    result = one(majority_vote(ratings([
        ("i1", "a", "accuracy", "Pass", "annotator"), ("i1", "b", "accuracy", "Pass", "annotator"),
        ("i1", "c", "accuracy", "Fail", "annotator"), ("i1", "sme", "accuracy", "Fail", "expert"),
    ], role=True)), "i1")
    assert result == {"item_id": "i1", "dimension": "accuracy", "value": "Fail", "method": "expert",
                      "ratings": 3, "agreement": pytest.approx(1 / 3), "status": "agreed",
                      "majority_value": "Pass"}


def test_expert_resolves_a_tie():
    result = one(majority_vote(ratings([
        ("i1", "a", "accuracy", "Pass", None), ("i1", "b", "accuracy", "Fail", None),
        ("i1", "sme", "accuracy", "Pass", "expert"),
    ], role=True)), "i1")
    assert (result["value"], result["status"], result["majority_value"]) == ("Pass", "agreed", None)


def test_experts_who_disagree_leave_the_item_disputed():
    result = one(majority_vote(ratings([
        ("i1", "a", "accuracy", "Pass", "annotator"),
        ("i1", "x", "accuracy", "Pass", "expert"), ("i1", "y", "accuracy", "Fail", "expert"),
    ], role=True)), "i1")
    assert (result["value"], result["method"], result["status"]) == (None, "expert", "disputed")


def test_feedback_only_label_is_never_agreed():
    result = majority_vote(ratings([
        ("i1", "feedback", "accuracy", "Pass", "feedback"),
        ("i2", "feedback", "accuracy", "Pass", "feedback"), ("i2", "a", "accuracy", "Fail", "annotator"),
        ("i2", "b", "accuracy", "Fail", "annotator"),
    ], role=True))
    only_feedback = one(result, "i1")
    assert (only_feedback["status"], only_feedback["value"], only_feedback["method"]) == (
        "feedback_only", "Pass", "single")
    reviewed = one(result, "i2")  # humans rated it: the thumb is ignored
    assert (reviewed["status"], reviewed["value"], reviewed["ratings"]) == ("agreed", "Fail", 2)
    assert result.filter(pl.col("status") == "agreed")["item_id"].to_list() == ["i2"]


def test_feedback_ratings_map_thumbs_to_verdicts():
    result = feedback_ratings(pl.DataFrame({"item_id": ["i1", "i2", "i3"], "thumbs": ["up", "Down", None]}),
                              ["accuracy", "relevance"])
    expected = [("i1", "feedback", "accuracy", "Pass", "feedback"), ("i1", "feedback", "relevance", "Pass", "feedback"),
                ("i2", "feedback", "accuracy", "Fail", "feedback"), ("i2", "feedback", "relevance", "Fail", "feedback")]
    assert result.rows() == expected
    assert one(majority_vote(result), "i2", "relevance")["status"] == "feedback_only"


@pytest.mark.parametrize("frame, expected", [
    (pl.DataFrame({"item_id": ["i"], "annotator": ["a"], "value": ["Pass"]}), "missing dimension"),
    (pl.DataFrame({"item_id": ["i"], "annotator": ["a"], "dimension": ["d"], "value": ["Pass"], "role": ["boss"]}),
     "unknown role 'boss'"),
])
def test_rejects_bad_input(frame, expected):
    with pytest.raises(ValueError, match=expected):
        majority_vote(frame)


def test_empty_ratings_give_an_empty_table_with_the_columns():
    result = majority_vote(ratings([]))
    assert (result.height, result.columns) == (0, ["item_id", "dimension", "value", "method", "ratings",
                                                   "agreement", "status", "majority_value"])


# --- the disagreement queue: a Label Studio review project for experts ---------------------------

DIMS = ["accuracy", "relevance", "groundedness", "safety", "policy"]


def pass2_task_data(item_id: str) -> dict:
    return {"item_id": item_id, "history": [{"role": "note", "content": "(no earlier turns)"}],
            "query": f"Question about <ACCOUNT_ID_{item_id}>?", "context": "(no documents were retrieved)",
            "tool_calls": "(no tools were called)", "output": f"Answer {item_id}."}


def disputed_item(item_id: str) -> dict:
    return {"item_id": item_id, "data": pass2_task_data(item_id), "disputed": ["policy", "accuracy"],
            "votes": [{"annotator": "annotator_bb", "values": {**dict.fromkeys(DIMS, "Pass"), "policy": "Fail"},
                       "critique": "Promises a refund it cannot give."},
                      {"annotator": "annotator_aa", "values": {**dict.fromkeys(DIMS, "Pass"), "accuracy": None},
                       "critique": "Looks fine."}]}


def test_review_project_validates_against_its_config(tmp_path):
    folder = write_review_project([disputed_item("c3"), disputed_item("a1")], tmp_path, "review-001", DIMS)
    config = (folder / "review_config.xml").read_text(encoding="utf-8")
    tasks = json.loads((folder / "review_tasks.json").read_text(encoding="utf-8"))
    assert validate_tasks(config, tasks) == []
    assert sorted(p.name for p in folder.iterdir()) == ["review_config.xml", "review_tasks.json"]
    assert [t["data"]["item_id"] for t in tasks] == ["a1", "c3"]
    assert '<Text name="review_votes" value="$review_votes"/>' in config
    # experts answer only the disputed dimensions; the critique (why they overrode) stays required
    assert all(f'<Choices name="{d}" toName="output" choice="single" showInline="true" required="false">' in config
               for d in DIMS)
    assert '<TextArea name="critique" toName="output" rows="4" editable="true" maxSubmissions="1" required="true"/>' \
        in config
    data = tasks[0]["data"]
    assert {k: v for k, v in data.items() if k != "review_votes"} == {**pass2_task_data("a1"), "review": "expert"}
    assert data["review_votes"] == "\n".join([
        "Disputed: accuracy, policy",
        "accuracy: (no answer) x1 (annotator_aa); Pass x1 (annotator_bb)",
        "relevance: Pass x2 (annotator_aa, annotator_bb)",
        "groundedness: Pass x2 (annotator_aa, annotator_bb)",
        "safety: Pass x2 (annotator_aa, annotator_bb)",
        "policy: Fail x1 (annotator_bb); Pass x1 (annotator_aa)",
        "",
        "Critiques:",
        "annotator_aa: Looks fine.",
        "annotator_bb: Promises a refund it cannot give.",
    ])


def test_review_project_is_idempotent_and_never_overwritten(tmp_path):
    first = write_review_project([disputed_item("a1"), disputed_item("c3")], tmp_path, "review-001", DIMS)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.iterdir()}
    again = write_review_project([disputed_item("c3"), disputed_item("a1")], tmp_path, "review-001", DIMS)
    assert again == first
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in again.iterdir()} == before
    with pytest.raises(ReviewConflictError, match="review project 'review-001' already exists"):
        write_review_project([disputed_item("a1")], tmp_path, "review-001", DIMS)
    assert [p.name for p in tmp_path.iterdir()] == ["review-001"]  # no temporary left behind


def test_review_project_crash_leaves_no_half_folder(tmp_path, monkeypatch):
    def broken_rename(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(review_module.os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        write_review_project([disputed_item("a1")], tmp_path, "review-002", DIMS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("items, review_id, dims, expected", [
    ([], "../up", DIMS, "review_id '../up' must be"),
    ([], "r1", ["accuracy", "review_votes"], "cannot be named 'review_votes'"),
    ([{**disputed_item("a1"), "item_id": "zz"}], "r1", DIMS, "item 'zz' carries the task data of 'a1'"),
    ([{**disputed_item("a1"), "data": {"item_id": "a1"}}], "r1", DIMS, "do not fit the review configuration"),
])
def test_review_project_rejects_bad_input(tmp_path, items, review_id, dims, expected):
    with pytest.raises(ValueError, match=expected):
        write_review_project(items, tmp_path, review_id, dims)


def test_disputed_items_gather_votes_from_consensus_and_labels():
    rows = [("t1", "annotator_aa", "accuracy", "Pass"), ("t1", "annotator_bb", "accuracy", "Fail"),
            ("t1", "annotator_aa", "policy", "Pass"), ("t1", "annotator_bb", "policy", "Pass"),
            ("t2", "annotator_aa", "accuracy", "Pass"), ("t2", "annotator_bb", "accuracy", "Pass")]
    consensus = majority_vote(ratings(rows))
    labels = pl.DataFrame(
        [(item, who, 2, "annotator", field, value) for item, who, field, value in rows]
        + [("t1", "annotator_aa", 2, "annotator", "critique", "ok"), ("t1", "sme", 2, "expert", "accuracy", "Fail"),
           ("t1", "annotator_aa", 1, "annotator", "gold_answer", "text")],
        schema=["item_id", "annotator", "pass", "role", "field", "value"], orient="row")
    result = disputed_items(consensus, labels, {"t1": pass2_task_data("t1"), "t2": pass2_task_data("t2")})
    expected = [{"item_id": "t1", "data": pass2_task_data("t1"), "disputed": ["accuracy"],
                 "votes": [{"annotator": "annotator_aa", "values": {"accuracy": "Pass", "policy": "Pass"},
                            "critique": "ok"},
                           {"annotator": "annotator_bb", "values": {"accuracy": "Fail", "policy": "Pass"}}]}]
    assert result == expected
