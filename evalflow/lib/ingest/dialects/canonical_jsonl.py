"""Our own canonical JSONL: one trace object per line, fields as in evalflow.lib.ingest.canonical."""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.canonical import CANONICAL_FIELDS, new_trace
from evalflow.lib.ingest.dialects import Dialect

# Keys that mark another dialect's document; a canonical line never has them at the top level.
_FOREIGN_KEYS = {"resourceSpans", "observations", "post", "patch", "run_type", "spanContext",
                 "attributes", "context", "parent_run_id"}
_CANONICAL_KEYS = set(CANONICAL_FIELDS)


def detect(document: Any) -> bool:
    if not isinstance(document, dict) or _FOREIGN_KEYS & document.keys():
        return False
    # Two canonical keys: enough to tell a canonical line that lacks trace_id or timestamp
    # (which must be quarantined for that reason) from an unrelated object.
    return len(_CANONICAL_KEYS & document.keys()) >= 2


def to_traces(document: dict[str, Any]) -> list[dict[str, Any]]:
    fields = dict(document)
    metadata = fields.pop("metadata", None)
    trace = new_trace(**fields)
    if metadata is not None:
        # Keep a non-dict metadata value as it is so validation can reject it as wrong_type.
        trace["metadata"] = {**metadata, **trace["metadata"]} if isinstance(metadata, dict) else metadata
    if isinstance(trace["metadata"], dict):
        trace["metadata"].setdefault("dialect", "canonical")
    return [trace]


DIALECT = Dialect(name="canonical", detect=detect, to_traces=to_traces)
