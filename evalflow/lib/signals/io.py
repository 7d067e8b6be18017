"""Reading the inputs of compute_signals from the warehouse: redacted traces and their intents.

Only `redacted_traces` is read (never the raw store). Intent ids come from
`intent_assignments` when that table exists; without it every intent is None (signals still
work, with per-model and global statistics in place of per-intent ones).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import duckdb
import orjson

from evalflow.lib.common.warehouse import has_table

SIGNAL_INPUT_COLUMNS = (
    "trace_id", "session_id", "event_date", "timestamp", "model", "messages", "user_query",
    "retrieved_context", "tool_calls", "output", "latency_ms", "input_tokens", "output_tokens",
    "cost_usd", "status", "error_type", "feedback", "metadata", "payload_kept",
)
_JSON_COLUMNS = {"messages", "retrieved_context", "tool_calls", "feedback", "metadata"}


@contextmanager
def _connection(con_or_path: duckdb.DuckDBPyConnection | str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_path, (str, Path)):
        from evalflow.lib.common.warehouse import connect_waiting

        con = connect_waiting(Path(con_or_path), read_only=True)
        try:
            yield con
        finally:
            con.close()
    else:
        yield con_or_path


def read_signal_inputs(con_or_path: duckdb.DuckDBPyConnection | str | Path, since: date | None = None
                       ) -> tuple[list[dict[str, Any]], list[str | None], list[bool]]:
    """(traces, intent_ids, low_confidence) for the redacted traces with event_date >= since
    (all when None), ordered by timestamp then trace_id."""
    with _connection(con_or_path) as con:
        joined = has_table(con, "intent_assignments")
        columns = ", ".join(f"r.{name}" for name in SIGNAL_INPUT_COLUMNS)
        intent = "a.intent_id, coalesce(a.low_confidence, false)" if joined else "NULL, false"
        join = "LEFT JOIN intent_assignments a ON a.trace_id = r.trace_id" if joined else ""
        where, params = ("WHERE r.event_date >= ?", [since]) if since is not None else ("", [])
        rows = con.execute(
            f"SELECT {columns}, {intent} FROM redacted_traces r {join} {where} "
            f"ORDER BY r.timestamp, r.trace_id", params).fetchall()
    traces, intents, low = [], [], []
    width = len(SIGNAL_INPUT_COLUMNS)
    for row in rows:
        trace = {}
        for name, value in zip(SIGNAL_INPUT_COLUMNS, row[:width]):
            if name in _JSON_COLUMNS and isinstance(value, (str, bytes)):
                value = orjson.loads(value)
            trace[name] = value
        traces.append(trace)
        intents.append(row[width])
        low.append(bool(row[width + 1]))
    return traces, intents, low
