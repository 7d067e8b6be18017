"""The statistics behind the drift signals (lib/drift/stats.py) and the knowledge-base snapshot and
BM25 retrieval (lib/drift/retrieval.py), on inputs whose answers are known."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from evalflow.lib.drift.retrieval import BM25Index, kb_snapshot, seen_overlap, tokens
from evalflow.lib.drift.stats import design_effect, divergence, fisher_greater, js_bits, js_null, mmd_test, rng_for


def test_js_is_zero_for_equal_mixes_and_one_for_disjoint_ones():
    assert divergence({"a": 3, "b": 1}, {"a": 30, "b": 10}).js == pytest.approx(0.0, abs=1e-12)
    assert divergence({"a": 5}, {"b": 5}).js == pytest.approx(1.0)


def test_js_matches_its_definition_and_each_intent_contributes_its_term():
    week, base = {"a": 50, "b": 30, "c": 20}, {"a": 70, "b": 30}
    result = divergence(week, base)
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.7, 0.3, 0.0])
    m = (p + q) / 2
    expected = 0.5 * sum(x * math.log2(x / y) for x, y in zip(p, m) if x) + \
        0.5 * sum(x * math.log2(x / y) for x, y in zip(q, m) if x)
    assert result.js == pytest.approx(expected)
    assert result.categories == ["a", "b", "c"]
    assert sum(result.js_contrib) == pytest.approx(result.js)
    assert result.js_contrib[1] == pytest.approx(0.0)  # b did not move
    assert result.js_contrib[2] > result.js_contrib[0] > 0  # c is new: the largest mover


def test_kl_is_finite_for_an_intent_the_baseline_never_saw_after_smoothing():
    result = divergence({"a": 90, "new": 10}, {"a": 100}, pseudocount=0.5)
    ps = np.array([90.5, 10.5]) / 101
    qs = np.array([100.5, 0.5]) / 101
    assert result.kl == pytest.approx(float((ps * np.log2(ps / qs)).sum()))
    assert math.isfinite(result.kl) and result.kl > 0
    assert sum(result.kl_contrib) == pytest.approx(result.kl)


def test_the_js_null_shrinks_as_samples_grow():
    shares = [0.5, 0.2, 0.1, 0.1, 0.05, 0.05]
    small = np.quantile(js_null(shares, 200, 2000, 3000, rng_for(0, "a")), 0.99)
    large = np.quantile(js_null(shares, 20000, 2000, 3000, rng_for(0, "a")), 0.99)
    infinite = js_null(shares, 1000, math.inf, 100, rng_for(0, "b"))
    assert small > 3 * large > 0
    assert infinite.shape == (100,) and (infinite >= 0).all()
    # the same seed and parts draw the same numbers; other parts draw others
    assert (js_null(shares, 500, 500, 50, rng_for(1, "x")) == js_null(shares, 500, 500, 50, rng_for(1, "x"))).all()
    assert not (js_null(shares, 500, 500, 50, rng_for(1, "x")) == js_null(shares, 500, 500, 50,
                                                                          rng_for(1, "y"))).all()


def test_js_bits_works_row_by_row():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert js_bits(p, q) == pytest.approx([1.0, 0.0])


def test_the_design_effect_is_one_for_independent_traces_and_the_session_size_for_homogeneous_sessions():
    rng = np.random.default_rng(0)
    intents = [str(i) for i in rng.integers(0, 5, size=4000)]
    assert design_effect([f"s{i}" for i in range(4000)], intents) == pytest.approx(1.0, abs=1e-3)
    # sessions of 4 traces that share their intent: 4 traces carry about one trace's information
    sessions = [f"s{i // 4}" for i in range(4000)]
    homogeneous = [intents[(i // 4) * 4] for i in range(4000)]
    assert design_effect(sessions, homogeneous) == pytest.approx(4.0, rel=0.05)
    # the same sessions with intents drawn freely within them: no inflation
    assert design_effect(sessions, intents) == pytest.approx(1.0, abs=0.1)
    assert design_effect(["s"], ["a"]) == 1.0


def test_the_mmd_test_finds_a_shift_and_not_a_resample():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 8))
    same = rng.normal(size=(150, 8))
    shifted = rng.normal(size=(150, 8)) + np.r_[0.6, np.zeros(7)]
    moved = mmd_test(x, shifted, 500, rng_for(0, "m"), alpha=0.01)
    still = mmd_test(x, same, 500, rng_for(0, "m"), alpha=0.01)
    assert moved.p_value == pytest.approx(1 / 501)
    assert moved.statistic > moved.null_quantile
    assert moved.centroid_distance == pytest.approx(float(np.linalg.norm(x.mean(0) - shifted.mean(0))))
    assert still.p_value > 0.05 and still.statistic < still.null_quantile
    assert (moved.n_x, moved.n_y, moved.permutations) == (150, 150, 500)


def test_fisher_is_exact_where_the_normal_approximation_is_not():
    # 6 of 210 against 1% of 14,000: a z-test gives p ~ 0.002; the exact test does not call it
    assert fisher_greater(6, 210, 140, 14000) > 0.01
    assert fisher_greater(60, 2100, 140, 14000) < 1e-6
    assert fisher_greater(1, 100, 50, 100) == pytest.approx(1.0, abs=1e-9)
    assert fisher_greater(1, 0, 1, 10) == 1.0


def frame(rows: list[tuple[str, list[dict]]]) -> pl.DataFrame:
    from datetime import date

    return pl.DataFrame({"event_date": [date.fromisoformat(d) for d, _ in rows],
                         "retrieved_context": [json.dumps(c) for _, c in rows]})


def test_the_kb_snapshot_keeps_each_documents_latest_content_and_lists_changes():
    snap = kb_snapshot(frame([
        ("2026-10-06", [{"doc_id": "fees#1", "text": "the fee is $5", "score": 0.9}]),
        ("2026-10-05", [{"doc_id": "fees#1", "text": "the fee is $3", "score": 0.9},
                        {"doc_id": "cards#1", "text": "cards arrive in 5 days"}]),
        ("2026-10-07", [{"doc_id": "fees#1", "text": "the fee is $5"}]),
        ("2026-10-07", "not json"),
    ]))
    assert snap.docs == {"fees#1": "the fee is $5", "cards#1": "cards arrive in 5 days"}
    assert list(snap.changed_within) == ["fees#1"] and len(snap.changed_within["fees#1"]) == 2
    assert snap.sightings == {"fees#1": 3, "cards#1": 1} and snap.retrievals() == 4


def test_a_reissued_document_keeps_the_id_seen_last():
    snap = kb_snapshot(frame([
        ("2026-10-05", [{"doc_id": "kb-v1/fees#1", "text": "the fee is $5"}]),
        ("2026-10-08", [{"doc_id": "kb-v2/fees#1", "text": "the fee is $5"}]),
    ]))
    assert snap.docs == {"kb-v2/fees#1": "the fee is $5"}
    assert snap.superseded == {"kb-v1/fees#1": "kb-v2/fees#1"}
    assert snap.sightings == {"kb-v1/fees#1": 1, "kb-v2/fees#1": 1}


def test_bm25_ranks_by_score_then_doc_id_and_skips_non_matches():
    index = BM25Index({"b": "replacement card arrives in five days", "a": "replacement card fee",
                       "c": "wire transfer cut off time", "d": "replacement card fee"})
    assert index.top_k("how much is a replacement card fee", 3) == ["a", "d", "b"]
    assert index.top_k("wire transfer", 5) == ["c"]
    assert index.top_k("zebra", 5) == [] and index.top_k(None, 5) == []
    assert BM25Index({}).top_k("anything", 5) == []
    assert tokens("The Card's fee, a $5!") == ["card", "fee"]


def test_the_overlap_counts_only_the_recorded_documents_the_week_saw():
    current = {"a", "b", "c", "x"}
    assert seen_overlap(["a", "b", "c"], ["a", "x", "b"], current, {}) == (2 / 3, [])
    # d was not retrieved this week: left out, with as many places at the bottom of the new top-k
    assert seen_overlap(["a", "b", "d"], ["a", "b", "x"], current, {}) == (1.0, ["d"])
    # a re-issued id counts as its new id
    assert seen_overlap(["old-a", "b"], ["a", "b"], current, {"old-a": "a"}) == (1.0, [])
    assert seen_overlap(["d", "e"], ["a"], current, {}) == (None, ["d", "e"])
