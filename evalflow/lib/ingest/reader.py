"""Read a landing file record by record, and say exactly what is wrong with each bad one.

We do not hand the file to DuckDB's or polars' JSON readers: with ``ignore_errors`` they turn bad
lines into NULL rows or still abort the whole file (measured), and neither reports line numbers.
Each record here carries its file position and the sha256 of its raw bytes, so a quarantined
line can be found again without copying its content (which may hold PII) into the warehouse.

A record is a line of a JSONL file, or a whole ``.json`` file that holds one JSON document.

Compressed files are told by their magic bytes, whatever their name: gzip is read through the
standard library, zstd when a zstd module is installed (``compression.zstd`` on Python 3.14+,
or ``zstandard``); otherwise the file is one ``compressed_unsupported`` record. Line numbers and
byte offsets of a compressed file count in the decompressed stream; the file's content hash
stays the hash of the bytes as landed. Lines are read in chunks bounded by the hard line cap, so
a line that decompresses to gigabytes is hashed as it streams by, never held whole.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson

from evalflow.lib.ingest import reasons

BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.txt")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")
DATA_SUFFIXES = (".json", ".jsonl", ".ndjson")
# What the landing folder scan picks up: the data suffixes, plain or compressed.
LANDING_SUFFIXES = DATA_SUFFIXES + tuple(d + c for d in DATA_SUFFIXES for c in COMPRESSED_SUFFIXES)
# Room over the hard cap for what decode_record strips before measuring (BOM, CR) and the newline.
_LINE_SLACK = 8
_CHUNK = 1 << 20
# What a damaged gzip / zstd stream raises part-way (truncated: EOFError; bad CRC or header:
# BadGzipFile; zstd modules raise their own ZstdError, matched by name below). Not OSError in
# general: a failing disk is not bad input and must stop the landing.
_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


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


def _oversize_record(handle: BinaryIO, first: bytes, line_no: int, offset: int,
                     limits: ReadLimits) -> tuple[Record, int]:
    """A line longer than the hard cap: read on in chunks, hashing as it goes, so the record
    gets the same sha256 and length as an in-memory read while memory stays bounded. Returns
    the record and the bytes consumed (newline included)."""
    hasher = hashlib.sha256()
    flags: list[str] = []
    consumed = len(first)
    chunk = first
    if line_no == 1 and chunk.startswith(BOM):
        chunk = chunk[len(BOM):]
        flags.append(reasons.BOM_STRIPPED)
    held = b""  # the last byte, held back in case it is the CR of a CRLF line end
    length = 0
    while True:
        ended = chunk.endswith(b"\n") or not chunk
        data = held + (chunk[:-1] if chunk.endswith(b"\n") else chunk)
        if ended:
            if data.endswith(b"\r"):
                data = data[:-1]
                flags.append(reasons.CRLF_STRIPPED)
            hasher.update(data)
            length += len(data)
            break
        hasher.update(data[:-1])
        length += len(data) - 1
        held = data[-1:]
        chunk = handle.readline(_CHUNK)
        consumed += len(chunk)
    record = Record(line_no=line_no, byte_offset=offset, raw_sha256=hasher.hexdigest(),
                    raw_length=length, flags=flags, reason=reasons.OVERSIZE_LINE,
                    detail=f"{length} bytes, over the hard cap of {limits.line_hard_cap_bytes}")
    return record, consumed


@dataclass
class _Position:
    """How far a stream has been read in whole lines: where a damaged stream's rest starts."""

    line_no: int = 0
    offset: int = 0


def _iter_line_records(handle: BinaryIO, limits: ReadLimits, position: _Position) -> Iterator[Record]:
    """Every non-blank line of a stream as a Record; no line is read past the hard cap."""
    limit = limits.line_hard_cap_bytes + _LINE_SLACK
    while True:
        line = handle.readline(limit)
        if not line:
            return
        line_no, offset = position.line_no + 1, position.offset
        if len(line) == limit and not line.endswith(b"\n"):
            record, consumed = _oversize_record(handle, line, line_no, offset, limits)
            position.line_no, position.offset = line_no, offset + consumed
            yield record
            continue
        position.line_no, position.offset = line_no, offset + len(line)
        body = line[:-1] if line.endswith(b"\n") else line
        if not body.strip() or body.strip() == BOM:
            continue  # blank lines are not records (and are not counted as lines read)
        yield decode_record(body, line_no, offset, limits)


def compression_of(path: Path) -> str | None:
    """"gzip", "zstd" or None, from the file's first bytes (names lie: a gzip named .jsonl)."""
    with path.open("rb") as handle:
        head = handle.read(len(ZSTD_MAGIC))
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def zstd_decompressor_available() -> bool:
    """Whether a zstd module is importable (the project installs zstandard; a user's own
    environment may lack it)."""
    for module in ("compression.zstd", "zstandard"):  # stdlib from Python 3.14; PyPI package
        try:
            __import__(module)
        except ImportError:
            continue
        return True
    return False


def _zstd_open(path: Path) -> BinaryIO:
    """A decompressing reader for a zstd file (zstd_decompressor_available() must be true)."""
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        import zstandard

        return io.BufferedReader(
            zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True), _CHUNK)
    return zstd.open(path, "rb")


def _open_decompressed(path: Path, compression: str | None) -> BinaryIO:
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "zstd":
        return _zstd_open(path)
    return path.open("rb")


def _is_stream_error(exc: BaseException) -> bool:
    return isinstance(exc, _STREAM_ERRORS) or type(exc).__name__ == "ZstdError"


def _whole_file_record(path: Path, line_no: int, offset: int, reason: str, detail: str) -> Record:
    """A record standing for the (rest of the) file as landed: it has no decoded bytes to hash,
    so it carries the landed file's sha256 and size."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return Record(line_no=line_no, byte_offset=offset, raw_sha256=digest.hexdigest(),
                  raw_length=path.stat().st_size, reason=reason, detail=detail)


def _logical_name(path: Path) -> str:
    """The name without a compression suffix: "a.json.gz" is a .json file."""
    name = path.name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_whole_document_file(path: Path, head: bytes = b"") -> bool:
    """A .json file holding one document (pretty-printed over many lines), not JSONL."""
    name = _logical_name(path)
    if name.endswith(JSONL_SUFFIXES):
        return False
    return name.endswith(".json")


def read_records(path: Path, limits: ReadLimits = ReadLimits()) -> Iterator[Record]:
    """Every record of a file, good and bad, in file order."""
    compression = compression_of(path)
    if compression == "zstd" and not zstd_decompressor_available():
        yield _whole_file_record(path, 1, 0, reasons.COMPRESSED_UNSUPPORTED,
                                 "zstd-compressed file; no zstd decompressor is installed")
        return
    if is_whole_document_file(path):
        try:
            with _open_decompressed(path, compression) as handle:
                whole = _read_whole_document(handle, compression, limits)
        except Exception as exc:
            if compression is None or not _is_stream_error(exc):
                raise
            yield _whole_file_record(path, 1, 0, reasons.COMPRESSED_CORRUPT,
                                     f"{compression} stream damaged: {type(exc).__name__}")
            return
        if whole is not None:
            yield whole
            return
        # A ".json" file that is really JSONL (or too big to be one document): read it by line.
    position = _Position()
    try:
        with _open_decompressed(path, compression) as handle:
            yield from _iter_line_records(handle, limits, position)
    except Exception as exc:
        if compression is None or not _is_stream_error(exc):
            raise
        # The lines decoded before the damage were yielded; the rest of the file (from the end
        # of the last whole line) is one record.
        yield _whole_file_record(
            path, position.line_no + 1, position.offset, reasons.COMPRESSED_CORRUPT,
            f"{compression} stream damaged after line {position.line_no}: {type(exc).__name__}; "
            "nothing past that line is read")


def _read_whole_document(handle: BinaryIO, compression: str | None, limits: ReadLimits) -> Record | None:
    """The whole file as one record, or None to read it line by line instead."""
    if compression is None:
        raw = handle.read()  # bounded by the file's size on disk, as landed
    else:
        # Decompressed size is unbounded: read no more than a document may be. A bigger one is
        # read line by line (each line capped), which also covers JSONL named ".json.gz".
        raw = handle.read(limits.line_hard_cap_bytes + _LINE_SLACK + 1)
        if len(raw) > limits.line_hard_cap_bytes + _LINE_SLACK:
            return None
    whole = decode_record(raw.rstrip(b"\n"), 1, 0, limits)
    if whole.reason is None or raw.count(b"\n") <= 1:
        return whole
    return None
