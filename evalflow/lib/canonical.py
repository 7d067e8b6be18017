"""The canonical trace: one row per user-facing interaction.

Every dialect adapter folds its spans/observations/runs into this shape. A trace is a plain
dict (JSON-serialisable) so adapters, the simulator and the warehouse share one representation
without a class hierarchy. `new_trace` fills defaults; `CANONICAL_FIELDS` is the column order.

Field contract (see DESIGN.md, "Data model"):
- trace_id: str, required.
- timestamp: ISO-8601 string in UTC (``2026-01-31T12:00:00.123000+00:00``), required.
- end_time: optional ISO-8601 UTC end of the interaction (used for latency and sanity checks).
- messages: list of {"role", "content", optional "name", "tool_calls", "tool_call_id"}; content is
  a string (multi-part content is flattened to text; non-text parts are summarised).
- user_query: the last user message's text.
- retrieved_context: list of {"doc_id", "text", "score"}, kept apart from the prompt.
- tool_calls: list of {"name", "arguments", "result"} (arguments/result may be any JSON).
- status: one of STATUSES.
- feedback: None or {"thumbs": "up"|"down"|None, "score": float|None, "comment": str|None}.
- metadata: dict of anything else worth keeping (framework, dialect, tags, flags...).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CANONICAL_FIELDS: tuple[str, ...] = (
    "trace_id",
    "session_id",
    "user_id",
    "timestamp",
    "end_time",
    "app",
    "model",
    "prompt_template_id",
    "system_prompt_hash",
    "tool_schema_hash",
    "messages",
    "user_query",
    "retrieved_context",
    "tool_calls",
    "output",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "status",
    "error_type",
    "feedback",
    "metadata",
    "payload_kept",
)

STATUSES: tuple[str, ...] = ("ok", "error")

# Fields that carry the payload (text a user wrote or a model produced). When a trace's
# payload is not kept (sampling for high traffic), these are emptied and the rest stays.
PAYLOAD_FIELDS: tuple[str, ...] = (
    "messages",
    "user_query",
    "retrieved_context",
    "tool_calls",
    "output",
)

_LIST_FIELDS = ("messages", "retrieved_context", "tool_calls")


def new_trace(**fields: Any) -> dict[str, Any]:
    """A canonical trace with every field present; unknown keys go to metadata."""
    trace: dict[str, Any] = {name: None for name in CANONICAL_FIELDS}
    for name in _LIST_FIELDS:
        trace[name] = []
    trace["metadata"] = {}
    trace["status"] = "ok"
    trace["payload_kept"] = True
    for key, value in fields.items():
        if key in trace:
            trace[key] = value
        else:
            trace["metadata"][key] = value
    return trace


def stable_hash(value: Any, length: int = 16) -> str | None:
    """Short sha256 of a canonical JSON rendering; None for empty values.

    Used for system_prompt_hash / tool_schema_hash so the same prompt or tool schema gives the
    same id in every dialect.
    """
    if value in (None, "", [], {}):
        return None
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def last_user_query(messages: list[dict[str, Any]]) -> str | None:
    """Text of the last user message, the query that the interaction answers."""
    for message in reversed(messages):
        if message.get("role") in ("user", "human") and message.get("content"):
            return message["content"] if isinstance(message["content"], str) else json.dumps(
                message["content"], ensure_ascii=False
            )
    return None


def system_prompt(messages: list[dict[str, Any]]) -> str | None:
    """Concatenated system/developer messages, for system_prompt_hash."""
    parts = [
        m["content"]
        for m in messages
        if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str)
    ]
    return "\n".join(parts) if parts else None
