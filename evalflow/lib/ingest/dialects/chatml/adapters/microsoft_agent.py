"""Microsoft Agent Framework and Microsoft.Extensions.AI.

Upstream: ``packages/shared/src/utils/chatml/adapters/microsoft-agent.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    attach_tools,
    nested,
    parse_metadata,
    scope_name,
    spread_tool_object_content,
    stringify_args,
    stringify_tool_result,
    tool_definitions,
)
from evalflow.lib.ingest.dialects.chatml.js import coalesce, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _is_ms_agent_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("role") in ("user", "assistant", "tool")
        and isinstance(value.get("parts"), list)
        and all(
            isinstance(p, dict) and p.get("type") in ("text", "tool_call", "tool_call_response")
            for p in value["parts"]
        )
    )


def _is_ms_agent_messages(value: Any) -> bool:
    return isinstance(value, list) and all(_is_ms_agent_message(m) for m in value)


def _ms_call_id(ids: Any) -> str:
    """Agent Framework ids are ``[run_id, call_id]``; the ``call_`` one is the tool call id."""
    if isinstance(ids, list):
        match = next((i for i in ids if isinstance(i, str) and i.startswith("call_")), None)
        return match or (ids[-1] if ids and truthy(ids[-1]) else "")
    return ids if isinstance(ids, str) else ""


def _ms_agent_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if truthy(out.get("parts")) and isinstance(out["parts"], list):
        calls, texts, call_id = [], [], None
        for part in out["parts"]:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_call":
                entry = {
                    "id": _ms_call_id(part.get("id")),
                    "name": part.get("name"),
                    "arguments": stringify_args(part.get("arguments")),
                    "type": "function",
                }
                calls.append({k: v for k, v in entry.items() if v is not None})
            elif part.get("type") == "text" and isinstance(part.get("content"), str):
                texts.append(part["content"])
            elif part.get("type") == "tool_call_response":
                if isinstance(part.get("id"), (list, str)):
                    call_id = _ms_call_id(part["id"])
                texts.append(stringify_tool_result(part.get("response")))
        if calls:
            out["tool_calls"] = calls
        if "".join(texts):
            out["content"] = "".join(texts)
        if truthy(call_id) and out.get("role") == "tool":
            out["tool_call_id"] = call_id
        del out["parts"]
    return spread_tool_object_content(out)


def _ms_tool_definitions(tools: Any) -> list[dict[str, Any]]:
    definitions = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        func = tool.get("function")
        if tool.get("type") == "function" and isinstance(func, dict):
            entry: dict[str, Any] = {"name": func.get("name") or ""}
            if func.get("description") is not None:
                entry["description"] = func["description"]
            if func.get("parameters") is not None:
                entry["parameters"] = func["parameters"]
            definitions.append(entry)
    return definitions


def _ms_agent_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, list):
        normalized = [_ms_agent_message(m) for m in data]
        definitions = nested(
            parse_metadata(ctx.get("metadata")), "attributes", "gen_ai.tool.definitions"
        )
        if truthy(definitions):
            tools = _ms_tool_definitions(definitions)
            if tools:
                return attach_tools(normalized, tools)
        return normalized
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = [_ms_agent_message(m) for m in messages]
            tools = tool_definitions(data.get("tools"))
            if tools:
                messages = attach_tools(messages, tools)
        return {**data, "messages": messages}
    if isinstance(data, dict) and "role" in data:
        return _ms_agent_message(data)
    return data


def _has_pydantic_markers(data: Any) -> bool:
    """Pydantic AI uses the same ``parts`` layout; its part types give it away."""
    if isinstance(data, list):
        messages = data
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        messages = data["messages"]
    elif isinstance(data, dict):
        messages = [data]
    else:
        messages = []
    for msg in messages:
        if not isinstance(msg, dict) or not isinstance(msg.get("parts"), list):
            continue
        for part in msg["parts"]:
            if isinstance(part, dict) and (
                part.get("type") in ("thinking", "redacted_thinking")
                or (part.get("type") == "tool_call_response"
                    and ("result" in part or msg.get("role") == "user"))
            ):
                return True
    return False


def _ms_agent_detect(ctx: NormalizerContext) -> bool:
    meta = parse_metadata(ctx.get("metadata"))
    scope = coalesce(scope_name(meta), meta.get("scope.name") if isinstance(meta, dict) else None)
    if scope == "agent_framework":
        return True
    if isinstance(scope, str) and "Microsoft.Extensions.AI" in scope:
        return True
    if scope == "pydantic-ai":
        return False
    if nested(meta, "attributes", "gen_ai.provider.name") == "microsoft.agent_framework":
        return True
    if _has_pydantic_markers(ctx.get("metadata")) or _has_pydantic_markers(ctx.get("data")):
        return False
    return (
        _is_ms_agent_messages(ctx.get("metadata"))
        or _is_ms_agent_messages(ctx.get("data"))
        or _is_ms_agent_message(ctx.get("data"))
    )


MICROSOFT_AGENT = Adapter("microsoft-agent", _ms_agent_detect, _ms_agent_preprocess)
