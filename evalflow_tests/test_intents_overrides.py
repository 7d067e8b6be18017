"""A reviewer's decisions on the intent catalog (rename, merge, split, pin) survive real
re-clustering; values inside requests do not become intents; the catalog a person reads."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from evalflow.lib.intents import discover_intents
from evalflow.lib.intents.overrides import (
    IntentOverridesError,
    load_overrides,
    overrides_path,
    parse_overrides,
)
from evalflow.lib.intents.values import dissolve_value_clusters, value_free, value_tokens

DIM = 32
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def centers(k: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(k, DIM)))


def blobs(cs: np.ndarray, per, spread: float = 0.08, seed: int = 1):
    rng = np.random.default_rng(seed)
    per = [per] * len(cs) if isinstance(per, int) else per
    x = np.concatenate([unit(c + rng.normal(scale=spread, size=(n, DIM))) for c, n in zip(cs, per)])
    y = np.repeat(np.arange(len(cs)), per)
    return x.astype(np.float32), y


WORDS = ["balance", "password", "exchange", "lost", "refund", "close", "loan", "pin"]


def texts_for(y: np.ndarray, words=WORDS) -> list[str]:
    return [f"question about {words[label % len(words)]} number {i}" for i, label in enumerate(y)]


def intent_of(result, rows) -> set[str]:
    return {result.intent_ids[i] for i in rows}


# ------------------------------------------------------------------------------------- the file

def test_parse_every_decision():
    o = parse_overrides('''
[[rename]]
intent = "intent-0007"
name = "card declined at a shop"

[[merge]]
intents = ["intent-0012", "intent-0031"]
name = "dispute a card payment"

[[split]]
intent = "intent-0004"
examples = [["lost my card"], ["card was stolen", "stolen"]]
names = ["lost card", "stolen card"]

[[split]]
intent = "intent-0005"
parts = 3

[[pin]]
intent = "intent-0009"
''')
    assert o.renames == {"intent-0007": "card declined at a shop"}
    assert o.merges[0].intents == ("intent-0012", "intent-0031") and o.merges[0].name == "dispute a card payment"
    assert o.splits[0].parts == 2 and o.splits[0].examples == (("lost my card",), ("card was stolen", "stolen"))
    assert o.splits[0].names == ("lost card", "stolen card")
    assert o.splits[1].parts == 3 and o.splits[1].examples is None
    assert o.pins == frozenset({"intent-0009"})
    assert not o.empty and o.digest() != parse_overrides("").digest()
    assert parse_overrides("").empty


@pytest.mark.parametrize("text, message", [
    ("[[rename]]\nintent = 'a'\n", "name must be a non-empty string"),
    ("[[merge]]\nintents = ['a']\n", "two or more ids"),
    ("[[merge]]\nintents = ['a', 'b']\n[[merge]]\nintents = ['b', 'c']\n", "appears twice"),
    ("[[split]]\nintent = 'a'\nparts = 1\n", "parts must be an integer of 2 or more"),
    ("[[split]]\nintent = 'a'\nparts = 2\nnames = ['x']\n", "one non-empty name per part"),
    ("[[split]]\nintent = 'a'\nparts = 3\nexamples = [['x'], ['y']]\n", "parts = 3 but 2 lists"),
    ("[[split]]\nintent = 'a'\nparts = 2\n[[pin]]\nintent = 'a'\n", "choose one decision per intent"),
    ("[[rename]]\nintent = 'a'\nname = 'b'\ncolour = 'red'\n", "unknown field(s) colour"),
    ("[renames]\n", "unknown section(s) renames"),
    ("[[pin]\n", "not valid TOML"),
])
def test_parse_errors_say_what_is_wrong(text, message):
    with pytest.raises(IntentOverridesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_overrides(text)


def test_the_file_lives_in_the_data_folder_unless_the_setting_moves_it(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALFLOW_INTENT_OVERRIDES", raising=False)
    assert overrides_path(tmp_path) == tmp_path / "intent_overrides.toml"
    assert load_overrides(tmp_path).empty  # absent: no decisions
    (tmp_path / "intent_overrides.toml").write_text('[[pin]]\nintent = "intent-0001"\n')
    assert load_overrides(tmp_path).pins == {"intent-0001"}
    monkeypatch.setenv("EVALFLOW_INTENT_OVERRIDES", str(tmp_path / "elsewhere.toml"))
    with pytest.raises(IntentOverridesError, match="does not exist"):
        load_overrides(tmp_path)
    (tmp_path / "elsewhere.toml").write_text("[[pin]]\nintent = 1\n")
    with pytest.raises(IntentOverridesError, match="elsewhere.toml: pin\\[0\\]: intent must be"):
        load_overrides(tmp_path)


# ------------------------------------------------------------------- decisions across re-fits

@pytest.fixture(scope="module")
def four():
    """Four well-separated intents, a first clustering, and 20% more rows of the same traffic."""
    x, y = blobs(centers(4), per=40)
    more_x, more_y = blobs(centers(4), per=10, seed=9)
    first = discover_intents(x, texts_for(y), seed=0, now=T0)
    assert len(first.catalog) == 4 and adjusted_rand_score(y, first.intent_ids) == pytest.approx(1.0)
    return x, y, more_x, more_y, first


def id_of(result, y, label) -> str:
    ids = {result.intent_ids[i] for i in np.flatnonzero(y == label)}
    assert len(ids) == 1
    return ids.pop()


def majority_id(result, y, label) -> str:
    ids, counts = np.unique([result.intent_ids[i] for i in np.flatnonzero(y == label)], return_counts=True)
    return str(ids[counts.argmax()])


def test_rename_survives_re_clustering(four):
    x, y, more_x, more_y, first = four
    target = id_of(first, y, 2)
    overrides = parse_overrides(f'[[rename]]\nintent = "{target}"\nname = "close my account"\n')
    second = discover_intents(x, texts_for(y), seed=0, previous=first.catalog, overrides=overrides)
    assert second.entry(target).name == "close my account" == second.entry(target).reviewed_name
    assert "renamed by a reviewer" in second.entry(target).decision
    assert second.entry(target).keywords  # the keyword name is still there to compare
    # a re-fit on more traffic, with the new catalog: the id continues and keeps the name
    xx, yy = np.concatenate([x, more_x]), np.concatenate([y, more_y])
    third = discover_intents(xx, texts_for(yy), seed=0, previous=second.catalog, overrides=overrides)
    assert id_of(third, yy, 2) == target
    assert third.entry(target).name == "close my account"
    untouched = id_of(third, yy, 0)
    assert third.entry(untouched).reviewed_name is None


def test_merge_survives_re_clustering(four):
    x, y, more_x, more_y, first = four
    keep, absorbed = id_of(first, y, 0), id_of(first, y, 1)
    overrides = parse_overrides(f'[[merge]]\nintents = ["{keep}", "{absorbed}"]\nname = "money questions"\n')
    second = discover_intents(x, texts_for(y), seed=0, previous=first.catalog, overrides=overrides)
    both = np.flatnonzero(y <= 1)
    assert intent_of(second, both) == {keep}
    assert absorbed not in {e.intent_id for e in second.catalog}
    merged = second.entry(keep)
    assert merged.name == "money questions" and len(merged.anchors) == 1
    assert any(e.kind == "merge" and "reviewer" in e.detail for e in second.events)
    # Re-fit on more traffic without the file: HDBSCAN finds blob 1 again as a new cluster, which
    # the stored anchor folds back into the merged intent.
    xx, yy = np.concatenate([x, more_x]), np.concatenate([y, more_y])
    third = discover_intents(xx, texts_for(yy), seed=0, previous=second.catalog)
    assert intent_of(third, np.flatnonzero(yy <= 1)) == {keep}
    assert len(third.catalog) == 3
    assert third.entry(keep).anchors and third.entry(keep).name == "money questions"
    assert not any(e.kind == "birth" for e in third.events)
    # and with the file still there, nothing changes again
    fourth = discover_intents(xx, texts_for(yy), seed=0, previous=third.catalog, overrides=overrides)
    assert fourth.intent_ids == third.intent_ids


def test_split_survives_re_clustering():
    # two sub-requests whose centres are alike (cosine ~0.93): clustering keeps them as one
    # intent; a reviewer splits them by example texts
    base = centers(3, seed=5)
    rng = np.random.default_rng(2)
    twin = unit(base[0] + 0.4 * unit(rng.normal(size=DIM)))
    cs = np.stack([base[0], twin, base[1], base[2]])
    x, y = blobs(cs, per=40, spread=0.1)
    words = ["lost card", "stolen card", "balance", "password"]
    texts = texts_for(y, words)
    first = discover_intents(x, texts, seed=0, now=T0)
    whole = intent_of(first, np.flatnonzero(y <= 1))
    assert len(whole) == 1  # one intent before the reviewer's split
    target = whole.pop()
    overrides = parse_overrides(f'[[split]]\nintent = "{target}"\nexamples = [["lost card"], ["stolen card"]]\n'
                                'names = ["lost card", "stolen card"]\n')
    second = discover_intents(x, texts, seed=0, previous=first.catalog, overrides=overrides)
    part = y <= 1
    assert adjusted_rand_score(y[part], np.asarray(second.intent_ids)[part]) > 0.9
    lost, stolen = majority_id(second, y, 0), majority_id(second, y, 1)
    assert lost != stolen and target not in {e.intent_id for e in second.catalog}
    assert second.entry(lost).name == "lost card" and second.entry(stolen).name == "stolen card"
    assert second.entry(lost).pinned and second.entry(stolen).pinned
    assert any(e.kind == "split" and e.from_ids == [target] for e in second.events)
    # A re-fit on more traffic (the file unchanged): the re-fit alone would join them again;
    # the parts are pinned and keep their rows.
    more_x, more_y = blobs(cs, per=10, spread=0.1, seed=11)
    xx, yy = np.concatenate([x, more_x]), np.concatenate([y, more_y])
    third = discover_intents(xx, texts_for(yy, words), seed=0, previous=second.catalog, overrides=overrides)
    part = yy <= 1
    assert {third.intent_ids[i] for i in np.flatnonzero(part)} == {lost, stolen}
    assert majority_id(third, yy, 0) == lost and majority_id(third, yy, 1) == stolen
    # the parts are where the reviewer's split put them: each row with the nearer part centroid
    parts = {i: np.asarray(second.entry(i).centroid) for i in (lost, stolen)}
    nearer = [max(parts, key=lambda i: float(v @ parts[i])) for v in xx[part]]
    assert np.mean(np.asarray(third.intent_ids)[part] == np.asarray(nearer)) >= 0.95
    assert adjusted_rand_score(yy[part], np.asarray(third.intent_ids)[part]) > 0.8
    assert third.entry(lost).name == "lost card"
    # the split entry names an id that ended: reported, not an error
    assert any(target in s for s in third.params["overrides"]["not_found"])


def test_pin_keeps_an_intent_a_re_fit_would_lose(four):
    x, y, _, _, first = four
    rare = id_of(first, y, 3)
    # the next window has only three rows of that request: too few for a cluster of its own
    keep_rows = np.concatenate([np.flatnonzero(y != 3), np.flatnonzero(y == 3)[:3]])
    x2, y2 = x[keep_rows], y[keep_rows]
    unpinned = discover_intents(x2, texts_for(y2), seed=0, previous=first.catalog)
    assert rare not in {e.intent_id for e in unpinned.catalog}
    pinned = discover_intents(x2, texts_for(y2), seed=0, previous=first.catalog,
                              overrides=parse_overrides(f'[[pin]]\nintent = "{rare}"\n'))
    assert rare in {e.intent_id for e in pinned.catalog}
    assert intent_of(pinned, np.flatnonzero(y2 == 3)) == {rare}
    assert pinned.entry(rare).pinned
    assert not any(e.kind == "death" and rare in e.from_ids for e in pinned.events)


def test_decisions_on_ids_that_do_not_exist_are_reported(four):
    x, y, _, _, first = four
    overrides = parse_overrides('[[rename]]\nintent = "intent-9999"\nname = "x"\n'
                                '[[split]]\nintent = "intent-9998"\nparts = 2\n')
    result = discover_intents(x, texts_for(y), seed=0, previous=first.catalog, overrides=overrides)
    assert result.intent_ids == first.intent_ids
    assert len(result.params["overrides"]["not_found"]) == 2


def test_store_carries_decisions_and_upgrades_an_old_catalog_table(tmp_path, four):
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.intents.store import read_catalog, write_clustering

    x, y, _, _, first = four
    keep, absorbed = id_of(first, y, 0), id_of(first, y, 1)
    overrides = parse_overrides(f'[[merge]]\nintents = ["{keep}", "{absorbed}"]\n'
                                f'[[pin]]\nintent = "{id_of(first, y, 3)}"\n')
    result = discover_intents(x, texts_for(y), seed=0, previous=first.catalog, overrides=overrides)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.transaction() as con:  # a catalog table from before reviewer decisions existed
        con.execute("CREATE TABLE intent_catalog (intent_id VARCHAR PRIMARY KEY, name VARCHAR, keywords VARCHAR[], "
                    "examples VARCHAR[], size BIGINT, share DOUBLE, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, "
                    "centroid FLOAT[], updated_at TIMESTAMPTZ)")
        con.execute("INSERT INTO intent_catalog VALUES "
                    "('intent-0001', 'old', [], [], 1, 1.0, now(), now(), [1.0], now())")
    old = read_catalog(warehouse)
    assert old[0].pinned is False and old[0].anchors == [] and old[0].reviewed_name is None
    traces = [{"trace_id": f"t{i}", "event_date": date(2026, 10, 1)} for i in range(len(y))]
    write_clustering(warehouse, traces, result, T0)
    back = {e.intent_id: e for e in read_catalog(warehouse)}
    for e in result.catalog:
        assert back[e.intent_id].pinned == e.pinned
        assert back[e.intent_id].decision == e.decision
        assert np.allclose(np.array(back[e.intent_id].anchors).reshape(-1), np.array(e.anchors).reshape(-1), atol=1e-6)
    assert len(back[keep].anchors) == 1 and back[id_of(first, y, 3)].pinned


# ------------------------------------------------------------------------ values in requests

MERCHANTS = ["Spotify", "Lidl", "Uber", "Netflix", "Tesco", "IKEA", "Zara", "Amazon"]
TEMPLATES = {
    "dispute": ["I want to dispute a transaction at {m}, I was charged twice",
                "There's a charge from {m} on my account that I never made"],
    "declined": ["Why was my card declined at {m}?", "Payment to {m} was rejected"],
}


def templated_texts():
    texts, intents = [], []
    for intent, templates in TEMPLATES.items():
        for template in templates:
            for m in MERCHANTS:
                texts.append(template.format(m=m))
                intents.append(intent)
    return texts, intents


def test_value_tokens_are_the_merchants_not_the_request_words():
    texts, _ = templated_texts()
    found = value_tokens(texts)
    assert found == {m.lower() for m in MERCHANTS}
    assert value_free("Why was my card declined at Spotify?", found) == "why was my card declined at"
    # Words that carry the request fill slots too ("how do I _ my card"), but they also appear in
    # many texts where they fill none: not values.
    verbs = ("activate", "freeze", "cancel", "replace")
    natural = [f"how do I {verb} my card" for verb in verbs]
    natural += [f"I need to {verb} the card I got" for verb in verbs]
    others = ("was ignored", "failed twice", "is stuck", "took a week", "came back", "never arrived",
              "still pending", "got refused", "timed out", "made no sense", "went nowhere", "cost money")
    natural += [f"my {verb} request {others[(i + 3 * v) % len(others)]} {others[(i + 5 * v + 1) % len(others)]}"
                for v, verb in enumerate(verbs) for i in range(9)]
    assert value_tokens(natural) == set()
    # ... whereas the same phrases with merchants in the slot do make them values
    assert value_tokens(natural + texts) == {m.lower() for m in MERCHANTS}


def test_a_value_cluster_is_dissolved_into_the_requests():
    texts, intents = templated_texts()
    rng = np.random.default_rng(0)
    request = {"dispute": unit(rng.normal(size=DIM)), "declined": unit(rng.normal(size=DIM))}
    merchant = {m: unit(rng.normal(size=DIM)) for m in MERCHANTS}
    # the embedding weighs the merchant as much as the request: a Spotify cluster forms
    x = np.stack([unit(request[i] + merchant[next(m for m in MERCHANTS if m in t)] + 0.05 * rng.normal(size=DIM))
                  for t, i in zip(texts, intents)])
    labels = np.array([0 if "Spotify" in t else (1 if i == "dispute" else 2) for t, i in zip(texts, intents)])
    new, dissolved = dissolve_value_clusters(x, texts, labels, np.ones(len(texts)), value_tokens(texts))
    assert [d["value"] for d in dissolved] == ["spotify"]
    assert new.max() == 1  # two intents left
    truth = np.array([0 if i == "dispute" else 1 for i in intents])
    assert adjusted_rand_score(truth, new) == pytest.approx(1.0)


def test_names_leave_values_out_and_discovery_dissolves_value_clusters():
    texts, intents = templated_texts()
    texts = [t for t in texts for _ in range(3)]  # each text seen a few times
    intents = [i for i in intents for _ in range(3)]
    rng = np.random.default_rng(1)
    request = {"dispute": unit(rng.normal(size=DIM)), "declined": unit(rng.normal(size=DIM))}
    merchant = {m: unit(rng.normal(size=DIM)) for m in MERCHANTS}
    x = np.stack([unit(request[i] + 0.9 * merchant[next(m for m in MERCHANTS if m in t)]
                       + 0.08 * rng.normal(size=DIM)) for t, i in zip(texts, intents)]).astype(np.float32)
    result = discover_intents(x, texts, seed=0)
    values = {m.lower() for m in MERCHANTS}
    for entry in result.catalog:
        assert not set(entry.name.replace("/", " ").split()) & values, entry.name
        assert not set(" ".join(entry.keywords).split()) & values
    assert result.params["values"]["tokens"] == len(MERCHANTS)
    # no intent is one merchant: each holds several merchants' requests
    for intent in set(result.intent_ids):
        named = {m for t, i in zip(texts, result.intent_ids) if i == intent for m in MERCHANTS if m in t}
        assert len(named) > 1


# ------------------------------------------------------------------------ what a person reads

def test_catalog_markdown_shows_names_sizes_trends_examples_and_decisions(four):
    from evalflow.lib.intents.store import catalog_markdown, sparkline, weekly_trends

    x, y, _, _, first = four
    target = id_of(first, y, 2)
    result = discover_intents(x, texts_for(y), seed=0, previous=first.catalog,
                              overrides=parse_overrides(f'[[rename]]\nintent = "{target}"\nname = "close it"\n'))
    newest = date(2026, 10, 28)
    days = [newest - timedelta(days=int(d)) for d in np.random.default_rng(0).integers(0, 28, len(y))]
    trends = weekly_trends(days, result.intent_ids)
    assert set(trends) == set(result.intent_ids)
    assert all(len(t) == 4 for t in trends.values())
    assert np.allclose(np.sum([t for t in trends.values()], axis=0), 1.0)
    text = catalog_markdown(result.catalog, trends, first.catalog)
    assert "close it (reviewed)" in text and "renamed by a reviewer" in text
    assert "weekly share" in text and "+0.0 pt" in text
    assert all(e.intent_id in text and str(e.size) in text for e in result.catalog)
    assert first.catalog[0].examples[0][:40] in text
    assert sparkline([0.1, 0.2, 0.4, 0.8]) == "▂▃▅█" and sparkline([0, 0]) == "··"


def test_merge_candidates_list_the_alike_pairs_with_their_similarity():
    from evalflow.lib.intents.discover import merge_candidates
    from evalflow.lib.intents.models import CatalogEntry

    def entry(i, v):
        return CatalogEntry(f"intent-000{i}", f"n{i}", [], [], 1, 0.25, T0, T0, list(v))

    a = np.array([1.0, 0.0, 0.0])
    near = unit(np.array([1.0, 0.3, 0.0]))
    far = np.array([0.0, 0.0, 1.0])
    pairs = merge_candidates([entry(1, a), entry(2, near), entry(3, far)])
    assert pairs == [{"intents": ["intent-0001", "intent-0002"], "names": ["n1", "n2"],
                      "similarity": round(float(a @ near), 4)}]


@pytest.mark.shared_data("intents/banking77", "intents/snips")
def test_natural_requests_have_no_value_tokens():
    """Banking77 and SNIPS are written by people, not templates: no word of theirs fills a slot
    often enough to be a value, so value handling leaves them untouched (as measured on the
    simulator it finds exactly its merchants, cities and currencies)."""
    import csv
    import json

    from evalflow.lib.intents import model_text
    from evalflow_tests.conftest import SHARED_DATA

    root = SHARED_DATA / "intents"
    for split in ("train", "test"):
        with open(root / "banking77" / f"{split}.csv", newline="") as f:
            texts = [model_text(r["text"]) for r in csv.DictReader(f)]
        assert len(texts) > 3000
        assert value_tokens(texts) == set(), split
    snips = []
    for path in sorted((root / "snips").glob("*.json")):
        for items in json.loads(path.read_bytes().decode("latin-1")).values():
            snips += [model_text("".join(p["text"] for p in item["data"])) for item in items]
    assert len(snips) == 2800
    assert value_tokens(snips) == set()
