"""The contamination check's tables: `contamination_runs` (one row per run: counts, corpora,
thresholds) and `contamination_findings` (one row per case, corpus document and method that
reached its threshold; split leaks too, with the other split as the corpus). Ids, names and
scores only: never a case's or a document's text.

`write_run` writes both in one transaction, replacing an earlier write of the same run id (a
re-run of the same run gives the same rows, and a kill mid-write leaves the previous state).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import orjson

from evalflow.lib.common import catalog

if TYPE_CHECKING:
    from evalflow.lib.common.warehouse import Warehouse

TABLES = ("contamination_runs", "contamination_findings")
CONTAMINATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS contamination_runs (
    run_id VARCHAR PRIMARY KEY,
    checked_at TIMESTAMPTZ NOT NULL,
    cases INTEGER NOT NULL,
    contaminated INTEGER NOT NULL,
    split_leaks INTEGER NOT NULL,
    by_method JSON NOT NULL,
    by_corpus JSON NOT NULL,
    corpora JSON NOT NULL,
    config JSON NOT NULL,
    embedder JSON,
    report_sha256 VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS contamination_findings (
    run_id VARCHAR NOT NULL,
    case_id VARCHAR NOT NULL,
    split VARCHAR,
    corpus VARCHAR NOT NULL,
    corpus_kind VARCHAR NOT NULL,
    doc_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL
);
"""
FINDING_COLUMNS = ("run_id", "case_id", "split", "corpus", "corpus_kind", "doc_id", "method", "score", "checked_at")


def report_sha256(report: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(report, option=orjson.OPT_SORT_KEYS)).hexdigest()


def finding_rows(report: Mapping[str, Any], leaks: Sequence[Mapping[str, Any]], run_id: str,
                 checked_at: datetime) -> list[tuple]:
    """The findings of a report (every listed match) and of split_leaks' rows."""
    kinds = {c["name"]: c["kind"] for c in report.get("summary", {}).get("corpora", [])}
    rows = []
    for case in report.get("cases", []):
        for match in case["matches"]:
            rows.append((run_id, case["case_id"], None, match["corpus"], kinds.get(match["corpus"], "unknown"),
                         match["doc_id"], match["method"], float(match["score"]), checked_at))
    for leak in leaks:
        rows.append((run_id, leak["case_id"], leak["split"], leak["other_split"], "dataset", leak["other_case_id"],
                     leak["method"], float(leak["score"]), checked_at))
    return rows


def write_run(warehouse: "Warehouse", report: Mapping[str, Any], leaks: Sequence[Mapping[str, Any]], *,
              run_id: str, checked_at: datetime) -> dict:
    """Record a check (check_cases' report) and the split leaks (split_leaks' rows) in one
    transaction. Returns the run row as written."""
    summary = report.get("summary", {})
    run = {
        "run_id": run_id, "checked_at": checked_at, "cases": int(summary.get("cases", 0)),
        "contaminated": int(summary.get("contaminated", 0)),
        # pairs of cases, not rows: a pair found by several methods has a row per method
        "split_leaks": len({(x["split"], x["case_id"], x["other_split"], x["other_case_id"]) for x in leaks}),
        "by_method": orjson.dumps(summary.get("by_method", {})).decode(),
        "by_corpus": orjson.dumps(summary.get("by_corpus", {})).decode(),
        "corpora": orjson.dumps(summary.get("corpora", [])).decode(),
        "config": orjson.dumps(summary.get("config", {})).decode(),
        "embedder": orjson.dumps(summary.get("embedder")).decode() if summary.get("embedder") is not None else None,
        "report_sha256": report_sha256(report),
    }
    rows = finding_rows(report, leaks, run_id, checked_at)
    with warehouse.transaction() as con:
        con.execute(CONTAMINATION_SCHEMA)
        con.execute("DELETE FROM contamination_findings WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM contamination_runs WHERE run_id = ?", [run_id])
        names = ", ".join(run)
        marks = ", ".join("?" * len(run))
        con.execute(f"INSERT INTO contamination_runs ({names}) VALUES ({marks})", list(run.values()))
        if rows:
            import polars as pl

            schema = {name: pl.String for name in FINDING_COLUMNS} | {
                "score": pl.Float64, "checked_at": pl.Datetime("us", "UTC")}
            frame = pl.DataFrame(rows, schema=schema, orient="row")
            con.register("incoming_findings", frame.to_arrow())
            columns = ", ".join(FINDING_COLUMNS)
            con.execute(f"INSERT INTO contamination_findings ({columns}) SELECT {columns} FROM incoming_findings")
            con.unregister("incoming_findings")
        catalog.apply_catalog(con, TABLES)
    return run
