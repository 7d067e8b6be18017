"""The warehouse's catalog (lib/common/catalog.py): comments on every table and column, the
analyst views, and docs/warehouse.md describing the same tables and columns as the dict."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from evalflow.lib.annotation.batch import BatchManifest
from evalflow.lib.annotation.store import record_batch
from evalflow.lib.common.catalog import (
    RAW_STORE_TABLES,
    TABLES,
    VIEW_QUERIES,
    VIEWS,
    apply_catalog,
)
from evalflow.lib.common.settings import Settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.store import publish_accounting, raw_store
from evalflow.lib.intents.embed.cache import embed_with_cache
from evalflow.lib.intents.models import CatalogEntry
from evalflow.lib.intents.store import write_clustering, write_trace_embeddings
from evalflow.lib.redact.store import _write as write_redacted
from evalflow.lib.redact.store import analyst_warehouse
from evalflow.lib.sampling.store import write_sample
from evalflow.lib.signals import SIGNAL_SCHEMA, build_failure_taxonomy
from evalflow.lib.signals.store import write_signals, write_taxonomy

DOCS = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
NOW = datetime(2026, 10, 3, 6, tzinfo=timezone.utc)
D1, D2 = date(2026, 10, 1), date(2026, 10, 2)

# trace -> (day, intent, status, failure modes, severity, low-confidence intent)
TRACES = {
    "t1": (D1, "I-1", "ok", [], 0.0, False),
    "t2": (D1, "I-1", "error", ["error"], 0.8, True),
    "t3": (D1, "I-2", "ok", [], 0.0, False),
    "t4": (D2, "I-2", "ok", ["refusal"], 0.6, False),
    "t5": (D2, "I-2", "ok", [], 0.0, False),
}
NAMES = {"I-1": "balance / check", "I-2": "card / new"}


# ----------------------------------------------------------------------------- a hand-built warehouse

class FakeEmbedder:
    model_name, model_version, backend = "fake-model", "0", "test"

    def encode(self, texts):
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


def trace_row(trace_id: str) -> dict:
    day, _intent, status, *_ = TRACES[trace_id]
    return {
        "trace_id": trace_id, "event_date": day, "timestamp": f"{day.isoformat()}T12:00:00+00:00",
        "session_id": f"session_{trace_id}", "user_id": "user_x", "model": "m",
        "messages": [{"role": "user", "content": f"question {trace_id} from <PERSON_1a2b3c4d>"}],
        "user_query": f"question {trace_id} from <PERSON_1a2b3c4d>",
        "output": None if status == "error" else f"answer {trace_id}",
        "latency_ms": 100.0 * int(trace_id[1]), "cost_usd": 0.01, "status": status, "payload_kept": True,
        "content_sha256": "c" * 64, "flags": [], "truncated_fields": [], "dialect": "canonical",
        "source_file_sha256": "f" * 64, "source_path": "a.jsonl", "line_no": 1, "byte_offset": 0,
    }


def signals_frame() -> pl.DataFrame:
    rows = []
    for trace_id, (day, intent, status, modes, severity, low) in TRACES.items():
        row = {name: None for name in SIGNAL_SCHEMA}
        row.update(trace_id=trace_id, session_id=f"session_{trace_id}", event_date=day,
                   timestamp=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc), intent_id=intent,
                   failure_modes=modes, is_failure=bool(modes), severity=severity, signal_reasons=[],
                   low_confidence_intent=low, status=status, difficulty_bucket="easy", payload_kept=True)
        rows.append(row)
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA)


def build_warehouse(tmp_path: Path) -> tuple[Warehouse, Path]:
    """Every stage's writer, once, on five traces over two days."""
    settings = Settings(data_dir=tmp_path / "data")
    raw = raw_store(settings)
    with raw.transaction() as con:
        con.execute("INSERT INTO landed_files (file_sha256, path, lines_read) VALUES (?, 'a.jsonl', 7)", ["f" * 64])
        con.execute("INSERT INTO quarantine (file_sha256, line_no, reason, event_date) VALUES (?, 6, 'conflict', ?)",
                    ["f" * 64, D2])
        con.execute("INSERT INTO quarantine (file_sha256, line_no, reason) VALUES (?, 7, 'invalid_json')", ["f" * 64])
    warehouse = analyst_warehouse(settings)
    publish_accounting(raw, warehouse)

    from collections import Counter
    counts = Counter({(D1, "user_query", "PERSON"): 2, (D2, "output", "EMAIL_ADDRESS"): 1})
    failures = [{"event_date": D2, "trace_id_sha256": "0" * 64, "reason": "redaction_error", "detail": "ValueError",
                 "quarantined_at": NOW}]
    write_redacted(warehouse, [D1, D2], [trace_row(t) for t in TRACES], failures, counts,
                   {"presidio_analyzer": "x", "spacy": "y"}, NOW)

    texts = {t: f"question {t}" for t in TRACES}
    embed_with_cache(list(texts.values()), FakeEmbedder(), warehouse)
    from evalflow.lib.intents.embed.cache import text_sha256
    write_trace_embeddings(warehouse, [D1, D2], [
        {"trace_id": t, "event_date": TRACES[t][0], "text_sha256": text_sha256(texts[t]), "model_version": "0",
         "backend": "test"} for t in TRACES])

    catalog = [CatalogEntry(intent_id=i, name=n, keywords=n.split(" / "), examples=[f"an example of {n}"],
                            size=sum(v[1] == i for v in TRACES.values()), share=0.5, first_seen=NOW, last_seen=NOW,
                            centroid=[0.0] * 384) for i, n in NAMES.items()]
    result = SimpleNamespace(
        intent_ids=[v[1] for v in TRACES.values()], confidence=[0.9] * len(TRACES),
        low_confidence=[v[5] for v in TRACES.values()], catalog=catalog, noise_share=0.2,
        events=[SimpleNamespace(kind="birth", from_ids=[], to_ids=[i], detail="first catalog") for i in NAMES])
    write_clustering(warehouse, [{"trace_id": t, "event_date": v[0]} for t, v in TRACES.items()], result, NOW,
                     input_sha256="abc", since=D1)

    signals = signals_frame()
    write_signals(warehouse, signals, since=D1, now=NOW)
    taxonomy = build_failure_taxonomy(signals, {"I-1": "old name", "I-2": "card / new"})
    write_taxonomy(warehouse, taxonomy.clusters, taxonomy.members, NOW)

    chosen = pl.DataFrame({
        "trace_id": ["t2", "t4"], "session_id": ["session_t2", "session_t4"], "event_date": [D1, D2],
        "timestamp": [NOW, NOW], "intent_id": ["I-1", "I-2"], "failure_modes": [["error"], ["refusal"]],
        "difficulty_bucket": ["easy", "hard"], "stratum": ["s1", "s2"], "time_bucket": ["2026-10-01"] * 2,
        "reason": ["failure mode error", "failure mode refusal"], "pick_order": [1, 2],
    }, schema_overrides={"failure_modes": pl.List(pl.String)})
    run = write_sample(warehouse, chosen, {"population": 5}, [], since=D1, budget=2, seed=0, now=NOW)

    folder = tmp_path / "data" / "annotation" / "batch-1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    manifest = BatchManifest(folder, {"batch_id": "batch-1", "counts": {"candidates": 1, "gold": 0, "tasks": 1}})
    record_batch(warehouse, manifest, run.sample_run_id, ["t2"], NOW)
    _write_labels_and_judge(warehouse, tmp_path)
    _write_drift(warehouse)
    _write_contamination(warehouse)
    return warehouse, folder


def _write_drift(warehouse: Warehouse) -> None:
    """The drift report's writer once: one history row, one alert, one report row."""
    from evalflow.lib.drift.report import SignalResult, WeekReport
    from evalflow.lib.drift.store import write_week

    breach = SignalResult("system_prompt", "golden", 0.5, 0.01, "ERROR", "new hash", {})
    report = WeekReport(date(2026, 9, 28), [breach], {}, computed_at=NOW)
    with warehouse.connect() as con:
        write_week(con, report, "/tmp/report.html", "# summary")


def _write_contamination(warehouse: Warehouse) -> None:
    """The contamination check's writer once: one run, one corpus finding, one split leak."""
    from evalflow.lib.contamination.store import write_run

    report = {"summary": {"cases": 1, "contaminated": 1, "by_method": {"exact": 1}, "by_corpus": {"bench": 1},
                          "corpora": [{"name": "bench", "kind": "public_benchmark"}], "config": {}, "embedder": None},
              "cases": [{"case_id": "case-x", "contaminated": True, "methods": {},
                         "matches": [{"corpus": "bench", "doc_id": "7", "method": "exact", "score": 1.0}]}]}
    leak = {"split": "holdout", "case_id": "case-x", "other_split": "dev", "other_case_id": "case-y",
            "method": "minhash", "score": 0.8}
    write_run(warehouse, report, [leak], run_id="run-1", checked_at=NOW)


def _write_labels_and_judge(warehouse: Warehouse, tmp_path: Path) -> None:
    """The labels and judge stages' writers, once each (a file that is not an export creates the
    import tables; one consensus row; one cached verdict, calibration and judge label)."""
    from evalflow.lib.judge.client import JudgeResult
    from evalflow.lib.judge.store import VerdictCacheStore, record_calibration, record_judge_labels
    from evalflow.lib.labels.figures import CONSENSUS_COLUMNS
    from evalflow.lib.labels.store import DERIVED_TABLES, import_label_file, replace_tables

    bad = tmp_path / "not-an-export.txt"
    bad.write_text("hello")
    import_label_file(warehouse, bad, {}, lambda s: "annotator_x", lambda t: t, NOW)
    consensus = pl.DataFrame([dict(batch_id="batch-1", item_id="i1", origin="trace", trace_id="t2", case_id="case-x",
                                   dimension="accuracy", value="Fail", method="unanimous", ratings=3, agreement=1.0,
                                   status="agreed", majority_value="Fail")],
                             schema=CONSENSUS_COLUMNS).with_columns(pl.lit(NOW).alias("updated_at"))
    replace_tables(warehouse, {"consensus_labels": consensus, **{t: None for t in DERIVED_TABLES[1:]}})
    VerdictCacheStore(warehouse).put_many([JudgeResult("case-x", "accuracy", "m", "p" * 64, "c" * 64, "Fail", "c",
                                                       "{}", "json", False, 10, 5)])
    calibration = SimpleNamespace(
        calibration_id="cal-1", dimension="accuracy", model="m", calibrated=True, gate_open=True,
        template=SimpleNamespace(sha256="p" * 64, variant="default"),
        to_report=lambda: {"tune": {"n": 1}, "test": {"n": 1, "agreement": 1.0, "kappa": None, "tpr": 1.0,
                                                      "tnr": None},
                           "cases": [{"case_id": "case-x", "split": "test", "human": "Fail", "judge": "Fail"}]})
    record_calibration(warehouse, calibration, NOW)
    from evalflow.lib.eval_cases.store import replace_eval_cases

    replace_eval_cases(warehouse, [], NOW)
    record_judge_labels(warehouse, [{"case_id": "case-y", "trace_id": "t4", "dimension": "accuracy",
                                     "verdict": "Pass", "model": "m", "prompt_sha256": "p" * 64,
                                     "calibration_id": "cal-1"}], NOW)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Warehouse, Path]:
    return build_warehouse(tmp_path_factory.mktemp("catalog"))


def comments(warehouse: Warehouse) -> tuple[dict[str, tuple[str, str | None]], dict[str, dict[str, str | None]]]:
    """({name: (TABLE|VIEW, comment)}, {name: {column: comment}}) of the warehouse's main schema."""
    with warehouse.connect(read_only=True) as con:
        objects = {n: ("TABLE", c) for n, c in con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main'").fetchall()}
        objects.update({n: ("VIEW", c) for n, c in con.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT internal").fetchall()})
        columns: dict[str, dict[str, str | None]] = {}
        for t, c, comment in con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                                         "WHERE database_name = current_database() AND schema_name = 'main' "
                                         "ORDER BY table_name, column_index").fetchall():
            columns.setdefault(t, {})[c] = comment
    return objects, columns


def rows(warehouse: Warehouse, sql: str) -> list[dict]:
    return warehouse.query(sql).to_dicts()


# ----------------------------------------------------------------------------- comments

def test_every_table_and_column_is_commented_from_the_catalog(built):
    warehouse, _ = built
    objects, columns = comments(warehouse)
    tables = {n for n, (kind, _) in objects.items() if kind == "TABLE"}
    assert tables == set(TABLES), "a warehouse table the catalog does not describe, or one never written"
    for name in sorted(tables):
        description, described = TABLES[name]
        assert objects[name][1] == description, name
        assert set(columns[name]) == set(described), f"{name}: columns without a description, or described ones missing"
        for column, comment in columns[name].items():
            assert comment == described[column], f"{name}.{column}"


def test_every_view_exists_after_a_full_run_and_is_commented(built):
    warehouse, _ = built
    objects, columns = comments(warehouse)
    views = {n for n, (kind, _) in objects.items() if kind == "VIEW"}
    assert views == set(VIEWS) == set(VIEW_QUERIES)
    for name in sorted(views):
        description, described = VIEWS[name]
        assert objects[name][1] == description
        assert list(columns[name]) == list(described), f"{name}: the view's columns differ from the catalog's"
        assert columns[name] == described


def test_the_catalog_describes_everything_with_constant_text():
    for name, (description, columns) in {**TABLES, **VIEWS}.items():
        assert description.strip() and columns, name
        for column, text in columns.items():
            assert text.strip(), f"{name}.{column} has no description"
    assert not set(TABLES) & set(VIEWS)
    assert not set(TABLES) & set(RAW_STORE_TABLES)


def test_comments_come_back_after_create_or_replace_and_repeated_writes_change_nothing(built):
    warehouse, _ = built
    with warehouse.connect(read_only=True) as con:
        clusters, members = (pl.from_arrow(con.sql(f"SELECT * FROM {t}").to_arrow_table())
                             for t in ("failure_clusters", "failure_cluster_members"))
    write_taxonomy(warehouse, clusters.drop("built_at"), members, NOW)
    objects, columns = comments(warehouse)
    for name in ("failure_clusters", "failure_cluster_members"):
        assert objects[name][1] == TABLES[name][0]
        assert all(columns[name][c] == TABLES[name][1][c] for c in columns[name])
    # A second pass finds nothing to change: no COMMENT, no view re-created.
    with warehouse.transaction() as con:
        before = con.execute("SELECT count(*) FROM duckdb_views()").fetchall()
        statements = []
        con_execute = con.execute

        class Spy:
            def execute(self, sql, *args):
                statements.append(sql)
                return con_execute(sql, *args)

        apply_catalog(Spy(), list(TABLES))
        assert con.execute("SELECT count(*) FROM duckdb_views()").fetchall() == before
    assert not [s for s in statements if s.startswith(("COMMENT", "CREATE", "DROP"))]


def test_comments_commit_with_the_write_or_not_at_all(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.transaction() as con:
        con.execute("CREATE TABLE pii_audit (event_date DATE, field VARCHAR, entity_type VARCHAR, detections BIGINT)")
    with pytest.raises(RuntimeError), warehouse.transaction() as con:
        con.execute("INSERT INTO pii_audit VALUES (DATE '2026-10-01', 'output', 'PERSON', 1)")
        apply_catalog(con, ["pii_audit"])
        raise RuntimeError("killed before the commit")
    objects, columns = comments(warehouse)
    assert objects["pii_audit"][1] is None and set(columns["pii_audit"].values()) == {None}
    assert warehouse.count("pii_audit") == 0


def test_apply_catalog_refuses_a_table_it_does_not_describe(tmp_path):
    with Warehouse(tmp_path / "w.duckdb").transaction() as con, pytest.raises(KeyError):
        apply_catalog(con, ["not_described"])


# ----------------------------------------------------------------------------- views: rows

def test_v_candidates_has_text_intent_name_modes_and_batch(built):
    warehouse, folder = built
    got = {r["trace_id"]: r for r in rows(warehouse, "SELECT * FROM v_candidates")}
    assert set(got) == {"t2", "t4"}
    t2, t4 = got["t2"], got["t4"]
    assert (t2["user_query"], t2["output"]) == ("question t2 from <PERSON_1a2b3c4d>", None)
    assert json.loads(t2["messages"])[0]["content"] == "question t2 from <PERSON_1a2b3c4d>"
    assert (t2["intent_name"], t2["failure_modes"], t2["difficulty_bucket"]) == ("balance / check", ["error"], "easy")
    assert (t2["status"], t2["batch_id"], t2["batch_path"]) == ("exported", "batch-1", str(folder))
    assert (t2["stratum"], t2["reason"]) == ("s1", "failure mode error")
    assert (t4["status"], t4["batch_id"], t4["batch_path"], t4["output"]) == ("candidate", None, None, "answer t4")
    assert t4["intent_name"] == "card / new" and t4["sample_run_id"] == t2["sample_run_id"]


def test_v_intent_share_by_day_gives_each_days_shares(built):
    warehouse, _ = built
    got = {(r["event_date"], r["intent_id"]): r for r in rows(warehouse, "SELECT * FROM v_intent_share_by_day")}
    assert set(got) == {(D1, "I-1"), (D1, "I-2"), (D2, "I-2")}
    assert got[(D1, "I-1")]["traces"] == 2 and got[(D1, "I-1")]["low_confidence_traces"] == 1
    assert got[(D1, "I-1")]["share"] == pytest.approx(2 / 3) and got[(D1, "I-2")]["share"] == pytest.approx(1 / 3)
    assert got[(D2, "I-2")]["share"] == 1.0 and got[(D2, "I-2")]["day_traces"] == 2
    assert got[(D1, "I-1")]["intent_name"] == "balance / check"


def test_v_daily_traffic_counts_traces_failures_and_quarantine_per_day(built):
    warehouse, _ = built
    got = {r["event_date"]: r for r in rows(warehouse, "SELECT * FROM v_daily_traffic")}
    assert set(got) == {D1, D2}
    assert {k: got[D1][k] for k in ("traces", "errors", "failed", "redaction_quarantined", "ingest_conflicts",
                                    "pii_detections")} == {"traces": 3, "errors": 1, "failed": 1,
                                                           "redaction_quarantined": 0, "ingest_conflicts": 0,
                                                           "pii_detections": 2}
    assert {k: got[D2][k] for k in ("traces", "errors", "failed", "redaction_quarantined", "ingest_conflicts",
                                    "pii_detections")} == {"traces": 2, "errors": 0, "failed": 1,
                                                           "redaction_quarantined": 1, "ingest_conflicts": 1,
                                                           "pii_detections": 1}
    assert got[D1]["failed_pct"] == pytest.approx(100 / 3) and got[D1]["median_latency_ms"] == 200.0


def test_v_failure_clusters_has_current_names_and_an_example(built):
    warehouse, _ = built
    got = rows(warehouse, "SELECT * FROM v_failure_clusters ORDER BY rank")
    assert [(r["failure_cluster_id"], r["intent_name"], r["example_trace_id"]) for r in got] == [
        ("F-error-I-1", "balance / check", "t2"), ("F-refusal-I-2", "card / new", "t4")]
    assert got[0]["example_query"] == "question t2 from <PERSON_1a2b3c4d>" and got[0]["rank"] == 1


# ----------------------------------------------------------------------------- views: safety

def test_a_partial_run_leaves_only_views_that_bind(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    warehouse = analyst_warehouse(settings)
    objects, _ = comments(warehouse)
    assert not [n for n, (kind, _) in objects.items() if kind == "VIEW"]
    # trace_signals from an older run, without every documented column: v_daily_traffic must not appear.
    write_signals(warehouse, pl.DataFrame({"trace_id": ["t1"], "event_date": [D1]}), since=D1, now=NOW)
    objects, _ = comments(warehouse)
    assert "v_daily_traffic" not in objects
    write_signals(warehouse, signals_frame(), since=D1, now=NOW)
    objects, _ = comments(warehouse)
    assert {n for n, (kind, _) in objects.items() if kind == "VIEW"} == {"v_daily_traffic"}
    with warehouse.connect(read_only=True) as con:
        con.execute("SELECT * FROM v_daily_traffic").fetchall()


def test_views_that_lost_a_source_are_dropped_not_left_broken(built, tmp_path):
    import shutil

    warehouse, _ = built
    copy = Warehouse(tmp_path / "copy.duckdb")
    shutil.copy(warehouse.path, copy.path)
    with copy.transaction() as con:
        con.execute("DROP TABLE annotation_batches")
        apply_catalog(con, ["eval_candidates"])
    objects, _ = comments(copy)
    assert "v_candidates" not in objects and "v_failure_clusters" in objects


def base_tables(sql: str) -> set[tuple[str, str, str]]:
    """(catalog, schema, table) of every table a query reads, CTE names included (DuckDB's parser)."""
    import duckdb

    tree = json.loads(duckdb.connect().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    assert not tree.get("error"), tree
    found, ctes = set(), set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                found.add((node.get("catalog_name", ""), node.get("schema_name", ""), node["table_name"]))
            for entry in node.get("cte_map", {}).get("map", []) if isinstance(node.get("cte_map"), dict) else []:
                ctes.add(entry["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return {t for t in found if t[2] not in ctes}


@pytest.mark.parametrize("name", sorted(VIEW_QUERIES))
def test_views_read_only_warehouse_tables_never_the_raw_store(name):
    read = base_tables(VIEW_QUERIES[name].sql)
    assert all(catalog == "" and schema == "" for catalog, schema, _ in read), read
    names = {t for _, _, t in read}
    assert not names & set(RAW_STORE_TABLES)
    assert names == set(VIEW_QUERIES[name].reads), "ViewQuery.reads must list exactly the tables the view reads"
    assert names <= set(TABLES)
    assert "raw_store" not in VIEW_QUERIES[name].sql


def test_the_catalog_module_imports_nothing_heavy():
    code = ("import sys, evalflow.lib.common.catalog as c; "
            "heavy = {'duckdb', 'polars', 'pyarrow', 'numpy', 'dagster'} & set(sys.modules); "
            "assert not heavy, heavy; assert c.TABLES")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- docs/warehouse.md

def documented() -> tuple[dict[str, list[str]], set[str]]:
    """({table or view: [columns]} from each "### `name`" section's table, names in "Tables at a glance")."""
    text = DOCS.read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    for match in re.finditer(r"^### `(\w+)`\n(.*?)(?=^#{2,3} |\Z)", text, flags=re.M | re.S):
        sections[match[1]] = re.findall(r"^\| `(\w+)` \|", match[2], flags=re.M)
    glance = re.search(r"^## Tables at a glance\n(.*?)(?=^## )", text, flags=re.M | re.S)[1]
    return sections, set(re.findall(r"^\| `(\w+)` \|", glance, flags=re.M))


def test_docs_describe_the_same_tables_views_and_columns_as_the_catalog():
    sections, glance = documented()
    assert set(sections) == set(TABLES) | set(VIEWS), "docs/warehouse.md sections vs lib/common/catalog.py"
    assert glance == set(TABLES), "docs/warehouse.md 'Tables at a glance' vs TABLES"
    for name, (_, columns) in {**TABLES, **VIEWS}.items():
        assert len(sections[name]) == len(set(sections[name])), f"{name}: a column documented twice"
        assert set(sections[name]) == set(columns), f"docs/warehouse.md `{name}` columns vs the catalog"
