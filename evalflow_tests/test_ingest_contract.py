"""The raw_traces data contract (Great Expectations 1.x): clean passes, dirty fails exactly
where it is dirty, and no value from the data ever reaches the result."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import polars as pl
import pytest

from evalflow.lib.ingest.contract import EXPECTATION_NAMES, ContractResult, run_trace_contract
from evalflow.lib.ingest.store import TRACE_COLUMN_NAMES, traces_frame

SECRET = "alice@example.com"


def _row(i: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "trace_id": f"trace-{i:03d}",
        "event_date": date(2026, 1, 1 + i % 2),
        "timestamp": f"2026-01-0{1 + i % 2}T12:{i:02d}:00.123000+00:00",
        "end_time": f"2026-01-0{1 + i % 2}T12:{i:02d}:01.500000+00:00",
        "session_id": f"s-{i % 3}",
        "user_id": f"u-{i % 4}",
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "user_query": f"question {i}",
        "retrieved_context": [],
        "tool_calls": [],
        "output": f"answer {i}",
        "latency_ms": 100.0 + i,
        "input_tokens": 10 + i,
        "output_tokens": 20 + i,
        "cost_usd": 0.001 * i,
        "status": "ok" if i % 5 else "error",
        "error_type": None if i % 5 else "timeout",
        "feedback": None,
        "metadata": {"k": i},
        "payload_kept": True,
        "content_sha256": f"{i:064x}",
        "flags": ["x"] if i % 2 else [],
        "truncated_fields": [],
        "dialect": "jsonl",
        "source_file_sha256": "f" * 64,
        "source_path": "landing/a.jsonl",
        "line_no": i + 1,
        "byte_offset": 100 * i,
    }
    row.update(overrides)
    return row


def _clean_rows() -> list[dict[str, Any]]:
    rows = [_row(i) for i in range(12)]
    # Nulls are allowed in the numeric columns: "between" ignores them.
    rows[7].update(latency_ms=None, input_tokens=None, output_tokens=None, cost_usd=None)
    # The same trace_id on another day is a different partition: allowed.
    rows[8].update(trace_id="trace-003")
    assert rows[8]["event_date"] != rows[3]["event_date"]
    return rows


def _dirty_frame(secret: str = "weird") -> pl.DataFrame:
    """Clean rows plus exactly: one null timestamp, one duplicated (event_date, trace_id) pair,
    one bad status, one negative latency_ms, one negative cost_usd."""
    rows = _clean_rows()
    rows[4].update(status=secret, user_query=secret)
    rows[5].update(latency_ms=-1.0, user_query=secret)
    rows[6].update(cost_usd=-0.5, user_query=secret)
    # A second row with trace-002's (event_date, trace_id), otherwise clean.
    rows.append(_row(2, content_sha256="e" * 64, user_query=secret, output=secret))
    frame = traces_frame(rows)
    # traces_frame parses timestamps, so the null goes in after it.
    return frame.with_columns(
        pl.when(pl.col("trace_id") == "trace-009")
        .then(None)
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )


def _by_name(result: ContractResult) -> dict[str, dict[str, Any]]:
    return {e["expectation"]: e for e in result.expectations}


def test_clean_frame_passes_every_expectation():
    frame = traces_frame(_clean_rows())
    result = run_trace_contract(frame)
    assert result.success, result.markdown()
    assert result.failed() == []
    assert result.evaluated_rows == 12
    assert [e["expectation"] for e in result.expectations] == list(EXPECTATION_NAMES)
    for e in result.expectations:
        assert set(e) >= {"expectation", "column", "success", "element_count", "unexpected_count"}
        assert e["success"] is True and e["unexpected_count"] == 0 and e["error"] is False
        assert isinstance(e["element_count"], int)
    assert _by_name(result)["trace_id_not_null"]["element_count"] == 12
    assert _by_name(result)["schema_has_raw_traces_columns"]["element_count"] == len(TRACE_COLUMN_NAMES)


def test_dirty_frame_fails_exactly_the_expected_expectations():
    result = run_trace_contract(_dirty_frame())
    assert not result.success
    assert result.evaluated_rows == 13
    expected = {
        "timestamp_not_null": 1,
        # GX counts every row of a duplicated group: the pair is 2 unexpected rows.
        "trace_id_unique_per_partition": 2,
        "status_in_set": 1,
        "latency_ms_non_negative": 1,
        "cost_usd_non_negative": 1,
    }
    assert set(result.failed()) == set(expected)
    by_name = _by_name(result)
    for name, count in expected.items():
        assert by_name[name]["unexpected_count"] == count, (name, by_name[name])
        assert by_name[name]["element_count"] == 13
        assert by_name[name]["error"] is False
    for name in set(EXPECTATION_NAMES) - set(expected):
        assert by_name[name]["success"] and by_name[name]["unexpected_count"] == 0, name


def test_markdown_lists_every_expectation_with_counts():
    md = run_trace_contract(_dirty_frame()).markdown()
    lines = md.splitlines()
    assert len(lines) == 2 + len(EXPECTATION_NAMES)
    assert "| trace_id_unique_per_partition | **FAIL** | 2 |" in lines
    assert "| trace_id_not_null | pass | 0 |" in lines


def test_dropped_column_fails_the_schema_expectation():
    frame = traces_frame(_clean_rows())
    result = run_trace_contract(frame.drop("user_query"))
    assert result.failed() == ["schema_has_raw_traces_columns"]
    assert _by_name(result)["schema_has_raw_traces_columns"]["unexpected_count"] == 1


def test_dropped_checked_column_fails_schema_and_flags_its_expectation_as_error():
    result = run_trace_contract(traces_frame(_clean_rows()).drop("status"))
    assert set(result.failed()) == {"schema_has_raw_traces_columns", "status_in_set"}
    status = _by_name(result)["status_in_set"]
    assert status["error"] is True and status["success"] is False
    assert "**error**" in result.markdown()


def test_extra_columns_are_allowed():
    frame = traces_frame(_clean_rows()).with_columns(pl.lit(1).alias("extra"))
    assert run_trace_contract(frame).success


def test_empty_frame_passes_without_raising():
    result = run_trace_contract(traces_frame([]))
    assert result.success
    assert result.evaluated_rows == 0
    assert result.failed() == []
    assert len(result.expectations) == len(EXPECTATION_NAMES)


def test_no_value_from_the_data_leaks_into_the_result():
    frame = _dirty_frame(secret=SECRET).with_columns(
        # The duplicated pair's trace_id and a null-timestamp row's text hold it too.
        pl.when(pl.col("trace_id") == "trace-002").then(pl.lit(SECRET)).otherwise(pl.col("trace_id")).alias("trace_id"),
        pl.when(pl.col("trace_id") == "trace-009").then(pl.lit(SECRET)).otherwise(pl.col("output")).alias("output"),
    )
    assert (frame["trace_id"] == SECRET).sum() == 2
    result = run_trace_contract(frame)
    assert set(result.failed()) == {
        "timestamp_not_null",
        "trace_id_unique_per_partition",
        "status_in_set",
        "latency_ms_non_negative",
        "cost_usd_non_negative",
    }
    for text in (repr(result), str(result), result.markdown(), json.dumps(result.expectations)):
        assert SECRET not in text
        assert "alice" not in text
    # Only plain, JSON-able counts and names: no GX objects that could carry values.
    for e in result.expectations:
        assert all(isinstance(v, (str, int, bool, type(None))) for v in e.values())


@pytest.mark.parametrize("column", ["latency_ms", "input_tokens", "output_tokens", "cost_usd"])
def test_each_numeric_column_rejects_negatives(column: str):
    rows = _clean_rows()
    rows[1][column] = -1 if column.endswith("tokens") else -0.01
    result = run_trace_contract(traces_frame(rows))
    assert result.failed() == [f"{column}_non_negative"]
    assert _by_name(result)[f"{column}_non_negative"]["unexpected_count"] == 1


def test_gx_only_receives_the_checked_columns_data():
    from evalflow.lib.ingest.contract import _runtime, _to_pandas

    frame = traces_frame(_clean_rows()).with_columns(pl.lit(SECRET).alias("user_query"))
    data = _to_pandas(frame, _runtime().checked)
    assert list(data.columns) == list(frame.columns)
    assert data["user_query"].isna().all() and data["messages"].isna().all()
    assert data["trace_id"].notna().all()
    assert SECRET not in data.to_string()
