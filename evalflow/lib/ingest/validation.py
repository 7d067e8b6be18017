"""Hold every dialect's traces to one contract before they reach the warehouse.

Adapters copy what they find; this module decides. A trace either comes back normalised (UTC
ISO timestamp, checked types, derived fields filled) with flags, or a ValidationError names the
first problem with a reason code from evalflow.lib.ingest.reasons. Messages never quote field values:
they may hold PII.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import orjson

from evalflow.lib.common.timestamps import TimestampError, check_range, parse_timestamp, to_iso
from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.canonical import last_user_query, stable_hash, system_prompt
from evalflow.lib.ingest.dialects.messages import to_text


class ValidationError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


_STATUS_ALIASES = {
    "ok": "ok", "success": "ok", "succeeded": "ok", "unset": "ok", "status_code_ok": "ok",
    "status_code_unset": "ok", "default": "ok", "completed": "ok", "0": "ok", "1": "ok",
    "error": "error", "failed": "error", "failure": "error", "status_code_error": "error",
    "2": "error", "exception": "error",
}
_TEXT_FIELDS = ("session_id", "user_id", "app", "model", "prompt_template_id",
                "system_prompt_hash", "tool_schema_hash", "user_query", "output", "error_type")
_ID_LIKE = ("session_id", "user_id")
_INT_FIELDS = ("input_tokens", "output_tokens")
_FLOAT_FIELDS = ("latency_ms", "cost_usd")
_LIST_OF_DICT_FIELDS = ("messages", "retrieved_context", "tool_calls")


def _fail(reason: str, message: str) -> None:
    raise ValidationError(reason, message)


def _check_trace_id(trace: dict[str, Any]) -> None:
    value = trace.get("trace_id")
    if value is None or value == "":
        _fail(reasons.MISSING_TRACE_ID, "trace_id is missing or empty")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        _fail(reasons.WRONG_TYPE, f"trace_id is a {type(value).__name__}, expected a string")
    trace["trace_id"] = str(value)


def _check_text_fields(trace: dict[str, Any]) -> None:
    for name in _TEXT_FIELDS:
        value = trace.get(name)
        if value is None or isinstance(value, str):
            continue
        if name in _ID_LIKE and isinstance(value, int) and not isinstance(value, bool):
            trace[name] = str(value)
            continue
        _fail(reasons.WRONG_TYPE, f"{name} is a {type(value).__name__}, expected a string")


def _check_numbers(trace: dict[str, Any]) -> None:
    for name in _INT_FIELDS + _FLOAT_FIELDS:
        value = trace.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(reasons.WRONG_TYPE, f"{name} is a {type(value).__name__}, expected a number")
        if value != value or value < 0:
            _fail(reasons.INVALID_VALUE, f"{name} is negative or NaN")
        if name in _INT_FIELDS:
            if float(value) != int(value):
                _fail(reasons.WRONG_TYPE, f"{name} is fractional, expected an integer")
            trace[name] = int(value)
        else:
            trace[name] = float(value)


def _check_lists(trace: dict[str, Any]) -> None:
    for name in _LIST_OF_DICT_FIELDS:
        value = trace.get(name)
        if value is None:
            trace[name] = []
            continue
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            _fail(reasons.WRONG_TYPE, f"{name} must be a list of objects")
    for message in trace["messages"]:
        role = message.get("role")
        if role is not None and not isinstance(role, str):
            _fail(reasons.WRONG_TYPE, "a message role is not a string")
        if message.get("content") is not None and not isinstance(message["content"], str):
            message["content"] = to_text(message["content"])
    for name in ("metadata",):
        if trace.get(name) is None:
            trace[name] = {}
        elif not isinstance(trace[name], dict):
            _fail(reasons.WRONG_TYPE, f"{name} must be an object")
    feedback = trace.get("feedback")
    if feedback is not None and not isinstance(feedback, dict):
        _fail(reasons.WRONG_TYPE, "feedback must be an object")


def _check_status(trace: dict[str, Any]) -> None:
    value = trace.get("status")
    if value is None:
        trace["status"] = "error" if trace.get("error_type") else "ok"
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        _fail(reasons.WRONG_TYPE, f"status is a {type(value).__name__}")
    status = _STATUS_ALIASES.get(str(value).strip().lower())
    if status is None:
        _fail(reasons.INVALID_VALUE, "status is not one of ok/error (or a known alias)")
    trace["status"] = status


def _check_times(trace: dict[str, Any], now: datetime, skew_s: float) -> list[str]:
    try:
        start, flags = parse_timestamp(trace.get("timestamp"))
        flags += check_range(start, now, skew_s)
        end = None
        if trace.get("end_time") is not None:
            end, end_flags = parse_timestamp(trace["end_time"])
            flags += [f for f in end_flags if f not in flags]
    except TimestampError as exc:
        raise ValidationError(exc.reason, str(exc)) from exc
    if end is not None and end < start:
        _fail(reasons.END_BEFORE_START, "end_time is earlier than timestamp")
    trace["timestamp"] = to_iso(start)
    trace["end_time"] = to_iso(end) if end is not None else None
    if trace.get("latency_ms") is None and end is not None:
        trace["latency_ms"] = (end - start).total_seconds() * 1000.0
    return flags


def _fill_derived(trace: dict[str, Any]) -> None:
    if trace.get("user_query") is None:
        trace["user_query"] = last_user_query(trace["messages"])
    if trace.get("system_prompt_hash") is None:
        trace["system_prompt_hash"] = stable_hash(system_prompt(trace["messages"]))


def normalize_trace(
    trace: dict[str, Any], *, now: datetime, skew_tolerance_s: float = 3600.0
) -> tuple[dict[str, Any], list[str]]:
    """The trace normalised in place, and its flags; raises ValidationError."""
    _check_trace_id(trace)
    flags = _check_times(trace, now, skew_tolerance_s)
    _check_text_fields(trace)
    _check_numbers(trace)
    _check_lists(trace)
    _check_status(trace)
    _fill_derived(trace)
    if not isinstance(trace.get("payload_kept"), bool):
        trace["payload_kept"] = True
    return trace, flags


def event_date(trace: dict[str, Any]) -> date:
    return datetime.fromisoformat(trace["timestamp"]).date()


def content_sha256(trace: dict[str, Any]) -> str:
    """Hash of what the trace says, not of how it arrived: a re-sent trace hashes the same."""
    content = {k: v for k, v in trace.items() if k != "metadata"}
    metadata = {k: v for k, v in (trace.get("metadata") or {}).items()
                if k not in ("flags", "truncated_fields")}
    content["metadata"] = metadata
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def keeps_payload(trace_id: str, fraction: float) -> bool:
    """Deterministic payload sampling: the same trace_id is kept or dropped on every run."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    bucket = int.from_bytes(hashlib.sha256(trace_id.encode("utf-8")).digest()[:8], "big")
    return bucket / 2**64 < fraction
