"""Stratified coverage sampling (evalflow.lib.sampling) on hand-built signal frames."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from evalflow.lib.sampling import SamplingConfig, normalize_text, stratified_sample

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
SCHEMA = {
    "trace_id": pl.String, "session_id": pl.String, "event_date": pl.Date,
    "timestamp": pl.Datetime("us", "UTC"), "intent_id": pl.String,
    "failure_modes": pl.List(pl.String), "is_failure": pl.Boolean, "severity": pl.Float64,
    "latency_outlier": pl.Boolean, "cost_outlier": pl.Boolean, "is_outlier": pl.Boolean,
    "difficulty": pl.Float64, "difficulty_bucket": pl.String,
}


def signal_rows(n: int, *, intent: str = "I-0001", prefix: str | None = None, modes=(),
                difficulty: str = "easy", days: int = 28, latency: bool = False, cost: bool = False,
                session_size: int = 1) -> list[dict]:
    prefix = prefix or f"{intent}-{'-'.join(modes) or 'ok'}-{difficulty}"
    rows = []
    for i in range(n):
        ts = START + timedelta(minutes=int(i * days * 1440 / max(n, 1)))
        rows.append({
            "trace_id": f"{prefix}-{i:05d}", "session_id": f"s-{prefix}-{i // session_size}",
            "event_date": ts.date(), "timestamp": ts, "intent_id": intent,
            "failure_modes": sorted(modes), "is_failure": bool(modes),
            "severity": 0.8 if modes else 0.0, "latency_outlier": latency, "cost_outlier": cost,
            "is_outlier": latency or cost, "difficulty": 0.5, "difficulty_bucket": difficulty,
        })
    return rows


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


def mixed_population(seed: int = 0) -> pl.DataFrame:
    """A long-tailed population: one big intent, mid-sized ones, rare ones, failures, outliers."""
    rng = np.random.default_rng(seed)
    rows = signal_rows(1500, intent="I-big") + signal_rows(300, intent="I-big", difficulty="hard")
    for k in range(30):
        rows += signal_rows(int(rng.integers(3, 40)), intent=f"I-{k:03d}")
    for k in range(30, 40):
        rows += signal_rows(int(rng.integers(1, 3)), intent=f"I-{k:03d}")
    rows += signal_rows(40, intent="I-big", modes=("tool_error",))
    rows += signal_rows(25, intent="I-003", modes=("refusal",), difficulty="medium")
    rows += signal_rows(6, intent="I-007", modes=("error", "tool_error"))
    rows += signal_rows(20, intent="I-big", latency=True, prefix="lat", difficulty="medium")
    rows += signal_rows(9, intent="I-010", cost=True, prefix="cost")
    return frame(rows)


def test_same_seed_gives_the_same_sample_whatever_the_row_order():
    signals = mixed_population()
    first = stratified_sample(signals, budget=120, seed=3)
    shuffled = signals.sample(fraction=1.0, shuffle=True, seed=11)
    second = stratified_sample(shuffled, budget=120, seed=3)
    other_seed = stratified_sample(signals, budget=120, seed=4)

    assert first.chosen["trace_id"].to_list() == second.chosen["trace_id"].to_list()
    assert first.chosen["reason"].to_list() == second.chosen["reason"].to_list()
    assert first.coverage == second.coverage
    assert set(first.chosen["trace_id"]) != set(other_seed.chosen["trace_id"])


@pytest.mark.parametrize("budget", [1, 7, 60, 250])
def test_budget_is_filled_and_never_exceeded(budget):
    result = stratified_sample(mixed_population(), budget=budget)

    assert result.chosen.height == budget
    assert result.chosen["pick_order"].to_list() == list(range(1, budget + 1))
    assert result.chosen["trace_id"].n_unique() == budget


def test_budget_above_population_takes_every_eligible_trace():
    signals = frame(signal_rows(12) + signal_rows(5, intent="I-0002"))

    result = stratified_sample(signals, budget=100)

    assert sorted(result.chosen["trace_id"]) == sorted(signals["trace_id"])


def test_output_carries_input_columns_and_sampling_columns():
    signals = mixed_population()

    result = stratified_sample(signals, budget=30)

    assert result.chosen.columns == signals.columns + ["stratum", "time_bucket", "reason", "pick_order"]
    row = result.chosen.row(0, named=True)
    mode = row["failure_modes"][0] if row["failure_modes"] else "none"
    assert row["stratum"] == f"intent={row['intent_id']}|failure={mode}|difficulty={row['difficulty_bucket']}"


def test_every_intent_with_three_traces_is_covered_when_the_budget_allows():
    signals = mixed_population()
    sizes = signals.group_by("intent_id").len()
    frequent = set(sizes.filter(pl.col("len") >= 3)["intent_id"])

    result = stratified_sample(signals, budget=60)
    uniform = signals.sample(60, seed=0)

    assert frequent <= set(result.chosen["intent_id"])
    assert result.coverage["intents_with_3plus_covered"] == len(frequent)
    # The same budget drawn uniformly misses rare intents: the test population is long-tailed.
    assert not frequent <= set(uniform["intent_id"])


def test_intents_get_one_each_before_any_gets_a_second_when_budget_is_short():
    rows = []
    for k in range(20):
        rows += signal_rows(50 + k, intent=f"I-{k:03d}")
    signals = frame(rows)

    result = stratified_sample(signals, budget=12)

    assert result.chosen["intent_id"].n_unique() == 12
    # Larger intents first when not all of them fit.
    assert set(result.chosen["intent_id"]) == {f"I-{k:03d}" for k in range(8, 20)}


def test_small_strata_are_oversampled_and_large_ones_stay_proportional():
    signals = frame(signal_rows(900, difficulty="easy") + signal_rows(90, difficulty="medium")
                    + signal_rows(5, difficulty="hard"))

    floored = stratified_sample(signals, budget=100)
    proportional_only = stratified_sample(signals, budget=100, config=SamplingConfig(stratum_floor=0))

    counts = Counter(floored.chosen["difficulty_bucket"])
    # Proportional share of the hard stratum: 100 * 5 / 995 = 0.5, rounded away without a floor.
    assert Counter(proportional_only.chosen["difficulty_bucket"])["hard"] == 0
    assert counts["hard"] == 1
    assert floored.chosen.filter(pl.col("difficulty_bucket") == "hard")["reason"].to_list() == [
        "floor for small stratum"]
    assert abs(counts["easy"] - 90) <= 2 and abs(counts["medium"] - 9) <= 1


def test_tiny_stratum_gets_its_floor_labelled_as_small():
    signals = frame(signal_rows(2000, difficulty="easy") + signal_rows(3, difficulty="hard"))

    result = stratified_sample(signals, budget=40)

    hard = result.chosen.filter(pl.col("difficulty_bucket") == "hard")
    assert hard.height >= 1
    assert "floor for small stratum" in set(hard["reason"])


def test_top_failure_clusters_and_outliers_first_up_to_the_cap():
    rows = (signal_rows(800) + signal_rows(60, modes=("tool_error",), prefix="a")
            + signal_rows(60, modes=("unsupported_answer",), prefix="b")
            + signal_rows(5, modes=("refusal",), prefix="c")
            + signal_rows(30, latency=True, prefix="lat") + signal_rows(30, cost=True, prefix="cost"))
    signals = frame(rows)
    members = pl.DataFrame({
        "trace_id": [r["trace_id"] for r in rows if r["failure_modes"]],
        "failure_cluster_id": [f"F-{r['failure_modes'][0]}" for r in rows if r["failure_modes"]],
    })
    clusters = pl.DataFrame({"failure_cluster_id": ["F-tool_error", "F-unsupported_answer", "F-refusal"],
                             "category": ["tool", "hallucination", "refusal"], "rank": [1, 2, 3]})

    result = stratified_sample(signals, budget=40, failure_members=members, failure_clusters=clusters,
                               config=SamplingConfig(priority_share=0.25))

    first_ten = result.chosen.head(10)["reason"].to_list()
    later = result.chosen.slice(10)["reason"].to_list()
    assert first_ten[:5] == ["top failure cluster F-tool_error (rank 1)",
                             "top failure cluster F-unsupported_answer (rank 2)",
                             "top failure cluster F-refusal (rank 3)",
                             "outlier (latency)", "outlier (cost)"]
    assert all(r.startswith(("top failure cluster", "outlier")) for r in first_ten)
    assert not any(r.startswith(("top failure cluster", "outlier")) for r in later)


def test_all_outliers_are_included_while_under_the_cap():
    signals = frame(signal_rows(2000) + signal_rows(6, latency=True, prefix="lat")
                    + signal_rows(3, cost=True, prefix="cost"))

    result = stratified_sample(signals, budget=100)

    outliers = set(signals.filter("is_outlier")["trace_id"])
    assert outliers <= set(result.chosen["trace_id"])


def test_without_a_taxonomy_every_failure_mode_is_represented():
    signals = mixed_population()

    result = stratified_sample(signals, budget=20)

    assert set(result.coverage["failure_modes_sample"]) == set(result.coverage["failure_modes_population"])
    assert {"failure mode refusal", "failure mode tool_error", "failure mode error"} <= set(result.chosen["reason"])


def test_every_failure_mode_gets_a_trace_even_inside_one_taxonomy_category():
    rows = (signal_rows(500) + signal_rows(80, modes=("prompt_injection",), prefix="inj")
            + signal_rows(2, modes=("injection_succeeded", "prompt_injection"), prefix="leak")
            + signal_rows(60, modes=("error",), prefix="err"))
    signals = frame(rows)
    failed = [r for r in rows if r["failure_modes"]]
    members = pl.DataFrame({"trace_id": [r["trace_id"] for r in failed],
                            "failure_cluster_id": ["F-err" if r["failure_modes"] == ["error"] else "F-inj"
                                                   for r in failed]})
    clusters = pl.DataFrame({"failure_cluster_id": ["F-err", "F-inj"], "category": ["error", "injection"],
                             "rank": [1, 2]})

    result = stratified_sample(signals, budget=20, failure_members=members, failure_clusters=clusters,
                               config=SamplingConfig(novelty_window=1))

    assert "injection_succeeded" in result.coverage["failure_modes_sample"]
    assert result.chosen.head(5)["reason"].to_list()[:3] == [
        "top failure cluster F-err (rank 1)", "top failure cluster F-inj (rank 2)",
        "failure mode injection_succeeded"]


def test_floor_turns_follow_intent_size_when_the_budget_runs_out():
    rows = []
    for k in range(6):
        rows += signal_rows(150, intent="I-large", modes=(f"m{k}",) if k else (), prefix=f"L{k}")
        rows += signal_rows(15, intent="I-small", modes=(f"m{k}",) if k else (), prefix=f"S{k}")
    signals = frame(rows)

    result = stratified_sample(signals, budget=7, config=SamplingConfig(priority_share=0.0))

    # Coverage gives each intent one; the 5 floor picks left all go to the intent ten times
    # larger ((picks + 1) / traces stays lower there), where equal turns would split them 3/2.
    assert Counter(result.chosen["intent_id"]) == {"I-large": 6, "I-small": 1}


def test_novelty_spreads_picks_over_the_topics_inside_one_stratum():
    signals = frame(signal_rows(525, days=1))  # one time bucket: time spread does not interfere
    rng = np.random.default_rng(1)
    topics = np.repeat([0, 1, 2], [500, 20, 5])
    centers = np.eye(3, 16)
    vectors = centers[topics] + rng.normal(scale=0.05, size=(525, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    novel = stratified_sample(signals, budget=3, vectors=vectors)
    shuffled = stratified_sample(signals, budget=3, vectors=vectors, config=SamplingConfig(novelty_window=1))

    topic_of = dict(zip(signals["trace_id"], topics))
    assert sorted(topic_of[t] for t in novel.chosen["trace_id"]) == [0, 1, 2]
    assert [topic_of[t] for t in shuffled.chosen["trace_id"]] == [0, 0, 0]


def unit_rows(topics: np.ndarray, dims: int = 32, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Unit vectors scattered around one orthogonal centre per topic."""
    rng = np.random.default_rng(seed)
    vectors = np.eye(int(topics.max()) + 1, dims)[topics] + rng.normal(scale=noise, size=(len(topics), dims))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def merged_intent_population() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Ten tight intents of 200 traces, and one discovered intent of 200 that merges a main
    request (160 traces) with four rare ones (10 each): what intent discovery does to rare
    requests. Returns signals, vectors, and the true request (topic) of each row."""
    rows, topics = [], []
    for k in range(10):
        rows += signal_rows(200, intent=f"I-{k:03d}", days=1)
        topics += [k] * 200
    rows += signal_rows(200, intent="I-zmixed", days=1)
    topics += [10] * 160 + [11] * 10 + [12] * 10 + [13] * 10 + [14] * 10
    topics = np.asarray(topics)
    return frame(rows), unit_rows(topics), topics


def test_facets_cover_the_rare_requests_merged_into_one_discovered_intent():
    signals, vectors, topics = merged_intent_population()

    result = stratified_sample(signals, budget=15, vectors=vectors,
                               config=SamplingConfig(priority_share=0.0))

    topic_of = dict(zip(signals["trace_id"], topics))
    mixed = {topic_of[t] for t, i in zip(result.chosen["trace_id"], result.chosen["intent_id"])
             if i == "I-zmixed"}
    # Intent coverage takes one trace per intent (11), the facet pass one per uncovered
    # sub-request of the spread-out intent (4); proportional shares alone would hand the last
    # four picks to equally large tight intents and leave the rare requests out.
    assert mixed == {10, 11, 12, 13, 14}
    assert Counter(result.chosen["reason"])["facet coverage"] == 4
    assert {topic_of[t] for t in result.chosen["trace_id"]} == set(range(15))


def test_intents_at_most_as_spread_as_the_median_stay_whole_and_merged_ones_split_per_request():
    from evalflow.lib.sampling.facets import intent_facets, spread

    signals, vectors, topics = merged_intent_population()
    intents = signals["intent_id"].to_numpy()
    rows_of = {i: np.flatnonzero(intents == i) for i in set(intents.tolist())}
    spreads = {i: spread(vectors[r]) for i, r in rows_of.items()}
    median = float(np.median(list(spreads.values())))

    facets = intent_facets(rows_of, vectors, min_traces=3, seed=0)

    per_intent = Counter(f.intent for f in facets)
    assert all(per_intent[i] == 1 for i, s in spreads.items() if s <= median)
    assert sum(per_intent.values()) == len(facets)
    mixed = [f for f in facets if f.intent == "I-zmixed"]
    assert {int(topics[f.anchor]) for f in mixed} == {10, 11, 12, 13, 14}
    assert all(len(set(topics[f.rows].tolist())) == 1 for f in facets)
    assert all(len(f.rows) >= 3 for f in facets)


def test_a_phrasing_repeated_many_times_does_not_hide_a_rare_request_in_its_intent():
    from evalflow.lib.sampling.facets import intent_facets, spread

    # Ten intents of varied phrasings, and one whose main request is a single phrasing typed
    # 195 times (one vector, as slot-free texts make it) with a rare request (5 traces) beside it.
    topics = np.asarray([k for k in range(10) for _ in range(200)] + [10] * 195 + [11] * 5)
    vectors = unit_rows(topics)
    vectors[topics == 10] = vectors[np.flatnonzero(topics == 10)[0]]
    intents = np.asarray([f"I-{k:03d}" for k in topics[:2000]] + ["I-mixed"] * 200)
    rows_of = {i: np.flatnonzero(intents == i) for i in set(intents.tolist())}
    mixed = rows_of["I-mixed"]
    # Counted per row, the mixed intent looks as tight as the typical one ...
    row_spread = 1.0 - float(np.square(vectors[mixed].mean(axis=0)).sum())
    assert row_spread < np.median([spread(vectors[r]) for i, r in rows_of.items() if i != "I-mixed"])
    # ... counted per distinct vector it is the most varied, and the rare request gets a facet.
    facets = [f for f in intent_facets(rows_of, vectors, min_traces=3, seed=0) if f.intent == "I-mixed"]
    assert {int(topics[f.anchor]) for f in facets} == {10, 11}


def test_intent_coverage_takes_the_intents_most_typical_trace():
    # Intent B: a main request that resembles intent A's, plus a few odd traces unlike anything.
    signals = frame(signal_rows(100, intent="I-A", days=1) + signal_rows(60, intent="I-B", days=1))
    rng = np.random.default_rng(4)
    centres = np.zeros((3, 32))
    centres[0, 0] = 1.0
    centres[1, :2] = [0.6, 0.8]   # B's main request: cosine 0.6 with A
    centres[2, 2] = 1.0           # B's odd traces: orthogonal to A
    topics = np.asarray([0] * 100 + [1] * 55 + [2] * 5)
    vectors = centres[topics] + rng.normal(scale=0.03, size=(160, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    result = stratified_sample(signals, budget=2, vectors=vectors,
                               config=SamplingConfig(priority_share=0.0))

    # Farthest-first would pick one of B's odd traces (the least like A's pick); coverage
    # must show the intent's own request.
    topic_of = dict(zip(signals["trace_id"], topics))
    assert result.chosen["reason"].to_list() == ["intent coverage", "intent coverage"]
    assert [topic_of[t] for t in result.chosen["trace_id"]] == [0, 1]


def test_same_seed_same_sample_with_embeddings_whatever_the_row_order():
    signals, vectors, _ = merged_intent_population()
    first = stratified_sample(signals, budget=40, seed=2, vectors=vectors)
    order = np.random.default_rng(5).permutation(signals.height)
    second = stratified_sample(signals[order], budget=40, seed=2, vectors=vectors[order])

    assert first.chosen["trace_id"].to_list() == second.chosen["trace_id"].to_list()
    assert first.chosen["reason"].to_list() == second.chosen["reason"].to_list()


def test_traces_without_an_embedding_come_after_embedded_ones():
    signals = frame(signal_rows(60, days=1))
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(60, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    vectors[10:] = 0.0  # metadata-only traces: nothing to embed

    short = stratified_sample(signals, budget=8, vectors=vectors)
    long = stratified_sample(signals, budget=15, vectors=vectors)

    row = {t: i for i, t in enumerate(signals["trace_id"])}
    assert all(row[t] < 10 for t in short.chosen["trace_id"])
    assert sorted(row[t] < 10 for t in long.chosen["trace_id"]) == [False] * 5 + [True] * 10


def test_near_duplicate_vectors_are_skipped_and_replaced():
    signals = frame(signal_rows(200))
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 32))
    # 200 traces that are 5 templates with tiny noise: at most 5 distinct picks should exist.
    vectors = base[np.arange(200) % 5] + rng.normal(scale=0.01, size=(200, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    result = stratified_sample(signals, budget=20, vectors=vectors)

    assert result.chosen.height == 5
    chosen_rows = [int(t.rsplit("-", 1)[1]) for t in result.chosen["trace_id"]]
    assert sorted(r % 5 for r in chosen_rows) == [0, 1, 2, 3, 4]
    assert result.coverage["near_duplicates_removed"] == 195


def test_identical_normalised_texts_count_as_duplicates():
    signals = frame(signal_rows(6))
    texts = ["Where is my card?", "where is my CARD", "  Where   is my card!! ", "Cancel my transfer",
             "cancel my transfer.", "What is the fee?"]

    result = stratified_sample(signals, budget=6, texts=texts)

    picked = {normalize_text(texts[int(t.rsplit("-", 1)[1])]) for t in result.chosen["trace_id"]}
    assert result.chosen.height == 3
    assert picked == {"where is my card", "cancel my transfer", "what is the fee"}


def test_excluded_traces_their_sessions_and_used_sessions_are_never_chosen():
    signals = frame(signal_rows(300, session_size=3) + signal_rows(30, intent="I-0002", session_size=3))
    golden = ["I-0001-ok-easy-00004", "I-0002-ok-easy-00010"]
    used_sessions = ["s-I-0001-ok-easy-7", "s-I-0001-ok-easy-8"]

    result = stratified_sample(signals, budget=400, exclude_trace_ids=golden,
                               exclude_session_ids=used_sessions)

    banned_sessions = set(used_sessions) | {"s-I-0001-ok-easy-1", "s-I-0002-ok-easy-3"}
    assert not set(golden) & set(result.chosen["trace_id"])
    assert not banned_sessions & set(result.chosen["session_id"])
    assert result.excluded == {"by_trace_id": 2, "by_session": 4 + 6, "sessions": 4}
    assert result.coverage["excluded_traces"] == 12 and result.coverage["excluded_sessions"] == 4


def test_one_trace_per_session_by_default_and_configurable():
    signals = frame(signal_rows(100, session_size=5))

    one = stratified_sample(signals, budget=50)
    two = stratified_sample(signals, budget=50, config=SamplingConfig(max_per_session=2))

    assert one.chosen.height == 20
    assert one.chosen["session_id"].n_unique() == 20
    assert two.chosen.height == 40
    assert max(Counter(two.chosen["session_id"]).values()) == 2


def test_picks_spread_across_time_buckets():
    # 90% of the traffic in the first week; one stratum; a small budget still spans all four weeks.
    rows = signal_rows(900, days=7, prefix="w1")
    for week in (1, 2, 3):
        extra = signal_rows(34, days=7, prefix=f"w{week + 1}")
        for r in extra:
            r["timestamp"] += timedelta(days=7 * week)
        rows += extra
    signals = frame(rows)

    result = stratified_sample(signals, budget=8)

    assert Counter(result.chosen["time_bucket"]) == {
        "2026-10-01": 2, "2026-10-08": 2, "2026-10-15": 2, "2026-10-22": 2}
    assert result.coverage["time_buckets"]["2026-10-01"] == {"population": 900, "sample": 2}


def test_coverage_figures_on_a_hand_built_frame():
    rows = (signal_rows(4, intent="I-a") + signal_rows(3, intent="I-b", modes=("refusal",))
            + signal_rows(2, intent="I-c") + signal_rows(1, intent="I-d", modes=("error", "tool_error")))
    signals = frame(rows)

    result = stratified_sample(signals, budget=3, config=SamplingConfig(priority_share=0.0))

    cov = result.coverage
    # Priority off: intent coverage takes I-a then I-b (>= 3 traces, larger first); the floor's
    # next pick goes to the lowest (picks + 1) / traces: I-c (1/2) before I-d (1/1).
    assert result.chosen["intent_id"].to_list() == ["I-a", "I-b", "I-c"]
    assert result.chosen["reason"].to_list() == ["intent coverage", "intent coverage", "floor for small stratum"]
    assert cov["population"] == 10 and cov["chosen"] == 3 and cov["budget"] == 3
    assert cov["intents_in_population"] == 4
    assert cov["intents_with_3plus"] == 2 and cov["intents_with_3plus_covered"] == 2
    assert cov["intents_covered"] == 3
    assert cov["failure_share_population"] == 0.4
    assert cov["failure_share_sample"] == pytest.approx(1 / 3, abs=1e-4)
    assert cov["failure_modes_population"] == {"error": 1, "refusal": 3, "tool_error": 1}
    assert cov["failure_modes_sample"] == {"refusal": 1}
    assert cov["strata"] == 4 and cov["strata_covered"] == 3
    # Each pick goes to the bucket least represented so far relative to its population.
    assert cov["time_buckets"] == {"2026-10-01": {"population": 4, "sample": 1},
                                   "2026-10-08": {"population": 2, "sample": 1},
                                   "2026-10-15": {"population": 3, "sample": 1},
                                   "2026-10-22": {"population": 1, "sample": 0}}
    assert cov["reasons"] == {"floor for small stratum": 1, "intent coverage": 2}


def test_primary_failure_mode_is_the_rarest_one():
    rows = signal_rows(10, modes=("tool_error",)) + signal_rows(1, modes=("error", "tool_error"), prefix="x")
    signals = frame(rows)

    result = stratified_sample(signals, budget=11, config=SamplingConfig(priority_share=0.0))

    strata = dict(zip(result.chosen["trace_id"], result.chosen["stratum"]))
    assert strata["x-00000"] == "intent=I-0001|failure=error|difficulty=easy"


def test_input_validation_errors():
    signals = frame(signal_rows(5))
    with pytest.raises(ValueError, match="missing required columns: intent_id"):
        stratified_sample(signals.drop("intent_id"))
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        stratified_sample(signals, budget=0)
    with pytest.raises(ValueError, match="duplicate trace_id"):
        stratified_sample(pl.concat([signals, signals.head(1)]))
    with pytest.raises(ValueError, match=r"vectors must have shape \(5, dims\)"):
        stratified_sample(signals, vectors=np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="L2-normalised"):
        stratified_sample(signals, vectors=np.full((5, 3), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"texts \(2\) and signals \(5\) differ"):
        stratified_sample(signals, texts=["a", "b"])
    with pytest.raises(ValueError, match="pass both or neither"):
        stratified_sample(signals, failure_members=pl.DataFrame({"trace_id": [], "failure_cluster_id": []}))
    with pytest.raises(ValueError, match="failure_clusters is missing required columns: rank"):
        stratified_sample(signals, failure_members=pl.DataFrame({"trace_id": ["x"], "failure_cluster_id": ["F"]}),
                          failure_clusters=pl.DataFrame({"failure_cluster_id": ["F"]}))
    with pytest.raises(ValueError, match="timestamp must be a Datetime"):
        stratified_sample(signals.with_columns(pl.col("timestamp").cast(pl.String)))
    with pytest.raises(ValueError, match=r"priority_share must be within \[0, 1\]"):
        SamplingConfig(priority_share=1.5)
    with pytest.raises(ValueError, match="max_per_session must be >= 1"):
        SamplingConfig(max_per_session=0)
    with pytest.raises(ValueError, match="novelty_window must be >= 1 or None"):
        SamplingConfig(novelty_window=0)
