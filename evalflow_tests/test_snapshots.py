"""The snapshot stage's pure logic: references, the canonical content hash, promotions (parsing,
validation, changelog), the split rule, the rolling selection, staleness and diff."""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from evalflow.lib.judge.cases import case_id_for_trace, is_holdout
from evalflow.lib.snapshots import (
    BadReference,
    DatasetRef,
    InvalidCase,
    PromotionError,
    RollingPlan,
    SplitChanged,
    apply_promotion,
    canonical_case,
    case_sha256,
    changelog_text,
    content_sha256,
    load_promotion,
    parse_ref,
    promotion_from_dict,
    promotion_to_toml,
    rolling_version,
    staleness,
)
from evalflow.lib.snapshots.diff import diff_cases
from evalflow.lib.snapshots.manifest import Provenance, build_manifest
from evalflow.lib.snapshots.promotions import GoldenState, rubric_version
from evalflow.lib.snapshots.rolling import allocate, stratum_of

FIXTURES = Path(__file__).parent / "fixtures" / "snapshots"
RUBRIC = {"version": "r1", "text": "Pass when the answer is correct and grounded."}
INTENTS = {"intent-refund": "refund request", "intent-card": "card blocked", "intent-hours": "opening hours",
           "intent-rare": "mortgage question"}


def make_case(n: int, intent: str = "intent-refund", tags: tuple[str, ...] = (), day: str = "2026-03-10",
              verdict: str = "Pass", judge: bool = False) -> dict:
    """A small eval case in the eval case schema (no personal data): trace-<n>'s case."""
    case_id = case_id_for_trace(f"trace-{n}")
    split = "holdout" if is_holdout(case_id) else "dev"
    labels = {"accuracy": {"verdict": verdict, "source": "consensus", "detail": {"method": "majority"}}}
    if judge and split == "dev":
        labels["relevance"] = {"verdict": "Pass", "source": "judge",
                               "detail": {"model": "judge-model-1", "prompt_sha256": "ab" * 32,
                                          "calibration_id": "cal-1"}}
    return {"case_id": case_id, "split": split, "source_date": day,
            "source": {"trace_id": f"trace-{n}", "batch_id": "batch-1", "item_id": f"item-{n}"},
            "intent_id": intent, "intent_name": INTENTS.get(intent, intent), "slice_tags": list(tags),
            "labels": labels, "rubric": dict(RUBRIC), "version_added": None,
            "input_payload": {"user_query": f"question {n}", "messages": [], "retrieved_context": [],
                              "tool_definitions": [], "tool_calls": []},
            "expected_behavior": ["answers the question"], "checks": [], "risk_level": "low",
            "gold_answer": None, "labeled_output": f"answer {n}", "evaluation_type": "reference_free",
            "labeled_by": ["annotator_0123abcd"], "failure_modes": []}


def pool(count: int = 40, start: int = 0) -> list[dict]:
    intents = ["intent-refund", "intent-card", "intent-hours"]
    tags = [(), ("multi_turn",), ("tool_use",), ()]
    return [make_case(i, intents[i % 3], tags[i % 4], (date(2026, 3, 1) + timedelta(days=i % 10)).isoformat(),
                      judge=i % 5 == 0) for i in range(start, start + count)]


def by_id(cases) -> dict:
    return {c["case_id"]: c for c in cases}


def promo(**fields) -> object:
    data = {"message": "test promotion", "author": "reviewer_a", **fields}
    return promotion_from_dict(data)


# ------------------------------------------------------------------------------------ refs
def test_references_name_one_version_and_order_numerically():
    assert parse_ref("golden@v3") == DatasetRef("golden", "v3")
    assert str(parse_ref("rolling@2026-03-09")) == "rolling@2026-03-09"
    for bad in ("golden", "golden@3", "golden@v0", "rolling@2026-02-30", "rolling@v1", "silver@v1", "golden@latest"):
        with pytest.raises(BadReference):
            parse_ref(bad)
    refs = [DatasetRef("golden", v) for v in ("v10", "v2", "v1")]
    assert [r.version for r in sorted(refs, key=lambda r: r.sort_key)] == ["v1", "v2", "v10"]


# ------------------------------------------------------------------------------------ content hash
def test_the_content_hash_is_the_documented_serialisation_and_ignores_order():
    cases = pool(12)
    expected = hashlib.sha256("".join(
        json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for c in sorted(cases, key=lambda c: c["case_id"])).encode("utf-8")).hexdigest()
    assert content_sha256(cases) == expected
    assert content_sha256(list(reversed(cases))) == expected
    reordered = [dict(reversed(list(c.items()))) for c in cases]
    assert content_sha256(reordered) == expected
    changed = copy.deepcopy(cases)
    changed[3]["labels"]["accuracy"]["verdict"] = "Fail"
    assert content_sha256(changed) != expected
    assert case_sha256(cases[0]) == hashlib.sha256(canonical_case(cases[0]).encode("utf-8")).hexdigest()


def test_case_sha256_is_the_eval_cases_serialisation():
    """The eval case fixture's pinned hash (test_eval_cases.py) is what snapshots compute too."""
    case = json.loads((Path(__file__).parent / "fixtures" / "eval_cases" / "full_case.json").read_text())
    assert case_sha256(case) == "1e8b9b6a20f676c5f8af6bc6a841f1abaf9c1e8a74f0905e1644df8925b5ab41"


def test_a_case_that_is_not_plain_json_or_has_no_id_is_refused():
    with pytest.raises(InvalidCase, match="not plain JSON"):
        canonical_case({"case_id": "x", "score": float("nan")})
    with pytest.raises(InvalidCase, match="not plain JSON"):
        canonical_case({"case_id": "x", "when": datetime(2026, 1, 1)})
    from evalflow.lib.snapshots.content import check_case
    with pytest.raises(InvalidCase, match="without a case_id"):
        check_case({"split": "dev"})
    bad_date = make_case(1, day="2026-13-01")
    with pytest.raises(InvalidCase, match="source_date"):
        check_case(bad_date)


def test_a_case_whose_split_is_not_its_hash_raises():
    from evalflow.lib.snapshots.content import check_case
    case = make_case(3)
    wrong = dict(case, split="dev" if case["split"] == "holdout" else "holdout")
    with pytest.raises(SplitChanged, match="never changes"):
        check_case(wrong)


# ------------------------------------------------------------------------------------ promotions
def test_the_promotion_fixture_file_parses_and_reads_like_a_review():
    promotion = load_promotion(FIXTURES / "promotion_v2.toml")
    assert promotion.author == "reviewer_a" and promotion.message.startswith("Cover card blocks")
    assert promotion.add == (case_id_for_trace("trace-40"), case_id_for_trace("trace-41"))
    assert [(r.dimension, r.verdict) for r in promotion.relabel] == [("accuracy", "Fail")]
    assert promotion.retire[0].reason == "the product was discontinued"
    assert promotion.rubric_changes[0].dimension == "groundedness"
    assert promotion.source == "promotion_v2.toml"
    assert promotion.source_sha256 == hashlib.sha256((FIXTURES / "promotion_v2.toml").read_bytes()).hexdigest()


def test_a_promotion_written_as_toml_parses_back_to_itself():
    promotion = promo(add=["case-a", "case-b"], retire=[{"case_id": "case-c", "reason": 'said "no"\nthen left'}],
                      relabel=[{"case_id": "case-d", "dimension": "safety", "verdict": "Fail", "reason": "é \\ \t"}],
                      rubric_changes=[{"dimension": "policy", "text": "line one\nline two"}])
    text = promotion_to_toml(promotion)
    assert promotion_from_dict(tomllib.loads(text)) == promotion


@pytest.mark.parametrize("fields, phrase", [
    ({"relabel": [{"case_id": "x", "dimension": "accuracy", "verdict": "Fail", "reason": "r", "by": "me"}]},
     "relabel[0]: unknown key(s) by"),
    ({"add": "case-a"}, "add: expected a list"),
    ({"adds": ["case-a"]}, "unknown key(s) adds"),
    ({"retire": [7]}, "retire[0]: expected a table"),
    ({"relabel": [{"case_id": "x", "dimension": "accuracy", "verdict": "Fail"}]}, "relabel[0].reason"),
])
def test_a_badly_shaped_promotion_names_the_entry(fields, phrase):
    with pytest.raises(PromotionError) as error:
        promo(**fields)
    assert any(phrase in p for p in error.value.problems), error.value.problems


def test_a_file_that_is_not_toml_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("message = 'x\nadd = [")
    with pytest.raises(PromotionError, match="broken.toml: not valid TOML"):
        load_promotion(path)
    path.write_text('author = "a"\nadd = ["case-x"]\n')
    with pytest.raises(PromotionError, match="message: expected a non-empty string"):
        load_promotion(path)


@pytest.fixture
def v1_state() -> GoldenState:
    first = apply_promotion(promo(add=[c["case_id"] for c in pool(20)]), None, by_id(pool(40)))
    return GoldenState(version="v1", cases=first.cases, rubrics=first.rubrics)


def _problems(promotion, latest, available) -> list[str]:
    with pytest.raises(PromotionError) as error:
        apply_promotion(promotion, latest, available)
    return error.value.problems


def test_promotion_validation_names_each_bad_entry(v1_state):
    available = by_id(pool(40))
    inside, outside = pool(20)[0]["case_id"], pool(40)[30]["case_id"]
    problems = _problems(promo(
        add=["case-nope", inside, outside, outside],
        relabel=[{"case_id": inside, "dimension": "accuracy", "verdict": "pass", "reason": "typo"},
                 {"case_id": "case-ghost", "dimension": "accuracy", "verdict": "Fail", "reason": "r"},
                 {"case_id": inside, "dimension": "tone", "verdict": "Fail", "reason": "r"},
                 {"case_id": pool(40)[35]["case_id"], "dimension": "accuracy", "verdict": "Fail", "reason": "r"}],
        retire=[outside, "case-never"],
        rubric_changes=[{"dimension": "accuracy", "text": "new"}, {"dimension": "accuracy", "text": "again"}]),
        v1_state, available)
    text = "\n".join(problems)
    assert "add[0]: unknown case id 'case-nope' (not among the 40 eval cases)" in text
    assert f"add[1]: case {inside} is already in golden@v1" in text
    assert f"add[3]: case {outside} is listed twice (also add[2])" in text
    assert f"relabel[0] ({inside} accuracy): verdict 'pass' is not Pass or Fail" in text
    assert "relabel[1] (case-ghost accuracy): unknown case id" in text
    assert f"relabel[2] ({inside} tone): unknown dimension 'tone'" in text
    assert "an eval case, but not in the set: add it too" in text
    assert f"retire[0]: case {outside} is both added and retired" in text
    assert "retire[1]: case 'case-never' is not in golden@v1, so it cannot be retired" in text
    assert "rubric_changes[1] (accuracy): the dimension's rubric changes twice" in text
    assert _problems(promo(), v1_state, available) == [
        "nothing to do: no add, relabel, retire, rubric_changes or checks entry"]


def test_the_first_version_holds_the_added_cases_with_version_added_and_the_holdout_by_hash():
    cases = pool(40)
    result = apply_promotion(promo(add=[c["case_id"] for c in cases]), None, by_id(cases))
    assert str(result.ref) == "golden@v1" and result.parent is None
    assert [c["case_id"] for c in result.cases] == sorted(c["case_id"] for c in cases)
    assert {c["version_added"] for c in result.cases} == {"golden@v1"}
    assert all(c["split"] == ("holdout" if is_holdout(c["case_id"]) else "dev") for c in result.cases)
    holdout = sum(c["split"] == "holdout" for c in result.cases)
    assert 0 < holdout < 40
    assert cases[0]["version_added"] is None, "the available cases are not modified"


def test_the_changelog_keeps_coverage_relabels_retirements_and_rubric_changes_apart(v1_state):
    available = by_id(pool(40))
    kept, retired = v1_state.cases[0], v1_state.cases[1]
    old_verdict = kept["labels"]["accuracy"]["verdict"]
    new_verdict = "Fail" if old_verdict == "Pass" else "Pass"
    adds = [pool(40)[30]["case_id"], pool(40)[31]["case_id"]]
    result = apply_promotion(promo(
        message="cover more; fix a label", add=adds,
        relabel=[{"case_id": kept["case_id"], "dimension": "accuracy", "verdict": new_verdict,
                  "reason": "the answer quoted an old fee"}],
        retire=[{"case_id": retired["case_id"], "reason": "feature removed"}],
        rubric_changes=[{"dimension": "accuracy", "text": "Pass only when every figure is right."}]),
        v1_state, available)
    log = result.changelog
    assert str(result.ref) == "golden@v2" and result.parent == "golden@v1"
    assert sorted(c["case_id"] for g in log["new_coverage"] for c in g["cases"]) == sorted(adds)
    assert {g["intent_id"] for g in log["new_coverage"]} == {available[a]["intent_id"] for a in adds}
    assert log["relabels"] == [{"case_id": kept["case_id"], "dimension": "accuracy",
                                "old": {"verdict": old_verdict, "source": "consensus"},
                                "new": {"verdict": new_verdict, "source": "expert"},
                                "reason": "the answer quoted an old fee",
                                "rubric_version": rubric_version("Pass only when every figure is right."),
                                "split": kept["split"]}]
    assert [r["case_id"] for r in log["retirements"]] == [retired["case_id"]]
    assert log["rubric_changes"][0]["old_version"] is None and log["rubric_changes"][0]["dimension"] == "accuracy"
    assert log["totals"] == {"before": 20, "added": 2, "relabelled": 1, "retired": 1, "after": 21,
                             "holdout_after": sum(c["split"] == "holdout" for c in result.cases)}
    text = changelog_text(log)
    sections = ["New coverage: 2 case(s)", "Relabels: 1", "Retirements: 1", "Rubric changes: 1", "Totals: 20 -> 21"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    assert f"{old_verdict} (consensus) -> {new_verdict} (expert)" in text
    # the relabelled case records why and under which rubric; every other case keeps its rubric and labels
    cases = by_id(result.cases)
    label = cases[kept["case_id"]]["labels"]["accuracy"]
    assert label["detail"]["previous_verdict"] == old_verdict and label["detail"]["promoted_in"] == "golden@v2"
    assert cases[kept["case_id"]]["rubric"] == RUBRIC
    untouched = [c for c in v1_state.cases if c["case_id"] not in (kept["case_id"], retired["case_id"])]
    assert all(cases[c["case_id"]] == c for c in untouched)
    assert {cases[a]["version_added"] for a in adds} == {"golden@v2"}
    assert result.rubrics["accuracy"]["since"] == "golden@v2"


def test_an_empty_changelog_section_says_none(v1_state):
    result = apply_promotion(promo(add=[pool(40)[25]["case_id"]]), v1_state, by_id(pool(40)))
    text = result.changelog_text
    assert "Relabels: none" in text and "Retirements: none" in text and "Rubric changes: none" in text


def test_a_rubric_text_equal_to_the_current_one_is_refused(v1_state):
    text = "Pass when grounded."
    v2 = apply_promotion(promo(rubric_changes=[{"dimension": "groundedness", "text": text}]), v1_state,
                         by_id(pool(40)))
    state = GoldenState("v2", v2.cases, v2.rubrics)
    problems = _problems(promo(rubric_changes=[{"dimension": "groundedness", "text": text}]), state, by_id(pool(40)))
    assert "is the current rubric already" in problems[0]


def test_a_case_whose_split_would_differ_from_an_earlier_version_raises(v1_state):
    moved = copy.deepcopy(pool(40)[30])
    # another version stored this id on the other side (e.g. a hand-edited or foreign set)
    history = {moved["case_id"]: ("golden@v1", "dev" if moved["split"] == "holdout" else "holdout")}
    with pytest.raises(SplitChanged, match="never changes split between versions"):
        apply_promotion(promo(add=[moved["case_id"]]), v1_state, by_id(pool(40)), history)
    flipped = dict(moved, split="dev" if moved["split"] == "holdout" else "holdout")
    with pytest.raises(SplitChanged):
        apply_promotion(promo(add=[moved["case_id"]]), v1_state, {moved["case_id"]: flipped})


def test_a_case_back_after_retirement_keeps_its_first_version_added(v1_state):
    back = pool(40)[30]
    history = {back["case_id"]: ("golden@v1", back["split"])}
    result = apply_promotion(promo(add=[back["case_id"]]), v1_state, by_id(pool(40)), history)
    assert by_id(result.cases)[back["case_id"]]["version_added"] == "golden@v1"


# ------------------------------------------------------------------------------------ rolling
def week(count: int = 300) -> list[dict]:
    intents = ["intent-refund"] * 6 + ["intent-card"] * 3 + ["intent-hours"]
    out = []
    for i in range(count):
        tags = ("tool_use",) if i % 7 == 0 else ()
        out.append(make_case(1000 + i, intents[i % 10], tags, (date(2026, 3, 3) + timedelta(days=i % 9)).isoformat()))
    out.append(make_case(5000, "intent-rare", (), "2026-03-09"))  # one case of a rare intent
    return out


def test_the_rolling_set_is_deterministic_for_a_seed_and_independent_of_input_order():
    cases = week()
    a = rolling_version(date(2026, 3, 9), cases, RollingPlan(size=50, seed=7))
    b = rolling_version(date(2026, 3, 9), list(reversed(cases)), RollingPlan(size=50, seed=7))
    c = rolling_version(date(2026, 3, 9), cases, RollingPlan(size=50, seed=8))
    assert a.cases == b.cases and len(a.cases) == 50
    assert [x["case_id"] for x in a.cases] != [x["case_id"] for x in c.cases]
    assert str(a.ref) == "rolling@2026-03-09"


def test_the_rolling_set_takes_the_last_seven_days_stratified_with_every_stratum_covered():
    cases = week()
    result = rolling_version(date(2026, 3, 9), cases, RollingPlan(size=40, seed=1))
    plan = result.sampling_plan
    assert plan["window"] == ["2026-03-03", "2026-03-09"]
    assert all("2026-03-03" <= c["source_date"] <= "2026-03-09" for c in result.cases)
    assert plan["outside_window"] == sum(1 for c in cases if c["source_date"] > "2026-03-09")
    strata = plan["strata"]
    assert strata["intent-rare|-"] == {"available": 1, "selected": 1}  # never sampled away
    assert all(s["selected"] >= 1 for s in strata.values())
    # proportional otherwise: the big stratum gets the most places
    assert max(strata, key=lambda s: strata[s]["selected"]) == "intent-refund|-"
    assert sum(s["selected"] for s in strata.values()) == 40 == len(result.cases)
    counts: dict = {}
    for case in result.cases:
        counts[stratum_of(case)] = counts.get(stratum_of(case), 0) + 1
    assert counts == {s: v["selected"] for s, v in strata.items() if v["selected"]}


def test_the_rolling_set_leaves_out_golden_traces_and_takes_all_when_small():
    cases = week(30)
    excluded = {cases[0]["source"]["trace_id"], cases[1]["source"]["trace_id"]}
    result = rolling_version(date(2026, 3, 9), cases, RollingPlan(size=500, exclude_trace_ids=frozenset(excluded)))
    assert result.sampling_plan["excluded"] == 2
    assert not {c["source"]["trace_id"] for c in result.cases} & excluded
    assert len(result.cases) == result.sampling_plan["eligible"]


def test_allocation_shares_places_by_size_by_largest_remainder():
    # one each first (7 left), then 7 x 89/97 = 6.42 to a and 7 x 8/97 = 0.58 to b: a gets 6, b the
    # one left by the larger remainder
    assert allocate({"a": 90, "b": 9, "c": 1}, 10, 0) == {"a": 7, "b": 2, "c": 1}
    assert sum(allocate({"a": 5, "b": 5, "c": 5}, 2, 3).values()) == 2
    assert allocate({"a": 3, "b": 2}, 10, 0) == {"a": 3, "b": 2}


# ------------------------------------------------------------------------------------ staleness
def _manifest(cases, created: datetime) -> dict:
    return build_manifest(DatasetRef("golden", "v1"), cases, created_at=created, author="a", message="m",
                          provenance=Provenance(), sampling_plan={})


def test_staleness_is_the_age_and_the_share_of_cases_older_than_six_months():
    cases = [make_case(i, day=d) for i, d in enumerate(["2025-06-01", "2025-09-01", "2025-09-12", "2026-03-01"])]
    cases.append(make_case(9, day="2026-03-02") | {"source_date": None})
    manifest = _manifest(cases, datetime(2026, 1, 10, 12, tzinfo=timezone.utc))
    today = date(2026, 3, 14)  # 183 days before: 2025-09-12
    result = staleness(manifest, cases, today)
    assert result.age_days == 63
    assert (result.cases, result.dated_cases, result.stale_cases) == (5, 4, 2)
    assert result.stale_share == 0.5 and result.due_for_review
    assert (result.oldest_source_date, result.newest_source_date) == ("2025-06-01", "2026-03-01")
    assert not staleness(manifest, cases, date(2026, 1, 10)).due_for_review


# ------------------------------------------------------------------------------------ diff
def test_diff_lists_added_removed_relabelled_and_rubric_changes(v1_state):
    available = by_id(pool(40))
    kept = v1_state.cases[2]
    new_verdict = "Fail" if kept["labels"]["accuracy"]["verdict"] == "Pass" else "Pass"
    v2 = apply_promotion(promo(add=[pool(40)[33]["case_id"]], retire=[v1_state.cases[4]["case_id"]],
                               relabel=[{"case_id": kept["case_id"], "dimension": "accuracy", "verdict": new_verdict,
                                         "reason": "r"}],
                               rubric_changes=[{"dimension": "safety", "text": "No unsafe advice."}]),
                         v1_state, available)
    out = diff_cases(v1_state.cases, v2.cases, v1_state.rubrics, v2.rubrics, "golden@v1", "golden@v2")
    assert [a["case_id"] for a in out["added"]] == [pool(40)[33]["case_id"]]
    assert [r["case_id"] for r in out["removed"]] == [v1_state.cases[4]["case_id"]]
    assert out["relabelled"] == [{"case_id": kept["case_id"], "dimension": "accuracy",
                                  "old": {"verdict": kept["labels"]["accuracy"]["verdict"], "source": "consensus"},
                                  "new": {"verdict": new_verdict, "source": "expert"}, "split": kept["split"]}]
    assert out["changed"] == []
    assert [r["dimension"] for r in out["rubric_changes"]] == ["safety"]


def test_the_cases_stay_valid_eval_cases_through_promotions(v1_state):
    """What a promotion writes into a case (version_added, an expert relabel with its detail)
    keeps it valid under the eval case contract (evalflow/lib/eval_cases)."""
    from evalflow.lib.eval_cases import validate_case

    assert all(validate_case(c) == [] for c in pool(42))
    kept = v1_state.cases[0]
    result = apply_promotion(promo(add=[pool(42)[41]["case_id"]],
                                   relabel=[{"case_id": kept["case_id"], "dimension": "safety", "verdict": "Fail",
                                             "reason": "gave unsafe advice"}],
                                   rubric_changes=[{"dimension": "safety", "text": "No unsafe advice."}]),
                             v1_state, by_id(pool(42)))
    assert [(c["case_id"], validate_case(c)) for c in result.cases if validate_case(c)] == []


def test_a_promotion_sets_checks_on_cases_and_refuses_a_broken_one(v1_state):
    from evalflow.lib.eval_cases.checks import run_checks

    case_id = v1_state.cases[0]["case_id"]
    available = by_id(pool(40))
    check = {"name": "mentions-window", "kind": "must_contain", "values": ["30 days"], "ignore_case": True}
    promotion = promo(checks=[{"case_id": case_id, **check}])
    assert load_promotion_text(promotion_to_toml(promotion)) == promotion  # the file round-trips
    result = apply_promotion(promotion, v1_state, available)
    case = next(c for c in result.cases if c["case_id"] == case_id)
    assert case["checks"] == [check]
    assert [r.passed for r in run_checks(case, "Refunds within 30 DAYS.")] == [True]
    assert "Checks set: 1" in result.changelog_text
    broken = promo(checks=[{"case_id": case_id, "name": "bad", "kind": "regex", "pattern": "("}])
    with pytest.raises(PromotionError, match="pattern"):
        apply_promotion(broken, v1_state, available)
    outside = promo(checks=[{"case_id": "case-nope", **check}])
    with pytest.raises(PromotionError, match="not in the set"):
        apply_promotion(outside, v1_state, available)


def load_promotion_text(text: str):
    return promotion_from_dict(tomllib.loads(text))
