"""The annotation stage's table and reads: which sample goes out as which batch.

- annotation_batches: one row per batch folder written under <data>/annotation/ (batch id,
  sample run, path, counts, the manifest's sha256).
A batch's candidates are marked `exported` in eval_candidates (owned by the sampling store) in
the same transaction that records the batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import orjson
import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.warehouse import Warehouse, has_table
from evalflow.lib.sampling.store import CANDIDATE_SCHEMA, SAMPLING_TABLES

BATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotation_batches (
    batch_id VARCHAR PRIMARY KEY,
    sample_run_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    path VARCHAR NOT NULL,
    candidates BIGINT,
    gold BIGINT,
    tasks BIGINT,
    manifest_sha256 VARCHAR
);
"""


def candidates_to_export(warehouse: Warehouse) -> tuple[str | None, list[dict[str, Any]]]:
    """(the oldest sampling run with unexported candidates, its candidates joined to their
    redacted traces and intent names), in pick order."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return None, []
        row = con.execute("SELECT sample_run_id FROM eval_candidates WHERE status = 'candidate' "
                          "GROUP BY sample_run_id ORDER BY min(sampled_at) LIMIT 1").fetchone()
        if row is None:
            return None, []
        names = "c2.name" if has_table(con, "intent_catalog") else "NULL"
        join = "LEFT JOIN intent_catalog c2 ON c2.intent_id = c.intent_id" if names != "NULL" else ""
        rows = con.sql(
            f"SELECT r.trace_id, r.session_id, r.timestamp, r.messages, r.user_query, r.retrieved_context, "
            f"r.tool_calls, r.output, c.intent_id, {names} AS intent_name, c.stratum, c.reason, c.failure_modes, "
            f"c.difficulty_bucket FROM eval_candidates c JOIN redacted_traces r ON r.trace_id = c.trace_id {join} "
            f"WHERE c.sample_run_id = ? AND c.status = 'candidate' ORDER BY c.pick_order", params=[row[0]]
        ).fetchall()
    keys = ("trace_id", "session_id", "timestamp", "messages", "user_query", "retrieved_context", "tool_calls",
            "output", "intent_id", "intent_name", "stratum", "reason", "failure_modes", "difficulty_bucket")
    out = []
    for values in rows:
        record = dict(zip(keys, values))
        for name in ("messages", "retrieved_context", "tool_calls"):
            record[name] = orjson.loads(record[name]) if record[name] else []
        record["timestamp"] = record["timestamp"].isoformat() if record["timestamp"] else None
        out.append(record)
    return row[0], out


def record_batch(warehouse: Warehouse, manifest, sample_run_id: str, trace_ids: Sequence[str], now: datetime) -> None:
    """Mark the batch's candidates exported and log the batch (after its folder is in place)."""
    import hashlib

    manifest_sha = hashlib.sha256((manifest.path / "manifest.json").read_bytes()).hexdigest()
    counts = manifest.counts
    with warehouse.transaction() as con:
        con.execute(CANDIDATE_SCHEMA + BATCH_SCHEMA)
        con.register("exported", pl.DataFrame({"trace_id": list(trace_ids)}, schema={"trace_id": pl.String}).to_arrow())
        con.execute("UPDATE eval_candidates SET status = 'exported', batch_id = ? WHERE trace_id IN "
                    "(SELECT trace_id FROM exported)", [manifest.data["batch_id"]])
        con.execute("INSERT OR REPLACE INTO annotation_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [manifest.data["batch_id"], sample_run_id, now, str(manifest.path), counts["candidates"],
                     counts["gold"], counts["tasks"], manifest_sha])
        apply_catalog(con, (*SAMPLING_TABLES, "annotation_batches"))
