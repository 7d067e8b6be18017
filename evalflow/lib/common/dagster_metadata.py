"""What the Dagster UI shows about evalflow's tables, computed without Dagster.

`evalflow/defs/metadata.py` turns these into Dagster metadata (docs/ui.md says what each asset
shows and where it comes from):

- `ddl_columns(ddl)`: the columns (name, DuckDB type, nullable, unique) of every table a store's
  DDL creates, read from DuckDB itself (the DDL runs in an in-memory database), so an asset's
  column schema is the store's DDL, never a copy of it.
- `frame_columns(schema)`: the same for a table a store creates from a polars frame
  (`trace_signals`, `failure_clusters`): the types DuckDB gives the frame's columns.
- `column_descriptions(table)`: what each column means, from `lib/common/catalog.py` (the one
  source of the warehouse's COMMENTs and of docs/warehouse.md); for the raw store's trace tables,
  the same text except for the columns that hold raw text or raw ids there (`RAW_TRACE_COLUMNS`).
- `rows_by_day`, `counts_by_day`, `table_rows`: the figures a materialization reports, read
  from the table after the write (so they are the table's, not the step's, count).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Mapping, Sequence

from evalflow.lib.common.catalog import TABLES
from evalflow.lib.common.warehouse import Warehouse, has_table, memory_connection

# The raw store keeps traces as they arrived: these columns hold raw text or raw ids there, where
# the catalog (written for the redacted copy) says "redacted" or "pseudonymised".
_AS_ARRIVED = "As it arrived, PII included (the raw store only; redacted_traces holds the redacted copy)."
RAW_TRACE_COLUMNS: dict[str, str] = {
    "session_id": "The source's session id, as it arrived (pseudonymised in redacted_traces).",
    "user_id": "The source's user id, as it arrived (pseudonymised in redacted_traces).",
    "messages": "Conversation: JSON list of {role, content, ...}. " + _AS_ARRIVED,
    "user_query": "The user's request this trace answers. " + _AS_ARRIVED,
    "retrieved_context": "JSON list of {doc_id, text, score}. " + _AS_ARRIVED,
    "tool_calls": "JSON list of {name, arguments, result}. " + _AS_ARRIVED,
    "output": "The answer; NULL when there is none. " + _AS_ARRIVED,
    "feedback": "JSON {thumbs, score, comment}, or NULL. " + _AS_ARRIVED,
    "metadata": "Source metadata as JSON; keys vary by source (always dialect). " + _AS_ARRIVED,
}
RAW_TRACE_TABLES = ("staged_traces", "raw_traces")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's name for it: VARCHAR, TIMESTAMP WITH TIME ZONE, VARCHAR[]...
    nullable: bool = True
    unique: bool = False


@lru_cache(maxsize=None)
def ddl_columns(ddl: str) -> dict[str, tuple[Column, ...]]:
    """{table: its columns, in order} for every table `ddl` creates."""
    with memory_connection() as con:
        con.execute(ddl)
        unique = {(table, columns[0]) for table, columns in con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND len(constraint_column_names) = 1").fetchall()}
        rows = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY table_name, column_index").fetchall()
    tables: dict[str, list[Column]] = {}
    for table, name, kind, nullable in rows:
        tables.setdefault(table, []).append(Column(name, kind, bool(nullable), (table, name) in unique))
    return {table: tuple(columns) for table, columns in tables.items()}


def frame_columns(schema: Mapping[str, Any]) -> tuple[Column, ...]:
    """The columns of a table created (CREATE TABLE AS) from a polars frame with this schema."""
    import polars as pl

    frame = pl.DataFrame(schema=dict(schema)).to_arrow()
    with memory_connection() as con:
        con.register("incoming", frame)
        rows = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM incoming)").fetchall()
    return tuple(Column(name, kind) for name, kind in rows)


def column_descriptions(table: str) -> dict[str, str]:
    """{column: what it means} for a warehouse table, or for a raw store trace table."""
    if table in RAW_TRACE_TABLES:
        return {**TABLES["redacted_traces"][1], **RAW_TRACE_COLUMNS}
    return dict(TABLES[table][1])


def table_description(table: str) -> str:
    return TABLES[table][0] if table in TABLES else ""


def rows_by_day(store: Warehouse, table: str, days: Sequence[date], value: str = "count(*)") -> dict[date, int]:
    """{day: rows of `table` on that day} (or `value`, e.g. "sum(detections)"), 0 for a day without rows."""
    counts = {day: 0 for day in days}
    if not days:
        return counts
    with store.connect(read_only=True) as con:
        if not has_table(con, table):
            return counts
        for day, n in con.execute(f"SELECT event_date, {value} FROM {table} "
                                  "WHERE event_date IN (SELECT unnest(?)) GROUP BY 1", [list(days)]).fetchall():
            counts[day] = int(n or 0)
    return counts


def counts_by_day(store: Warehouse, table: str, days: Sequence[date], column: str) -> dict[date, dict[str, int]]:
    """{day: {value of `column`: rows}} of `table` (e.g. redaction_quarantine by reason), {} for a quiet day."""
    counts: dict[date, dict[str, int]] = {day: {} for day in days}
    if not days:
        return counts
    with store.connect(read_only=True) as con:
        if not has_table(con, table):
            return counts
        for day, value, n in con.execute(f"SELECT event_date, {column}, count(*) FROM {table} "
                                         "WHERE event_date IN (SELECT unnest(?)) GROUP BY 1, 2 ORDER BY 3 DESC, 2",
                                         [list(days)]).fetchall():
            counts[day][str(value)] = int(n)
    return counts


def table_rows(store: Warehouse, table: str) -> int:
    """Rows in `table` (0 before its first write)."""
    with store.connect(read_only=True) as con:
        if not has_table(con, table):
            return 0
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def share(part: int, whole: int) -> float | None:
    """part / whole rounded for display, None when there is no whole (no point on a plot)."""
    return round(part / whole, 4) if whole else None
