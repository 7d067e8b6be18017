"""Consensus labels: majority, ties, the agreement threshold, expert overrides, feedback-only labels."""

from __future__ import annotations

import polars as pl
import pytest

from evalflow.lib.labels.consensus import feedback_ratings, majority_vote


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
