"""The redaction stage's tables and its pass over them: raw_traces (raw store) -> redacted_traces.

Raw text stops here. The raw store (data/raw/raw.duckdb) is opened only by ingestion and by this
stage; the warehouse receives redacted rows only. Raw partitions older than the retention window
are deleted once redacted.

`redacted_traces` (the partitioned, redacted copy of `raw_traces`: no raw text past here),
`pii_audit` (detections per day, field and entity type: counts only), `redaction_quarantine`
(traces whose redaction failed, held back), `redaction_runs` (which detector redacted each day).
The warehouse also holds the ingest accounting (`landed_files`, `quarantine`), copied from the
raw store, and every later stage's tables (each created by that stage's store.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import orjson
import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.settings import Settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.store import (
    ACCOUNTING_SCHEMA,
    TRACE_COLUMN_NAMES,
    TRACE_COLUMNS,
    traces_frame,
)
from evalflow.lib.redact.traces import TraceRedactor, report_field, trace_slots

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

REDACTION_TABLES = ("redacted_traces", "pii_audit", "redaction_quarantine", "redaction_runs")

# The warehouse: what analysts, annotators, reports and the Dagster UI read. No raw text.
WAREHOUSE_SCHEMA = ACCOUNTING_SCHEMA + REDACTION_SCHEMA
WAREHOUSE_TABLES = ("landed_files", "quarantine", *REDACTION_TABLES)


def analyst_warehouse(settings: Settings) -> Warehouse:
    """The warehouse, its base tables created and commented (lib/common/catalog.py), in one
    transaction: what analysts, annotators, reports and the UI read."""
    warehouse = Warehouse(settings.warehouse_path, schema=WAREHOUSE_SCHEMA)
    with warehouse.transaction() as con:
        con.execute(WAREHOUSE_SCHEMA)
        apply_catalog(con, WAREHOUSE_TABLES)
    return warehouse


_JSON_COLUMNS = {"messages", "retrieved_context", "tool_calls", "feedback", "metadata", "truncated_fields"}

@dataclass
class RedactionSummary:
    rows_in: int = 0
    rows_redacted: int = 0
    quarantined: int = 0
    entity_counts: Counter = field(default_factory=Counter)  # (day, field, entity_type) -> n
    failure_reasons: Counter = field(default_factory=Counter)
    raw_days_purged: list[date] = field(default_factory=list)


def _row_to_trace(columns: list[str], row: tuple) -> dict[str, Any]:
    trace: dict[str, Any] = {}
    for name, value in zip(columns, row):
        if name in _JSON_COLUMNS and isinstance(value, str):
            value = orjson.loads(value)
        elif name in ("timestamp", "end_time") and isinstance(value, datetime):
            value = value.astimezone(timezone.utc).isoformat()
        elif name == "flags" and value is not None:
            value = list(value)
        trace[name] = value
    return trace


def read_raw_days(raw: Warehouse, days: list[date], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """raw_traces rows of these days as trace dicts, a batch at a time."""
    columns = ", ".join(TRACE_COLUMN_NAMES)
    with raw.connect(read_only=True) as con:
        cursor = con.execute(
            f"SELECT {columns} FROM raw_traces WHERE event_date IN (SELECT unnest(?)) "
            "ORDER BY event_date, trace_id", [days])
        while rows := cursor.fetchmany(batch_size):
            yield [_row_to_trace(TRACE_COLUMN_NAMES, row) for row in rows]


def redact_days(raw: Warehouse, warehouse: Warehouse, days: list[date], redactor: TraceRedactor,
                versions: dict[str, str], batch_size: int = 2000) -> RedactionSummary:
    summary = RedactionSummary()
    redacted: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    now = datetime.now(timezone.utc)
    for batch in read_raw_days(raw, days, batch_size):
        summary.rows_in += len(batch)
        result = redactor.redact(batch)
        redacted.extend(clean for clean in result.traces if clean is not None)
        for failure in result.failures:
            day = batch[failure.trace_index]["event_date"]
            failures.append({"event_date": day, "trace_id_sha256": failure.trace_id_sha256,
                             "reason": failure.reason, "detail": failure.detail, "quarantined_at": now})
            summary.failure_reasons[failure.reason] += 1
        for (index, field_name, entity), n in result.trace_counts.items():
            summary.entity_counts[(batch[index]["event_date"], field_name, entity)] += n
    summary.rows_redacted = len(redacted)
    summary.quarantined = len(failures)
    _write(warehouse, days, redacted, failures, summary.entity_counts, versions, now)
    return summary


def _write(warehouse: Warehouse, days: list[date], redacted: list[dict[str, Any]],
           failures: list[dict[str, Any]], counts: Counter, versions: dict[str, str], now: datetime) -> None:
    traces = traces_frame(redacted)
    audit = pl.DataFrame(
        [{"event_date": d, "field": f, "entity_type": e, "detections": n} for (d, f, e), n in counts.items()],
        schema={"event_date": pl.Date, "field": pl.String, "entity_type": pl.String, "detections": pl.Int64})
    quarantine = pl.DataFrame(failures, schema={
        "event_date": pl.Date, "trace_id_sha256": pl.String, "reason": pl.String, "detail": pl.String,
        "quarantined_at": pl.Datetime("us", "UTC")})
    runs = pl.DataFrame(
        [{"event_date": d, "redacted_at": now, **{k: versions.get(k) for k in
          ("presidio_analyzer", "spacy", "spacy_model", "spacy_model_version")}} for d in days],
        schema={"event_date": pl.Date, "redacted_at": pl.Datetime("us", "UTC"), "presidio_analyzer": pl.String,
                "spacy": pl.String, "spacy_model": pl.String, "spacy_model_version": pl.String})
    with warehouse.transaction() as con:
        for table in REDACTION_TABLES:
            con.execute(f"DELETE FROM {table} WHERE event_date IN (SELECT unnest(?))", [days])
        for table, frame in (("redacted_traces", traces), ("pii_audit", audit),
                             ("redaction_quarantine", quarantine), ("redaction_runs", runs)):
            con.register(f"incoming_{table}", frame)
            con.execute(f"INSERT INTO {table} SELECT * FROM incoming_{table}")
        apply_catalog(con, REDACTION_TABLES)


def purge_raw(raw: Warehouse, warehouse: Warehouse, retention_days: int, today: date | None = None) -> list[date]:
    """Delete raw partitions past retention that have been redacted; returns the days purged."""
    cutoff = (today or datetime.now(timezone.utc).date()) - timedelta(days=retention_days)
    with warehouse.connect(read_only=True) as con:
        redacted = {r[0] for r in con.execute(
            "SELECT DISTINCT event_date FROM redaction_runs WHERE event_date < ?", [cutoff]).fetchall()}
    if not redacted:
        return []
    days = sorted(redacted)
    with raw.transaction() as con:
        for table in ("raw_traces", "staged_traces"):
            con.execute(f"DELETE FROM {table} WHERE event_date IN (SELECT unnest(?))", [days])
    return days


def leak_scan(warehouse: Warehouse, days: list[date], scan) -> Counter:
    """Re-scan redacted rows with high-precision detectors: (field, entity_type) -> hits."""
    hits: Counter = Counter()
    columns = ", ".join(TRACE_COLUMN_NAMES)
    with warehouse.connect(read_only=True) as con:
        cursor = con.execute(f"SELECT {columns} FROM redacted_traces WHERE event_date IN (SELECT unnest(?))", [days])
        while rows := cursor.fetchmany(5000):
            for index, row in enumerate(rows):
                trace = _row_to_trace(TRACE_COLUMN_NAMES, row)
                for slot in trace_slots(trace, index):
                    for detection in scan(slot.text):
                        hits[(report_field(slot.path), detection.entity_type)] += 1
    return hits


def audit_markdown(counts: Iterable[tuple[Any, ...]]) -> list[tuple[str, str, int]]:
    by_field_type: Counter = Counter()
    for (_day, field_name, entity), n in counts:
        by_field_type[(field_name, entity)] += n
    return [(f, e, n) for (f, e), n in sorted(by_field_type.items(), key=lambda kv: -kv[1])]
