"""The warehouse side of sampling: signals by window, candidates with their status history."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.sampling.refresh import Staleness
from evalflow.lib.sampling.store import (
    CANDIDATE_SCHEMA,
    sessions_in_two_runs,
    used_before,
    write_sample,
)
from evalflow.lib.signals.store import read_signals, write_signals

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "w.duckdb", schema=CANDIDATE_SCHEMA)
    warehouse.ensure_schema()
    return warehouse


def signals(ids, day, **extra):
    return pl.DataFrame({"trace_id": ids, "event_date": [day] * len(ids),
                         "timestamp": [datetime(day.year, day.month, day.day, tzinfo=timezone.utc)] * len(ids),
                         **extra})


def test_signals_replace_the_window_and_keep_older_rows(store):
    write_signals(store, signals(["old", "a"], date(2026, 10, 1)), since=date(2026, 10, 1), now=NOW)
    write_signals(store, signals(["a", "b"], date(2026, 10, 5)), since=date(2026, 10, 5), now=NOW)
    result = read_signals(store, date(2026, 1, 1))
    assert sorted(result["trace_id"].to_list()) == ["a", "b", "old"]
    assert result.filter(pl.col("trace_id") == "a")["event_date"].to_list() == [date(2026, 10, 5)]


def test_signals_table_grows_new_columns(store):
    write_signals(store, signals(["a"], date(2026, 10, 1)), since=date(2026, 10, 1), now=NOW)
    write_signals(store, signals(["b"], date(2026, 10, 2), severity=[0.5]), since=date(2026, 10, 2), now=NOW)
    result = read_signals(store, date(2026, 1, 1)).sort("trace_id")
    assert result["severity"].to_list() == [None, 0.5]


def chosen(ids, sessions, day=date(2026, 10, 3)):
    n = len(ids)
    return pl.DataFrame({
        "trace_id": ids, "session_id": sessions, "event_date": [day] * n,
        "timestamp": [datetime(2026, 10, 3, tzinfo=timezone.utc)] * n, "intent_id": ["I-1"] * n,
        "failure_modes": [[] for _ in ids], "difficulty_bucket": ["easy"] * n, "stratum": ["s"] * n,
        "time_bucket": ["2026-10-01"] * n, "reason": ["r"] * n, "pick_order": list(range(1, n + 1)),
    }, schema_overrides={"failure_modes": pl.List(pl.String)})


def test_stale_candidates_retire_unless_exported(store):
    first = write_sample(store, chosen(["t1", "t2"], ["s1", "s2"]), {}, [], since=date(2026, 10, 1),
                         budget=2, seed=0, now=NOW)
    with store.transaction() as con:
        con.execute("UPDATE eval_candidates SET status = 'exported', batch_id = 'b1' WHERE trace_id = 't2'")
    stale = [Staleness("t1", "older than 90 days"), Staleness("t2", "older than 90 days")]
    second = write_sample(store, chosen(["t3"], ["s3"]), {}, stale, since=date(2026, 10, 1), budget=2, seed=0,
                          now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert (first.chosen, second.retired, second.stale_exported) == (2, 1, 1)
    rows = dict(((t, (s, r)) for t, s, r in store.query(
        "SELECT trace_id, status, stale_reason FROM eval_candidates").iter_rows()))
    assert rows == {"t1": ("retired", "older than 90 days"), "t2": ("exported", "older than 90 days"),
                    "t3": ("candidate", None)}
    used = used_before(store)
    assert used.trace_ids == {"t1", "t2", "t3"}  # never picked again
    assert used.session_ids == {"s2", "s3"}  # a retired pick frees its session


def test_a_session_in_two_runs_is_counted(store):
    write_sample(store, chosen(["t1"], ["s1"]), {}, [], since=date(2026, 10, 1), budget=1, seed=0, now=NOW)
    assert sessions_in_two_runs(store) == 0
    write_sample(store, chosen(["t2"], ["s1"]), {}, [], since=date(2026, 10, 1), budget=1, seed=0,
                 now=datetime(2026, 11, 2, tzinfo=timezone.utc))
    assert sessions_in_two_runs(store) == 1


def test_new_intents_are_the_births_since_the_last_sample(store):
    from evalflow.lib.intents.store import INTENT_SCHEMA
    from evalflow.lib.sampling.store import new_intents

    with store.transaction() as con:
        con.execute(INTENT_SCHEMA)
        con.execute("INSERT INTO intent_catalog (intent_id, name) VALUES ('I-1', 'card freeze'), ('I-2', 'refund')")
        con.execute("INSERT INTO intent_events VALUES (?, 'birth', [], ['I-1'], ''), (?, 'birth', [], ['I-2'], '')",
                    [datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 15, tzinfo=timezone.utc)])
    assert new_intents(store) == [("I-1", "card freeze"), ("I-2", "refund")]
    write_sample(store, chosen(["t1"], ["s1"]), {}, [], since=date(2026, 10, 1), budget=1, seed=0, now=NOW)
    assert new_intents(store) == [("I-2", "refund")]


def test_a_sample_never_exported_is_rolled_back_and_its_sessions_freed(store):
    """A run killed between eval_candidates and annotation_queue left its picks `candidate` for
    ever, shutting their sessions out of every later sample (measured: 161, then 75 picks)."""
    from evalflow.lib.sampling.store import roll_back_unexported, unexported_sample_runs

    stranded = write_sample(store, chosen(["t1", "t2"], ["s1", "s2"]), {}, [], since=date(2026, 10, 1),
                            budget=2, seed=0, now=NOW)
    assert unexported_sample_runs(store) == [stranded.sample_run_id]
    assert used_before(store).session_ids == {"s1", "s2"}

    assert roll_back_unexported(store, batch_written=lambda batch_id: False) == [stranded.sample_run_id]
    assert store.count("eval_candidates") == store.count("sample_runs") == 0
    assert used_before(store).session_ids == set()
    again = write_sample(store, chosen(["t1", "t2"], ["s1", "s2"]), {}, [], since=date(2026, 10, 1),
                         budget=2, seed=0, now=datetime(2026, 11, 2, tzinfo=timezone.utc))
    assert again.chosen == 2  # the same picks are drawn again, nothing shut out


def test_a_sample_whose_batch_folder_exists_is_kept_for_the_export(store):
    from evalflow.lib.sampling.store import batch_id_for, roll_back_unexported, unexported_sample_runs

    older = write_sample(store, chosen(["t1"], ["s1"]), {}, [], since=date(2026, 10, 1), budget=1, seed=0, now=NOW)
    newer = write_sample(store, chosen(["t2"], ["s2"]), {}, [], since=date(2026, 10, 1), budget=1, seed=0,
                         now=datetime(2026, 11, 2, tzinfo=timezone.utc))
    written = {batch_id_for(older.sample_run_id)}  # killed after its folder, before it was recorded
    assert roll_back_unexported(store, batch_written=written.__contains__) == [newer.sample_run_id]
    assert unexported_sample_runs(store) == [older.sample_run_id]  # exported next, oldest first
