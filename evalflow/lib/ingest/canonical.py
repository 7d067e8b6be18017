"""The canonical trace: one row per user-facing interaction.

Every dialect adapter folds its spans/observations/runs into this shape. A trace is a plain
dict (JSON-serialisable) so adapters, the simulator and the warehouse share one representation
without a class hierarchy. `new_trace` fills defaults; `CANONICAL_FIELDS` is the column order.

Field contract (see docs/warehouse.md, `redacted_traces`):
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
- metadata: dict of anything else worth keeping (framework, dialect, tags, flags...), including
  the application's own metadata (see `merge_app_metadata`).

Conventions every adapter follows, so the same interaction folds to the same values whatever
its dialect:
- messages is the *input side* of the final model call: what the model saw (system prompt,
  earlier turns, tool turns, the current user message). The final answer is only in `output`.
- tool_schema_hash is `tool_schema_hash(tools)`: tools normalised to sorted
  [{name, description, parameters}] before hashing, whatever shape declared them.
- feedback is the user's rating ({"thumbs", "score", "comment"}), never an automated judge's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

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


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (landing files can be gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


# --- tool schemas ---------------------------------------------------------------------------

_TOOL_WRAPPERS = ("function",)
_TOOL_DECLARATION_LISTS = ("function_declarations", "functionDeclarations")
_PARAMETER_KEYS = ("parameters", "input_schema", "inputSchema", "parametersJsonSchema",
                   "parameters_json_schema")


def _parse_json_text(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _tool_items(tools: Any) -> Iterable[Any]:
    """Each declared tool, with JSON text parsed and Gemini's declaration lists expanded."""
    tools = _parse_json_text(tools)
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        return
    for tool in tools:
        tool = _parse_json_text(tool)
        if isinstance(tool, dict):
            declarations = next((tool[k] for k in _TOOL_DECLARATION_LISTS
                                 if isinstance(tool.get(k), list)), None)
            if declarations is not None:
                yield from _tool_items(declarations)
                continue
        yield tool


def normalize_tool_definition(tool: Any) -> Any:
    """One tool definition as {"name", "description", "parameters"}.

    Accepts OpenAI's ``{"type": "function", "function": {...}}``, the bare
    ``{name, description, parameters}`` (OTel ``gen_ai.tool.definitions``, Langfuse, LangSmith
    ``functions``, Vercel), Anthropic's ``input_schema`` and MCP's ``inputSchema``. An empty
    description counts as none (normalisers disagree on "" versus absent). A value that names no
    tool is returned as it is, so two different unknown schemas still hash differently.
    """
    tool = _parse_json_text(tool)
    if not isinstance(tool, dict):
        return tool
    inner = next((tool[k] for k in _TOOL_WRAPPERS if isinstance(tool.get(k), dict)), None)
    source = inner if inner is not None and "name" in inner else tool
    name = source.get("name")
    if not isinstance(name, str) or not name:
        return tool
    description = source.get("description")
    parameters = next((source[k] for k in _PARAMETER_KEYS if source.get(k) is not None), None)
    return {
        "name": name,
        "description": description if isinstance(description, str) and description else None,
        "parameters": _parse_json_text(parameters),
    }


def normalize_tool_definitions(tools: Any) -> list[Any]:
    """Tool definitions normalised (see `normalize_tool_definition`) and sorted by name."""
    normalised = [normalize_tool_definition(t) for t in _tool_items(tools)]
    normalised = [t for t in normalised if t not in (None, "", [], {})]

    def order(tool: Any) -> tuple[str, str]:
        name = tool.get("name") if isinstance(tool, dict) else None
        rendered = json.dumps(tool, sort_keys=True, ensure_ascii=False, default=str)
        return (name if isinstance(name, str) else "", rendered)

    return sorted(normalised, key=order)


def tool_schema_hash(tools: Any) -> str | None:
    """The one tool_schema_hash of every dialect: `stable_hash` of the normalised, sorted tool
    list, so the same tools declared in any shape or order give the same id; None for none."""
    return stable_hash(normalize_tool_definitions(tools))


# --- application metadata -------------------------------------------------------------------


def merge_app_metadata(metadata: dict[str, Any], app: Any, collision_prefix: str) -> None:
    """Merge an application's own metadata into an adapter's trace metadata, in place.

    The adapter's keys (dialect, framework, ...) describe how the trace was read and win; an
    application key that collides with one, holding a different value, is kept under
    ``collision_prefix + key`` instead of being dropped (the next stage redacts PII in
    metadata, so nothing the application sent may disappear silently).
    """
    if not isinstance(app, dict):
        return
    for key, value in app.items():
        key = str(key)
        if key in metadata and metadata[key] != value:
            metadata[collision_prefix + key] = value
        else:
            metadata[key] = value
