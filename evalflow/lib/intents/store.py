"""From redacted traces to intents: the text to embed, the window to cluster, the tables.

Only redacted text is embedded or clustered: embeddings, catalog names and examples are built
from the warehouse's redacted_traces, never from the raw store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Sequence

import numpy as np
import orjson
import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.settings import text_setting
from evalflow.lib.common.warehouse import Warehouse, has_table

# What a trace is about (EVALFLOW_EMBED_TEXT): the query with the session's first user turn (the
# default: later turns are mostly generic follow-ups, measured in `evalflow.lib.intents.text`),
# with the user turn before it, or the query alone.
TEXT_MODES = {"query_with_previous": "previous", "query_with_first": "first", "query": "none"}
DEFAULT_TEXT_MODE = "query_with_first"

INTENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_embeddings (
    trace_id VARCHAR PRIMARY KEY,
    event_date DATE NOT NULL,
    text_sha256 VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    backend VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS intent_assignments (
    trace_id VARCHAR PRIMARY KEY,
    event_date DATE,
    intent_id VARCHAR,
    confidence DOUBLE,
    low_confidence BOOLEAN,
    clustered_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS intent_catalog (
    intent_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    keywords VARCHAR[],
    examples VARCHAR[],
    size BIGINT,
    share DOUBLE,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ,
    centroid FLOAT[],
    updated_at TIMESTAMPTZ,
    reviewed_name VARCHAR,
    pinned BOOLEAN,
    anchors FLOAT[][],
    decision VARCHAR
);
-- One row per clustering, with a fingerprint of its input: re-materializing over an unchanged
-- window is a no-op instead of a re-fit.
CREATE TABLE IF NOT EXISTS intent_runs (
    clustered_at TIMESTAMPTZ,
    window_start DATE,
    rows BIGINT,
    input_sha256 VARCHAR,
    intents BIGINT,
    noise_share DOUBLE
);
CREATE TABLE IF NOT EXISTS intent_events (
    clustered_at TIMESTAMPTZ,
    kind VARCHAR,
    from_ids VARCHAR[],
    to_ids VARCHAR[],
    detail VARCHAR
);
"""
INTENT_TABLES = ("trace_embeddings", "intent_assignments", "intent_catalog", "intent_runs", "intent_events")
# Columns intent_catalog gained after warehouses were first built (reviewer overrides); added in
# place to an older table on the next clustering.
CATALOG_ADDED_COLUMNS = (("reviewed_name", "VARCHAR"), ("pinned", "BOOLEAN"), ("anchors", "FLOAT[][]"),
                         ("decision", "VARCHAR"))


def text_mode() -> str:
    mode = text_setting("EVALFLOW_EMBED_TEXT", DEFAULT_TEXT_MODE)
    if mode not in TEXT_MODES:
        raise ValueError(f"EVALFLOW_EMBED_TEXT must be one of {sorted(TEXT_MODES)}")
    return mode


def trace_text(trace: dict[str, Any], mode: str = DEFAULT_TEXT_MODE) -> str:
    """What a trace asks, as catalog examples show it: placeholder digests dropped (<PERSON_1a2b>
    -> <PERSON>) so two customers' names don't pull the same request apart. The model reads
    `intents.text.model_text` of it (slot values removed)."""
    from evalflow.lib.intents.text import trace_intent_text

    return trace_intent_text(trace.get("messages") or [], trace.get("user_query"), context=TEXT_MODES[mode])


def read_redacted(warehouse: Warehouse, days: Sequence[date] | None = None,
                  since: date | None = None) -> list[dict[str, Any]]:
    where, params = "TRUE", []
    if days is not None:
        where, params = "event_date IN (SELECT unnest(?))", [list(days)]
    elif since is not None:
        where, params = "event_date >= ?", [since]
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT trace_id, event_date, timestamp, user_query, messages, output FROM redacted_traces "
            f"WHERE {where} AND payload_kept ORDER BY trace_id", params).fetchall()
    return [{"trace_id": r[0], "event_date": r[1], "timestamp": r[2], "user_query": r[3],
             "messages": orjson.loads(r[4]) if r[4] else [], "output": r[5]} for r in rows]


def write_trace_embeddings(warehouse: Warehouse, days: Sequence[date], rows: list[dict[str, Any]]) -> None:
    frame = pl.DataFrame(rows, schema={"trace_id": pl.String, "event_date": pl.Date, "text_sha256": pl.String,
                                       "model_version": pl.String, "backend": pl.String})
    with warehouse.transaction() as con:
        con.execute(INTENT_SCHEMA)
        con.execute("DELETE FROM trace_embeddings WHERE event_date IN (SELECT unnest(?))", [list(days)])
        con.register("incoming", frame)
        con.execute("INSERT INTO trace_embeddings SELECT * FROM incoming")
        apply_catalog(con, INTENT_TABLES)


def window_start(warehouse: Warehouse, window_days: int) -> date | None:
    """The window ends at the newest embedded day (not the wall clock: data may be historical)."""
    with warehouse.connect(read_only=True) as con:
        newest = con.execute("SELECT max(event_date) FROM trace_embeddings").fetchone()[0]
    return newest - timedelta(days=window_days - 1) if newest else None


def load_window_vectors(warehouse: Warehouse, since: date) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Traces of the window with their cached vectors (joined by text hash)."""
    from evalflow.lib.intents.embed import CACHE_TABLE

    with warehouse.connect(read_only=True) as con:
        table = con.sql(
            f"SELECT e.trace_id, e.event_date, r.timestamp, r.user_query, r.messages, r.output, c.vector "
            f"FROM trace_embeddings e JOIN {CACHE_TABLE} c ON c.text_sha256 = e.text_sha256 "
            f"AND c.model_version = e.model_version AND c.backend = e.backend "
            f"JOIN redacted_traces r ON r.trace_id = e.trace_id "
            f"WHERE e.event_date >= ? ORDER BY e.trace_id", params=[since]).to_arrow_table()
    traces = [{"trace_id": t, "event_date": d, "timestamp": ts, "user_query": q,
               "messages": orjson.loads(m) if m else [], "output": o}
              for t, d, ts, q, m, o in zip(*(table.column(i).to_pylist() for i in range(6)))]
    vectors = vector_matrix(table.column("vector"))
    return traces, vectors


def vector_matrix(column) -> np.ndarray:
    """A FLOAT[] Arrow column as an (n, dim) float32 matrix without a Python list per row
    (to_pylist took seconds at 100k rows)."""
    if len(column) == 0:
        return np.zeros((0, 384), dtype=np.float32)
    flat = column.combine_chunks()
    values = flat.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(flat), -1)


def read_catalog(warehouse: Warehouse):
    from evalflow.lib.intents import CatalogEntry

    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "intent_catalog"):
            return None
        present = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                             "WHERE table_name = 'intent_catalog'").fetchall()}
        added = ", ".join(name if name in present else f"NULL AS {name}" for name, _ in CATALOG_ADDED_COLUMNS)
        rows = con.execute("SELECT intent_id, name, keywords, examples, size, share, first_seen, last_seen, centroid, "
                           f"{added} FROM intent_catalog ORDER BY intent_id").fetchall()
    if not rows:
        return None
    return [CatalogEntry(intent_id=r[0], name=r[1], keywords=list(r[2] or []), examples=list(r[3] or []),
                         size=r[4], share=r[5], first_seen=r[6], last_seen=r[7], centroid=list(r[8] or []),
                         reviewed_name=r[9], pinned=bool(r[10]), anchors=[list(a) for a in (r[11] or [])],
                         decision=r[12])
            for r in rows]


@dataclass
class ClusteringWrite:
    assigned: int
    intents: int
    noise_share: float
    events: list[tuple[str, list[str], list[str], str]]


def window_fingerprint(traces: list[dict[str, Any]], vectors: np.ndarray, mode: str, overrides: str = "") -> str:
    """sha256 of what a clustering sees: the window's trace ids in order, their vectors (the cache
    fixes each text's vector), the text mode and the reviewer's overrides (their digest)."""
    digest = hashlib.sha256(mode.encode())
    if overrides:
        digest.update(overrides.encode())
    digest.update("\n".join(t["trace_id"] for t in traces).encode())
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()


def last_clustering(warehouse: Warehouse) -> tuple[str, datetime] | None:
    """(input fingerprint, time) of the newest clustering, if any was recorded."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "intent_runs"):
            return None
        rows = con.execute("SELECT input_sha256, clustered_at FROM intent_runs ORDER BY clustered_at DESC LIMIT 1"
                           ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def write_clustering(warehouse: Warehouse, traces: list[dict[str, Any]], result, now: datetime, *,
                     input_sha256: str | None = None, since: date | None = None) -> ClusteringWrite:
    assignments = pl.DataFrame({
        "trace_id": [t["trace_id"] for t in traces],
        "event_date": [t["event_date"] for t in traces],
        "intent_id": list(result.intent_ids),
        "confidence": [float(c) for c in result.confidence],
        "low_confidence": [bool(x) for x in result.low_confidence],
        "clustered_at": [now] * len(traces),
    }, schema={"trace_id": pl.String, "event_date": pl.Date, "intent_id": pl.String, "confidence": pl.Float64,
               "low_confidence": pl.Boolean, "clustered_at": pl.Datetime("us", "UTC")})
    catalog = pl.DataFrame([{
        "intent_id": e.intent_id, "name": e.name, "keywords": list(e.keywords), "examples": list(e.examples),
        "size": int(e.size), "share": float(e.share), "first_seen": e.first_seen, "last_seen": e.last_seen,
        "centroid": [float(x) for x in e.centroid], "updated_at": now, "reviewed_name": e.reviewed_name,
        "pinned": bool(e.pinned), "anchors": [[float(x) for x in a] for a in e.anchors], "decision": e.decision}
        for e in result.catalog],
        schema={"intent_id": pl.String, "name": pl.String, "keywords": pl.List(pl.String),
                "examples": pl.List(pl.String), "size": pl.Int64, "share": pl.Float64,
                "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
                "centroid": pl.List(pl.Float32), "updated_at": pl.Datetime("us", "UTC"),
                "reviewed_name": pl.String, "pinned": pl.Boolean, "anchors": pl.List(pl.List(pl.Float32)),
                "decision": pl.String})
    events = [(e.kind, list(e.from_ids), list(e.to_ids), e.detail or "") for e in result.events]
    event_frame = pl.DataFrame([{"clustered_at": now, "kind": k, "from_ids": f, "to_ids": t, "detail": d}
                                for k, f, t, d in events],
                               schema={"clustered_at": pl.Datetime("us", "UTC"), "kind": pl.String,
                                       "from_ids": pl.List(pl.String), "to_ids": pl.List(pl.String),
                                       "detail": pl.String})
    with warehouse.transaction() as con:
        con.execute(INTENT_SCHEMA)
        for name, kind in CATALOG_ADDED_COLUMNS:
            con.execute(f"ALTER TABLE intent_catalog ADD COLUMN IF NOT EXISTS {name} {kind}")
        con.execute("DELETE FROM intent_assignments")
        con.execute("DELETE FROM intent_catalog")
        for table, frame in (("intent_assignments", assignments), ("intent_catalog", catalog),
                             ("intent_events", event_frame)):
            con.register(f"incoming_{table}", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_{table}")
        con.execute("INSERT INTO intent_runs VALUES (?, ?, ?, ?, ?, ?)",
                    [now, since, len(traces), input_sha256, len(result.catalog), float(result.noise_share)])
        apply_catalog(con, INTENT_TABLES)
    return ClusteringWrite(len(traces), len(result.catalog), float(result.noise_share), events)


SPARK = "▁▂▃▄▅▆▇█"


def weekly_trends(event_dates: Sequence[date], intent_ids: Sequence[str], weeks: int = 4) -> dict[str, list[float]]:
    """Per intent, its share of each of the window's last ``weeks`` weeks (oldest first; the week
    ends at the newest day). Shares, not counts, so a quiet week does not read as a decline."""
    if not event_dates:
        return {}
    newest = max(event_dates)
    bucket = np.array([weeks - 1 - min((newest - d).days // 7, weeks) for d in event_dates])
    ids = np.asarray(intent_ids, dtype=object)
    keep = bucket >= 0
    totals = np.bincount(bucket[keep], minlength=weeks).astype(float)
    out: dict[str, list[float]] = {}
    for intent in set(ids[keep].tolist()):
        counts = np.bincount(bucket[keep & (ids == intent)], minlength=weeks).astype(float)
        out[intent] = [float(c / t) if t else 0.0 for c, t in zip(counts, totals)]
    return out


def sparkline(values: Sequence[float]) -> str:
    """Shares as bars, scaled to their own maximum ("▂▄▆█": growing)."""
    top = max(values, default=0.0)
    if top <= 0:
        return "·" * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def catalog_markdown(catalog, trends: dict[str, list[float]], previous=None, examples: int = 1) -> str:
    """The catalog as a reviewer reads it: id, name (the reviewer's, or the keywords'), size,
    share and its change since the previous clustering, the weekly trend, examples, decisions."""
    from evalflow.lib.common.report import markdown_table

    before = {e.intent_id: e.share for e in (previous or [])}
    rows = []
    for e in sorted(catalog, key=lambda e: -e.size):
        change = "new" if e.intent_id not in before else f"{(e.share - before[e.intent_id]) * 100:+.1f} pt"
        trend = trends.get(e.intent_id)
        rows.append((e.intent_id, e.name + (" (reviewed)" if e.reviewed_name else ""), e.size, f"{e.share:.1%}",
                     change, sparkline(trend) if trend else "", " · ".join(x[:80] for x in e.examples[:examples]),
                     e.decision or ""))
    return markdown_table(["intent", "name", "size", "share", "since last", "weekly share", "examples",
                           "reviewer decisions"], rows)
