"""The eval cases' table (`eval_cases`), its write and its reads, and the reads that gather a
build's inputs from the warehouse and the annotation folder.

`eval_cases` holds the current cases, one row per case: the case as canonical JSON
(build.canonical_case_json) with its sha256, and the columns an analyst filters on. It is
derived (rebuilt whole from the labels on each run) and replaced in one transaction: a kill
mid-write leaves the previous cases, never part of the new ones. `updated_at` is when a case's
content last changed: an unchanged case keeps its time across rebuilds. Versions that never
change are the snapshots' business (lib/snapshots/), not this table's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import orjson
import polars as pl

from evalflow.lib.common import catalog
from evalflow.lib.common.warehouse import Warehouse, has_table
from evalflow.lib.labels.store import ratings, table_frame

if TYPE_CHECKING:  # build and schema (jsonschema) load when cases are built, not when defs/ reads the DDL
    from evalflow.lib.eval_cases.build import CaseInputs

TABLE = "eval_cases"
EVAL_CASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_cases (
    case_id VARCHAR PRIMARY KEY,
    case_json JSON NOT NULL,
    split VARCHAR NOT NULL,
    intent_id VARCHAR,
    risk_level VARCHAR,
    safety BOOLEAN NOT NULL,
    source_date DATE,
    updated_at TIMESTAMPTZ NOT NULL,
    case_sha256 VARCHAR NOT NULL
);
"""
COLUMNS: dict[str, pl.DataType] = {
    "case_id": pl.String, "case_json": pl.String, "split": pl.String, "intent_id": pl.String,
    "risk_level": pl.String, "safety": pl.Boolean, "source_date": pl.Date,
    "updated_at": pl.Datetime("us", "UTC"), "case_sha256": pl.String,
}
_TRACE_COLUMNS = ("trace_id", "timestamp", "event_date", "user_query", "messages", "retrieved_context", "tool_calls",
                  "output", "metadata")
_JSON_COLUMNS = ("messages", "retrieved_context", "tool_calls", "metadata")


@dataclass(frozen=True)
class ReplaceSummary:
    cases: int
    added: int
    changed: int
    unchanged: int
    removed: int


def _describe(con) -> None:
    catalog.apply_catalog(con, (TABLE,))


def case_row(case: Mapping[str, Any], updated_at: datetime) -> dict[str, Any]:
    """The table row of a (valid) case."""
    from evalflow.lib.eval_cases.build import canonical_case_json, case_sha256, is_safety_case

    return {"case_id": case["case_id"], "case_json": canonical_case_json(case).decode("utf-8"),
            "split": case["split"], "intent_id": case.get("intent_id"), "risk_level": case.get("risk_level"),
            "safety": is_safety_case(case),
            "source_date": date.fromisoformat(case["source_date"]) if case.get("source_date") else None,
            "updated_at": updated_at, "case_sha256": case_sha256(case)}


def replace_eval_cases(warehouse: Warehouse, cases: Sequence[Mapping[str, Any]], now: datetime) -> ReplaceSummary:
    """Replace the table's whole content with `cases` in one transaction. Every case is checked
    against the contract first (schema.InvalidCase; nothing is written then), and case ids must
    be unique (ValueError)."""
    from evalflow.lib.eval_cases.build import case_sha256
    from evalflow.lib.eval_cases.schema import require_valid

    ids = [case.get("case_id") for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates[:5]}")
    for case in cases:
        require_valid(case)
    with warehouse.transaction() as con:
        con.execute(EVAL_CASES_SCHEMA)
        before = {case_id: (sha, at) for case_id, sha, at in
                  con.execute("SELECT case_id, case_sha256, updated_at FROM eval_cases").fetchall()}
        rows, added, changed, unchanged = [], 0, 0, 0
        for case in cases:
            sha = case_sha256(case)
            old = before.get(case["case_id"])
            if old is None:
                added += 1
            elif old[0] == sha:
                unchanged += 1
            else:
                changed += 1
            rows.append(case_row(case, old[1] if old is not None and old[0] == sha else now))
        con.execute("DELETE FROM eval_cases")
        if rows:
            frame = pl.DataFrame(rows, schema=COLUMNS, orient="row")
            con.register("incoming_cases", frame.to_arrow())
            names = ", ".join(COLUMNS)
            con.execute(f"INSERT INTO eval_cases ({names}) SELECT {names} FROM incoming_cases")
            con.unregister("incoming_cases")
        _describe(con)
    removed = len(set(before) - set(ids))
    return ReplaceSummary(len(rows), added, changed, unchanged, removed)


# ---------------------------------------------------------------------------- reads
def eval_case_rows(warehouse: Warehouse) -> pl.DataFrame:
    """The table without case_json (empty, with its columns, when it does not exist)."""
    schema = {k: v for k, v in COLUMNS.items() if k != "case_json"}
    if not warehouse.path.exists():
        return pl.DataFrame(schema=schema)
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, TABLE):
            return pl.DataFrame(schema=schema)
        frame = pl.from_arrow(con.sql(f"SELECT {', '.join(schema)} FROM eval_cases ORDER BY case_id")
                              .to_arrow_table())
    return frame.cast(schema)


def read_eval_cases(warehouse: Warehouse, case_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The stored cases (all, or those of `case_ids`), sorted by case id."""
    if not warehouse.path.exists():
        return []
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, TABLE):
            return []
        rows = con.execute("SELECT case_id, case_json FROM eval_cases ORDER BY case_id").fetchall()
    wanted = None if case_ids is None else set(case_ids)
    return [json.loads(text) for case_id, text in rows if wanted is None or case_id in wanted]


# ---------------------------------------------------------------------------- build inputs
def _frame(con, sql: str, params: list | None = None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())


def _traces(con, trace_ids: list[str]) -> list[dict[str, Any]]:
    if not trace_ids or not has_table(con, "redacted_traces"):
        return []
    con.register("wanted_traces", pl.DataFrame({"trace_id": trace_ids}, schema={"trace_id": pl.String}).to_arrow())
    rows = con.execute(f"SELECT {', '.join('r.' + c for c in _TRACE_COLUMNS)} FROM redacted_traces r "
                       "JOIN wanted_traces w USING (trace_id) ORDER BY r.trace_id").fetchall()
    con.unregister("wanted_traces")
    out = []
    for values in rows:
        trace = dict(zip(_TRACE_COLUMNS, values))
        for name in _JSON_COLUMNS:
            trace[name] = orjson.loads(trace[name]) if trace[name] else None
        out.append(trace)
    return out


def _candidates(con) -> pl.DataFrame:
    schema = {"trace_id": pl.String, "intent_id": pl.String, "intent_name": pl.String,
              "failure_modes": pl.List(pl.String)}
    if not has_table(con, "eval_candidates"):
        return pl.DataFrame(schema=schema)
    name = "n.name" if has_table(con, "intent_catalog") else "NULL"
    join = "LEFT JOIN intent_catalog n ON n.intent_id = c.intent_id" if name != "NULL" else ""
    frame = _frame(con, f"SELECT c.trace_id, c.intent_id, {name} AS intent_name, c.failure_modes "
                        f"FROM eval_candidates c {join} ORDER BY c.trace_id")
    return frame.cast(schema)


def load_case_inputs(warehouse: Warehouse, annotation_dir: str | Path | None = None,
                     rubric_texts: Mapping[str, Any] | None = None) -> CaseInputs:
    """Everything build_cases needs, from the warehouse (labels, judge, traces, candidates) and
    the batch folders under `annotation_dir` (each batch's rubric, from its own configuration
    files; `rubric_texts` entries take precedence). Judge labels count only with their
    calibrations: without a judge_calibrations table none does."""
    from evalflow.lib.eval_cases.build import CaseInputs, labelled_trace_ids, rubric_texts_from_batches

    consensus = table_frame(warehouse, "consensus_labels")
    pass1 = ratings(warehouse, 1, include_text=True)
    pass2 = ratings(warehouse, 2)
    quality = table_frame(warehouse, "annotator_quality")
    anchored = table_frame(warehouse, "label_anchored")
    rubrics = {**(rubric_texts_from_batches(annotation_dir) if annotation_dir is not None else {}),
               **(rubric_texts or {})}
    empty = pl.DataFrame()
    if not warehouse.path.exists():
        return CaseInputs(consensus, pass1, pass2, quality, [], empty, None, empty, anchored, rubrics)
    wanted = labelled_trace_ids(consensus) if not consensus.is_empty() else []
    with warehouse.connect(read_only=True) as con:
        traces = _traces(con, wanted)
        candidates = _candidates(con)
        judge = _frame(con, "SELECT * FROM judge_labels") if has_table(con, "judge_labels") else None
        calibrations = (_frame(con, "SELECT * FROM judge_calibrations") if has_table(con, "judge_calibrations")
                        else empty)
    return CaseInputs(consensus=consensus, pass1=pass1, pass2=pass2, quality=quality, traces=traces,
                      candidates=candidates, judge_labels=judge, calibrations=calibrations, anchored=anchored,
                      rubric_texts=rubrics)
