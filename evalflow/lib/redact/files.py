"""Redact files for sharing: `{"id", "text"}` lines, or canonical trace JSONL.

Both fail closed: a line that cannot be read or redacted is reported (line number, reason,
sha256 of its bytes) in a quarantine report next to the output and never written out.
Outputs are written to a temporary file and renamed, so an interrupted run leaves nothing half
written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from evalflow.lib.redact.detection import Detection
from evalflow.lib.redact.pseudonym import Pseudonymizer
from evalflow.lib.redact.traces import TraceRedactor, apply_detections


@dataclass
class FileRedaction:
    written: int = 0
    quarantined: int = 0
    entities: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _reject(report: list[dict[str, Any]], summary: FileRedaction, line_no: int, raw: bytes, reason: str) -> None:
    report.append({"line_no": line_no, "reason": reason, "raw_sha256": hashlib.sha256(raw).hexdigest()})
    summary.quarantined += 1
    summary.reasons[reason] = summary.reasons.get(reason, 0) + 1


def _write_atomically(path: Path, lines: list[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(line + b"\n" for line in lines))
    tmp.replace(path)


def redact_text_file(source: Path, output: Path, detect_batch: Callable[[Sequence[str]], list[list[Detection]]],
                     pseudonymizer: Pseudonymizer, batch_size: int = 512) -> FileRedaction:
    summary, report, out = FileRedaction(), [], []
    records: list[tuple[int, bytes, Any, str]] = []
    for line_no, raw in enumerate(source.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            _reject(report, summary, line_no, raw, "invalid_json")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            _reject(report, summary, line_no, raw, "missing_text")
            continue
        records.append((line_no, raw, obj.get("id"), obj["text"]))
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        try:
            found = detect_batch([text for *_, text in batch])
        except Exception:
            found = []
            for _line_no, _raw, _, text in batch:  # isolate the record that breaks the detector
                try:
                    found.append(detect_batch([text])[0])
                except Exception:
                    found.append(None)
        for (line_no, raw, record_id, text), detections in zip(batch, found):
            if detections is None:
                _reject(report, summary, line_no, raw, "redaction_failed")
                continue
            out.append(orjson.dumps({
                "id": record_id,
                "redacted_text": apply_detections(text, detections, pseudonymizer),
                "entities": [{"type": d.entity_type, "start": d.start, "end": d.end, "score": round(d.score, 4)}
                             for d in detections],
            }))
            summary.written += 1
            summary.entities += len(detections)
    _write_atomically(output, out)
    _write_atomically(output.with_name(output.name + ".quarantine.jsonl"), [orjson.dumps(r) for r in report])
    return summary


def redact_trace_file(source: Path, output: Path, redactor: TraceRedactor, ingest_options) -> FileRedaction:
    """Canonical (or any supported dialect) trace JSONL -> redacted canonical JSONL."""
    from evalflow.lib.ingest.canonical import CANONICAL_FIELDS
    from evalflow.lib.ingest.parse_file import KnownTraces, ingest_file

    summary, report, out = FileRedaction(), [], []
    result = ingest_file(source, KnownTraces(), ingest_options)
    for row in result.quarantine:
        report.append({"line_no": row["line_no"], "reason": row["reason"], "raw_sha256": row["raw_sha256"]})
        summary.quarantined += 1
        summary.reasons[row["reason"]] = summary.reasons.get(row["reason"], 0) + 1
    traces = [{k: row[k] for k in CANONICAL_FIELDS} for row in result.traces]
    redacted = redactor.redact(traces)
    for failure in redacted.failures:
        row = result.traces[failure.trace_index]
        report.append({"line_no": row["line_no"], "reason": failure.reason, "trace_id_sha256": failure.trace_id_sha256})
        summary.quarantined += 1
        summary.reasons[failure.reason] = summary.reasons.get(failure.reason, 0) + 1
    for trace in redacted.traces:
        if trace is not None:
            out.append(orjson.dumps(trace, default=str))
            summary.written += 1
    summary.entities = sum(redacted.entity_counts.values())
    _write_atomically(output, out)
    _write_atomically(output.with_name(output.name + ".quarantine.jsonl"), [orjson.dumps(r) for r in report])
    return summary
