"""Reason codes: why a line was quarantined, and flags on lines that were kept.

Every bad line gets exactly one reason code (the first problem found); kept lines can carry
several flags. Codes are stable strings: tests, the simulator's ground truth, the quarantine
table and the README all use these names.
"""

# --- quarantine reasons: the line is not ingested -------------------------------------------
INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8
NUL_BYTE = "nul_byte"  # a NUL byte inside the line (binary garbage, a torn write)
OVERSIZE_LINE = "oversize_line"  # the line exceeds the hard line cap; not even parsed
TRUNCATED_JSON = "truncated_json"  # starts like JSON but ends early (a torn or cut line)
INVALID_JSON = "invalid_json"  # not JSON at all
TOO_DEEP = "too_deep"  # nesting deeper than the cap (parser bombs)
NOT_AN_OBJECT = "not_an_object"  # valid JSON but not an object/list a dialect accepts
UNKNOWN_DIALECT = "unknown_dialect"  # an object no adapter recognises
# Also an OTLP span without traceId / start / end time (OTLP requires all three): the span's
# whole trace is held back rather than folded without it.
MISSING_TRACE_ID = "missing_trace_id"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"  # present but unparseable
WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type (tokens as "ten", messages as 3...)
FUTURE_TIMESTAMP = "future_timestamp"  # later than now + the clock-skew tolerance
TIMESTAMP_BEFORE_2000 = "timestamp_before_2000"
END_BEFORE_START = "end_before_start"
INVALID_VALUE = "invalid_value"  # right type, impossible value (negative tokens, unknown status)
EMPTY_DOCUMENT = "empty_document"  # a recognised dialect that holds no trace at all
CONFLICT = "conflict"  # same trace_id as an earlier record, different content
ADAPTER_ERROR = "adapter_error"  # a recognised dialect whose document could not be folded
# A compressed file (told by its magic bytes) this installation cannot decompress (zstd without
# a zstd module): one record for the whole file, so it is counted instead of read as garbage.
COMPRESSED_UNSUPPORTED = "compressed_unsupported"
# A compressed stream that breaks off or fails its check (a torn upload): the lines decoded
# before the damage are read; the rest of the file is this one record.
COMPRESSED_CORRUPT = "compressed_corrupt"

QUARANTINE_REASONS = (
    INVALID_UTF8,
    NUL_BYTE,
    OVERSIZE_LINE,
    TRUNCATED_JSON,
    INVALID_JSON,
    TOO_DEEP,
    NOT_AN_OBJECT,
    UNKNOWN_DIALECT,
    MISSING_TRACE_ID,
    MISSING_TIMESTAMP,
    BAD_TIMESTAMP,
    WRONG_TYPE,
    FUTURE_TIMESTAMP,
    TIMESTAMP_BEFORE_2000,
    END_BEFORE_START,
    INVALID_VALUE,
    EMPTY_DOCUMENT,
    CONFLICT,
    ADAPTER_ERROR,
    COMPRESSED_UNSUPPORTED,
    COMPRESSED_CORRUPT,
)

# --- flags: the line is ingested, with a note ----------------------------------------------
BOM_STRIPPED = "bom_stripped"
CRLF_STRIPPED = "crlf_stripped"
FIELD_TRUNCATED = "field_truncated"  # an oversize string field was cut at a UTF-8 boundary
EPOCH_MILLISECONDS = "epoch_milliseconds"  # numeric timestamp read as ms (or us/ns), not s
EPOCH_SECONDS = "epoch_seconds"
NAIVE_TIMESTAMP = "naive_timestamp_assumed_utc"  # no timezone given: read as UTC
CLOCK_SKEW = "clock_skew"  # slightly in the future, within tolerance: kept and flagged
# Only for span shapes that carry no ids or times by design (bare GenAI / OpenInference attribute
# dicts); an OTLP span without them is quarantined instead (MISSING_TRACE_ID, MISSING_TIMESTAMP).
TIMESTAMP_INFERRED = "timestamp_inferred"  # the document had no time at all (bare span attrs)
TRACE_ID_DERIVED = "trace_id_derived"  # the document had no id; one was derived from content

# --- not a quarantine: exact duplicates are dropped and counted --------------------------
DUPLICATE = "duplicate"
