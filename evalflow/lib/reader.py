"""Read a landing file record by record, and say exactly what is wrong with each bad one.

We do not hand the file to DuckDB's or polars' JSON readers: with ``ignore_errors`` they turn bad
lines into NULL rows or still abort the whole file (measured), and neither reports line numbers.
Each record here carries its file position and the sha256 of its raw bytes, so a quarantined
line can be found again without copying its content (which may hold PII) into the warehouse.

A record is a line of a JSONL file, or a whole ``.json`` file that holds one JSON document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from evalflow.lib import reasons

BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.txt")


@dataclass
class Record:
    line_no: int  # 1-based; 1 for a whole-document file
    byte_offset: int  # offset of the record's first byte in the file
    raw_sha256: str
    raw_length: int
    document: Any = None
    reason: str | None = None  # set when the record is rejected
    detail: str | None = None  # a message that never quotes the raw content
    flags: list[str] = field(default_factory=list)
    truncated_fields: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReadLimits:
    line_soft_cap_bytes: int = 1_000_000
    line_hard_cap_bytes: int = 32_000_000
    field_cap_bytes: int = 32_000
    max_json_depth: int = 64


def _nesting_depth(raw: bytes) -> int:
    """Maximum bracket depth outside strings: a scan only made for suspicious lines."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


def _truncate_utf8(text: str, cap_bytes: int) -> str:
    # Cutting the encoded bytes and decoding with "ignore" drops a split multi-byte character
    # at the end instead of producing invalid UTF-8.
    return text.encode("utf-8")[:cap_bytes].decode("utf-8", errors="ignore")


def truncate_long_strings(
    value: Any, cap_bytes: int, found: list[dict[str, Any]], path: str = "$"
) -> Any:
    """Copy of value with every string over cap_bytes cut; each cut is recorded in `found`."""
    if isinstance(value, str):
        encoded_length = len(value.encode("utf-8")) if len(value) * 4 > cap_bytes else len(value)
        if encoded_length > cap_bytes:
            found.append(
                {
                    "path": path,
                    "original_bytes": encoded_length,
                    "sha256": hashlib.sha256(value.encode("utf-8")).hexdigest(),
                }
            )
            return _truncate_utf8(value, cap_bytes)
        return value
    if isinstance(value, dict):
        return {k: truncate_long_strings(v, cap_bytes, found, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [truncate_long_strings(v, cap_bytes, found, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def decode_record(raw: bytes, line_no: int, offset: int, limits: ReadLimits) -> Record:
    """Turn raw bytes (without the newline) into a Record: a document, or a reason."""
    flags: list[str] = []
    if line_no == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
        flags.append(reasons.BOM_STRIPPED)
    if raw.endswith(b"\r"):
        raw = raw[:-1]
        flags.append(reasons.CRLF_STRIPPED)
    record = Record(
        line_no=line_no,
        byte_offset=offset,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_length=len(raw),
        flags=flags,
    )
    if len(raw) > limits.line_hard_cap_bytes:
        record.reason, record.detail = (
            reasons.OVERSIZE_LINE,
            f"{len(raw)} bytes, over the hard cap of {limits.line_hard_cap_bytes}",
        )
        return record
    if b"\x00" in raw:
        record.reason, record.detail = reasons.NUL_BYTE, f"NUL byte at offset {raw.index(0)}"
        return record
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        record.reason, record.detail = reasons.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}"
        return record
    if raw.count(b"{") + raw.count(b"[") > limits.max_json_depth:
        depth = _nesting_depth(raw)
        if depth > limits.max_json_depth:
            record.reason = reasons.TOO_DEEP
            record.detail = f"nesting depth {depth} over the cap of {limits.max_json_depth}"
            return record
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        stripped = raw.rstrip()
        looks_like_json = stripped[:1] in (b"{", b"[")
        if looks_like_json and exc.pos >= len(stripped) - 1:
            record.reason = reasons.TRUNCATED_JSON
            record.detail = f"JSON ends early after {len(stripped)} bytes"
        else:
            record.reason = reasons.INVALID_JSON
            record.detail = f"not JSON: {exc.msg} at byte {exc.pos}"
        return record
    if len(raw) > limits.line_soft_cap_bytes:
        document = truncate_long_strings(document, limits.field_cap_bytes, record.truncated_fields)
        if record.truncated_fields:
            record.flags.append(reasons.FIELD_TRUNCATED)
    record.document = document
    return record


def _iter_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    offset = 0
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            length = len(line)
            body = line[:-1] if line.endswith(b"\n") else line
            yield line_no, offset, body
            offset += length


def is_whole_document_file(path: Path, head: bytes) -> bool:
    """A .json file holding one document (pretty-printed over many lines), not JSONL."""
    if path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    return path.suffix.lower() == ".json"


def read_records(path: Path, limits: ReadLimits = ReadLimits()) -> Iterator[Record]:
    """Every record of a file, good and bad, in file order."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if is_whole_document_file(path, head):
        raw = path.read_bytes()
        whole = decode_record(raw.rstrip(b"\n"), 1, 0, limits)
        if whole.reason is None or raw.count(b"\n") <= 1:
            yield whole
            return
        # A ".json" file that is really JSONL: fall through to line mode.
    for line_no, offset, body in _iter_lines(path):
        if not body.strip() or body.strip() == BOM:
            continue  # blank lines are not records (and are not counted as lines read)
        yield decode_record(body, line_no, offset, limits)
