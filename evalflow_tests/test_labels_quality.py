"""Label quality: annotator accuracy on gold and fatigue, the automation gate, anchored gold answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from evalflow.lib.annotation import load_known_answers
from evalflow.lib.annotation.gold import gold_candidate
from evalflow.lib.annotation.tasks import pass2_data
from evalflow.lib.common.settings import SettingError
from evalflow.lib.labels.gate import automation_gate, open_dimensions
from evalflow.lib.labels.leakage import anchored, anchoring_similarity, shown_input
from evalflow.lib.labels.quality import (
    QualityThresholds,
    annotator_fatigue,
    annotator_quality,
    flagged_annotators,
    quality_tables,
    score_gold_labels,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
LABEL_SCHEMA = {"batch_id": pl.String, "item_id": pl.String, "annotator": pl.String, "pass": pl.Int16,
                "role": pl.String, "field": pl.String, "value": pl.String,
                "annotated_at": pl.Datetime(time_zone="UTC")}


def labels(rows: list[tuple]) -> pl.DataFrame:
    """(item_id, annotator, pass, field, value, minutes after T0 or None[, role]) rows of batch b1."""
    full = [("b1", item, who, pass_no, (rest[0] if rest else "annotator"), field, value,
             None if minutes is None else T0 + timedelta(minutes=minutes))
            for item, who, pass_no, field, value, minutes, *rest in rows]
    return pl.DataFrame(full, schema=LABEL_SCHEMA, orient="row")


# --- accuracy on gold, hand-computed ------------------------------------------------------------

SMALL_MANIFEST = {
    "batch_id": "b1", "counts": {"tasks": 8}, "dimensions": ["accuracy", "safety"],
    "items": [{"position": p, "item_id": f"i{p}", "origin": "gold" if p in (1, 6) else "trace"} for p in range(8)],
    "gold": [
        {"item_id": "i1", "position": 1, "case_id": "ka-001", "key_facts": ["60 days"],
         "known_verdicts": {"accuracy": "Pass", "safety": "Fail"}},
        {"item_id": "i6", "position": 6, "case_id": "ka-004", "key_facts": [["$35", "35 dollars"]],
         "known_verdicts": {"accuracy": "Fail"}},
    ],
}
SMALL_LABELS = [
    # ann_a: pass 2 all right; gold answers: right on i1, wrong on i6
    ("i1", "ann_a", 2, "accuracy", "Pass", 10), ("i1", "ann_a", 2, "safety", "Fail", 10),
    ("i6", "ann_a", 2, "accuracy", "Fail", 60),
    ("i1", "ann_a", 1, "gold_answer", "Within 60  DAYS of the statement.", 5),
    ("i6", "ann_a", 1, "gold_answer", "thirty five", 50),
    # ann_b: accuracy wrong on i1, safety left empty (counts as wrong), right on i6; gold answers right
    ("i1", "ann_b", 2, "accuracy", "Fail", 11), ("i1", "ann_b", 2, "critique", "fine", 11),
    ("i6", "ann_b", 2, "accuracy", "Fail", 61),
    ("i1", "ann_b", 1, "gold_answer", "60 days", 6), ("i6", "ann_b", 1, "gold_answer", "35 dollars per item", 51),
    # not scored: a trace item, and an expert's review of a gold item
    ("i2", "ann_a", 2, "accuracy", "Fail", 20), ("i1", "sme", 2, "accuracy", "Fail", 90, "expert"),
]


def test_accuracy_per_annotator_and_dimension_hand_computed():
    quality, _ = quality_tables(labels(SMALL_LABELS), [SMALL_MANIFEST],
                                QualityThresholds(min_accuracy=0.8, min_gold=2, fatigue_drop=0.15))
    expected = [
        ("ann_a", "accuracy", 2, 2, 1.0, False, ""),
        ("ann_a", "gold_answer", 2, 1, 0.5, True, "accuracy 0.50 below 0.80 on 2 gold ratings"),
        ("ann_a", "safety", 1, 1, 1.0, False, ""),
        ("ann_a", "all", 5, 4, 0.8, False, ""),
        ("ann_b", "accuracy", 2, 1, 0.5, True, "accuracy 0.50 below 0.80 on 2 gold ratings"),
        ("ann_b", "gold_answer", 2, 2, 1.0, False, ""),
        ("ann_b", "safety", 1, 0, 0.0, False, ""),  # one rating: too few to judge
        ("ann_b", "all", 5, 3, 0.6, True, "accuracy 0.60 below 0.80 on 5 gold ratings"),
    ]
    assert quality.rows() == expected
    assert flagged_annotators(quality) == ["ann_a", "ann_b"]


def test_scored_rows_carry_position_and_segments():
    scored = score_gold_labels(labels(SMALL_LABELS), [SMALL_MANIFEST])
    result = scored.filter(pl.col("annotator") == "ann_a").select(
        "item_id", "pass", "dimension", "position", "position_segment", "time_segment", "correct").rows()
    # ann_a's pass-2 order of work: i1 (10), i2 (20), i6 (60) -> thirds 1, 2, 3; pass 1: i1, i6 -> 1, 2
    expected = [("i1", 1, "gold_answer", 1, "position_q1", "time_1of3", True),
                ("i6", 1, "gold_answer", 6, "position_q4", "time_2of3", False),
                ("i1", 2, "accuracy", 1, "position_q1", "time_1of3", True),
                ("i1", 2, "safety", 1, "position_q1", "time_1of3", True),
                ("i6", 2, "accuracy", 6, "position_q4", "time_3of3", True)]
    assert result == expected


def test_min_accuracy_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EVALFLOW_ANNOTATOR_MIN_ACCURACY", "0.55")
    monkeypatch.setenv("EVALFLOW_ANNOTATOR_MIN_GOLD", "2")
    quality, _ = quality_tables(labels(SMALL_LABELS), [SMALL_MANIFEST])
    assert quality.filter(pl.col("flagged")).select("annotator", "dimension").rows() == [
        ("ann_a", "gold_answer"), ("ann_b", "accuracy")]
    monkeypatch.setenv("EVALFLOW_ANNOTATOR_MIN_ACCURACY", "1.5")
    with pytest.raises(SettingError, match="EVALFLOW_ANNOTATOR_MIN_ACCURACY must be at least 0 and at most 1"):
        quality_tables(labels(SMALL_LABELS), [SMALL_MANIFEST])


# --- fatigue ------------------------------------------------------------------------------------

def fatigue_manifest(n: int = 12) -> dict:
    return {"batch_id": "b1", "counts": {"tasks": n}, "dimensions": ["accuracy"],
            "items": [{"position": p, "item_id": f"g{p:02d}", "origin": "gold"} for p in range(n)],
            "gold": [{"item_id": f"g{p:02d}", "position": p, "case_id": f"ka-{p:03d}", "key_facts": ["x"],
                      "known_verdicts": {"accuracy": "Pass"}} for p in range(n)]}


def tiring_labels(order: list[int], wrong_when_done: set[int], timed: bool = True) -> pl.DataFrame:
    """One annotator labels the gold items in `order`; the k-th item done is wrong if k in wrong_when_done."""
    return labels([(f"g{p:02d}", "ann", 2, "accuracy", "Fail" if k in wrong_when_done else "Pass",
                    k if timed else None) for k, p in enumerate(order)])


THRESHOLDS = QualityThresholds(min_accuracy=0.5, min_gold=4, fatigue_drop=0.15)


def test_fatigue_table_and_flag_when_accuracy_falls_over_the_session():
    scored = score_gold_labels(tiring_labels(list(range(12)), wrong_when_done={8, 9, 11}), [fatigue_manifest()])
    fatigue = annotator_fatigue(scored)
    expected = [("ann", "position_q1", 3, 1.0), ("ann", "position_q2", 3, 1.0), ("ann", "position_q3", 3, 2 / 3),
                ("ann", "position_q4", 3, 1 / 3), ("ann", "time_1of3", 4, 1.0), ("ann", "time_2of3", 4, 1.0),
                ("ann", "time_3of3", 4, 0.25)]
    assert fatigue.rows() == expected
    overall = annotator_quality(scored, THRESHOLDS).filter(pl.col("dimension") == "all").to_dicts()[0]
    assert (overall["accuracy"], overall["flagged"]) == (0.75, True)
    assert overall["reason"] == ("fatigue: accuracy fell from 1.00 to 0.25 between the first and last time "
                                 "thirds (drop over 0.15)")


def test_fatigue_follows_the_order_of_work_not_the_task_position():
    # Worked from the last task to the first, and tired: the low positions were done last.
    reverse = list(range(11, -1, -1))
    scored = score_gold_labels(tiring_labels(reverse, wrong_when_done={8, 9, 10, 11}), [fatigue_manifest()])
    fatigue = dict(((s, a) for _, s, _, a in annotator_fatigue(scored).rows()))
    assert (fatigue["position_q1"], fatigue["position_q4"]) == (0.0, 1.0)
    assert (fatigue["time_1of3"], fatigue["time_3of3"]) == (1.0, 0.0)
    overall = annotator_quality(scored, THRESHOLDS).filter(pl.col("dimension") == "all").to_dicts()[0]
    assert overall["flagged"] and "time thirds" in overall["reason"]


def test_without_timestamps_fatigue_falls_back_to_position_quartiles():
    scored = score_gold_labels(tiring_labels(list(range(12)), {9, 10, 11}, timed=False),
                               [fatigue_manifest()])
    assert scored["time_segment"].null_count() == scored.height
    thresholds = QualityThresholds(min_accuracy=0.5, min_gold=3, fatigue_drop=0.15)
    overall = annotator_quality(scored, thresholds).filter(pl.col("dimension") == "all").to_dicts()[0]
    assert overall["reason"] == ("fatigue: accuracy fell from 1.00 to 0.00 between the first and last position "
                                 "quartiles (drop over 0.15)")


@pytest.mark.parametrize("wrong, min_gold, expected", [
    ({11}, 4, False),  # 1.00 -> 0.75: a drop of 0.25 is not over 0.25
    ({10, 11}, 4, True),  # 1.00 -> 0.50
    ({10, 11}, 5, False),  # segments of 4 ratings are too few to call
])
def test_fatigue_flag_needs_a_drop_over_the_threshold_on_enough_ratings(wrong, min_gold, expected):
    scored = score_gold_labels(tiring_labels(list(range(12)), wrong), [fatigue_manifest()])
    thresholds = QualityThresholds(min_accuracy=0.0, min_gold=min_gold, fatigue_drop=0.25)
    overall = annotator_quality(scored, thresholds).filter(pl.col("dimension") == "all").to_dicts()[0]
    assert overall["flagged"] is expected


# --- the automation gate ------------------------------------------------------------------------

def report(**dims) -> dict:
    return {"level": "nominal", "dimensions": {
        name: {"items": items, "percent_agreement": agreement, "alpha": 0.61, "alpha_ci95": [0.5, 0.7]}
        for name, (items, agreement) in dims.items()}}


def test_gate_opens_at_the_thresholds_and_not_below():
    gate = automation_gate(report(accuracy=(50, 0.80), relevance=(50, 0.7999), safety=(49, 0.95),
                                  policy=(0, None)))
    expected = [
        ("accuracy", 50, 0.80, 0.61, 0.5, 0.7, True, "open: agreement 0.800 >= 0.80 on 50 items"),
        ("policy", 0, None, 0.61, 0.5, 0.7, False, "closed: no item has two ratings"),
        ("relevance", 50, 0.7999, 0.61, 0.5, 0.7, False, "closed: agreement 0.800 below 0.80 on 50 items"),
        ("safety", 49, 0.95, 0.61, 0.5, 0.7, False, "closed: 49 items with two or more ratings, 50 needed"),
    ]
    assert gate.rows() == expected
    assert open_dimensions(gate) == ["accuracy"]


def test_gate_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EVALFLOW_HUMAN_AGREEMENT_MIN", "0.9")
    monkeypatch.setenv("EVALFLOW_GATE_MIN_ITEMS", "10")
    assert open_dimensions(automation_gate(report(a=(10, 0.9), b=(10, 0.85), c=(9, 1.0)))) == ["a"]
    monkeypatch.setenv("EVALFLOW_GATE_MIN_ITEMS", "0")
    with pytest.raises(SettingError, match="EVALFLOW_GATE_MIN_ITEMS must be at least 1"):
        automation_gate(report(a=(10, 0.9)))


def test_gate_counts_only_items_with_two_ratings():
    figures = {"items": 120, "pairable_items": 45, "percent_agreement": 0.9, "alpha": 0.7, "alpha_ci95": [0.6, 0.8]}
    gate = automation_gate({"dimensions": {"accuracy": figures}})
    assert gate.select("items", "gate_open", "reason").rows() == [
        (45, False, "closed: 45 items with two or more ratings, 50 needed")]


def test_gate_reads_missing_alpha_as_no_figure():
    gate = automation_gate({"dimensions": {"safety": {"items": 80, "percent_agreement": 1.0,
                                                      "alpha": float("nan"), "alpha_ci95": [None, None]}}})
    assert gate.select("alpha", "alpha_lo", "alpha_hi", "gate_open").rows() == [(None, None, None, True)]


# --- anchored gold answers ------------------------------------------------------------------------

CASES = {c["case_id"]: c for c in load_known_answers()}
ANSWERS = {
    "ka-001": {
        "copy": CASES["ka-001"]["output"],
        "light edit": "Card transactions can be disputed within 60 days of the statement date. Tell me which "
                      "charge it is and I can open the dispute for you.",
        "paraphrase": "You have 60 days from the statement date to dispute a card charge; I can start the dispute "
                      "for you if you say which transaction.",
        "from context": "Card transactions can be disputed within 60 days of the statement date.",
    },
    "ka-002": {
        "copy": CASES["ka-002"]["output"],
        "light edit": "I've frozen the card ending 4417. A replacement (order <ORDER_ID_d904ad9f>) is on its way "
                      "and arrives within 5-7 business days.",
        "paraphrase": "Confirm the card is frozen now and tell <PERSON_dbf0ff4c> a new card will arrive in 5-7 "
                      "business days.",
        "from context": "Your card is frozen. A replacement card arrives within 5-7 business days.",
    },
}


def task_data(case_id: str) -> dict:
    return pass2_data(gold_candidate(CASES[case_id]), case_id)


@pytest.mark.parametrize("case_id, kind, expected", [
    ("ka-001", "copy", 1.0), ("ka-001", "light edit", 9 / 14), ("ka-001", "paraphrase", 2 / 21),
    ("ka-001", "from context", 0.0),
    ("ka-002", "copy", 1.0), ("ka-002", "light edit", 10 / 15), ("ka-002", "paraphrase", 0.0),
    ("ka-002", "from context", 0.0),
])
def test_similarity_values_quoted_in_the_docstring(case_id, kind, expected):
    data = task_data(case_id)
    result = anchoring_similarity(ANSWERS[case_id][kind], data["output"], shown_input(data))
    assert result == pytest.approx(expected)


def test_anchored_flags_copies_and_not_paraphrases():
    rows = [("b1", case_id, f"ann_{kind.replace(' ', '_')}", 1, "gold_answer", answer)
            for case_id, answers in ANSWERS.items() for kind, answer in answers.items()]
    rows.append(("b1", "ka-001", "ann_copy", 2, "critique", CASES["ka-001"]["output"]))  # pass 2: not a gold answer
    frame = pl.DataFrame(rows, schema=["batch_id", "item_id", "annotator", "pass", "field", "value"], orient="row")
    result = anchored(frame, {c: task_data(c) for c in ANSWERS})
    expected = [("b1", "ka-001", "ann_copy", 1.0), ("b1", "ka-001", "ann_light_edit", round(9 / 14, 6)),
                ("b1", "ka-002", "ann_copy", 1.0), ("b1", "ka-002", "ann_light_edit", round(10 / 15, 6))]
    assert result.rows() == expected
    assert anchored(frame, {c: task_data(c) for c in ANSWERS}, threshold=0.7)["annotator"].to_list() == [
        "ann_copy", "ann_copy"]


def test_a_short_answer_sharing_one_phrase_is_not_anchored():
    data = {"item_id": "x", "history": [], "query": "q", "context": "", "tool_calls": "",
            "output": "Sure, I can help with that. Your balance is <MONEY_0a1b2c3d>."}
    frame = pl.DataFrame({"batch_id": ["b"], "item_id": ["x"], "annotator": ["a"], "value": ["I can help with"]})
    assert anchoring_similarity("I can help with", data["output"]) == 1.0  # 2 of 2 3-grams...
    assert anchored(frame, {"x": data}).height == 0  # ...but fewer than 3 shared: no run of five words
    copied = frame.with_columns(pl.lit("I can help with that. Your balance is <MONEY_0a1b2c3d>.").alias("value"))
    assert anchored(copied, {"x": data}).height == 1


def test_placeholders_count_as_words():
    output = "Account <ACCOUNT_ID_1a2b3c4d> belongs to <PERSON_5e6f7a8b> at <LOCATION_9c0d1e2f>."
    assert anchoring_similarity("account <ACCOUNT_ID_1a2b3c4d> belongs to <PERSON_5e6f7a8b>", output) == 1.0
    assert anchoring_similarity("account <ACCOUNT_ID_99999999> belongs to <PERSON_00000000>", output) == 0.0
