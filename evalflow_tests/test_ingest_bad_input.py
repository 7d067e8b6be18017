"""The bad-input suite: every kind of broken line gets its own reason, and no good line is lost."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file, iter_landing_files
from evalflow.lib.ingest.reader import ReadLimits, zstd_decompressor_available

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
    row = result.quarantine[0]
    # read in bounded chunks, yet identified exactly as if it had been read whole
    assert (row["raw_length"], row["raw_sha256"]) == (len(huge), hashlib.sha256(huge).hexdigest())


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


# --- OTLP spans must carry their own trace id and times ------------------------------------

OTLP_TRACE = "5b8efff798038103d269b633813fc60c"
OTLP_OTHER = "0af7651916cd43dd8448eb211c80319c"
OTLP_T0 = 1_791_194_400_000_000_000  # 2026-10-05T10:00:00Z in ns


def otlp_span(trace_id, span_id, parent="", start_ms=0, end_ms=100, **attributes) -> dict:
    span = {"spanId": span_id, "parentSpanId": parent, "name": f"span {span_id}",
            "startTimeUnixNano": str(OTLP_T0 + start_ms * 1_000_000),
            "endTimeUnixNano": str(OTLP_T0 + end_ms * 1_000_000),
            "attributes": [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}}
                           for k, v in attributes.items()]}
    if trace_id is not None:
        span["traceId"] = trace_id
    return span


def otlp_line(*spans: dict) -> bytes:
    return line({"resourceSpans": [{"resource": {"attributes": []},
                                    "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}]})


def llm_attributes(question: str) -> dict:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 12, "gen_ai.input.messages":
            json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}])}


def test_otlp_span_without_trace_id_is_quarantined_not_given_a_derived_id(tmp_path):
    result = ingest_bytes(tmp_path, line(good("t1")), otlp_line(otlp_span(None, "a1", **llm_attributes("hi"))))

    assert single_reason(result) == reasons.MISSING_TRACE_ID
    assert [t["trace_id"] for t in result.traces] == ["t1"]
    assert result.outcomes == {"ingested": 1, "quarantined": 1}
    assert result.quarantine[0]["line_no"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"startTimeUnixNano": None},
        {"startTimeUnixNano": "0"},
        {"startTimeUnixNano": ""},
        {"endTimeUnixNano": None},  # OTLP requires both: no end is as bad as no start
        {"startTimeUnixNano": None, "endTimeUnixNano": None},
    ],
)
def test_otlp_span_without_start_or_end_time_is_quarantined_not_given_the_file_time(tmp_path, change):
    span = otlp_span(OTLP_TRACE, "a1", **llm_attributes("hi"))
    for key, value in change.items():
        if value is None:
            del span[key]
        else:
            span[key] = value
    result = ingest_bytes(tmp_path, line(good("t1")), otlp_line(span))

    assert single_reason(result) == reasons.MISSING_TIMESTAMP
    assert [t["trace_id"] for t in result.traces] == ["t1"]  # nothing lands in today's partition
    assert result.outcomes == {"ingested": 1, "quarantined": 1}


def test_one_span_without_time_holds_back_its_whole_trace_not_a_half_built_one(tmp_path):
    # One trace over three lines (root, LLM call, tool call); the LLM span has no start time.
    # Folding the other two would stage a trace without its model, messages and tokens.
    llm = otlp_span(OTLP_TRACE, "b2", parent="a1", **llm_attributes("where is my order?"))
    del llm["startTimeUnixNano"]
    result = ingest_bytes(
        tmp_path,
        otlp_line(otlp_span(OTLP_TRACE, "a1", end_ms=900)),
        otlp_line(llm),
        otlp_line(otlp_span(OTLP_TRACE, "c3", parent="a1", **{"gen_ai.operation.name": "execute_tool"})),
        otlp_line(otlp_span(OTLP_OTHER, "d4", **llm_attributes("hello"))),
    )

    assert [t["trace_id"] for t in result.traces] == [OTLP_OTHER]
    assert result.outcomes == {"ingested": 1, "quarantined": 3}
    assert result.lines_read == 4
    assert {(row["line_no"], row["reason"], row["scope"]) for row in result.quarantine} == {
        (1, reasons.MISSING_TIMESTAMP, "trace"), (2, reasons.MISSING_TIMESTAMP, "trace"),
        (3, reasons.MISSING_TIMESTAMP, "trace")}
    expected_hash = hashlib.sha256(OTLP_TRACE.encode()).hexdigest()
    assert {row["trace_id_sha256"] for row in result.quarantine} == {expected_hash}


def test_span_without_trace_id_takes_the_trace_it_is_linked_to_by_span_id(tmp_path):
    # The child names the root as its parent but has no traceId: it belongs to OTLP_TRACE,
    # whose fold without it would miss the LLM call. Neither a derived one-span trace nor a
    # half-built OTLP_TRACE is staged.
    child = otlp_span(None, "b2", parent="a1", **llm_attributes("where is my order?"))
    result = ingest_bytes(tmp_path, otlp_line(otlp_span(OTLP_TRACE, "a1", end_ms=900)), otlp_line(child),
                          line(good("t1")))

    assert [t["trace_id"] for t in result.traces] == ["t1"]
    assert result.outcomes == {"ingested": 1, "quarantined": 2}
    assert {(row["line_no"], row["reason"]) for row in result.quarantine} == {
        (1, reasons.MISSING_TRACE_ID), (2, reasons.MISSING_TRACE_ID)}


def test_a_broken_trace_inside_a_good_batch_line_gets_its_own_row(tmp_path):
    broken = otlp_span(OTLP_TRACE, "a1", **llm_attributes("hi"))
    broken["endTimeUnixNano"] = "0"
    loose = otlp_span(None, "zz", **llm_attributes("no trace"))
    result = ingest_bytes(tmp_path, otlp_line(broken, loose, otlp_span(OTLP_OTHER, "d4", **llm_attributes("ok"))))

    assert [t["trace_id"] for t in result.traces] == [OTLP_OTHER]
    assert result.outcomes == {"ingested": 1}  # the line still carried a good trace
    assert sorted((row["scope"], row["reason"]) for row in result.quarantine) == [
        ("span", reasons.MISSING_TRACE_ID), ("trace", reasons.MISSING_TIMESTAMP)]
    assert result.reasons == {reasons.MISSING_TIMESTAMP: 1, reasons.MISSING_TRACE_ID: 1}


# --- compressed landing files --------------------------------------------------------------


def gzipped(*lines: bytes) -> bytes:
    return gzip.compress(b"\n".join(lines) + b"\n")


def zstd_frame(content: bytes) -> bytes:
    """A genuine zstd frame holding `content` in one raw (stored) block: no compressor needed."""
    assert len(content) < 256
    header = b"\x28\xb5\x2f\xfd" + bytes([0x20, len(content)])  # single segment, 1-byte size
    block = (1 | (len(content) << 3)).to_bytes(3, "little")  # last block, raw
    return header + block + content


def test_gzip_file_named_jsonl_is_read_like_the_plain_file(tmp_path):
    lines = [line(good(f"t{i}")) for i in range(54)]
    path = tmp_path / "traces.jsonl"  # the name says nothing about the compression
    path.write_bytes(gzipped(*lines))

    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))

    assert result.outcomes == {"ingested": 54}
    assert result.quarantine == []
    assert len(result.traces) == 54
    # The file is the bytes as landed: its hash is of the compressed file.
    assert result.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.size_bytes == path.stat().st_size


def test_positions_in_a_gzip_file_refer_to_the_decompressed_stream(tmp_path):
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzipped(line(good("t1")), b"garbage", line(good("t2"))))

    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))

    assert single_reason(result) == reasons.INVALID_JSON
    row = result.quarantine[0]
    assert (row["line_no"], row["byte_offset"]) == (2, len(line(good("t1"))) + 1)
    assert row["raw_sha256"] == hashlib.sha256(b"garbage").hexdigest()
    assert [t["trace_id"] for t in result.traces] == ["t1", "t2"]
    assert result.traces[1]["line_no"] == 3


def test_gzip_whole_document_json_file_is_read(tmp_path):
    path = tmp_path / "export.json.gz"
    document = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [
        {"spans": [otlp_span(OTLP_TRACE, "a1", **llm_attributes("hi"))]}]}]}
    path.write_bytes(gzip.compress(json.dumps(document, indent=2).encode()))

    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))

    assert [t["trace_id"] for t in result.traces] == [OTLP_TRACE]
    assert result.outcomes == {"ingested": 1}


def test_compressed_names_are_picked_up_from_the_landing_folder(tmp_path):
    names = ["a.jsonl.gz", "b.json.gz", "c.ndjson.gz", "d.jsonl.zst", "e.jsonl", "notes.txt", "f.tar.gz"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in iter_landing_files(tmp_path)] == ["a.jsonl.gz", "b.json.gz", "c.ndjson.gz",
                                                              "d.jsonl.zst", "e.jsonl"]


def test_zstd_file_without_a_decompressor_is_one_quarantined_record(tmp_path, monkeypatch):
    # The project installs zstandard; a user's environment without any zstd module is made here
    # by hiding both (a None entry in sys.modules makes the import fail).
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    monkeypatch.setitem(sys.modules, "compression", None)
    path = tmp_path / "traces.jsonl"  # detected by its magic bytes, not its name
    path.write_bytes(zstd_frame(line(good("t1")) + b"\n"))

    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))

    assert single_reason(result) == reasons.COMPRESSED_UNSUPPORTED
    assert result.outcomes == {"quarantined": 1}
    row = result.quarantine[0]
    assert (row["line_no"], row["byte_offset"], row["raw_length"]) == (1, 0, path.stat().st_size)
    assert row["raw_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_zstd_file_is_read(tmp_path):
    assert zstd_decompressor_available()  # zstandard is a dependency
    path = tmp_path / "traces.jsonl.zst"
    path.write_bytes(zstd_frame(line(good("t1")) + b"\n"))
    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))
    assert [t["trace_id"] for t in result.traces] == ["t1"]


def test_damaged_gzip_keeps_the_lines_before_the_damage_and_quarantines_the_rest(tmp_path):
    lines = [line(good(f"t{i}")) for i in range(2000)]
    compressed = gzipped(*lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(compressed[: len(compressed) // 2])  # a torn upload

    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW))

    assert single_reason(result) == reasons.COMPRESSED_CORRUPT
    assert 0 < len(result.traces) < 2000
    assert result.outcomes == {"ingested": len(result.traces), "quarantined": 1}
    row = result.quarantine[0]
    assert row["line_no"] == len(result.traces) + 1
    assert row["raw_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_decompression_bomb_line_goes_through_the_hard_cap_without_being_held_in_memory(tmp_path):
    limits = ReadLimits(line_soft_cap_bytes=1_000, line_hard_cap_bytes=5_000, field_cap_bytes=100)
    bomb = b"a" * 40_000_000  # 40 MB of one line, about 40 kB compressed
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzipped(bomb + b"\r", line(good("t1"))))

    tracemalloc.start()
    try:
        result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW, limits=limits))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert single_reason(result) == reasons.OVERSIZE_LINE
    row = result.quarantine[0]
    assert (row["line_no"], row["byte_offset"], row["raw_length"]) == (1, 0, len(bomb))
    assert row["raw_sha256"] == hashlib.sha256(bomb).hexdigest()  # same hash as an in-memory read
    assert [t["trace_id"] for t in result.traces] == ["t1"]
    assert result.traces[0]["byte_offset"] == len(bomb) + 2
    assert result.flags[reasons.CRLF_STRIPPED] == 1
    assert peak < 8_000_000, peak
