"""The label import's tables, its writes (one transaction per file) and its reads.

- labels: one row per (batch, item, annotator, field): that annotator's latest submission
  (an expert review's label is its own row; see importer.label_id).
- label_files: every file looked at, by content sha256 (a re-dropped file adds nothing), with
  what it gave: labels, unchanged (the same answer already stored, as in a cumulative
  re-export), quarantined, superseded (answers a later submission replaced).
- label_quarantine: answers (or whole files) held back, with a reason and a detail that names
  fields and ids, never the text.
- label_audit: a submission that a later one replaced, old and new side by side.

A file is imported in one transaction: a crash part-way leaves the tables as they were and the
file unrecorded, so the next run imports it again.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.warehouse import Warehouse, has_table, memory_connection
from evalflow.lib.labels.formats import EXPORT_INFO
from evalflow.lib.labels.importer import (
    TEXT_FIELDS,
    ManifestItem,
    Pseudonymize,
    RedactTexts,
    prepare_labels,
    resolve,
)

LABEL_TABLES = ("labels", "label_files", "label_quarantine", "label_audit")

LABELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    label_id VARCHAR PRIMARY KEY,
    batch_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    origin VARCHAR,
    trace_id VARCHAR,
    case_id VARCHAR,
    position INTEGER,
    pass SMALLINT NOT NULL,
    role VARCHAR NOT NULL,
    annotator VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    value VARCHAR,
    annotated_at TIMESTAMPTZ,
    lead_time_s DOUBLE,
    source_format VARCHAR,
    ground_truth BOOLEAN,
    feedback_only BOOLEAN,
    imported_at TIMESTAMPTZ NOT NULL,
    file_sha256 VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS label_files (
    file_sha256 VARCHAR PRIMARY KEY,
    path VARCHAR,
    format VARCHAR,
    imported_at TIMESTAMPTZ NOT NULL,
    labels BIGINT,
    unchanged BIGINT,
    quarantined BIGINT,
    superseded BIGINT
);
CREATE TABLE IF NOT EXISTS label_quarantine (
    file_sha256 VARCHAR NOT NULL,
    path VARCHAR,
    locator VARCHAR,
    batch_id VARCHAR,
    item_id VARCHAR,
    annotator VARCHAR,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    imported_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS label_audit (
    label_id VARCHAR NOT NULL,
    batch_id VARCHAR,
    item_id VARCHAR,
    annotator VARCHAR,
    field VARCHAR,
    old_value VARCHAR,
    old_annotated_at TIMESTAMPTZ,
    old_file_sha256 VARCHAR,
    new_value VARCHAR,
    new_annotated_at TIMESTAMPTZ,
    new_file_sha256 VARCHAR,
    recorded_at TIMESTAMPTZ NOT NULL
);
"""

_TS = pl.Datetime("us", "UTC")
LABEL_COLUMNS: dict[str, pl.DataType] = {
    "label_id": pl.String, "batch_id": pl.String, "item_id": pl.String, "origin": pl.String,
    "trace_id": pl.String, "case_id": pl.String, "position": pl.Int32, "pass": pl.Int16, "role": pl.String,
    "annotator": pl.String, "field": pl.String, "value": pl.String, "annotated_at": _TS,
    "lead_time_s": pl.Float64, "source_format": pl.String, "ground_truth": pl.Boolean,
    "feedback_only": pl.Boolean, "imported_at": _TS, "file_sha256": pl.String,
}
QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "file_sha256": pl.String, "path": pl.String, "locator": pl.String, "batch_id": pl.String,
    "item_id": pl.String, "annotator": pl.String, "field": pl.String, "reason": pl.String,
    "detail": pl.String, "imported_at": _TS,
}
AUDIT_COLUMNS: dict[str, pl.DataType] = {
    "label_id": pl.String, "batch_id": pl.String, "item_id": pl.String, "annotator": pl.String,
    "field": pl.String, "old_value": pl.String, "old_annotated_at": _TS, "old_file_sha256": pl.String,
    "new_value": pl.String, "new_annotated_at": _TS, "new_file_sha256": pl.String, "recorded_at": _TS,
}
RATING_COLUMNS: dict[str, pl.DataType] = {
    "item_id": pl.String, "annotator": pl.String, "dimension": pl.String, "value": pl.String,
    "batch_id": pl.String, "origin": pl.String, "trace_id": pl.String, "case_id": pl.String,
    "position": pl.Int32, "role": pl.String, "annotated_at": _TS,
}


@dataclass
class FileImport:
    """What one file gave. status: imported | already_imported (the same bytes were imported
    before: nothing added) | export_info (Label Studio's *-info.json: skipped) | not_an_export |
    unreadable (the whole file quarantined)."""

    path: str
    sha256: str
    status: str
    format: str | None = None
    labels: int = 0
    unchanged: int = 0
    quarantined: int = 0
    superseded: int = 0
    unlabelled: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportSummary:
    files: list[FileImport] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.reasons.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items()))

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.status] = out.get(f.status, 0) + 1
        return out


def _frame(rows: Sequence[dict], columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([{name: row.get(name) for name in columns} for row in rows], schema=columns, orient="row")


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict], columns: dict[str, pl.DataType]) -> None:
    if not rows:
        return
    con.register("incoming_rows", _frame(rows, columns).to_arrow())
    names = ", ".join(columns)
    con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming_rows")
    con.unregister("incoming_rows")


def _recorded(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM label_files WHERE file_sha256 = ?", [sha256]).fetchall()[0][0])


def _existing(con: duckdb.DuckDBPyConnection, label_ids: Iterable[str]) -> dict[str, dict]:
    ids = sorted(set(label_ids))
    if not ids:
        return {}
    con.register("wanted_labels", pl.DataFrame({"label_id": ids}, schema={"label_id": pl.String}).to_arrow())
    table = con.sql("SELECT l.* FROM labels l JOIN wanted_labels w USING (label_id)").to_arrow_table()
    con.unregister("wanted_labels")
    return {row["label_id"]: row for row in pl.from_arrow(table).to_dicts()}


def _write_labels(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    if not rows:
        return
    con.register("replaced_labels", pl.DataFrame({"label_id": [r["label_id"] for r in rows]},
                                                 schema={"label_id": pl.String}).to_arrow())
    con.execute("DELETE FROM labels WHERE label_id IN (SELECT label_id FROM replaced_labels)")
    con.unregister("replaced_labels")
    _insert(con, "labels", rows, LABEL_COLUMNS)


def _write_audit(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    _insert(con, "label_audit", rows, AUDIT_COLUMNS)


def _write_quarantine(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    _insert(con, "label_quarantine", rows, QUARANTINE_COLUMNS)


def _record_file(con: duckdb.DuckDBPyConnection, result: FileImport, now: datetime) -> None:
    con.execute("INSERT INTO label_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [result.sha256, result.path, result.format, now, result.labels, result.unchanged,
                 result.quarantined, result.superseded])


def imported_file_hashes(warehouse: Warehouse, read_only: bool = False, wait_s: float | None = None) -> set[str]:
    """sha256 of every file already looked at. A drop-folder sensor reads read-only with a short
    `wait_s` (WarehouseLocked when a run holds the file longer)."""
    if not warehouse.path.exists():
        return set()
    with warehouse.connect(read_only=read_only, wait_s=wait_s) as con:
        if not has_table(con, "label_files"):
            return set()
        return {row[0] for row in con.execute("SELECT file_sha256 FROM label_files").fetchall()}


def import_label_file(warehouse: Warehouse, path: str | Path, manifests: dict[str, ManifestItem],
                      pseudonymize: Pseudonymize, redact_texts: RedactTexts, now: datetime) -> FileImport:
    """Import one file (see the module docstring); returns what it gave."""
    raw = Path(path).read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    if sha256 in imported_file_hashes(warehouse):
        return FileImport(str(path), sha256, "already_imported")
    # Parsing and redaction run before the transaction: the warehouse is not held meanwhile.
    prepared = prepare_labels(raw, manifests, pseudonymize, redact_texts)
    status = prepared.error.reason if prepared.error else ("export_info" if prepared.format == EXPORT_INFO
                                                           else "imported")
    result = FileImport(str(path), sha256, status, format=prepared.format, unlabelled=prepared.unlabelled)
    quarantine = [{**row, "file_sha256": sha256, "path": str(path), "imported_at": now} for row in prepared.quarantine]
    result.quarantined = len(quarantine)
    for row in quarantine:
        result.reasons[row["reason"]] = result.reasons.get(row["reason"], 0) + 1
    with warehouse.transaction() as con:
        con.execute(LABELS_SCHEMA)
        if _recorded(con, sha256):  # another run imported the same bytes meanwhile
            return FileImport(str(path), sha256, "already_imported")
        resolution = resolve(prepared.labels, _existing(con, (r["label_id"] for r in prepared.labels)), sha256, now)
        result.labels, result.unchanged, result.superseded = (resolution.labels, resolution.unchanged,
                                                              resolution.superseded)
        _write_labels(con, resolution.upserts)
        _write_audit(con, resolution.audit)
        _write_quarantine(con, quarantine)
        _record_file(con, result, now)
        apply_catalog(con, LABEL_TABLES)
    return result


def import_label_files(warehouse: Warehouse, paths: Iterable[str | Path], manifests: dict[str, ManifestItem],
                       pseudonymize: Pseudonymize, redact_texts: RedactTexts, now: datetime) -> ImportSummary:
    """Import files in the order given (a later file wins ties); one transaction per file."""
    summary = ImportSummary()
    for path in paths:
        summary.files.append(import_label_file(warehouse, path, manifests, pseudonymize, redact_texts, now))
    return summary


def forget_label_file(warehouse: Warehouse, sha256: str) -> bool:
    """Let a file be imported again (its items were unknown when it came, say): drop its
    label_files row and its quarantine rows. Its labels stay; re-importing finds them unchanged."""
    with warehouse.transaction() as con:
        con.execute(LABELS_SCHEMA)
        found = _recorded(con, sha256)
        con.execute("DELETE FROM label_quarantine WHERE file_sha256 = ?", [sha256])
        con.execute("DELETE FROM label_files WHERE file_sha256 = ?", [sha256])
    return found


# ---------------------------------------------------------------------------- reads
def _read(warehouse: Warehouse, table: str, sql: str, params: list, schema: dict) -> pl.DataFrame:
    if not warehouse.path.exists():
        return pl.DataFrame(schema=schema)
    with warehouse.connect() as con:
        if not has_table(con, table):
            return pl.DataFrame(schema=schema)
        frame = pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
    return frame.cast({name: dtype for name, dtype in schema.items() if name in frame.columns})


def ratings(warehouse: Warehouse, pass_: int = 2, include_text: bool = False,
            batch_id: str | None = None) -> pl.DataFrame:
    """Long-format ratings (item_id, annotator, dimension, value) of one pass, with batch_id,
    origin, trace_id, case_id, position, role and annotated_at. Free-text fields (critique,
    expected_behavior, gold_answer) are left out unless `include_text`: they are not ratings."""
    where, params = ["pass = ?"], [pass_]
    if not include_text:
        where.append("field NOT IN (" + ", ".join("?" for _ in TEXT_FIELDS) + ")")
        params += list(TEXT_FIELDS)
    if batch_id is not None:
        where.append("batch_id = ?")
        params.append(batch_id)
    sql = ("SELECT item_id, annotator, field AS dimension, value, batch_id, origin, trace_id, case_id, position, "
           f"role, annotated_at FROM labels WHERE {' AND '.join(where)} "
           "ORDER BY batch_id, position, item_id, dimension, role, annotator")
    return _read(warehouse, "labels", sql, params, RATING_COLUMNS)


def label_counts(warehouse: Warehouse) -> pl.DataFrame:
    """Per batch, pass, field and role: labels, items and annotators."""
    schema = {"batch_id": pl.String, "pass": pl.Int16, "field": pl.String, "role": pl.String,
              "labels": pl.Int64, "items": pl.Int64, "annotators": pl.Int64}
    sql = ("SELECT batch_id, pass, field, role, count(*) AS labels, count(DISTINCT item_id) AS items, "
           "count(DISTINCT annotator) AS annotators FROM labels GROUP BY ALL ORDER BY batch_id, pass, field, role")
    return _read(warehouse, "labels", sql, [], schema)


def quarantine_counts(warehouse: Warehouse) -> dict[str, int]:
    """Quarantined answers (and files) per reason."""
    frame = _read(warehouse, "label_quarantine",
                  "SELECT reason, count(*) AS n FROM label_quarantine GROUP BY reason ORDER BY reason", [],
                  {"reason": pl.String, "n": pl.Int64})
    return dict(zip(frame["reason"].to_list(), frame["n"].to_list()))


# ---------------------------------------------------------------------------- derived tables
# Rebuilt whole by consensus_labels and label_agreement on every run (one transaction each), from
# the labels table and the batch folders: they hold no state of their own.
DERIVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS consensus_labels (
    batch_id VARCHAR,
    item_id VARCHAR NOT NULL,
    origin VARCHAR,
    trace_id VARCHAR,
    case_id VARCHAR,
    dimension VARCHAR NOT NULL,
    value VARCHAR,
    method VARCHAR NOT NULL,
    ratings BIGINT,
    agreement DOUBLE,
    status VARCHAR NOT NULL,
    majority_value VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS label_anchored (
    batch_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    annotator VARCHAR NOT NULL,
    similarity DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS label_agreement (
    dimension VARCHAR NOT NULL,
    level VARCHAR NOT NULL,
    slice_kind VARCHAR NOT NULL,
    slice_value VARCHAR NOT NULL,
    items BIGINT,
    pairable_items BIGINT,
    annotators BIGINT,
    ratings BIGINT,
    percent_agreement DOUBLE,
    alpha DOUBLE,
    alpha_lo DOUBLE,
    alpha_hi DOUBLE,
    alpha_reason VARCHAR,
    computed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS label_agreement_pairs (
    dimension VARCHAR NOT NULL,
    slice_kind VARCHAR NOT NULL,
    slice_value VARCHAR NOT NULL,
    a VARCHAR NOT NULL,
    b VARCHAR NOT NULL,
    items BIGINT,
    agreement DOUBLE,
    kappa DOUBLE
);
CREATE TABLE IF NOT EXISTS label_gates (
    dimension VARCHAR PRIMARY KEY,
    items BIGINT,
    percent_agreement DOUBLE,
    alpha DOUBLE,
    alpha_lo DOUBLE,
    alpha_hi DOUBLE,
    gate_open BOOLEAN NOT NULL,
    reason VARCHAR,
    computed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS annotator_quality (
    annotator VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    gold_ratings BIGINT,
    correct BIGINT,
    accuracy DOUBLE,
    flagged BOOLEAN,
    reason VARCHAR
);
CREATE TABLE IF NOT EXISTS annotator_fatigue (
    annotator VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    gold_ratings BIGINT,
    accuracy DOUBLE
);
"""
DERIVED_TABLES = ("consensus_labels", "label_anchored", "label_agreement", "label_agreement_pairs", "label_gates",
                  "annotator_quality", "annotator_fatigue")


@functools.cache
def _derived_columns() -> dict[str, list[str]]:
    """Each derived table's columns as DERIVED_SCHEMA declares them."""
    con = memory_connection()
    try:
        con.execute(DERIVED_SCHEMA)
        return {name: [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()] for name in DERIVED_TABLES}
    finally:
        con.close()


def replace_tables(warehouse: Warehouse, frames: dict[str, pl.DataFrame | None]) -> None:
    """Replace the whole content of derived tables in one transaction (None empties a table):
    a kill mid-write leaves the previous figures, never half of the new ones."""
    unknown = set(frames) - set(DERIVED_TABLES)
    if unknown:
        raise ValueError(f"not a derived label table: {sorted(unknown)}")
    expected = _derived_columns()
    with warehouse.transaction() as con:
        con.execute(DERIVED_SCHEMA)
        # A table an older version wrote with other columns (label_agreement_pairs before its
        # slice columns) holds nothing of its own: it is dropped and created again as it is now.
        stale = [name for name in frames
                 if [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()] != expected[name]]
        for name in stale:
            con.execute(f"DROP TABLE {name}")
        if stale:
            con.execute(DERIVED_SCHEMA)
        for name, frame in frames.items():
            con.execute(f"DELETE FROM {name}")
            if frame is None or frame.is_empty():
                continue
            columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
            con.register("incoming_rows", frame.select(columns).to_arrow())
            con.execute(f"INSERT INTO {name} SELECT * FROM incoming_rows")
            con.unregister("incoming_rows")
        apply_catalog(con, (*LABEL_TABLES, *frames))


def table_frame(warehouse: Warehouse, name: str) -> pl.DataFrame:
    """A derived table as a frame (empty, with no columns, when it does not exist yet)."""
    if name not in DERIVED_TABLES:
        raise ValueError(f"not a derived label table: {name}")
    if not warehouse.path.exists():
        return pl.DataFrame()
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, name):
            return pl.DataFrame()
        return pl.from_arrow(con.sql(f"SELECT * FROM {name}").to_arrow_table())
