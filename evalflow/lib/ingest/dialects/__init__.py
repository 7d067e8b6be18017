"""Trace dialects: detect the format of a parsed JSON document and fold it into canonical traces.

A *document* is one parsed JSON value: a line of a JSONL file, or a whole ``.json`` file.
Two kinds of adapter exist:

- trace adapters (canonical, langfuse, langsmith) turn one document into finished traces;
- span adapters (otlp, openinference, genai attribute dicts, vercel) turn one document into
  `Span`s. Spans of one trace may be spread over many lines of a file, so the reader collects
  the spans of a whole file and folds them with `evalflow.lib.ingest.dialects.spans.fold_spans`.

Adapters never validate timestamps or ids beyond what they need to fold: they copy the raw
timestamp (ISO string, epoch number) into the trace and `evalflow.lib.ingest.validation` decides what is
acceptable, so every dialect is held to the same rules and reason codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


class DialectError(ValueError):
    """A document that looks like a dialect but cannot be folded; `reason` is a quarantine code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Span:
    """One span in a neutral shape: OTLP, OpenInference and Vercel exports all reduce to this."""

    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    name: str
    start: Any  # raw: epoch number (s/ms/us/ns) or ISO string
    end: Any
    attributes: dict[str, Any] = field(default_factory=dict)  # flat, dotted keys
    status: str = "ok"  # "ok" | "error"
    status_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    dialect: str = "otlp"
    # (reason code, detail) when the span breaks a rule of its own dialect (an OTLP span without
    # traceId or times). Ingestion then quarantines the span's whole trace: folding the rest
    # would stage a trace missing a span (its model call, its root...).
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class Dialect:
    name: str
    detect: Callable[[Any], bool]
    # exactly one of these is set
    to_traces: Callable[[Any], list[dict[str, Any]]] | None = None
    to_spans: Callable[[Any], list[Span]] | None = None


def registry() -> list[Dialect]:
    """Dialects in order of preference (docs/dialects.md): the first whose detect() accepts wins."""
    from evalflow.lib.ingest.dialects import canonical_jsonl, langfuse, langsmith, openinference, otlp

    return [
        canonical_jsonl.DIALECT,
        otlp.DIALECT,
        openinference.DIALECT,
        langfuse.DIALECT,
        langsmith.DIALECT,
        *getattr(openinference, "EXTRA_DIALECTS", []),
    ]


def detect_dialect(document: Any) -> Dialect | None:
    for dialect in registry():
        if dialect.detect(document):
            return dialect
    return None
