"""The raw store's tables (traces as they arrived, PII included) and the ingest accounting.

Tables: `staged_traces` (every good trace, parsed once, with its event date), `raw_traces` (the
daily partitions, selected from the stage), `landed_files` (one row per landing file: lines
read and each outcome), `quarantine` (every bad line: where and why, never its content). Only
ingestion and redaction open the raw store; the accounting tables are copied to the warehouse
(`publish_accounting`), where everyone else reads them.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.gcpause import paused_gc
from evalflow.lib.common.settings import Settings
from evalflow.lib.common.warehouse import Warehouse, has_table
from evalflow.lib.ingest.canonical import CANONICAL_FIELDS

_JSON_FIELDS = ("messages", "retrieved_context", "tool_calls", "feedback", "metadata", "truncated_fields")

TRACE_COLUMNS = """
    trace_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    end_time TIMESTAMPTZ,
    session_id VARCHAR,
    user_id VARCHAR,
    app VARCHAR,
    model VARCHAR,
    prompt_template_id VARCHAR,
    system_prompt_hash VARCHAR,
    tool_schema_hash VARCHAR,
    messages JSON,
    user_query VARCHAR,
    retrieved_context JSON,
    tool_calls JSON,
    output VARCHAR,
    latency_ms DOUBLE,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_usd DOUBLE,
    status VARCHAR,
    error_type VARCHAR,
    feedback JSON,
    metadata JSON,
    payload_kept BOOLEAN,
    content_sha256 VARCHAR NOT NULL,
    flags VARCHAR[],
    truncated_fields JSON,
    dialect VARCHAR,
    source_file_sha256 VARCHAR NOT NULL,
    source_path VARCHAR,
    line_no BIGINT,
    byte_offset BIGINT
"""

ACCOUNTING_SCHEMA = """
CREATE TABLE IF NOT EXISTS landed_files (
    file_sha256 VARCHAR PRIMARY KEY,
    path VARCHAR,
    size_bytes BIGINT,
    landed_at TIMESTAMPTZ,
    lines_read BIGINT,
    ingested BIGINT,
    quarantined BIGINT,
    deduplicated BIGINT,
    traces_staged BIGINT,
    traces_duplicate BIGINT,
    reasons JSON,
    flags JSON,
    dialects JSON
);
-- Bad lines: where they are and why, never what they said (they may hold PII).
CREATE TABLE IF NOT EXISTS quarantine (
    file_sha256 VARCHAR NOT NULL,
    path VARCHAR,
    line_no BIGINT,
    byte_offset BIGINT,
    raw_sha256 VARCHAR,
    raw_length BIGINT,
    scope VARCHAR,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    trace_id_sha256 VARCHAR,
    event_date DATE,
    quarantined_at TIMESTAMPTZ
);
"""

# The raw store holds traces as they arrived (PII included) and the ingest accounting; only
# ingestion and redaction open it. Accounting tables carry no content and are copied to the
# warehouse for everyone else.
RAW_SCHEMA = ACCOUNTING_SCHEMA + f"""
-- Every good trace, parsed once, with its event date; daily partitions select from here.
CREATE TABLE IF NOT EXISTS staged_traces ({TRACE_COLUMNS}, PRIMARY KEY (trace_id));
CREATE TABLE IF NOT EXISTS raw_traces ({TRACE_COLUMNS}, PRIMARY KEY (trace_id));
"""

TRACE_COLUMN_NAMES = [line.split()[0] for line in TRACE_COLUMNS.strip().splitlines()]


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode("utf-8")


_ARROW_TYPES = {
    "event_date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "end_time": pa.timestamp("us", tz="UTC"),
    "latency_ms": pa.float64(),
    "cost_usd": pa.float64(),
    "input_tokens": pa.int64(),
    "output_tokens": pa.int64(),
    "payload_kept": pa.bool_(),
    "flags": pa.list_(pa.string()),
    "line_no": pa.int64(),
    "byte_offset": pa.int64(),
}


def _column(name: str, rows: list[dict[str, Any]]) -> pa.Array:
    values = [row.get(name) for row in rows]
    if name in _JSON_FIELDS:
        values = [_json(v) for v in values]
    elif name in ("timestamp", "end_time"):
        values = [datetime.fromisoformat(v) if v is not None else None for v in values]
    return pa.array(values, type=_ARROW_TYPES.get(name, pa.string()))


def traces_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Staged trace dicts as a typed frame (nested fields as JSON text).

    Built column by column through Arrow: polars' row-wise constructor builds a Series per
    list cell (the flags), which was most of the staging time.
    """
    table = pa.table({name: _column(name, rows) for name in TRACE_COLUMN_NAMES})
    return pl.from_arrow(table)


def landed_file_hashes(raw: Warehouse, read_only: bool = False, wait_s: float | None = None) -> set[str]:
    """Content hashes of the files landed so far (none before the first landing). A sensor
    reads read-only with a short `wait_s`; WarehouseLocked when a run holds the file longer."""
    if read_only and not raw.path.exists():
        return set()
    with raw.connect(read_only=read_only, wait_s=wait_s) as con:
        if not has_table(con, "landed_files"):
            return set()
        return {row[0] for row in con.execute("SELECT file_sha256 FROM landed_files").fetchall()}

def staged_trace_hashes(raw: Warehouse) -> dict[str, str]:
    with raw.connect() as con:
        return dict(con.execute("SELECT trace_id, content_sha256 FROM staged_traces").fetchall())


def stage_file(raw: Warehouse, result: Any, landed_at: datetime | None = None) -> None:
    """A parsed landing file: its traces, its quarantine and its accounting, atomically."""
    landed_at = landed_at or datetime.now(timezone.utc)
    with paused_gc():
        traces = traces_frame(result.traces)
    quarantine = pl.DataFrame(
        [{**row, "quarantined_at": landed_at} for row in result.quarantine],
        schema={
            "file_sha256": pl.String, "path": pl.String, "line_no": pl.Int64,
            "byte_offset": pl.Int64, "raw_sha256": pl.String, "raw_length": pl.Int64,
            "scope": pl.String, "reason": pl.String, "detail": pl.String,
            "trace_id_sha256": pl.String, "event_date": pl.Date,
            "quarantined_at": pl.Datetime("us", "UTC"),
        },
    )
    with raw.transaction() as con:
        con.register("incoming_traces", traces)
        con.execute("INSERT INTO staged_traces SELECT * FROM incoming_traces")
        con.register("incoming_quarantine", quarantine)
        con.execute("INSERT INTO quarantine SELECT * FROM incoming_quarantine")
        con.execute(
            "INSERT INTO landed_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.file_sha256, result.path, result.size_bytes, landed_at,
                result.lines_read, result.outcomes["ingested"], result.outcomes["quarantined"],
                result.outcomes["deduplicated"], len(result.traces), result.traces_duplicate,
                _json(dict(result.reasons)), _json(dict(result.flags)), _json(dict(result.dialects)),
            ],
        )

def replace_partitions(raw: Warehouse, days: list[date]) -> dict[date, int]:
    """raw_traces for these days := the staged traces of these days, in one transaction."""
    if not days:
        return {}
    with raw.transaction() as con:
        con.execute("DELETE FROM raw_traces WHERE event_date IN (SELECT unnest(?))", [days])
        con.execute(
            "INSERT INTO raw_traces SELECT * FROM staged_traces "
            "WHERE event_date IN (SELECT unnest(?))",
            [days],
        )
        rows = con.execute(
            "SELECT event_date, count(*) FROM raw_traces WHERE event_date IN (SELECT unnest(?)) "
            "GROUP BY 1",
            [days],
        ).fetchall()
    counts = {day: 0 for day in days}
    counts.update(dict(rows))
    return counts


def canonical_columns() -> list[str]:
    return list(CANONICAL_FIELDS)


ACCOUNTING_TABLES = ("landed_files", "quarantine")


def publish_accounting(raw: Warehouse, warehouse: Warehouse) -> None:
    """Copy the ingest accounting (no content) from the raw store to the warehouse, atomically.

    A full refresh: small tables, and a crash between the raw write and this copy heals on the
    next landing. The tables' comments (lib/common/catalog.py) commit with the copy.
    """
    with warehouse.transaction() as con:
        con.execute(f"ATTACH '{raw.path}' AS raw_store (READ_ONLY)")
        for table in ACCOUNTING_TABLES:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT * FROM raw_store.{table}")
        apply_catalog(con, ACCOUNTING_TABLES)


def raw_store(settings: Settings) -> Warehouse:
    """The raw store, its tables created: only ingestion and redaction open it."""
    store = Warehouse(settings.raw_store_path, schema=RAW_SCHEMA)
    store.ensure_schema()
    return store
