"""The DuckDB warehouse: schema, and writes that are each one transaction.

DuckDB allows one writer process per file, so all writes go through this module and Dagster
serialises the runs that write (a concurrency pool of size 1, see dagster.yaml). Replacing a
partition is DELETE + INSERT inside one transaction: dagster-duckdb's IO manager does them in
autocommit, and a kill between the two was measured to lose every row (DESIGN.md).
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import orjson
import polars as pl
import pyarrow as pa

from evalflow.lib.canonical import CANONICAL_FIELDS
from evalflow.lib.gcpause import paused_gc

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

REDACTION_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS redacted_traces ({TRACE_COLUMNS}, PRIMARY KEY (trace_id));
-- How much PII each field of each day held: counts only, never values.
CREATE TABLE IF NOT EXISTS pii_audit (
    event_date DATE NOT NULL,
    field VARCHAR NOT NULL,
    entity_type VARCHAR NOT NULL,
    detections BIGINT NOT NULL
);
-- Traces whose redaction failed: held back (fail closed), with the reason, never the text.
CREATE TABLE IF NOT EXISTS redaction_quarantine (
    event_date DATE NOT NULL,
    trace_id_sha256 VARCHAR,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    quarantined_at TIMESTAMPTZ
);
-- Which detector redacted each day: later snapshot manifests cite it.
CREATE TABLE IF NOT EXISTS redaction_runs (
    event_date DATE NOT NULL,
    redacted_at TIMESTAMPTZ NOT NULL,
    presidio_analyzer VARCHAR,
    spacy VARCHAR,
    spacy_model VARCHAR,
    spacy_model_version VARCHAR
);
"""

# The warehouse: what analysts, annotators, reports and the Dagster UI read. No raw text.
WAREHOUSE_SCHEMA = ACCOUNTING_SCHEMA + REDACTION_SCHEMA

TRACE_COLUMN_NAMES = [line.split()[0] for line in TRACE_COLUMNS.strip().splitlines()]


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connected database has a table or view of this name (fetched to the end:
    duckdb 2.x refuses new work on a connection with an unfinished result)."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]).fetchall()[0][0])


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


class WarehouseLocked(OSError):
    """Another process held the DuckDB file for longer than EVALFLOW_LOCK_WAIT_S."""


_LOCK_HOLDER = re.compile(r"held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_log = logging.getLogger("evalflow.warehouse")


def lock_holder(message: str) -> str:
    """'PID 18437 (/usr/bin/python3)' from DuckDB's lock error, or 'another process'."""
    found = _LOCK_HOLDER.search(message)
    return f"PID {found['pid']} ({found['exe']})" if found else "another process"


def connect_waiting(path: Path, read_only: bool = False, wait_s: float | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting with backoff while another process holds the file.

    DuckDB lets one process open a file for writing, and no other process can open it at all
    meanwhile, not even read-only: an analyst's open connection would otherwise fail the run
    that wants to write. We wait (0.1 s doubling to 5 s) up to EVALFLOW_LOCK_WAIT_S (300 s),
    log the holder's PID, and then fail with one line that names it.
    """
    from evalflow.lib.settings import lock_wait_seconds

    limit = lock_wait_seconds() if wait_s is None else wait_s
    started = time.monotonic()
    delay, next_report = 0.1, 0.0
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            waited = time.monotonic() - started
            holder = lock_holder(str(exc))
            if waited >= limit:
                raise WarehouseLocked(
                    f"{path} is locked by {holder}: waited {waited:.0f} s (EVALFLOW_LOCK_WAIT_S={limit:g}); "
                    "close that connection, or read a published copy instead") from None
            if waited >= next_report:
                _log.warning("waiting for %s: locked by %s (waited %.0f s of %g s)", path, holder, waited, limit)
                next_report = waited + 30.0
            sleep(min(delay, max(limit - waited, 0.0)))
            delay = min(delay * 2, 5.0)


class Warehouse:
    """One DuckDB file and its schema: the raw store (RAW_SCHEMA) or the warehouse."""

    def __init__(self, path: Path, schema: str = RAW_SCHEMA):
        self.path = Path(path)
        self.schema = schema

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_waiting(self.path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: everything inside commits together or not at all."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def ensure_schema(self) -> None:
        with self.transaction() as con:
            con.execute(self.schema)

    # ---- reads --------------------------------------------------------------------------
    def landed_file_hashes(self) -> set[str]:
        with self.connect() as con:
            return {row[0] for row in con.execute("SELECT file_sha256 FROM landed_files").fetchall()}

    def staged_trace_hashes(self) -> dict[str, str]:
        with self.connect() as con:
            return dict(con.execute("SELECT trace_id, content_sha256 FROM staged_traces").fetchall())

    def count(self, table: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
        with self.connect() as con:
            return con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or []).fetchone()[0]

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        with self.connect() as con:
            # duckdb 2.x: the connection has no .pl(); go through Arrow.
            return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())

    # ---- writes -------------------------------------------------------------------------
    def stage_file(self, result: Any, landed_at: datetime | None = None) -> None:
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
        with self.transaction() as con:
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

    def replace_partitions(self, days: list[date]) -> dict[date, int]:
        """raw_traces for these days := the staged traces of these days, in one transaction."""
        if not days:
            return {}
        with self.transaction() as con:
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
    next landing.
    """
    with warehouse.transaction() as con:
        con.execute(f"ATTACH '{raw.path}' AS raw_store (READ_ONLY)")
        for table in ACCOUNTING_TABLES:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT * FROM raw_store.{table}")
