"""Warehouse side of signals, the failure taxonomy, eval candidates and annotation batches.

Tables (all in the analyst warehouse; every write is one transaction):
- trace_signals: compute_signals' columns (signals.SIGNAL_SCHEMA) + computed_at, for the traces
  of the current window (a re-run replaces the window's rows; older rows stay).
- failure_clusters / failure_cluster_members: the current window's taxonomy (replaced).
- eval_candidates: every trace ever picked, with its stratum, reason, run and status:
  "candidate" (picked, not yet exported), "exported" (in an annotation batch), "retired" (stale
  before export; see lib/refresh.py). Never deleted: it is the record of which traces and
  sessions were used, so that no session spans two batches (or, later, two splits).
- sample_runs: one row per sampling run with its budget, seed and coverage figures.
- annotation_batches: one row per batch folder written under <data>/annotation/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Sequence

import numpy as np
import orjson
import polars as pl

from evalflow.lib.common.warehouse import Warehouse, has_table

CANDIDATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_candidates (
    trace_id VARCHAR PRIMARY KEY,
    session_id VARCHAR,
    event_date DATE,
    timestamp TIMESTAMPTZ,
    intent_id VARCHAR,
    failure_modes VARCHAR[],
    difficulty_bucket VARCHAR,
    stratum VARCHAR,
    time_bucket VARCHAR,
    reason VARCHAR,
    pick_order BIGINT,
    sample_run_id VARCHAR NOT NULL,
    sampled_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    batch_id VARCHAR,
    stale_reason VARCHAR,
    retired_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS sample_runs (
    sample_run_id VARCHAR PRIMARY KEY,
    sampled_at TIMESTAMPTZ NOT NULL,
    window_start DATE,
    budget BIGINT,
    seed BIGINT,
    chosen BIGINT,
    retired BIGINT,
    coverage JSON
);
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

CANDIDATE_COLUMNS = ("trace_id", "session_id", "event_date", "timestamp", "intent_id", "failure_modes",
                     "difficulty_bucket", "stratum", "time_bucket", "reason", "pick_order")


# ------------------------------------------------------------------ signals and taxonomy

def write_signals(warehouse: Warehouse, signals: pl.DataFrame, since: date, now: datetime) -> None:
    """Replace the window's rows of trace_signals (the table takes the frame's columns)."""
    frame = signals.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("computed_at"))
    with warehouse.transaction() as con:
        con.register("incoming_signals", frame.to_arrow())
        if not has_table(con, "trace_signals"):
            con.execute("CREATE TABLE trace_signals AS SELECT * FROM incoming_signals LIMIT 0")
        # A newer evalflow may compute more signals: add their columns instead of failing
        # (rows of older runs read NULL there).
        have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'trace_signals'").fetchall()}
        for name, kind in con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = 'incoming_signals'").fetchall():
            if name not in have:
                con.execute(f'ALTER TABLE trace_signals ADD COLUMN "{name}" {kind}')
        con.execute("DELETE FROM trace_signals WHERE event_date >= ? OR trace_id IN "
                    "(SELECT trace_id FROM incoming_signals)", [since])
        con.execute("INSERT INTO trace_signals BY NAME SELECT * FROM incoming_signals")
        con.unregister("incoming_signals")


def read_signals(warehouse: Warehouse, since: date) -> pl.DataFrame:
    with warehouse.connect(read_only=True) as con:
        table = con.sql("SELECT * EXCLUDE (computed_at) FROM trace_signals WHERE event_date >= ? "
                        "ORDER BY timestamp, trace_id", params=[since]).to_arrow_table()
    return pl.from_arrow(table)


def write_taxonomy(warehouse: Warehouse, clusters: pl.DataFrame, members: pl.DataFrame, now: datetime) -> None:
    """The current window's failure clusters replace the previous ones."""
    stamped = clusters.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("built_at"))
    with warehouse.transaction() as con:
        for name, frame in (("failure_clusters", stamped), ("failure_cluster_members", members)):
            con.register("incoming", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM incoming")
            con.unregister("incoming")


def read_taxonomy(warehouse: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "failure_clusters"):
            return None
        clusters = pl.from_arrow(con.sql("SELECT * EXCLUDE (built_at) FROM failure_clusters").to_arrow_table())
        members = pl.from_arrow(con.sql("SELECT * FROM failure_cluster_members").to_arrow_table())
    return clusters, members


def intent_names(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "intent_catalog"):
            return {}
        return dict(con.execute("SELECT intent_id, name FROM intent_catalog").fetchall())


# ------------------------------------------------------------------ sampling inputs

def window_vectors(warehouse: Warehouse, trace_ids: Sequence[str]) -> np.ndarray | None:
    """Row-aligned embeddings for near-duplicate removal (zeros where a trace has none:
    metadata-only traces are never near-duplicates of anything)."""
    from evalflow.lib.intents.embed import CACHE_TABLE
    from evalflow.lib.intents.stage import vector_matrix

    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "trace_embeddings"):
            return None
        con.register("wanted", pl.DataFrame({"trace_id": list(trace_ids)}).to_arrow())
        table = con.sql(
            f"SELECT e.trace_id, c.vector FROM trace_embeddings e JOIN {CACHE_TABLE} c "
            f"ON c.text_sha256 = e.text_sha256 AND c.model_version = e.model_version AND c.backend = e.backend "
            f"WHERE e.trace_id IN (SELECT trace_id FROM wanted)").to_arrow_table()
    position = {t: i for i, t in enumerate(trace_ids)}
    found = vector_matrix(table.column("vector"))
    vectors = np.zeros((len(trace_ids), found.shape[1] if len(found) else 384), dtype=np.float32)
    for row, trace_id in enumerate(table.column("trace_id").to_pylist()):
        vectors[position[trace_id]] = found[row]
    return vectors


@dataclass(frozen=True)
class UsedBefore:
    trace_ids: set[str]
    session_ids: set[str]


def used_before(warehouse: Warehouse) -> UsedBefore:
    """Traces picked by any earlier run, and the sessions of the ones still in use (not retired):
    a new sample never repeats a trace, and never opens a session another batch already holds."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return UsedBefore(set(), set())
        traces = {r[0] for r in con.execute("SELECT trace_id FROM eval_candidates").fetchall()}
        sessions = {r[0] for r in con.execute(
            "SELECT DISTINCT session_id FROM eval_candidates WHERE status <> 'retired' AND session_id IS NOT NULL"
        ).fetchall()}
    return UsedBefore(traces, sessions)


def open_candidates(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Candidates not retired yet, for the staleness rules."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return []
        rows = con.execute("SELECT trace_id, intent_id, event_date, status FROM eval_candidates "
                           "WHERE status <> 'retired'").fetchall()
    return [{"trace_id": t, "intent_id": i, "event_date": d, "status": s} for t, i, d, s in rows]


def current_intents(warehouse: Warehouse) -> tuple[dict[str, str | None], set[str], date | None]:
    """(trace_id -> intent now, for every redacted trace; the catalog's ids; the newest day)."""
    with warehouse.connect(read_only=True) as con:
        joined = has_table(con, "intent_assignments")
        rows = con.execute(
            "SELECT r.trace_id, " + ("a.intent_id FROM redacted_traces r LEFT JOIN intent_assignments a "
                                     "ON a.trace_id = r.trace_id" if joined else "NULL FROM redacted_traces r")
        ).fetchall()
        live = {r[0] for r in con.execute("SELECT intent_id FROM intent_catalog").fetchall()} \
            if has_table(con, "intent_catalog") else set()
        newest = con.execute("SELECT max(event_date) FROM redacted_traces").fetchall()[0][0]
    return dict(rows), live, newest


# ------------------------------------------------------------------ writing a sample

@dataclass(frozen=True)
class CandidateWrite:
    sample_run_id: str
    chosen: int
    retired: int
    stale_exported: int


def write_sample(warehouse: Warehouse, chosen: pl.DataFrame, coverage: dict[str, Any], stale: Sequence,
                 *, since: date, budget: int, seed: int, now: datetime) -> CandidateWrite:
    """Retire stale candidates and add the new picks, in one transaction."""
    run_id = "sample-" + now.strftime("%Y%m%dT%H%M%S%f")
    frame = chosen.select(
        *[pl.col(c) for c in CANDIDATE_COLUMNS],
        pl.lit(run_id).alias("sample_run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("sampled_at"),
        pl.lit("candidate").alias("status"),
        pl.lit(None, dtype=pl.String).alias("batch_id"),
        pl.lit(None, dtype=pl.String).alias("stale_reason"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("retired_at"),
    ).with_columns(pl.col("time_bucket").cast(pl.String))
    stale_frame = pl.DataFrame({"trace_id": [s.trace_id for s in stale], "reason": [s.reason for s in stale]},
                               schema={"trace_id": pl.String, "reason": pl.String})
    with warehouse.transaction() as con:
        con.execute(CANDIDATE_SCHEMA)
        con.register("stale", stale_frame.to_arrow())
        retired = con.execute(
            "UPDATE eval_candidates SET status = 'retired', stale_reason = s.reason, retired_at = ? "
            "FROM stale s WHERE eval_candidates.trace_id = s.trace_id AND status = 'candidate'", [now]
        ).fetchall()[0][0]
        exported = con.execute(
            "UPDATE eval_candidates SET stale_reason = s.reason FROM stale s "
            "WHERE eval_candidates.trace_id = s.trace_id AND status = 'exported'").fetchall()[0][0]
        con.register("incoming", frame.to_arrow())
        con.execute("INSERT INTO eval_candidates BY NAME SELECT * FROM incoming")
        con.execute("INSERT INTO sample_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, now, since, budget, seed, frame.height, retired, json.dumps(coverage, default=str)])
    return CandidateWrite(run_id, frame.height, int(retired), int(exported))


def sessions_in_two_runs(warehouse: Warehouse) -> int:
    """Sessions whose traces sit in more than one sampling run (retired picks aside): must be 0."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return 0
        return con.execute(
            "SELECT count(*) FROM (SELECT session_id FROM eval_candidates WHERE status <> 'retired' "
            "AND session_id IS NOT NULL GROUP BY session_id HAVING count(DISTINCT sample_run_id) > 1)"
        ).fetchall()[0][0]


# ------------------------------------------------------------------ annotation batches

def unexported_sample_runs(warehouse: Warehouse) -> list[str]:
    """Sampling runs with candidates not yet in an annotation batch, oldest first."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return []
        return [r[0] for r in con.execute(
            "SELECT sample_run_id FROM eval_candidates WHERE status = 'candidate' "
            "GROUP BY sample_run_id ORDER BY min(sampled_at)").fetchall()]


def batch_id_for(sample_run_id: str) -> str:
    return sample_run_id.replace("sample-", "batch-")


def roll_back_unexported(warehouse: Warehouse, batch_written: Callable[[str], bool]) -> list[str]:
    """Delete samples that were drawn and never exported, before a new one is drawn.

    A run killed between eval_candidates and annotation_queue left its picks `candidate` for
    ever: never exported, and their sessions shut out of every later sample. Nobody has seen
    such a sample, so it is rolled back and drawn again (the same picks when the data and seed
    are the same). A sample whose batch folder was already written (killed after the folder,
    before it was recorded) is kept: the next annotation_queue records that batch.
    """
    rolled = [run for run in unexported_sample_runs(warehouse) if not batch_written(batch_id_for(run))]
    if not rolled:
        return []
    with warehouse.transaction() as con:
        con.execute("DELETE FROM eval_candidates WHERE status = 'candidate' AND sample_run_id IN "
                    "(SELECT unnest(?))", [rolled])
        con.execute("DELETE FROM sample_runs WHERE sample_run_id IN (SELECT unnest(?)) AND sample_run_id NOT IN "
                    "(SELECT sample_run_id FROM eval_candidates)", [rolled])
    return rolled


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
        con.execute(CANDIDATE_SCHEMA)
        con.register("exported", pl.DataFrame({"trace_id": list(trace_ids)}, schema={"trace_id": pl.String}).to_arrow())
        con.execute("UPDATE eval_candidates SET status = 'exported', batch_id = ? WHERE trace_id IN "
                    "(SELECT trace_id FROM exported)", [manifest.data["batch_id"]])
        con.execute("INSERT OR REPLACE INTO annotation_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [manifest.data["batch_id"], sample_run_id, now, str(manifest.path), counts["candidates"],
                     counts["gold"], counts["tasks"], manifest_sha])


def new_intents(warehouse: Warehouse) -> list[tuple[str, str]]:
    """Intents born since the previous sampling run (all births before the first run), with
    their names: what the refresh surfaces for a person to look at."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "intent_events") or not has_table(con, "intent_catalog"):
            return []
        last = con.execute("SELECT max(sampled_at) FROM sample_runs").fetchall()[0][0] \
            if has_table(con, "sample_runs") else None
        rows = con.execute(
            "SELECT DISTINCT t.id, c.name FROM intent_events e, unnest(e.to_ids) AS t(id) "
            "JOIN intent_catalog c ON c.intent_id = t.id "
            "WHERE e.kind = 'birth' AND (? IS NULL OR e.clustered_at > ?) ORDER BY 1", [last, last]).fetchall()
    return [(i, n) for i, n in rows]
