"""OTLP JSON (an ExportTraceServiceRequest) -> `Span`s.

The OTLP/JSON encoding wraps every attribute value in a typed AnyValue
(``{"stringValue": ...}``, ``{"intValue": "97"}`` with 64-bit ints as strings, ...) and groups
spans under resource and scope. This adapter only unwraps that envelope; what the GenAI
attributes mean (current and deprecated names alike) is read by `spans.fold_spans`.

Both the canonical camelCase field names and protobuf's snake_case names are accepted, since
collectors' file exporters and hand-written dumps use either.

OTLP requires every span to carry a traceId and its start and end times. A span without one is
not given a derived id or the file's time (that is only for bare attribute dicts, which carry
neither by design): it is marked with `Span.problem` and ingestion quarantines its trace.
"""

from __future__ import annotations

import base64
import binascii
import string
from typing import Any

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.dialects import Dialect, Span

_HEX = set(string.hexdigits)
_ERROR_CODES = {2, "2", "STATUS_CODE_ERROR", "ERROR"}


def detect(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(
        _get(document, "resourceSpans", "resource_spans"), list
    )


def to_spans(document: Any) -> list[Span]:
    """Every span of the request; [] for a document that is not one (never raises)."""
    if not detect(document):
        return []
    spans: list[Span] = []
    for resource_spans in _get(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource_spans, dict):
            continue
        resource = decode_attributes((resource_spans.get("resource") or {}).get("attributes"))
        scopes = _get(
            resource_spans, "scopeSpans", "scope_spans", "instrumentationLibrarySpans"
        ) or []
        for scope_spans in scopes:
            if not isinstance(scope_spans, dict):
                continue
            scope = _get(scope_spans, "scope", "instrumentationLibrary") or {}
            scope_resource = dict(resource)
            if isinstance(scope, dict) and scope.get("name"):
                scope_resource["otel.scope.name"] = scope["name"]
            for raw in scope_spans.get("spans") or []:
                if isinstance(raw, dict):
                    spans.append(_span(raw, scope_resource))
    return spans


def decode_value(value: Any) -> Any:
    """An OTLP AnyValue to plain JSON: kvlists become dicts, arrays lists, ints ints."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value or "string_value" in value:
        return _get(value, "stringValue", "string_value")
    if "intValue" in value or "int_value" in value:
        raw = _get(value, "intValue", "int_value")
        try:
            return int(raw)
        except (TypeError, ValueError):
            return raw
    if "doubleValue" in value or "double_value" in value:
        raw = _get(value, "doubleValue", "double_value")
        try:
            return float(raw)  # "NaN"/"Infinity" arrive as strings in proto3 JSON
        except (TypeError, ValueError):
            return raw
    if "boolValue" in value or "bool_value" in value:
        return bool(_get(value, "boolValue", "bool_value"))
    if "arrayValue" in value or "array_value" in value:
        inner = _get(value, "arrayValue", "array_value") or {}
        return [decode_value(v) for v in inner.get("values") or []]
    if "kvlistValue" in value or "kvlist_value" in value:
        inner = _get(value, "kvlistValue", "kvlist_value") or {}
        return decode_attributes(inner.get("values"))
    if "bytesValue" in value or "bytes_value" in value:
        return _get(value, "bytesValue", "bytes_value")
    return None  # an empty AnyValue


def decode_attributes(attributes: Any) -> dict[str, Any]:
    """``[{"key", "value": AnyValue}]`` -> flat dict (keys are already dotted in OTLP)."""
    if isinstance(attributes, dict):  # some hand-written dumps already use a plain map
        return dict(attributes)
    decoded: dict[str, Any] = {}
    for item in attributes or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            decoded[item["key"]] = decode_value(item.get("value"))
    return decoded


def _span(raw: dict[str, Any], resource: dict[str, Any]) -> Span:
    status = raw.get("status") or {}
    code = status.get("code") if isinstance(status, dict) else None
    trace_id = _hex_id(_get(raw, "traceId", "trace_id"))
    start = _nanos(_get(raw, "startTimeUnixNano", "start_time_unix_nano"))
    end = _nanos(_get(raw, "endTimeUnixNano", "end_time_unix_nano"))
    return Span(
        trace_id=trace_id,
        span_id=_hex_id(_get(raw, "spanId", "span_id")),
        parent_id=_hex_id(_get(raw, "parentSpanId", "parent_span_id")),
        name=str(raw.get("name") or ""),
        start=start,
        end=end,
        attributes=decode_attributes(raw.get("attributes")),
        status="error" if code in _ERROR_CODES else "ok",
        status_message=(status.get("message") or None) if isinstance(status, dict) else None,
        events=[_event(e) for e in raw.get("events") or [] if isinstance(e, dict)],
        resource=resource,
        dialect="otlp",
        problem=_problem(trace_id, start, end),
    )


def _problem(trace_id: str | None, start: Any, end: Any) -> tuple[str, str] | None:
    """What makes the span unusable under OTLP's own rules; the id first, since a span without
    one cannot even be grouped with its trace. No content is quoted (details are stored)."""
    if trace_id is None:
        return reasons.MISSING_TRACE_ID, "otlp: span without a valid traceId"
    missing = [name for name, value in (("startTimeUnixNano", start), ("endTimeUnixNano", end))
               if value is None]
    if missing:
        return reasons.MISSING_TIMESTAMP, f"otlp: span without {' or '.join(missing)}"
    return None


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": raw.get("name"),
        "time": _nanos(_get(raw, "timeUnixNano", "time_unix_nano")),
        "attributes": decode_attributes(raw.get("attributes")),
    }


def _get(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _nanos(value: Any) -> Any:
    """uint64 nanoseconds arrive as decimal strings in OTLP/JSON; "0" and "" mean unset."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == 0 or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _hex_id(value: Any) -> str | None:
    """Trace/span ids as lowercase hex. OTLP/JSON mandates hex, but protobuf's generic JSON
    mapping writes base64; decode that so ids from both exporters match."""
    if not isinstance(value, str) or not value:
        return None
    if set(value) <= _HEX:
        return value.lower() if set(value) != {"0"} else None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return decoded.hex() if decoded.strip(b"\0") else None


DIALECT = Dialect("otlp", detect, to_spans=to_spans)
