"""Pydantic AI messages.

Upstream: ``packages/shared/src/utils/chatml/adapters/pydantic-ai.ts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    attach_tools,
    nested,
    parse_metadata,
    remove_null_fields,
    scope_name,
    stringify_args,
    tool_definitions,
)
from evalflow.lib.ingest.dialects.chatml.js import js_stringify, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _is_pydantic_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict)
        and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("parts"), list)
        for m in value
    )


@dataclass
class _PydanticParts:
    """What a Pydantic AI ``parts`` list holds, sorted by kind."""

    calls: list[dict[str, Any]]
    responses: list[dict[str, Any]]
    thinking: list[dict[str, Any]]
    redacted: list[dict[str, Any]]
    text: str


def _pydantic_thinking(part: dict[str, Any]) -> dict[str, Any] | None:
    content = part.get("content") if isinstance(part.get("content"), str) else (
        part.get("thinking") if isinstance(part.get("thinking"), str) else "")
    if not content:
        return None
    entry = {"type": "thinking", "content": content}
    if isinstance(part.get("signature"), str) and part["signature"]:
        entry["signature"] = part["signature"]
    return entry


def _pydantic_parts(parts: list[Any]) -> _PydanticParts:
    found = _PydanticParts([], [], [], [], "")
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "thinking" and (entry := _pydantic_thinking(part)):
            found.thinking.append(entry)
        elif kind == "redacted_thinking" and isinstance(part.get("data"), str):
            found.redacted.append({"type": "redacted_thinking", "data": part["data"]})
        elif kind == "tool_call":
            entry = {"id": part.get("id"), "name": part.get("name"),
                     "arguments": stringify_args(part.get("arguments")), "type": "function"}
            found.calls.append({k: v for k, v in entry.items() if v is not None})
        elif kind == "tool_call_response":
            entry = {"tool_call_id": part.get("id"), "content": _stringify_result(part)}
            found.responses.append({k: v for k, v in entry.items() if v is not None})
    found.text = "".join(texts)
    return found


def _stringify_result(part: dict[str, Any]) -> str:
    result = part.get("result")
    return result if isinstance(result, str) else js_stringify(
        result if result is not None else "")


def _pydantic_message(msg: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """One Pydantic AI message; a user turn of tool responses splits into ``tool`` messages."""
    if not isinstance(msg, dict):
        return {}
    if not isinstance(msg.get("parts"), list):
        return remove_null_fields(msg)
    parts = _pydantic_parts(msg["parts"])
    rest = {k: v for k, v in msg.items() if k not in ("role", "parts")}
    extra: dict[str, Any] = {}
    if parts.thinking:
        extra["thinking"] = parts.thinking
    if parts.redacted:
        extra["redacted_thinking"] = parts.redacted
    if msg.get("role") == "assistant" and parts.calls:
        return remove_null_fields({"role": "assistant", "content": parts.text or "",
                                    "tool_calls": parts.calls, **extra, **rest})
    if msg.get("role") == "user" and parts.responses:
        messages = [remove_null_fields({"role": "tool", **r}) for r in parts.responses]
        if parts.text:
            messages.append({"role": "user", "content": parts.text})
        return messages
    return remove_null_fields({"role": msg.get("role"), "content": parts.text or "",
                                **extra, **rest})


def _pydantic_messages(data: list[Any]) -> list[Any]:
    result: list[Any] = []
    for msg in data:
        normalized = _pydantic_message(msg)
        result.extend(normalized if isinstance(normalized, list) else [normalized])
    return result


def _pydantic_tool_definition(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        return {}
    result = {"name": tool.get("name"), "description": tool.get("description") or ""}
    if result["name"] is None:
        del result["name"]
    if truthy(tool.get("parameters_json_schema")):
        result["parameters"] = tool["parameters_json_schema"]
    return result


def _pydantic_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, list):
        normalized = _pydantic_messages(data)
        tools = nested(parse_metadata(ctx.get("metadata")), "attributes",
                        "model_request_parameters", "function_tools")
        if isinstance(tools, list) and tools:
            return attach_tools(normalized, [_pydantic_tool_definition(t) for t in tools])
        return normalized
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = _pydantic_messages(messages)
            tools = tool_definitions(data.get("tools"))
            if tools:
                messages = attach_tools(messages, tools)
        return {**data, "messages": messages}
    return _pydantic_message(data)


def _pydantic_detect(ctx: NormalizerContext) -> bool:
    if scope_name(parse_metadata(ctx.get("metadata"))) == "pydantic-ai":
        return True
    return _is_pydantic_messages(ctx.get("metadata")) or _is_pydantic_messages(ctx.get("data"))


PYDANTIC_AI = Adapter("pydantic-ai", _pydantic_detect, _pydantic_preprocess)
