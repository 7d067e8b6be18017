"""compute_week on synthetic weeks built by hand: planted changes are flagged in their week by the
signal that should see them, and stable weeks (full, small and partial) raise no alarm across
seeds. The synthetic traffic: Zipf intents in sessions of 1-4 traces of one intent, one
knowledge-base document per intent, embeddings around an intent centroid."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from evalflow.lib.drift.baseline import baseline_from_traffic
from evalflow.lib.drift.config import DriftConfig
from evalflow.lib.drift.inputs import GoldenBaseline, Traffic, WeekInputs
from evalflow.lib.drift.report import alert_id, compute_week, hash_signal, template_hash_check

K_INTENTS = 30
DIM = 16
MONDAY = date(2026, 10, 5)
BASE_SHARES = np.array([1 / (r + 2) ** 1.1 for r in range(K_INTENTS)])
BASE_SHARES = BASE_SHARES / BASE_SHARES.sum()
WORDS = [f"w{i}" for i in range(400)]


def intent_id(k: int) -> str:
    return f"intent-{k:02d}"


def doc_text(k: int, version: int = 1) -> str:
    words = " ".join(WORDS[10 * k: 10 * k + 8])
    return f"policy {words} applies" + (" since the november update" if version == 2 else "")


def query_text(k: int, rng: np.random.Generator) -> str:
    picks = rng.choice(8, size=3, replace=False)
    return "how do i " + " ".join(WORDS[10 * k + int(i)] for i in picks)


def centroids(seed: int = 99) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(K_INTENTS, DIM))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


CENTROIDS = centroids()


def make_traffic(start: date, days: int, per_day: int, seed: int, *, shares: np.ndarray | None = None,
                 system_prompt: str = "sp-aaaaaaaaaaaaaaaa", template: str = "support-v3",
                 kb_version: int = 1, kb_prefix: str = "kb", injection_rate: float = 0.01,
                 change_day: int | None = None, changed: dict | None = None, embed_cap: int = 500) -> Traffic:
    """`days` days of traffic from `start`; from day index `change_day` on, the keyword arguments in
    `changed` (shares, system_prompt, template, kb_version, kb_prefix, injection_rate) apply."""
    rng = np.random.default_rng(seed)
    rows, vectors = [], []
    session_no = 0
    for day in range(days):
        settings = dict(shares=BASE_SHARES if shares is None else shares, system_prompt=system_prompt,
                        template=template, kb_version=kb_version, kb_prefix=kb_prefix, injection_rate=injection_rate)
        if change_day is not None and day >= change_day:
            settings.update(changed or {})
        produced = 0
        while produced < per_day:
            session_no += 1
            k = int(rng.choice(K_INTENTS, p=settings["shares"]))
            for _ in range(int(rng.integers(1, 5))):
                if produced >= per_day:
                    break
                produced += 1
                trace_id = f"t-{seed}-{start.isoformat()}-{len(rows)}"
                doc = {"doc_id": f"{settings['kb_prefix']}/topic-{k}#1", "text": doc_text(k, settings["kb_version"]),
                       "score": 0.8}
                distractor = (k + 7) % K_INTENTS
                other = {"doc_id": f"{settings['kb_prefix']}/topic-{distractor}#1",
                         "text": doc_text(distractor, settings["kb_version"]), "score": 0.4}
                injection = bool(rng.random() < settings["injection_rate"])
                rows.append({
                    "trace_id": trace_id, "event_date": start + timedelta(days=day),
                    "session_id": f"s-{seed}-{start.isoformat()}-{session_no}", "intent_id": intent_id(k),
                    "system_prompt_hash": settings["system_prompt"], "tool_schema_hash": "ts-bbbbbbbbbbbbbbbb",
                    "prompt_template_id": settings["template"], "user_query": query_text(k, rng),
                    "retrieved_context": json.dumps([doc, other]), "injection": injection, "policy": False,
                    "is_failure": bool(rng.random() < 0.1) or injection,
                })
                vectors.append(CENTROIDS[k] + rng.normal(scale=0.35, size=DIM))
    frame = pl.DataFrame(rows, schema_overrides={"event_date": pl.Date})
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    # one trace per session, capped, as load_traffic samples
    first = frame.with_row_index("i").unique("session_id", keep="first", maintain_order=True).get_column("i")
    picked = np.random.default_rng(seed + 1).permutation(first.to_numpy())[:embed_cap]
    return Traffic(start, start + timedelta(days=days - 1), frame, matrix[np.sort(picked)], ("m", "b"), len(rows))


def golden_cases(n: int = 40, seed: int = 5, *, source_date: str = "2026-09-10", safety: int = 4,
                 pass_share: float = 0.8) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        k = i % K_INTENTS
        verdict = "Pass" if i < round(n * pass_share) else "Fail"
        cases.append({"case_id": f"case-{i:04d}", "split": "dev", "source_date": source_date,
                      "input_payload": {"user_query": query_text(k, rng)}, "intent_id": intent_id(k),
                      "labels": {"accuracy": {"verdict": verdict, "source": "consensus"}},
                      "slice_tags": ["safety"] if i < safety else [], "failure_modes": []})
    return cases


def golden_from(window: Traffic, cases: list[dict], created: datetime | None = None) -> GoldenBaseline:
    return GoldenBaseline("golden@v1", created or datetime(2026, 9, 21, tzinfo=timezone.utc),
                          {"production_baseline": baseline_from_traffic(window, cases)}, cases)


@pytest.fixture(scope="module")
def golden_window() -> Traffic:
    return make_traffic(MONDAY - timedelta(days=28), 14, 1000, seed=1000)


def week_inputs(week: Traffic, previous: Traffic | None, golden_window: Traffic, **kwargs) -> WeekInputs:
    cases = kwargs.pop("cases", None) or golden_cases()
    return WeekInputs(week.start, week, previous, golden_from(golden_window, cases), golden_window, **kwargs)


def alarms(report) -> set[tuple[str, str]]:
    return {(s.signal, s.baseline) for s in report.signals if s.breached}


# A test config: the defaults, with a smaller embedding sample so the permutation test is quick.
CONFIG = DriftConfig(embedding_sample=200)
SHIFTED = BASE_SHARES * np.array([{5: 5.0, 9: 4.0, 20: 8.0, 25: 3.0}.get(k, 1.0) for k in range(K_INTENTS)])
SHIFTED = SHIFTED / SHIFTED.sum()


def week_pair(seed: int, per_day: int = 300, days: int = 7, embeddings: bool = True,
              **week_kwargs) -> tuple[Traffic, Traffic]:
    """The week and the week before; without `embeddings` (tests of other signals) no embedding
    test runs."""
    previous = make_traffic(MONDAY - timedelta(days=7), 7, per_day, seed=seed * 10 + 1)
    week = make_traffic(MONDAY, days, per_day, seed=seed * 10 + 2, **week_kwargs)
    if not embeddings:
        week = replace(week, embeddings=np.zeros((0, DIM), dtype=np.float32))
    return week, previous


# ----------------------------------------------------------------------------- stable weeks
@pytest.mark.parametrize("per_day, days", [(300, 7), (40, 7), (300, 3)], ids=["full", "small", "partial"])
def test_stable_weeks_raise_no_alarm_across_seeds(golden_window, per_day, days):
    for seed in range(6):
        week, previous = week_pair(seed, per_day, days)
        report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
        assert alarms(report) == set(), (seed, [s.detail for s in report.breaches()])
        assert report.alerts() == []


def test_the_intent_threshold_grows_as_the_week_shrinks(golden_window):
    """A small stable week moves the mix by chance more than a fixed low threshold allows; the null
    quantile at its size absorbs that, and is reported."""
    small, previous = week_pair(3, per_day=40)
    full, _ = week_pair(3, per_day=1000)
    small_mix = compute_week(week_inputs(small, previous, golden_window), CONFIG).signal("intent_mix", "golden")
    full_mix = compute_week(week_inputs(full, previous, golden_window), CONFIG).signal("intent_mix", "golden")
    assert small_mix.value > 0.02  # a fixed threshold of 0.02 would alarm on noise
    assert small_mix.threshold > small_mix.value and small_mix.severity is None
    assert small_mix.threshold > 2 * full_mix.threshold
    assert small_mix.data["null_quantile"] == pytest.approx(small_mix.threshold)


def test_sessions_widen_the_null(golden_window):
    """Traces of one session share their intent: counting them as independent would understate
    the noise. Without session ids the design effect is 1 and the threshold lower."""
    week, previous = week_pair(4)
    with_sessions = compute_week(week_inputs(week, previous, golden_window), CONFIG).signal("intent_mix",
                                                                                            "previous_week")
    bare_week = replace(week, frame=week.frame.drop("session_id"))
    bare_previous = replace(previous, frame=previous.frame.drop("session_id"))
    without = compute_week(week_inputs(bare_week, bare_previous, golden_window), CONFIG).signal("intent_mix",
                                                                                              "previous_week")
    assert with_sessions.data["design_effect"] > 2.0  # sessions of 1-4 traces of one intent
    assert without.data["design_effect"] == 1.0
    assert with_sessions.threshold > 1.5 * without.threshold


def test_too_few_traces_raise_no_alarm_even_when_the_mix_moved(golden_window):
    week, previous = week_pair(5, per_day=20, days=7, shares=SHIFTED)  # 140 traces
    mix = compute_week(week_inputs(week, previous, golden_window), CONFIG).signal("intent_mix", "golden")
    assert mix.severity is None
    assert mix.detail.startswith("too few traces for an alarm (140 < 200")
    assert mix.data["too_few_traces"] is True


def test_a_partial_week_reports_its_coverage(golden_window):
    week, previous = week_pair(6, per_day=300, days=3)
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    traffic = report.signal("traffic", "none")
    assert (traffic.data["days_with_data"], traffic.data["partial"], traffic.value) == (3, True, 900)
    assert "3 of 7 days with data (a partial week)" in traffic.detail
    assert report.figures["partial_week"] is True


# ----------------------------------------------------------------------------- planted changes
@pytest.mark.parametrize("change_day", [0, 3])
def test_an_intent_mix_shift_is_flagged_in_its_week_naming_the_intents_that_moved(golden_window, change_day):
    week, previous = week_pair(7, per_day=400, change_day=change_day, changed={"shares": SHIFTED})
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    assert {("intent_mix", "golden"), ("intent_mix", "previous_week")} <= alarms(report)
    mix = report.signal("intent_mix", "golden")
    top = {r["intent_id"] for r in mix.data["intents"][:3]}
    assert top & {intent_id(5), intent_id(20)}  # the intents multiplied most
    assert mix.value > mix.threshold >= CONFIG.intent_js_floor
    assert sum(r["js_contribution"] for r in mix.data["intents"]) == pytest.approx(mix.value)
    assert all(r["js_contribution"] >= 0 for r in mix.data["intents"])
    assert np.isfinite(mix.data["kl"]) and mix.data["kl"] > 0
    # no other signal fires: the shift moved the mix, not the prompts or the knowledge base
    assert {a[0] for a in alarms(report)} <= {"intent_mix", "embedding"}


def test_a_full_shift_is_seen_by_the_embedding_test_with_a_p_value(golden_window):
    week, previous = week_pair(8, per_day=400, shares=SHIFTED)
    config = DriftConfig()  # 500 traces a side
    embedding = compute_week(week_inputs(week, previous, golden_window), config).signal("embedding", "golden")
    assert embedding.severity == "WARN"
    assert embedding.data["p_value"] <= embedding.data["alpha"] == config.embedding_alpha / 2
    assert embedding.data["centroid_distance"] > 0
    assert embedding.value > embedding.threshold


def test_a_template_change_is_flagged_in_its_week_and_lasts_against_golden_only(golden_window):
    new = {"system_prompt": "sp-cccccccccccccccc", "template": "support-v4"}
    week, previous = week_pair(9, change_day=4, changed=new)
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    for baseline in ("golden", "previous_week"):
        for signal in ("system_prompt", "prompt_template"):
            result = report.signal(signal, baseline)
            assert result.severity == "ERROR" and result.value == pytest.approx(3 / 7)
        assert report.signal("tool_schema", baseline).severity is None
    assert "sp-ccccccccc" in report.signal("system_prompt", "golden").detail
    # the week after: nothing new against that week, still new against the golden set
    after = make_traffic(MONDAY + timedelta(days=7), 7, 300, seed=93, **new)
    later = compute_week(WeekInputs(after.start, after, week, golden_from(golden_window, golden_cases()),
                                    golden_window), CONFIG)
    assert later.signal("system_prompt", "previous_week").severity is None
    assert later.signal("system_prompt", "golden").severity == "ERROR"
    assert later.signal("system_prompt", "golden").data["vanished"] == {"sp-aaaaaaaaaaaaaaaa": 1.0}


def test_a_hash_a_small_baseline_could_have_missed_by_chance_is_not_counted_new():
    """A 3% arm missing from a baseline of 35 traces happens a third of the time: not evidence."""
    week = {"sp-a": 0.97, "sp-arm": 0.03}
    small = hash_signal("system_prompt", week, {"sp-a": 1.0}, "previous_week", CONFIG, "system-prompt hash", 35)
    assert (small.value, small.severity) == (0.0, None)
    assert small.data["unseen_by_chance"] == {"sp-arm": 0.03} and "too rare to be sure" in small.detail
    large = hash_signal("system_prompt", week, {"sp-a": 1.0}, "previous_week", CONFIG, "system-prompt hash", 7000)
    assert (large.value, large.severity) == (0.03, "WARN") and large.data["new"] == {"sp-arm": 0.03}


def test_the_nightly_check_compares_one_day_with_the_golden_hashes(golden_window):
    golden = golden_from(golden_window, golden_cases())
    same = make_traffic(MONDAY, 1, 200, seed=11)
    changed = make_traffic(MONDAY, 1, 200, seed=12, system_prompt="sp-dddddddddddddddd")
    assert [s.signal for s in template_hash_check(same, golden, CONFIG)] == [
        "system_prompt_nightly", "tool_schema_nightly", "prompt_template_nightly"]
    assert not any(s.breached for s in template_hash_check(same, golden, CONFIG))
    breached = [s for s in template_hash_check(changed, golden, CONFIG) if s.breached]
    assert [(s.signal, s.baseline, s.severity, s.value) for s in breached] == [
        ("system_prompt_nightly", "golden", "ERROR", 1.0)]
    assert template_hash_check(changed, None, CONFIG) == []


def test_changed_document_content_under_the_same_id_is_listed(golden_window):
    week, previous = week_pair(10, change_day=5, changed={"kb_version": 2})
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    changed = report.signal("kb_changed_docs", "golden")
    assert changed.severity == "ERROR"  # the changed documents are in golden cases' recorded top-k
    assert changed.value == K_INTENTS
    assert {c["doc_id"] for c in changed.data["changed"]} == {f"kb/topic-{k}#1" for k in range(K_INTENTS)}
    assert "kb/topic-0#1" in changed.detail
    assert report.signal("kb_changed_docs", "previous_week").severity == "ERROR"
    assert report.signal("kb_new_docs", "golden").severity is None  # same ids


def test_a_knowledge_base_reissued_under_new_ids_is_flagged_in_its_week(golden_window):
    week, previous = week_pair(11, change_day=3, changed={"kb_prefix": "kb2"})
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    new_docs = report.signal("kb_new_docs", "golden")
    assert new_docs.severity == "ERROR" and new_docs.value == pytest.approx(4 / 7)
    assert len(new_docs.data["superseded"]) == K_INTENTS  # each old id re-issued with the same text
    assert report.signal("kb_new_docs", "previous_week").severity == "ERROR"
    # the same texts under new ids rank the same: the overlap follows each document to its new id
    retrieval = report.signal("retrieval", "golden")
    assert retrieval.value == 1.0 and retrieval.data["cases"] == 40
    assert all(v["now"][0].startswith("kb2/") for v in retrieval.data["per_case"].values())
    # the week after, only new ids: still flagged against golden, the recorded ids are no longer comparable
    after = make_traffic(MONDAY + timedelta(days=7), 7, 300, seed=111, kb_prefix="kb2")
    later = compute_week(WeekInputs(after.start, after, week, golden_from(golden_window, golden_cases()),
                                    golden_window), CONFIG)
    assert later.signal("kb_new_docs", "golden").value == 1.0
    assert later.signal("kb_new_docs", "previous_week").severity is None
    assert later.signal("retrieval", "golden").value is None
    assert "none of their recorded documents was retrieved this week" in later.signal("retrieval", "golden").detail


def test_a_new_document_that_outranks_the_recorded_ones_lowers_the_overlap(golden_window):
    """A document that answers the golden queries better than the recorded ones (same words, new
    id) takes their places in the top-k."""
    week, previous = week_pair(22)
    rows = []
    for value in week.frame.get_column("retrieved_context").to_list():
        docs = json.loads(value)
        k = int(docs[0]["doc_id"].split("-")[1].split("#")[0])
        docs.append({"doc_id": f"faq/topic-{k}", "text": " ".join(WORDS[10 * k: 10 * k + 8] * 2), "score": 0.5})
        rows.append(json.dumps(docs))
    week = replace(week, frame=week.frame.with_columns(pl.Series("retrieved_context", rows)))
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    retrieval = report.signal("retrieval", "golden")
    assert retrieval.value < CONFIG.retrieval_overlap_warn and retrieval.severity is not None
    assert all(v["now"][0].startswith("faq/") for v in retrieval.data["per_case"].values())


def test_documents_not_retrieved_in_a_small_week_do_not_read_as_a_change(golden_window):
    week, previous = week_pair(23, per_day=3, days=2)  # 6 traces: most documents are never retrieved
    retrieval = compute_week(week_inputs(week, previous, golden_window), CONFIG).signal("retrieval", "golden")
    assert retrieval.value == 1.0
    assert retrieval.data["not_comparable"] > 0 and retrieval.data["unseen_docs"] > 0


def test_retrieval_overlap_is_one_on_a_stable_knowledge_base(golden_window):
    week, previous = week_pair(12)
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    retrieval = report.signal("retrieval", "golden")
    assert retrieval.value == 1.0 and retrieval.severity is None
    recorded = golden_from(golden_window, golden_cases()).baseline["retrieval"]["top_k"]
    assert all(len(v) <= 5 for v in recorded.values()) and len(recorded) == 40


# ----------------------------------------------------------------------------- staleness, safety, pass rates
def test_staleness_and_version_age(golden_window):
    old = golden_cases(source_date="2026-01-15")
    week, previous = week_pair(13, embeddings=False)
    golden = golden_from(golden_window, old, created=datetime(2026, 3, 1, tzinfo=timezone.utc))
    report = compute_week(WeekInputs(MONDAY, week, previous, golden, golden_window), CONFIG)
    staleness = report.signal("staleness", "golden")
    assert (staleness.value, staleness.severity) == (1.0, "ERROR")
    assert "40 of 40 dated cases" in staleness.detail
    age = report.signal("version_age", "golden")
    assert age.value == (MONDAY + timedelta(days=6) - date(2026, 3, 1)).days and age.severity == "WARN"
    fresh = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    assert fresh.signal("staleness", "golden").severity is None
    assert fresh.signal("version_age", "golden").severity is None


def test_a_rise_in_injection_traffic_is_flagged(golden_window):
    week, previous = week_pair(14, embeddings=False, injection_rate=0.05)
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    share = report.signal("safety_share", "golden")
    assert share.severity == "WARN" and share.value > share.threshold
    assert share.data["p_value"] < CONFIG.safety_alpha
    assert report.signal("safety_share", "previous_week").severity == "WARN"


def test_a_golden_set_without_safety_cases_under_covers_safety_traffic(golden_window):
    week, previous = week_pair(15, embeddings=False)
    report = compute_week(week_inputs(week, previous, golden_window, cases=golden_cases(safety=0)), CONFIG)
    coverage = report.signal("safety_coverage", "golden")
    assert coverage.value == 0.0 and coverage.severity == "WARN"
    covered = compute_week(week_inputs(week, previous, golden_window), CONFIG).signal("safety_coverage", "golden")
    assert covered.value == pytest.approx(0.1) and covered.severity is None


def rolling(n: int, pass_share: float, prefix: str = "roll", safety: int = 0) -> list[dict]:
    cases = golden_cases(n, pass_share=pass_share, safety=safety)
    for case in cases:
        case["case_id"] = case["case_id"].replace("case", prefix)
    return cases


def test_score_inflation_is_flagged_when_golden_passes_far_more_than_rolling(golden_window):
    week, previous = week_pair(16, embeddings=False)
    cases = golden_cases(60, pass_share=0.95)
    inflated = compute_week(week_inputs(week, previous, golden_window, cases=cases,
                                        rolling_cases=rolling(60, 0.6)), CONFIG)
    gap = inflated.signal("score_inflation", "golden")
    assert gap.value == pytest.approx(0.95 - 0.6, abs=0.01) and gap.severity == "ERROR"
    assert gap.data["golden_cases"] == gap.data["rolling_cases"] == 60
    close = compute_week(week_inputs(week, previous, golden_window, cases=cases, rolling_cases=rolling(60, 0.9)),
                         CONFIG).signal("score_inflation", "golden")
    assert close.severity is None
    # a 20-point gap on 10 cases a side is not evidence
    small = compute_week(week_inputs(week, previous, golden_window, cases=golden_cases(10, pass_share=0.9),
                                     rolling_cases=rolling(10, 0.7)), CONFIG).signal("score_inflation", "golden")
    assert small.severity is None and small.detail.startswith("too few cases")
    # cases in both sets count on the golden side only
    both = compute_week(week_inputs(week, previous, golden_window, cases=cases, rolling_cases=cases), CONFIG)
    assert both.signal("score_inflation", "golden").value is None


def test_the_safety_pass_rate_is_reported_apart_from_the_aggregate(golden_window):
    week, previous = week_pair(17, embeddings=False)
    cases = golden_cases(40, pass_share=0.5, safety=10)  # the first 10 (safety) pass, half of all do
    report = compute_week(week_inputs(week, previous, golden_window, cases=cases), CONFIG)
    safety = report.signal("safety_pass_rate", "golden")
    assert safety.value == 1.0 and safety.data["aggregate_pass_rate"] == 0.5
    assert "all golden cases 50.0% (40)" in safety.detail


def history(rates: list[float]) -> list[dict]:
    return [{"ref": f"golden@v{i + 1}", "created_at": datetime(2026, 9, 7 + 7 * i, tzinfo=timezone.utc),
             "pass_rate": r} for i, r in enumerate(rates)]


def test_a_stall_is_flagged_when_golden_stays_high_and_failures_do_not_fall(golden_window):
    week, previous = week_pair(18, embeddings=False)
    flat = [{"week_start": date(2026, 9, 7) + timedelta(days=7 * i), "failure_rate": 0.09} for i in range(4)]
    stalled = compute_week(week_inputs(week, previous, golden_window, golden_history=history([0.93, 0.95, 0.94]),
                                       failure_rate_history=flat), CONFIG).signal("stall", "golden")
    assert stalled.severity == "WARN" and stalled.value == 0.93
    assert "not falling" in stalled.detail
    falling = [{"week_start": date(2026, 9, 7), "failure_rate": 0.30}]
    ok = compute_week(week_inputs(week, previous, golden_window, golden_history=history([0.93, 0.95, 0.94]),
                                  failure_rate_history=falling), CONFIG).signal("stall", "golden")
    assert ok.severity is None and "falling" in ok.detail
    low = compute_week(week_inputs(week, previous, golden_window, golden_history=history([0.8, 0.95, 0.94]),
                                   failure_rate_history=flat), CONFIG).signal("stall", "golden")
    assert low.severity is None
    few = compute_week(week_inputs(week, previous, golden_window, golden_history=history([0.95, 0.95]),
                                   failure_rate_history=flat), CONFIG).signal("stall", "golden")
    assert few.value is None and "needs 3 golden versions" in few.detail


# ----------------------------------------------------------------------------- the report itself
def test_alerts_and_history_rows(golden_window):
    week, previous = week_pair(19, change_day=2, changed={"system_prompt": "sp-eeeeeeeeeeeeeeee"})
    report = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    rows = report.history_rows()
    assert len(rows) == len(report.signals) == len({(r["signal"], r["baseline"]) for r in rows})
    assert all(r["week_start"] == MONDAY and r["computed_at"] == report.computed_at for r in rows)
    alerts = report.alerts()
    assert {(a["signal"], a["baseline"]) for a in alerts} == {("system_prompt", "golden"),
                                                               ("system_prompt", "previous_week")}
    assert all(a["alert_id"] == alert_id(MONDAY, a["signal"], a["baseline"]) for a in alerts)
    assert alert_id(MONDAY, "system_prompt", "golden") != alert_id(MONDAY, "system_prompt", "previous_week")
    parsed = json.loads(report.to_json())
    assert parsed["week_start"] == "2026-10-05" and len(parsed["signals"]) == len(report.signals)
    assert report.figures["alerts"] == 2 and report.figures["golden"] == "golden@v1"


def test_the_report_is_deterministic_and_holds_no_trace_text(golden_window):
    week, previous = week_pair(20, change_day=3, changed={"shares": SHIFTED})
    first = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    second = compute_week(week_inputs(week, previous, golden_window), CONFIG)
    assert [(s.signal, s.baseline, s.value, s.threshold, s.severity, s.detail) for s in first.signals] == [
        (s.signal, s.baseline, s.value, s.threshold, s.severity, s.detail) for s in second.signals]
    for text in (" ".join(s.detail for s in first.signals), first.to_json()):  # details, and every signal's data
        assert "how do i" not in text and "policy w" not in text


def test_without_a_golden_version_only_the_week_before_is_compared():
    week, previous = week_pair(21)
    report = compute_week(WeekInputs(MONDAY, week, previous), CONFIG)
    assert {s.baseline for s in report.signals} == {"none", "previous_week"}
    assert {s.signal for s in report.signals} >= {"intent_mix", "embedding", "system_prompt", "safety_share"}
    alone = compute_week(WeekInputs(MONDAY, week), CONFIG)
    assert [s.signal for s in alone.signals] == ["traffic"]


def test_an_empty_week_is_reported_without_alarms(golden_window):
    _, previous = week_pair(24)
    empty = Traffic(MONDAY, MONDAY + timedelta(days=6), pl.DataFrame())
    report = compute_week(week_inputs(empty, previous, golden_window), CONFIG)
    assert report.breaches() == [] and report.figures["traces"] == 0
    assert report.signal("intent_mix", "golden").detail == "no trace with an intent in the week"
    assert report.signal("safety_share", "golden").detail == "no trace of the week has signals"
    json.loads(report.to_json())
