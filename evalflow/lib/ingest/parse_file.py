"""One landing file in, canonical traces and an explained quarantine out.

Accounting is per record (a JSONL line, or a whole .json document): each record ends in exactly
one outcome, so ``ingested + quarantined + deduplicated == lines_read`` always holds.
- quarantined: the record itself is bad, or every trace it carried was rejected;
- deduplicated: an exact copy of an earlier record, or every trace it carried was already known
  with identical content;
- ingested: at least one of its traces was staged.
Traces rejected inside an otherwise good record (a conflict in an OTLP batch, say) still get a
quarantine row of their own (scope "trace"), so nothing disappears without a reason. A span
trace held back because one of its spans broke its dialect's rules (an OTLP span without
traceId or times) gets a "trace" row on every line that carried a span of it; a span without a
trace id that no span links to a trace gets a "span" row on its line.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from evalflow.lib.common.gcpause import paused_gc
from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.canonical import PAYLOAD_FIELDS, file_sha256
from evalflow.lib.ingest.dialects import DialectError, Span, detect_dialect
from evalflow.lib.ingest.dialects.spans import HeldBack, fold_spans, hold_back_broken
from evalflow.lib.ingest.reader import LANDING_SUFFIXES, ReadLimits, Record, read_records
from evalflow.lib.ingest.validation import (
    ValidationError,
    content_sha256,
    event_date,
    keeps_payload,
    normalize_trace,
)


@dataclass
class IngestOptions:
    now: datetime
    limits: ReadLimits = ReadLimits()
    skew_tolerance_s: float = 3600.0
    payload_keep_fraction: float = 1.0


@dataclass
class KnownTraces:
    """trace_id -> content hash of what is already staged (earlier files and this run)."""

    hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class FileResult:
    path: str
    file_sha256: str
    size_bytes: int
    traces: list[dict[str, Any]] = field(default_factory=list)  # staged rows
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)  # ingested / quarantined / deduplicated
    reasons: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    dialects: Counter = field(default_factory=Counter)
    traces_duplicate: int = 0

    @property
    def lines_read(self) -> int:
        return sum(self.outcomes.values())


def _quarantine_row(result: FileResult, record: Record, reason: str, detail: str | None,
                    scope: str, trace_id_sha256: str | None = None,
                    event_day: Any = None) -> dict[str, Any]:
    # trace ids can be user-chosen strings: store a hash, not the id, next to a rejected line.
    return {
        "file_sha256": result.file_sha256,
        "path": result.path,
        "line_no": record.line_no,
        "byte_offset": record.byte_offset,
        "raw_sha256": record.raw_sha256,
        "raw_length": record.raw_length,
        "scope": scope,
        "reason": reason,
        "detail": detail,
        "trace_id_sha256": trace_id_sha256,
        "event_date": event_day,
    }


Sources = list[Record]


def _documents_to_candidates(
    records: list[Record], result: FileResult, fallback_time: datetime
) -> tuple[list[tuple[dict[str, Any], Sources]], dict[int, str], list[tuple[HeldBack, Sources]]]:
    """(trace, records it came from) pairs, record-level rejections by line number, and span
    traces held back (with the records their spans came from)."""
    rejected: dict[int, str] = {}
    candidates: list[tuple[dict[str, Any], list[Record]]] = []
    held: list[tuple[HeldBack, Sources]] = []
    spans_by_record: list[tuple[Span, Record]] = []
    for record in records:
        dialect = detect_dialect(record.document)
        if dialect is None:
            record.reason = reasons.UNKNOWN_DIALECT if isinstance(record.document, (dict, list)) \
                else reasons.NOT_AN_OBJECT
            record.detail = "no adapter recognises this document"
            rejected[record.line_no] = record.reason
            continue
        result.dialects[dialect.name] += 1
        try:
            if dialect.to_spans is not None:
                spans = dialect.to_spans(record.document)
                if not spans:
                    raise DialectError(reasons.EMPTY_DOCUMENT, f"{dialect.name} document with no spans")
                spans_by_record.extend((span, record) for span in spans)
                continue
            traces = dialect.to_traces(record.document)
        except DialectError as exc:
            record.reason, record.detail = exc.reason, f"{dialect.name}: {exc}"
            rejected[record.line_no] = record.reason
            continue
        except Exception as exc:  # an adapter bug must not lose the rest of the file
            record.reason = reasons.ADAPTER_ERROR
            record.detail = f"{dialect.name} adapter failed: {type(exc).__name__}"
            rejected[record.line_no] = record.reason
            continue
        if not traces:
            record.reason, record.detail = reasons.EMPTY_DOCUMENT, f"{dialect.name} document with no trace"
            rejected[record.line_no] = record.reason
            continue
        candidates.extend((trace, [record]) for trace in traces)
    if spans_by_record:
        folded, held = _fold_file_spans(spans_by_record, rejected)
        candidates.extend(folded)
    for trace, _ in candidates:
        _fill_inferred_time(trace, fallback_time)
    return candidates, rejected, held


def _fold_file_spans(spans_by_record: list[tuple[Span, Record]], rejected: dict[int, str]
                     ) -> tuple[list[tuple[dict[str, Any], Sources]], list[tuple[HeldBack, Sources]]]:
    # Spans of one trace may sit on many lines: fold the whole file's spans together, then map
    # each trace back to the lines its spans came from. Traces with a broken span are held
    # back first, whole, so no trace is staged with a span missing.
    record_of = {id(span): record for span, record in spans_by_record}
    try:
        kept, held = hold_back_broken([span for span, _ in spans_by_record])
        traces = fold_spans(kept) if kept else []
    except Exception as exc:
        for record in {id(r): r for _, r in spans_by_record}.values():
            record.reason = reasons.ADAPTER_ERROR
            record.detail = f"span folding failed: {type(exc).__name__}"
            rejected[record.line_no] = record.reason
        return [], []
    records_by_trace: dict[Any, list[Record]] = defaultdict(list)
    for span in kept:
        record = record_of[id(span)]
        if record not in records_by_trace[span.trace_id]:
            records_by_trace[span.trace_id].append(record)
    folded = []
    for trace in traces:
        sources = records_by_trace.get(trace.get("trace_id")) or [record_of[id(kept[0])]]
        folded.append((trace, sources))
    held_sources = []
    for group in held:
        sources = list({id(r): r for r in (record_of[id(span)] for span in group.spans)}.values())
        held_sources.append((group, sources))
    return folded, held_sources


def _fill_inferred_time(trace: dict[str, Any], fallback_time: datetime) -> None:
    metadata = trace.get("metadata")
    if not isinstance(metadata, dict):
        return
    if reasons.TIMESTAMP_INFERRED in (metadata.get("flags") or []) and trace.get("timestamp") is None:
        # Bare span attributes carry no time: the file's modification time is the best we have,
        # and the flag tells every reader that it is an inference.
        trace["timestamp"] = fallback_time.isoformat()


def ingest_file(path: Path, known: KnownTraces, options: IngestOptions,
                display_path: str | None = None) -> FileResult:
    with paused_gc():  # see evalflow.lib.common.gcpause: a third of the parse time otherwise
        return _ingest_file(path, known, options, display_path)


def _ingest_file(path: Path, known: KnownTraces, options: IngestOptions,
                 display_path: str | None) -> FileResult:
    result = FileResult(path=display_path or str(path), file_sha256=file_sha256(path),
                        size_bytes=path.stat().st_size)
    fallback_time = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    seen_raw: set[str] = set()
    outcome: dict[int, str] = {}
    good_records: list[Record] = []
    all_records: list[Record] = []
    for record in read_records(path, options.limits):
        all_records.append(record)
        for flag in record.flags:
            result.flags[flag] += 1
        if record.reason is not None:
            outcome[record.line_no] = "quarantined"
            result.quarantine.append(_quarantine_row(result, record, record.reason, record.detail, "record"))
        elif record.raw_sha256 in seen_raw:
            outcome[record.line_no] = "deduplicated"
        else:
            good_records.append(record)
        seen_raw.add(record.raw_sha256)

    candidates, rejected, held = _documents_to_candidates(good_records, result, fallback_time)
    for record in good_records:
        if record.line_no in rejected:
            outcome[record.line_no] = "quarantined"
            result.quarantine.append(_quarantine_row(result, record, record.reason, record.detail, "record"))

    per_record: dict[int, Counter] = defaultdict(Counter)
    for group, sources in held:
        tid_hash = hashlib.sha256(group.trace_id.encode()).hexdigest() if group.trace_id else None
        for record in sources:  # a row on every line the trace spread over: each is findable
            result.quarantine.append(_quarantine_row(
                result, record, group.reason, group.detail, "trace" if group.trace_id else "span",
                tid_hash))
            per_record[record.line_no]["rejected"] += 1
    for trace, sources in candidates:
        verdict = _stage_trace(trace, sources, known, options, result)
        for record in sources:
            per_record[record.line_no][verdict] += 1
    for record in good_records:
        if record.line_no in outcome:
            continue
        verdicts = per_record.get(record.line_no, Counter())
        if verdicts["staged"]:
            outcome[record.line_no] = "ingested"
        elif verdicts["duplicate"] and not verdicts["rejected"]:
            outcome[record.line_no] = "deduplicated"
        else:
            outcome[record.line_no] = "quarantined"
    result.outcomes.update(outcome.values())
    for row in result.quarantine:
        result.reasons[row["reason"]] += 1
    return result


def _stage_trace(trace: dict[str, Any], sources: list[Record], known: KnownTraces,
                 options: IngestOptions, result: FileResult) -> str:
    first = sources[0]
    flags = [f for record in sources for f in record.flags]
    metadata = trace.get("metadata") if isinstance(trace.get("metadata"), dict) else {}
    adapter_flags = [f for f in metadata.get("flags", []) if isinstance(f, str)]
    flags += adapter_flags
    try:
        trace, time_flags = normalize_trace(trace, now=options.now,
                                            skew_tolerance_s=options.skew_tolerance_s)
    except ValidationError as exc:
        tid = trace.get("trace_id")
        tid_hash = hashlib.sha256(str(tid).encode()).hexdigest() if tid not in (None, "") else None
        result.quarantine.append(_quarantine_row(result, first, exc.reason, str(exc), "trace", tid_hash))
        return "rejected"
    flags = sorted(set(flags + time_flags))
    digest = content_sha256(trace)
    previous = known.hashes.get(trace["trace_id"])
    if previous == digest:
        result.traces_duplicate += 1
        return "duplicate"
    if previous is not None:
        tid_hash = hashlib.sha256(trace["trace_id"].encode()).hexdigest()
        result.quarantine.append(_quarantine_row(
            result, first, reasons.CONFLICT,
            "trace_id already staged with different content; the first version is kept",
            "trace", tid_hash, event_date(trace)))
        return "rejected"
    known.hashes[trace["trace_id"]] = digest
    truncated = [t for record in sources for t in record.truncated_fields]
    if not keeps_payload(trace["trace_id"], options.payload_keep_fraction):
        for name in PAYLOAD_FIELDS:
            trace[name] = [] if isinstance(trace.get(name), list) else None
        trace["payload_kept"] = False
    result.traces.append({
        **trace,
        "event_date": event_date(trace),
        "content_sha256": digest,
        "flags": flags,
        "truncated_fields": truncated,
        "source_file_sha256": result.file_sha256,
        "source_path": result.path,
        "line_no": first.line_no,
        "byte_offset": first.byte_offset,
        "dialect": (trace.get("metadata") or {}).get("dialect"),
    })
    # Record-level flags (BOM, CRLF) were counted per line; these are per staged trace.
    for flag in set(time_flags + adapter_flags):
        result.flags[flag] += 1
    return "staged"


def iter_landing_files(landing_dir: Path) -> Iterable[Path]:
    """Data files under the landing folder, in a stable order (hidden files skipped); gzip and
    zstd names (``.jsonl.gz``, ``.json.zst`` ...) included: the reader decompresses them."""
    if not landing_dir.exists():
        return []
    return sorted(
        p for p in landing_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(landing_dir).parts)
        and p.name.lower().endswith(LANDING_SUFFIXES)
    )
