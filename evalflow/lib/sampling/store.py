"""The sampling stage's tables, in the analyst warehouse (every write is one transaction).

- eval_candidates: every trace ever picked, with its stratum, reason, run and status:
  "candidate" (picked, not yet exported), "exported" (in an annotation batch), "retired" (stale
  before export; see refresh.py). Never deleted once exported: it is the record of which traces
  and sessions were used, so that no session spans two batches. A sample drawn but never
  exported (its run stopped before annotation_queue) is rolled back before the next one.
- sample_runs: one row per sampling run with its budget, seed and coverage figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from evalflow.lib.common.catalog import apply_catalog
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
"""

SAMPLING_TABLES = ("eval_candidates", "sample_runs")

CANDIDATE_COLUMNS = ("trace_id", "session_id", "event_date", "timestamp", "intent_id", "failure_modes",
                     "difficulty_bucket", "stratum", "time_bucket", "reason", "pick_order")


# ------------------------------------------------------------------ sampling inputs

def window_vectors(warehouse: Warehouse, trace_ids: Sequence[str]) -> np.ndarray | None:
    """Row-aligned embeddings for near-duplicate removal (zeros where a trace has none:
    metadata-only traces are never near-duplicates of anything)."""
    from evalflow.lib.intents.embed import CACHE_TABLE
    from evalflow.lib.intents.store import vector_matrix

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
        apply_catalog(con, SAMPLING_TABLES)
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


def unexported_sample_runs(warehouse: Warehouse) -> list[str]:
    """Sampling runs with candidates not yet in an annotation batch, oldest first."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return []
        return [r[0] for r in con.execute(
            "SELECT sample_run_id FROM eval_candidates WHERE status = 'candidate' "
            "GROUP BY sample_run_id ORDER BY min(sampled_at)").fetchall()]


def batch_id_for(sample_run_id: str) -> str:
    """The annotation batch a sample goes out as (one batch per sample)."""
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
