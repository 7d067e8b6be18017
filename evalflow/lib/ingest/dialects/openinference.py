"""OpenInference and other flat-attribute span exports -> `Span`s.

Two dialects live here:

- ``openinference``: span objects whose ``attributes`` is a flat (dotted) or nested map, with
  ids under ``context`` (Phoenix / OpenInference exports) or ``spanContext`` (OpenTelemetry JS
  ReadableSpan, which is what the Vercel AI SDK exports). A document may be one span, a list
  of spans, or a map of name -> list of spans (``spans-by-operation.json``).
- ``genai_attributes``: a bare attribute dict (one span's attributes with no ids and no time,
  as GenAI / OpenInference examples are often shared). It still yields one trace: the id is
  derived from the content and the trace is flagged so ingestion fills in the landing time.
  It is registered last (EXTRA_DIALECTS) because "a dict with gen_ai.* keys" is the loosest
  shape we accept.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects import Dialect, Span
from evalflow.lib.ingest.dialects.spans import derived_trace_id, vercel_time

_CONTEXT_KEYS = ("context", "spanContext", "span_context")
_ID_HINT_KEYS = (*_CONTEXT_KEYS, "trace_id", "traceId", "span_id", "spanId")
_START_KEYS = ("start_time", "startTime", "startTimeUnixNano", "start_time_unix_nano")
_END_KEYS = ("end_time", "endTime", "endTimeUnixNano", "end_time_unix_nano")
_ERROR_STATUSES = {2, "2", "ERROR", "error", "STATUS_CODE_ERROR"}

# A bare dict is claimed only when it carries one of these (exact keys or key prefixes).
_MARKER_KEYS = {
    "openinference.span.kind",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.retrieval.documents",
    "llm.model_name",
    "ai.operationId",
}
_MARKER_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.token_count.",
    "retrieval.documents.",
    "gen_ai.usage.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.tool.",
)


# --- openinference: span objects ------------------------------------------------------------


def detect(document: Any) -> bool:
    return bool(_span_objects(document))


def to_spans(document: Any) -> list[Span]:
    """Spans of one document; [] when it holds none (never raises on foreign JSON)."""
    return [_span(raw) for raw in _span_objects(document)]


def is_span_object(value: Any) -> bool:
    """A span: an ``attributes`` map plus an id or a name (a bare attribute dict has neither)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("attributes"), dict)
        and (any(key in value for key in _ID_HINT_KEYS) or isinstance(value.get("name"), str))
    )


def _span_objects(document: Any) -> list[dict[str, Any]]:
    if is_span_object(document):
        return [document]
    if isinstance(document, list):
        return document if document and all(is_span_object(s) for s in document) else []
    if isinstance(document, dict) and document:
        # {"ai.generateText": [span, ...], ...}: spans grouped by operation name
        groups = list(document.values())
        if all(isinstance(g, list) and g and all(is_span_object(s) for s in g) for g in groups):
            return [span for group in groups for span in group]
    return []


def _span(raw: dict[str, Any]) -> Span:
    context = next(
        (raw[k] for k in _CONTEXT_KEYS if isinstance(raw.get(k), dict)),
        {},
    )
    attributes = flatten_attributes(raw.get("attributes") or {})
    span_kind = raw.get("span_kind") or raw.get("spanKind")
    if isinstance(span_kind, str) and "openinference.span.kind" not in attributes:
        attributes["openinference.span.kind"] = span_kind  # Phoenix puts it beside attributes
    status, message = _status(raw)
    # A span without a trace id gets one derived from its content here (not at fold time) so
    # the ingestion layer can map the folded trace back to the line it came from.
    trace_id = _str_id(_pick(context, raw, "trace_id", "traceId")) or derived_trace_id(raw)
    return Span(
        trace_id=trace_id,
        span_id=_str_id(_pick(context, raw, "span_id", "spanId")),
        parent_id=_parent_id(raw),
        name=str(raw.get("name") or ""),
        start=_time(_pick(raw, {}, *_START_KEYS)),
        end=_time(_pick(raw, {}, *_END_KEYS)),
        attributes=attributes,
        status=status,
        status_message=message,
        events=[_event(e) for e in raw.get("events") or [] if isinstance(e, dict)],
        resource=_resource(raw.get("resource")),
        dialect="openinference",
    )


def flatten_attributes(attributes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested maps -> dotted keys (Phoenix nests ``{"llm": {"model_name": ...}}``).

    Lists are left alone: ``gen_ai.response.finish_reasons`` is a real list, and the readers
    in spans.py accept structured message/document lists as well as indexed keys.
    """
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_attributes(value, name + "."))
        else:
            flat[name] = value
    return flat


def _pick(first: dict[str, Any], second: dict[str, Any], *keys: str) -> Any:
    for mapping in (first, second):
        for key in keys:
            if mapping.get(key) not in (None, ""):
                return mapping[key]
    return None


def _parent_id(raw: dict[str, Any]) -> str | None:
    direct = _pick(raw, {}, "parent_id", "parentId", "parentSpanId", "parent_span_id")
    if direct is not None:
        return _str_id(direct)
    parent = raw.get("parentSpanContext") or raw.get("parent_span_context") or raw.get("parent")
    if isinstance(parent, dict):
        return _str_id(_pick(parent, {}, "spanId", "span_id"))
    return None


def _str_id(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _time(value: Any) -> Any:
    """Raw time; Vercel's HrTime [s, ns] becomes float seconds, digit strings numbers."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return vercel_time(value)


def _status(raw: dict[str, Any]) -> tuple[str, str | None]:
    status = raw.get("status")
    code, message = None, None
    if isinstance(status, dict):
        code = _pick(status, {}, "code", "status_code", "statusCode")
        message = _pick(status, {}, "message", "description")
    elif isinstance(status, (str, int)):
        code = status
    code = code if code is not None else _pick(raw, {}, "status_code", "statusCode")
    message = message or _pick(raw, {}, "status_message", "statusMessage")
    return ("error" if code in _ERROR_STATUSES else "ok"), (str(message) if message else None)


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    attributes = raw.get("attributes")
    return {
        "name": raw.get("name"),
        "time": _time(_pick(raw, {}, "timestamp", "time")),
        "attributes": flatten_attributes(attributes) if isinstance(attributes, dict) else {},
    }


def _resource(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    attributes = raw.get("attributes", raw)
    return flatten_attributes(attributes) if isinstance(attributes, dict) else {}


# --- genai_attributes: a bare attribute dict ------------------------------------------------


def detect_attributes(document: Any) -> bool:
    if not isinstance(document, dict) or is_span_object(document) or "attributes" in document:
        return False
    return any(
        isinstance(key, str) and (key in _MARKER_KEYS or key.startswith(_MARKER_PREFIXES))
        for key in document
    )


def attributes_to_spans(document: Any) -> list[Span]:
    """One span without ids or time; the fold flags both (TRACE_ID_DERIVED, TIMESTAMP_INFERRED)."""
    if not detect_attributes(document):
        return []
    attributes = flatten_attributes(document)
    name = attributes.get("gen_ai.operation.name") or attributes.get("openinference.span.kind")
    return [
        Span(
            trace_id=derived_trace_id(document),
            span_id=None,
            parent_id=None,
            name=str(name or "span"),
            start=None,
            end=None,
            attributes=attributes,
            dialect="genai_attributes",
        )
    ]


DIALECT = Dialect("openinference", detect, to_spans=to_spans)
ATTRIBUTES_DIALECT = Dialect("genai_attributes", detect_attributes, to_spans=attributes_to_spans)
EXTRA_DIALECTS = [ATTRIBUTES_DIALECT]
