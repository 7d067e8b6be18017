"""Intent discovery: clusters without k, noise policy, stable ids and events, names, catalog."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from evalflow.lib.intents import (
    CatalogEntry,
    cluster_texts_for_cli,
    discover_intents,
    model_text,
    normalize_placeholders,
    trace_intent_text,
)
from evalflow.lib.intents.cluster import COARSEST_WITHIN, NOISE_BUDGET
from evalflow.lib.intents.naming import ctfidf_keywords, name_from_keywords
from evalflow.lib.intents.stability import assign_to_anchors, match_clusters

DIM = 32
PER_BLOB = 40
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 10, 8, tzinfo=timezone.utc)
TOPICS = [
    ("card declined", "my card was declined at <MERCHANT_1a2b3c4d> again"),
    ("reset password", "how do I reset password for <EMAIL_ADDRESS_9f8e7d6c>"),
    ("exchange rate", "what exchange rate do you give for <PERSON_0a1b2c3d> transfers"),
    ("lost card", "I lost card yesterday, block it, I am <PERSON_7f3a9c01>"),
    ("refund status", "where is the refund status for order <ORDER_ID_12ab34cd>"),
    ("close account", "I want to close account today, name <PERSON_5e6f7a8b>"),
]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def centers(k: int, seed: int = 0) -> np.ndarray:
    """k random unit vectors in DIM dimensions: pairwise cosine near 0, far apart."""
    return unit(np.random.default_rng(seed).normal(size=(k, DIM)))


def blobs(cs: np.ndarray, per: int = PER_BLOB, spread: float = 0.08, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = np.concatenate([unit(c + rng.normal(scale=spread, size=(per, DIM))) for c in cs])
    y = np.repeat(np.arange(len(cs)), per)
    return x.astype(np.float32), y


VARIANTS = ("{}", "{} please", "hello, {} question", "{} (case {})")


def texts_for(y: np.ndarray) -> list[str]:
    """Each blob's texts share its topic's template; fillers vary, as in real traffic."""
    return [VARIANTS[i % 4].format(TOPICS[label % len(TOPICS)][1], i) for i, label in enumerate(y)]


@pytest.fixture(scope="module")
def six():
    x, y = blobs(centers(6))
    texts = texts_for(y)
    return x, y, texts, discover_intents(x, texts, seed=0, now=T0)


def test_finds_the_blobs_without_being_told_k(six):
    x, y, _, result = six
    assert len(result.catalog) == 6
    assert adjusted_rand_score(y, result.intent_ids) == pytest.approx(1.0)
    assert result.noise_share <= 0.10
    assert "why" in result.params["hdbscan"]
    kinds = {c["kind"] for c in result.params["hdbscan"]["candidates"]}
    assert kinds == {"excess of mass", "similarity cut"}


def test_same_seed_same_result(six):
    x, _, texts, result = six
    again = discover_intents(x, texts, seed=0, now=T0)
    assert again.intent_ids == result.intent_ids
    np.testing.assert_array_equal(again.confidence, result.confidence)
    assert [e.name for e in again.catalog] == [e.name for e in result.catalog]


def test_noise_rows_get_the_nearest_intent_with_low_confidence():
    cs = centers(4)
    x, y = blobs(cs)
    # Six unrelated vectors (random directions: cosine ~0 with every blob).
    outliers = unit(np.random.default_rng(5).normal(size=(6, DIM))).astype(np.float32)
    x = np.concatenate([x, outliers])
    texts = texts_for(np.concatenate([y, np.zeros(6, dtype=int)]))
    result = discover_intents(x, texts, seed=0, now=T0)

    assert len(result.catalog) == 4
    assert all(i is not None for i in result.intent_ids)
    assert result.low_confidence.tolist() == [False] * len(y) + [True] * 6
    assert (result.confidence[-6:] < 0.5).all()
    assert (result.confidence[:-6] >= 0.5).all()
    assert result.noise_share == pytest.approx(6 / len(x))
    # each outlier went to the intent whose centroid is nearest
    centroid = {e.intent_id: np.asarray(e.centroid) for e in result.catalog}
    for row, intent_id in zip(outliers, result.intent_ids[-6:]):
        assert intent_id == max(centroid, key=lambda i: float(row @ centroid[i]))


def test_rerun_with_previous_catalog_keeps_ids(six):
    x, _, texts, result = six
    again = discover_intents(x, texts, seed=0, now=T1, previous=result.catalog)
    assert again.intent_ids == result.intent_ids
    assert {e.kind for e in again.events} == {"continue"}
    assert len(again.events) == 6
    for entry in again.catalog:
        assert entry.first_seen == T0
        assert entry.last_seen == T1


def test_ids_survive_shuffled_rows_and_more_data(six):
    x, y, texts, result = six
    extra, extra_y = blobs(centers(6), per=4, seed=9)
    x2 = np.concatenate([x, extra])[::-1]
    y2 = np.concatenate([y, extra_y])[::-1]
    again = discover_intents(x2, texts_for(y2), seed=0, now=T1, previous=result.catalog)
    before = {label: result.intent_ids[int(np.flatnonzero(y == label)[0])] for label in range(6)}
    after = {label: again.intent_ids[int(np.flatnonzero(y2 == label)[0])] for label in range(6)}
    assert after == before


def test_birth_gets_a_fresh_id_after_the_highest(six):
    x, y, texts, result = six
    new_blob, _ = blobs(centers(7)[6:], seed=3)
    x2 = np.concatenate([x, new_blob])
    y2 = np.concatenate([y, np.full(PER_BLOB, 6)])
    again = discover_intents(x2, texts_for(y2), seed=0, now=T1, previous=result.catalog)
    births = [e for e in again.events if e.kind == "birth"]
    assert len(births) == 1
    assert births[0].to_ids == ["intent-0007"]
    assert set(again.intent_ids[-PER_BLOB:]) == {"intent-0007"}
    assert again.entry("intent-0007").first_seen == T1
    assert sum(e.kind == "continue" for e in again.events) == 6


def test_death_when_an_intent_has_no_rows_left(six):
    x, y, texts, result = six
    gone = result.intent_ids[int(np.flatnonzero(y == 5)[0])]
    keep = y != 5
    again = discover_intents(x[keep], [t for t, k in zip(texts, keep) if k], seed=0, now=T1,
                             previous=result.catalog)
    deaths = [e for e in again.events if e.kind == "death"]
    assert [e.from_ids for e in deaths] == [[gone]]
    assert gone not in again.intent_ids


def test_merge_of_two_alike_intents(six):
    x, y, texts, result = six
    # A previous catalog that had blob 0 as two intents with nearly the same centroid.
    base = np.asarray(result.catalog[0].centroid)
    twin = unit(base + np.random.default_rng(2).normal(scale=0.05, size=DIM))
    previous = list(result.catalog) + [CatalogEntry(
        "intent-0042", "twin", [], [], 10, 0.01, T0, T0, [float(v) for v in twin])]
    again = discover_intents(x, texts, seed=0, now=T1, previous=previous)
    merges = [e for e in again.events if e.kind == "merge"]
    assert len(merges) == 1
    assert sorted(merges[0].from_ids) == sorted([result.catalog[0].intent_id, "intent-0042"])
    assert merges[0].to_ids == [result.catalog[0].intent_id]
    assert "intent-0042" not in again.intent_ids


def test_split_into_two_unlike_intents():
    rng = np.random.default_rng(4)
    a, b = unit(rng.normal(size=(2, DIM)))
    b = unit(b - (b @ a) * a)          # orthogonal to a ...
    b = unit(0.55 * a + np.sqrt(1 - 0.55 ** 2) * b)  # ... then cosine 0.55 with it
    others = centers(3, seed=11)
    parent = unit(a + b)               # cosine ~0.88 with each part
    x, y = blobs(np.vstack([a, b, others]), spread=0.05)
    texts = texts_for(y)
    previous = [CatalogEntry("intent-0001", "parent", [], [], 80, 0.4, T0, T0,
                             [float(v) for v in parent])]
    result = discover_intents(x, texts, seed=0, now=T1, previous=previous)
    splits = [e for e in result.events if e.kind == "split"]
    assert len(splits) == 1
    assert splits[0].from_ids == ["intent-0001"]
    assert splits[0].to_ids[0] == "intent-0001" and len(splits[0].to_ids) == 2
    assert {result.intent_ids[0], result.intent_ids[PER_BLOB]} == set(splits[0].to_ids)
    assert sum(e.kind == "birth" for e in result.events) == 3


def test_match_clusters_without_previous_numbers_by_size_order():
    m = match_clusters(centers(3), None, 0.85)
    assert m.ids == ["intent-0001", "intent-0002", "intent-0003"]
    assert [e.kind for e in m.events] == ["birth"] * 3


def test_match_threshold_decides_continue_or_birth():
    c = centers(2)
    other = unit(c[1] - (c[1] @ c[0]) * c[0])  # orthogonal to c[0]
    moved = unit(c[0] + 0.6 * other)            # cosine 0.857 with c[0]
    prev = [CatalogEntry("intent-0005", "x", [], [], 1, 1.0, T0, T0, [float(v) for v in c[0]])]
    assert match_clusters(moved[None], prev, 0.85).ids == ["intent-0005"]
    strict = match_clusters(moved[None], prev, 0.95)
    assert strict.ids == ["intent-0006"]
    assert sorted(e.kind for e in strict.events) == ["birth", "death"]


def test_names_use_distinctive_words_and_ignore_placeholders():
    texts, labels = [], []
    for label, (_, template) in enumerate(TOPICS[:3]):
        for i in range(10):
            texts.append(template.replace("again", f"again {i}"))
            labels.append(label)
    keywords = ctfidf_keywords(texts, np.array(labels), 3)
    assert "declined" in keywords[0]
    assert "password" in keywords[1]
    assert "exchange rate" in keywords[2]
    flat = " ".join(w for kws in keywords for w in kws)
    for token in ("merchant", "email", "address", "person", "1a2b3c4d", "9f8e7d6c"):
        assert token not in flat
    assert name_from_keywords(["pin", "change pin", "card pin", "blocked"]) == "change pin / blocked"
    assert name_from_keywords([]) == "(no keywords)"


def test_catalog_entries_are_filled(six):
    x, y, texts, result = six
    total = sum(e.size for e in result.catalog)
    assert total == len(x)
    assert sum(e.share for e in result.catalog) == pytest.approx(1.0, abs=1e-5)
    for entry in result.catalog:
        assert entry.intent_id.startswith("intent-")
        assert 1 <= len(entry.examples) <= 3
        assert all(ex in texts for ex in entry.examples)
        assert entry.keywords and entry.name
        assert len(entry.centroid) == DIM
        assert np.linalg.norm(entry.centroid) == pytest.approx(1.0, abs=1e-4)
        assert entry.first_seen == entry.last_seen == T0
    # each blob's catalog entry is described by its topic (the templates tie on every word, so
    # which of them leads the name is alphabetical; the topic must be among the keywords)
    for label, (topic, _) in enumerate(TOPICS):
        entry = result.entry(result.intent_ids[int(np.flatnonzero(y == label)[0])])
        assert topic in entry.keywords
        assert set(topic.split()) & set(entry.name.replace("/", " ").split())
    assert sorted(e.size for e in result.catalog) == [PER_BLOB] * 6
    roundtrip = CatalogEntry.from_dict(result.catalog[0].to_dict())
    assert roundtrip == result.catalog[0]


def test_duplicates_count_in_sizes_but_cluster_once():
    x, y = blobs(centers(3))
    x = np.concatenate([x, np.repeat(x[:1], 50, axis=0)])
    y = np.concatenate([y, np.zeros(50, dtype=int)])
    result = discover_intents(x, texts_for(y), seed=0, now=T0)
    assert result.params["distinct_rows"] == 3 * PER_BLOB
    assert len(result.catalog) == 3
    assert result.catalog[0].size == PER_BLOB + 50
    assert result.catalog[0].intent_id == result.intent_ids[0]


def test_too_few_rows_make_one_intent():
    x, _ = blobs(centers(2), per=3)
    result = discover_intents(x, ["a card", "b card", "c card", "d pin", "e pin", "f pin"], now=T0)
    assert len(result.catalog) == 1
    assert set(result.intent_ids) == {"intent-0001"}
    assert "fallback" in result.params


def test_input_errors():
    x, _ = blobs(centers(2), per=3)
    with pytest.raises(ValueError, match="differ in length"):
        discover_intents(x, ["only one"])
    with pytest.raises(ValueError, match="2-d array"):
        discover_intents(x[0], ["x"] * DIM)


def test_cluster_texts_for_cli(six):
    x, y, texts, _ = six
    ids = [f"row-{i}" for i in range(len(x))]
    rows, _ = cluster_texts_for_cli(ids, texts, x)
    assert [r["id"] for r in rows] == ids
    assert set(rows[0]) == {"id", "intent_id", "intent_name", "confidence"}
    assert len({r["intent_id"] for r in rows}) == 6
    assert "card declined" in rows[0]["intent_name"]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)


def test_intent_text_drops_digests_and_adds_context():
    assert normalize_placeholders("pay <PERSON_7f3a9c01> at <IBAN_CODE_134a8ec0>") == \
        "pay <PERSON> at <IBAN_CODE>"
    messages = [
        {"role": "system", "content": "You are Nora"},
        {"role": "user", "content": "I lost my card <CREDIT_CARD_ab12cd34>"},
        {"role": "assistant", "content": "Frozen."},
        {"role": "user", "content": "ok thanks"},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "how long will that take?"},
    ]
    # default: the session's first user turn, which says what the session is about
    assert trace_intent_text(messages) == "I lost my card <CREDIT_CARD>\nhow long will that take?"
    assert trace_intent_text(messages, context="previous") == "ok thanks\nhow long will that take?"
    assert trace_intent_text(messages, context="none") == "how long will that take?"
    assert trace_intent_text(messages[:2]) == "I lost my card <CREDIT_CARD>"
    with pytest.raises(ValueError, match="context must be"):
        trace_intent_text(messages, context="all")


def test_model_text_drops_slot_values_but_keeps_the_request():
    assert model_text("Send €2,500.00 to <PERSON_7f3a9c01>, IBAN <IBAN_CODE>") == "Send to, IBAN"
    assert model_text("please pay <PERSON> AED 300, iban is <IBAN_CODE>") == "please pay, iban is"
    assert model_text("I was charged 40 dollars twice\nCan you email my last 3 statements?") == \
        "I was charged twice\nCan you email my last statements?"
    # the same request for other amounts and customers is one text, so one vector
    assert model_text("Send $75.00 to <PERSON>, IBAN <IBAN_CODE>") == model_text(
        "Send £1,200 to <PERSON_0a1b2c3d>, IBAN <IBAN_CODE_99aa88bb>")
    assert model_text("Why was my card declined at Tesco?") == "Why was my card declined at Tesco?"


def test_model_text_drops_abusive_sentences_so_abuse_does_not_become_an_intent():
    request = "Why was my card declined at Tesco?"
    for line in ("You useless bot, answer me properly.", "Shut up and do what I ask.",
                 "Fix it now or I will hurt you.", "Nobody likes you, you should be fired."):
        assert model_text(f"{line} {request}") == request
        assert model_text(f"{request} {line}") == request
    # the session's first turn (the context line) loses its abuse too; a civil sentence stays
    assert model_text("Are you an idiot? I asked a simple question.\nCan I get a refund?") == \
        "I asked a simple question.\nCan I get a refund?"
    # frustration is not abuse, and a line that is nothing but abuse is kept as it is
    assert model_text("This is ridiculous, my card was declined.") == "This is ridiculous, my card was declined."
    assert model_text("You are a complete waste of space.") == "You are a complete waste of space."


def test_trace_text_defaults_to_the_first_turn_as_context(monkeypatch):
    from evalflow.lib.intents.store import text_mode, trace_text

    monkeypatch.delenv("EVALFLOW_EMBED_TEXT", raising=False)
    trace = {"user_query": "what if that doesn't work?", "messages": [
        {"role": "user", "content": "Why is my account <ACCOUNT_ID_62d8eeb5> locked?"},
        {"role": "assistant", "content": "Checking."},
        {"role": "user", "content": "ok thanks"},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "what if that doesn't work?"}]}
    assert text_mode() == "query_with_first"
    assert trace_text(trace, text_mode()) == \
        "Why is my account <ACCOUNT_ID> locked?\nwhat if that doesn't work?"
    monkeypatch.setenv("EVALFLOW_EMBED_TEXT", "query_with_previous")
    assert trace_text(trace, text_mode()) == "ok thanks\nwhat if that doesn't work?"
    monkeypatch.setenv("EVALFLOW_EMBED_TEXT", "everything")
    with pytest.raises(ValueError, match="EVALFLOW_EMBED_TEXT must be one of"):
        text_mode()


@pytest.mark.parametrize("scattered", [10, 40])  # 4% of the rows, 14%
def test_chosen_candidate_has_the_best_modularity_within_the_noise_budget(scattered):
    x, y = blobs(centers(5))
    # scattered vectors, noise under every candidate
    stray = unit(np.random.default_rng(8).normal(size=(scattered, DIM))).astype(np.float32)
    x = np.concatenate([x, stray])
    result = discover_intents(x, texts_for(np.concatenate([y, np.zeros(scattered, dtype=int)])),
                              seed=0)
    hdbscan_params = result.params["hdbscan"]
    candidates = hdbscan_params["candidates"]
    chosen = [c for c in candidates if c["kind"] == hdbscan_params["selection"]
              and c["min_cluster_size"] == hdbscan_params["min_cluster_size"]
              and c["min_samples"] == hdbscan_params["min_samples"]
              and c.get("similarity") == hdbscan_params["similarity"]]
    assert len(chosen) == 1
    within = [c for c in candidates if c["noise_share_surrounded"] <= NOISE_BUDGET and c["clusters"] >= 2
              and c["modularity"] > 0]
    if within:  # the fewest clusters among the candidates tied with the best modularity
        best = max(c["modularity"] for c in within)
        tied = [c for c in within if c["modularity"] >= best - COARSEST_WITHIN]
        assert chosen[0] in tied
        assert chosen[0]["clusters"] == min(c["clusters"] for c in tied)
    else:  # nothing within budget: the best modularity regardless, and the choice says so
        assert chosen[0]["modularity"] == max(c["modularity"] for c in candidates if c["clusters"] >= 2)
        assert "noise budget" in hdbscan_params["why"]
    # the blobs are found whatever the stray points do
    assert adjusted_rand_score(y, result.intent_ids[:len(y)]) > 0.9
    # the recorded share is the share the result reports (noise not surrounded by its intent,
    # plus far-from-centroid rows)
    assert chosen[0]["noise_share_surrounded"] == pytest.approx(result.noise_share, abs=0.03)


def _candidate(clusters, noise, surrounded, modularity):
    return {"clusters": clusters, "noise_share": noise, "noise_share_surrounded": surrounded,
            "modularity": modularity}


def test_the_noise_budget_counts_surrounded_noise_as_members_for_every_candidate():
    from evalflow.lib.intents.cluster import pick_candidate

    # the shape measured on Banking77 train+test through the ONNX vectors, and two more
    fine_cut = _candidate(177, 0.024, 0.020, 0.8636)
    mcs60 = _candidate(74, 0.129, 0.065, 0.8642)  # over the budget only by surrounded noise rows
    noisy = _candidate(40, 0.180, 0.120, 0.8800)  # over the budget even with them: never kept
    finer = _candidate(235, 0.103, 0.068, 0.8650)  # finer, over only by surrounded rows too
    chosen, pool, best, why = pick_candidate([fine_cut, mcs60, noisy, finer], 1.82)
    # the three within the budget are tied (within 0.002 of 0.8650): the fewest clusters wins
    assert chosen is mcs60 and best == 0.8650
    assert {c["clusters"] for c in pool} == {177, 74, 235} and "surrounded" in why
    # a finer candidate clearly ahead on modularity wins though its HDBSCAN noise is over 10%
    ahead = _candidate(235, 0.150, 0.090, 0.8700)
    chosen, _, best, _ = pick_candidate([fine_cut, mcs60, noisy, ahead], 1.82)
    assert chosen is ahead and best == 0.8700
    # counted strictly, none of those two would have been within the budget
    assert ahead["noise_share"] > NOISE_BUDGET and mcs60["noise_share"] > NOISE_BUDGET
    # no structure (modularity <= 0) is never kept, however little noise
    assert pick_candidate([_candidate(3, 0.0, 0.0, -0.2), fine_cut], 1.82)[0] is fine_cut
    # nothing within the budget, even with surrounded rows: no pick
    assert pick_candidate([noisy], 1.82) is None


def test_surrounded_noise_is_noise_among_one_intents_members_only():
    from evalflow.lib.intents.cluster import surrounded_noise

    rng = np.random.default_rng(3)
    a, b, p = (unit(rng.normal(size=DIM)) for _ in range(3))
    near = lambda c, n: unit(c + 0.05 * rng.normal(size=(n, DIM)))  # noqa: E731
    # each intent has 15 members around its centre and 5 around p: p's ten nearest are 5 and 5
    members_a = np.concatenate([near(a, 15), near(p, 5)])
    members_b = np.concatenate([near(b, 15), near(p, 5)])
    inside_a = near(a, 1)  # among a's members
    x = np.concatenate([members_a, members_b, inside_a, p[None, :]]).astype(np.float32)
    labels = np.array([0] * 20 + [1] * 20 + [-1, -1])
    assigned = np.array([0] * 20 + [1] * 20 + [0, 0])
    got = surrounded_noise(x, labels, assigned)  # intents of 20 rows: its 10 nearest
    assert got.tolist() == [False] * 40 + [True, False]  # p: half its neighbours are b's
    # given the other intent, the row inside a's members is not surrounded by it
    assert not surrounded_noise(x, labels, np.array([0] * 20 + [1] * 20 + [1, 0]))[40]


def test_surrounded_is_judged_against_the_candidates_own_intent_size():
    from evalflow.lib.intents.cluster import NEIGHBOURS, surround_neighbours, surrounded_noise

    # the number of neighbours asked: half the median cluster, between 3 and 10
    assert surround_neighbours(np.repeat(np.arange(5), 40)) == NEIGHBOURS
    assert surround_neighbours(np.repeat(np.arange(5), 8)) == 4
    assert surround_neighbours(np.r_[np.repeat(np.arange(5), 4), [-1, -1]]) == 3
    rng = np.random.default_rng(5)
    centres = [unit(rng.normal(size=DIM)) for _ in range(4)]
    near = lambda c, n, s=0.05: unit(c + s * rng.normal(size=(n, DIM)))  # noqa: E731
    # four intents of 6 members each (a small window); a noise row in the middle of the first
    members = np.concatenate([near(c, 6) for c in centres])
    inside = near(centres[0], 1, 0.01)
    x = np.concatenate([members, inside]).astype(np.float32)
    labels = np.r_[np.repeat(np.arange(4), 6), -1]
    assigned = np.r_[np.repeat(np.arange(4), 6), 0]
    # ten neighbours reach past a 6-row intent: 6 of 10 are its members, under 70%
    assert not surrounded_noise(x, labels, assigned, k=10)[-1]
    # judged against the intent's own size (3 neighbours), it is inside
    assert surrounded_noise(x, labels, assigned)[-1]
    # and not inside an intent it is far from
    assert not surrounded_noise(x, labels, np.r_[assigned[:-1], 2])[-1]


def test_similarity_cut_keeps_alike_children_together_and_splits_unlike_ones():
    from evalflow.lib.intents.cluster import run_hdbscan, similarity_cut

    # two pairs of blobs: within a pair the centres are alike (cosine ~0.8), across pairs not
    base = centers(2, seed=3)
    rng = np.random.default_rng(4)
    near = [unit(c + 0.45 * unit(rng.normal(size=DIM))) for c in base]
    x, y = blobs(np.stack([base[0], near[0], base[1], near[1]]), per=30, spread=0.05)
    model = run_hdbscan(x, 3, 3)  # in the original space: 32-d blobs are dense enough
    pairs = similarity_cut(model, x, 0.5)[0]
    blobs4 = similarity_cut(model, x, 0.95)[0]
    assert len(set(pairs[pairs >= 0])) == 2
    assert adjusted_rand_score(y // 2, pairs) == pytest.approx(1.0)
    assert len(set(blobs4[blobs4 >= 0])) == 4
    kept = blobs4 >= 0  # a point or two can leave the tree as noise
    assert kept.mean() > 0.95
    assert adjusted_rand_score(y[kept], blobs4[kept]) == pytest.approx(1.0)


def test_similarity_cut_splits_a_node_whose_descendants_are_unlike():
    """A node is one intent only when every split below it is between alike parts: here the
    root's two children are alike (0.71), but one of them holds two unlike leaves (0.0)."""
    from types import SimpleNamespace

    from evalflow.lib.intents.cluster import similarity_cut

    e1, e2 = np.eye(2)
    vectors = np.array([e1, e1, e2, e2] + [unit(e1 + e2)] * 4)
    # HDBSCAN's numbering: points 0-7, root 8 -> (9, 10), 9 -> (11, 12); leaves hold the points
    edges = [(8, 9, 1.0, 4), (8, 10, 1.0, 4), (9, 11, 2.0, 2), (9, 12, 2.0, 2),
             (11, 0, 3.0, 1), (11, 1, 3.0, 1), (12, 2, 3.0, 1), (12, 3, 3.0, 1),
             (10, 4, 3.0, 1), (10, 5, 3.0, 1), (10, 6, 3.0, 1), (10, 7, 3.0, 1)]
    tree = np.array(edges, dtype=[("parent", np.int64), ("child", np.int64), ("lambda_val", np.float64),
                                  ("child_size", np.int64)])
    model = SimpleNamespace(condensed_tree_=SimpleNamespace(to_numpy=lambda: tree))
    labels, strength = similarity_cut(model, vectors, 0.5)
    assert len(set(labels.tolist())) == 3
    assert labels[0] == labels[1] != labels[2] == labels[3] != labels[4]
    assert len(set(labels[4:].tolist())) == 1
    assert (strength > 0).all()
    assert len(set(similarity_cut(model, vectors, 0.0)[0].tolist())) == 1  # everything alike at 0


def test_resolution_falls_with_the_window_and_stops_at_standard_modularity():
    from evalflow.lib.intents.cluster import resolution_for

    assert resolution_for(10_000) == pytest.approx(2.0)
    assert resolution_for(1_000) == pytest.approx(2.0 * np.sqrt(10))
    assert resolution_for(2_500) == pytest.approx(4.0)
    assert resolution_for(40_000) == pytest.approx(1.0)
    assert resolution_for(1_000_000) == 1.0


def test_candidates_include_excess_of_mass_with_min_samples_one(six):
    x, y, texts, _ = six
    params = discover_intents(x, texts, seed=0).params["hdbscan"]
    low = [c for c in params["candidates"] if c["kind"] == "excess of mass" and c["min_samples"] == 1]
    assert low and max(c["min_cluster_size"] for c in low) <= 48
    assert params["resolution"] == pytest.approx(2.0 * np.sqrt(10_000 / len(x)), abs=1e-3)


def test_rows_go_to_the_nearest_anchor_unless_that_empties_an_intent():
    anchors = np.eye(3)
    vectors = unit(np.array([[1.0, 0.2, 0.0], [0.9, 1.0, 0.0], [0.1, 1.0, 0.0], [1.0, 0.0, 0.1]]))
    labels, moved = assign_to_anchors(vectors, np.array([0, 0, 1, 2]), anchors)
    # row 1 is nearer anchor 1; row 3 is nearer anchor 0, but intent 2 would be left empty
    assert labels.tolist() == [0, 1, 1, 2]
    assert moved == 1


def test_assignment_settles_where_every_row_is_with_its_nearest_centroid():
    # Unit vectors at 0, 40, 44, 46 and 90 degrees; anchors at 0 and 90. After the first round
    # the 46-degree row is nearer the new centroid of intent 0 (28 degrees) than of intent 1
    # (68 degrees); settled, it is with intent 0.
    angles = np.radians([0, 40, 44, 46, 90])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    anchors = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels, moved = assign_to_anchors(vectors, np.array([0, 0, 0, 1, 1]), anchors)
    assert labels.tolist() == [0, 0, 0, 0, 1]
    assert moved == 1
    one_round, _ = assign_to_anchors(vectors, np.array([0, 0, 0, 1, 1]), anchors, max_iter=1)
    assert one_round.tolist() == [0, 0, 0, 1, 1]


def test_rerun_on_the_same_rows_changes_no_id(six):
    x, y, texts, _ = six
    # rows between blob 0 and blob 1 make a boundary for the assignment to settle
    rng = np.random.default_rng(6)
    cs = centers(6)
    mix = np.linspace(0.3, 0.7, 8)[:, None]
    bridge = unit(mix * cs[0] + (1 - mix) * cs[1]
                  + rng.normal(scale=0.03, size=(8, DIM))).astype(np.float32)
    x2 = np.concatenate([x, bridge])
    texts2 = texts_for(np.concatenate([y, np.zeros(8, dtype=int)]))
    first = discover_intents(x2, texts2, seed=0, now=T0)
    again = discover_intents(x2, texts2, seed=0, now=T1, previous=first.catalog)
    assert again.intent_ids == first.intent_ids
    assert {e.kind for e in again.events} == {"continue"}
    centroids = {e.intent_id: np.asarray(e.centroid) for e in again.catalog}
    for row, intent_id in zip(x2, again.intent_ids):
        assert intent_id == max(centroids, key=lambda i: float(row @ centroids[i]))


def test_window_fingerprint_sees_rows_vectors_and_text_mode():
    from evalflow.lib.intents.store import window_fingerprint

    traces = [{"trace_id": "a"}, {"trace_id": "b"}]
    vectors = np.eye(2, 4, dtype=np.float32)
    base = window_fingerprint(traces, vectors, "query_with_first")
    assert window_fingerprint(list(traces), vectors.copy(), "query_with_first") == base
    assert window_fingerprint(traces + [{"trace_id": "c"}], np.eye(3, 4, dtype=np.float32), "query_with_first") != base
    changed = vectors.copy()
    changed[1, 3] = 0.5
    assert window_fingerprint(traces, changed, "query_with_first") != base
    assert window_fingerprint(traces, vectors, "query_with_previous") != base
