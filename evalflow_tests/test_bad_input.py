"""The bad-input suite: every kind of broken line gets its own reason, and no good line is lost."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib import reasons
from evalflow.lib.ingest import IngestOptions, KnownTraces, ingest_file
from evalflow.lib.reader import ReadLimits

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def good(trace_id: str, **extra) -> dict:
    base = {
        "trace_id": trace_id,
        "timestamp": "2026-10-05T10:00:00+00:00",
        "messages": [{"role": "user", "content": f"question {trace_id}"}],
        "output": f"answer {trace_id}",
        "input_tokens": 10,
        "output_tokens": 20,
    }
    base.update(extra)
    return base


def line(obj: dict) -> bytes:
    return json.dumps(obj).encode("utf-8")


def ingest_bytes(tmp_path: Path, *lines: bytes, name: str = "in.jsonl", limits: ReadLimits = ReadLimits(),
                 known: KnownTraces | None = None):
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return ingest_file(path, known or KnownTraces(), IngestOptions(now=NOW, limits=limits))


def single_reason(result) -> str:
    assert len(result.quarantine) == 1, result.quarantine
    return result.quarantine[0]["reason"]


@pytest.mark.parametrize(
    ("bad_line", "expected_reason"),
    [
        (b'{"trace_id": "t9", "timestamp": "2026-10-05T10:00:00Z", "outp', reasons.TRUNCATED_JSON),
        (b"this is not json at all", reasons.INVALID_JSON),
        (b'{"trace_id": "t9", "output": "caf\xe9"}', reasons.INVALID_UTF8),
        (b'{"trace_id": "t9",\x00 "timestamp": 1}', reasons.NUL_BYTE),
        (b"[" * 200 + b"]" * 200, reasons.TOO_DEEP),
        (line({"timestamp": "2026-10-05T10:00:00Z", "output": "x"}), reasons.MISSING_TRACE_ID),
        (line({"trace_id": "t9", "output": "x", "messages": []}), reasons.MISSING_TIMESTAMP),
        (line(good("t9", input_tokens="ten")), reasons.WRONG_TYPE),
        (line(good("t9", messages="hello")), reasons.WRONG_TYPE),
        (line(good("t9", timestamp="next tuesday")), reasons.BAD_TIMESTAMP),
        (line(good("t9", timestamp="2027-06-01T00:00:00Z")), reasons.FUTURE_TIMESTAMP),
        (line(good("t9", timestamp="1999-12-31T23:59:59Z")), reasons.TIMESTAMP_BEFORE_2000),
        (line(good("t9", end_time="2026-10-05T09:59:59Z")), reasons.END_BEFORE_START),
        (line(good("t9", latency_ms=-5)), reasons.INVALID_VALUE),
        (line(good("t9", status="maybe")), reasons.INVALID_VALUE),
        (b'"just a string"', reasons.NOT_AN_OBJECT),
        (line({"unrelated": 1, "object": 2}), reasons.UNKNOWN_DIALECT),
    ],
)
def test_each_bad_line_is_quarantined_with_its_reason_and_good_lines_survive(tmp_path, bad_line, expected_reason):
    result = ingest_bytes(tmp_path, line(good("t1")), bad_line, line(good("t2")))

    assert single_reason(result) == expected_reason
    assert [t["trace_id"] for t in result.traces] == ["t1", "t2"]
    assert result.outcomes == {"ingested": 2, "quarantined": 1}
    row = result.quarantine[0]
    assert row["line_no"] == 2
    assert row["byte_offset"] == len(line(good("t1"))) + 1
    # The raw bytes are identified by hash, never copied.
    assert row["raw_sha256"] == hashlib.sha256(bad_line).hexdigest()
    assert "raw" not in row and "content" not in row


def test_quarantine_detail_never_quotes_the_line(tmp_path):
    secret = "jane.doe@example.com"
    lines = [line(good("t1", input_tokens=secret)), ('{"trace_id": "' + secret).encode(),
             line({"timestamp": "2026-10-05T10:00:00Z", "output": secret})]
    result = ingest_bytes(tmp_path, *lines)
    assert len(result.quarantine) == 3
    assert secret not in json.dumps(result.quarantine, default=str)


def test_bom_at_file_start_is_stripped_and_flagged(tmp_path):
    result = ingest_bytes(tmp_path, b"\xef\xbb\xbf" + line(good("t1")), line(good("t2")))
    assert [t["trace_id"] for t in result.traces] == ["t1", "t2"]
    assert result.flags[reasons.BOM_STRIPPED] == 1
    assert reasons.BOM_STRIPPED in result.traces[0]["flags"]


def test_crlf_line_endings_are_accepted_and_flagged(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(line(good("t1")) + b"\r\n" + line(good("t2")) + b"\r\n")
    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))
    assert [t["trace_id"] for t in result.traces] == ["t1", "t2"]
    assert result.flags[reasons.CRLF_STRIPPED] == 2
    assert not result.quarantine


def test_line_over_hard_cap_is_quarantined_unparsed(tmp_path):
    limits = ReadLimits(line_soft_cap_bytes=1_000, line_hard_cap_bytes=5_000, field_cap_bytes=100)
    huge = line(good("t9", output="x" * 10_000))
    result = ingest_bytes(tmp_path, line(good("t1")), huge, limits=limits)
    assert single_reason(result) == reasons.OVERSIZE_LINE
    assert [t["trace_id"] for t in result.traces] == ["t1"]


def test_line_over_soft_cap_keeps_the_trace_with_fields_cut_at_a_utf8_boundary(tmp_path):
    limits = ReadLimits(line_soft_cap_bytes=1_000, line_hard_cap_bytes=100_000, field_cap_bytes=101)
    long_output = "é" * 3_000  # two bytes each: a cut at 101 bytes would split one
    result = ingest_bytes(tmp_path, line(good("t1", output=long_output)), limits=limits)

    (trace,) = result.traces
    assert trace["output"] == "é" * 50
    assert reasons.FIELD_TRUNCATED in trace["flags"]
    (cut,) = trace["truncated_fields"]
    assert cut["path"] == "$.output"
    assert cut["original_bytes"] == 6_000
    assert cut["sha256"] == hashlib.sha256(long_output.encode()).hexdigest()


def test_exact_duplicate_lines_are_deduplicated_and_counted(tmp_path):
    result = ingest_bytes(tmp_path, line(good("t1")), line(good("t1")), line(good("t2")), line(good("t1")))
    assert [t["trace_id"] for t in result.traces] == ["t1", "t2"]
    assert result.outcomes == {"ingested": 2, "deduplicated": 2}
    assert result.quarantine == []


def test_same_trace_id_with_different_content_is_a_conflict_not_an_overwrite(tmp_path):
    result = ingest_bytes(tmp_path, line(good("t1")), line(good("t1", output="a different answer")))
    assert single_reason(result) == reasons.CONFLICT
    (trace,) = result.traces
    assert trace["output"] == "answer t1"  # the first version is kept


def test_conflict_across_files_uses_what_is_already_staged(tmp_path):
    known = KnownTraces()
    first = ingest_bytes(tmp_path, line(good("t1")), name="a.jsonl", known=known)
    same = ingest_bytes(tmp_path, line(good("t1")), name="b.jsonl", known=known)
    changed = ingest_bytes(tmp_path, line(good("t1", output="changed")), name="c.jsonl", known=known)
    assert len(first.traces) == 1
    assert same.outcomes == {"deduplicated": 1} and not same.traces
    assert single_reason(changed) == reasons.CONFLICT


@pytest.mark.parametrize(
    ("timestamp", "expected_iso", "flag"),
    [
        (1_791_000_000, "2026-10-03T04:00:00.000000+00:00", reasons.EPOCH_SECONDS),
        (1_791_000_000_000, "2026-10-03T04:00:00.000000+00:00", reasons.EPOCH_MILLISECONDS),
        (1_791_000_000_000_000_000, "2026-10-03T04:00:00.000000+00:00", reasons.EPOCH_MILLISECONDS),
        ("2026-10-03T04:00:00", "2026-10-03T04:00:00.000000+00:00", reasons.NAIVE_TIMESTAMP),
        ("2026-10-03T06:00:00+02:00", "2026-10-03T04:00:00.000000+00:00", None),
    ],
)
def test_timestamps_in_any_unit_or_zone_land_on_the_same_utc_instant(tmp_path, timestamp, expected_iso, flag):
    result = ingest_bytes(tmp_path, line(good("t1", timestamp=timestamp)))
    (trace,) = result.traces
    assert trace["timestamp"] == expected_iso
    assert trace["event_date"].isoformat() == "2026-10-03"
    if flag:
        assert flag in trace["flags"]


def test_small_clock_skew_is_flagged_not_dropped(tmp_path):
    skewed = "2026-11-01T12:10:00Z"  # ten minutes after NOW, inside the default one-hour tolerance
    result = ingest_bytes(tmp_path, line(good("t1", timestamp=skewed)))
    (trace,) = result.traces
    assert reasons.CLOCK_SKEW in trace["flags"]


def test_accounting_adds_up_on_a_mixed_file(tmp_path):
    lines = [line(good(f"t{i}")) for i in range(20)]
    lines += [b"garbage", line(good("t3")), line(good("t4", output="conflict")), b'{"trace_id": ']
    result = ingest_bytes(tmp_path, *lines)
    assert result.lines_read == 24
    assert result.outcomes["ingested"] + result.outcomes["quarantined"] + result.outcomes["deduplicated"] == 24
    assert result.outcomes == {"ingested": 20, "quarantined": 3, "deduplicated": 1}
    assert len(result.traces) == 20


def test_blank_lines_are_not_records(tmp_path):
    result = ingest_bytes(tmp_path, line(good("t1")), b"", b"   ", line(good("t2")))
    assert result.lines_read == 2
    assert result.quarantine == []
