"""`evalflow embed` and `evalflow cluster` on an ad-hoc set of prompts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from evalflow import cli

PROMPTS = {
    "card": ["my card was declined at the shop", "why was my card declined", "card got declined again today",
             "payment declined on my debit card", "the terminal declined my card", "declined card at checkout",
             "card declined even though I have money", "my visa card keeps getting declined"],
    "password": ["I forgot my password", "how do I reset my password", "password reset link not working",
                 "can't remember my password", "reset my login password please", "I need a new password",
                 "my password expired how to change it", "locked out, forgot password"],
    "refund": ["where is my refund", "refund has not arrived yet", "when will I get my refund",
               "I am still waiting for a refund", "status of my refund please", "refund for my order is late",
               "how long does a refund take", "my refund is missing"],
}


@pytest.fixture
def prompts_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    rows = [{"id": f"{topic}-{i}", "text": text} for topic, texts in PROMPTS.items() for i, text in enumerate(texts)]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_embed_writes_ids_hashes_and_vectors_through_the_cache(prompts_file, tmp_path, capsys):
    out = tmp_path / "vectors.parquet"
    assert cli.main(["embed", str(prompts_file), "-o", str(out)]) == 0
    first = capsys.readouterr().out  # the result line goes to stdout
    assert cli.main(["embed", str(prompts_file), "-o", str(out)]) == 0
    second = capsys.readouterr().out

    table = pq.read_table(out)
    assert table.num_rows == 24
    assert table.column("id")[0].as_py() == "card-0"
    assert len(table.column("vector")[0].as_py()) == 384
    assert "0 from the cache, 24 embedded now" in first
    assert "24 from the cache, 0 embedded now" in second


def test_cluster_groups_prompts_by_intent(prompts_file, tmp_path):
    out = tmp_path / "intents.jsonl"
    assert cli.main(["cluster", str(prompts_file), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24
    assert set(rows[0]) >= {"id", "intent_id", "intent_name", "confidence"}
    by_topic = {}
    for row in rows:
        by_topic.setdefault(row["id"].split("-")[0], []).append(row["intent_id"])
    # Each topic's prompts mostly share one intent, and the topics get different intents.
    majority = {topic: max(set(ids), key=ids.count) for topic, ids in by_topic.items()}
    assert len(set(majority.values())) == 3
    for topic, ids in by_topic.items():
        assert ids.count(majority[topic]) >= 6, (topic, ids)


def test_lines_without_text_are_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\nnot json\n')
    assert cli.main(["embed", str(path), "-o", str(tmp_path / "v.parquet")]) == 1
    err = capsys.readouterr().err
    assert "skipped 2 line(s)" in err and "evalflow: error: no {\"id\", \"text\"} lines" in err
    report = [json.loads(x) for x in (tmp_path / "v.parquet.quarantine.jsonl").read_text().splitlines()]
    assert [(r["line_no"], r["reason"]) for r in report] == [(1, "missing_text"), (2, "invalid_json")]
    assert "not json" not in (tmp_path / "v.parquet.quarantine.jsonl").read_text()


def test_cluster_catalog_keeps_ids_and_a_reviewers_decisions_across_runs(prompts_file, tmp_path, capsys):
    out, catalog = tmp_path / "intents.jsonl", tmp_path / "catalog.json"
    assert cli.main(["cluster", str(prompts_file), "-o", str(out), "--catalog", str(catalog)]) == 0
    assert "(new)" in capsys.readouterr().out
    first = json.loads(catalog.read_text())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    topic_id = {}
    for row in rows:
        topic_id.setdefault(row["id"].split("-")[0], []).append(row["intent_id"])
    topic_id = {t: max(set(ids), key=ids.count) for t, ids in topic_id.items()}
    assert len(set(topic_id.values())) == 3 and len(first["intents"]) >= 3
    assert all(len(e["centroid"]) == 384 for e in first["intents"])

    # A second run on the same prompts keeps every id.
    assert cli.main(["cluster", str(prompts_file), "-o", str(out), "--catalog", str(catalog)]) == 0
    assert "kept their id from the previous catalog" in capsys.readouterr().out
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["intent_id"] for r in again] == [r["intent_id"] for r in rows]

    # A reviewer renames the card intent and merges refunds into passwords.
    review = tmp_path / "review.toml"
    review.write_text(f'[[rename]]\nintent = "{topic_id["card"]}"\nname = "card declined"\n\n'
                      f'[[merge]]\nintents = ["{topic_id["password"]}", "{topic_id["refund"]}"]\n'
                      f'name = "account help"\n')
    assert cli.main(["cluster", str(prompts_file), "-o", str(out), "--catalog", str(catalog),
                     "--overrides", str(review)]) == 0
    printed = capsys.readouterr().out
    assert "applied: merge" in printed
    reviewed = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {r["id"]: r for r in reviewed}
    assert by_id["card-0"]["intent_name"] == "card declined"
    assert by_id["refund-0"]["intent_id"] == by_id["password-0"]["intent_id"] == topic_id["password"]

    # The decisions live in the catalog: a run without the file still honours them.
    assert cli.main(["cluster", str(prompts_file), "-o", str(out), "--catalog", str(catalog)]) == 0
    later = {r["id"]: r for r in (json.loads(line) for line in out.read_text().splitlines())}
    assert later["card-0"]["intent_name"] == "card declined"
    assert later["refund-3"]["intent_id"] == topic_id["password"]
    stored = {e["intent_id"]: e for e in json.loads(catalog.read_text())["intents"]}
    assert stored[topic_id["card"]]["reviewed_name"] == "card declined"
    assert topic_id["refund"] not in stored


def test_cluster_refuses_a_file_that_is_not_its_catalog(prompts_file, tmp_path, capsys):
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"rows": []}')
    assert cli.main(["cluster", str(prompts_file), "-o", str(tmp_path / "o.jsonl"), "--catalog", str(catalog)]) == 1
    assert "is not a catalog written by evalflow cluster --catalog" in capsys.readouterr().err
    bad = tmp_path / "review.toml"
    bad.write_text("[[rename]]\nname = 'no intent'\n")
    assert cli.main(["cluster", str(prompts_file), "-o", str(tmp_path / "o.jsonl"), "--overrides", str(bad)]) == 1
    assert "intent overrides:" in capsys.readouterr().err
