"""Vercel AI SDK messages and tool-call / tool-result parts.

Upstream: ``packages/shared/src/utils/chatml/adapters/aisdk.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    attach_tools,
    is_ai_sdk_meta,
    parse_metadata,
    remove_null_fields,
    set_or_drop,
    spread_tool_object_content,
    stringify_args,
    tool_definitions,
)
from evalflow.lib.ingest.dialects.chatml.js import (
    ABSENT,
    coalesce,
    js_stringify,
    truthy,
)
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _is_aisdk_item(item: Any, kind: str) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == kind
        and isinstance(item.get("toolCallId"), str)
        and isinstance(item.get("toolName"), str)
    )


def _is_aisdk_tool_call_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("role"), str)
        and isinstance(value.get("content"), list)
        and all(_is_aisdk_item(i, "tool-call") for i in value["content"])
    )


def _is_aisdk_tool_result_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("role") == "tool"
        and isinstance(value.get("content"), list)
        and all(_is_aisdk_item(i, "tool-result") for i in value["content"])
    )


def _is_aisdk_messages(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return False
        content = m.get("content", ABSENT)
        if content is ABSENT or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(
            isinstance(i, dict) and isinstance(i.get("type"), str) for i in content
        ):
            return False
    return any(
        isinstance(m.get("content"), list)
        and any(i.get("type") in ("tool-call", "tool-result") for i in m["content"])
        for m in value
    )


def _is_aisdk_raw_tool_calls(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(i, dict)
            and isinstance(i.get("toolCallId"), str)
            and isinstance(i.get("toolName"), str)
            for i in value
        )
    )


def _aisdk_tool_result_item(item: dict[str, Any]) -> dict[str, Any]:
    value = coalesce(item.get("output"), item.get("result"))
    if isinstance(value, dict) and value.get("type") == "text" and "value" in value:
        return {**item, "content": value["value"]}
    return {**item, "content": value if isinstance(value, str) else js_stringify(
        value if value is not None else "")}


def _aisdk_content_item(item: Any) -> Any:
    """Tool-call parts get string ``arguments``; tool-result parts get string ``content``."""
    if not isinstance(item, dict):
        return item
    if item.get("type") == "tool-call":
        cleaned = {k: v for k, v in item.items() if k != "providerOptions"}
        return {**cleaned, "arguments": stringify_args(coalesce(item.get("args"),
                                                                   item.get("input")))}
    if item.get("type") == "tool-result":
        return _aisdk_tool_result_item(item)
    return item


def _aisdk_tool_call(part: dict[str, Any]) -> dict[str, Any]:
    call = {"id": part.get("toolCallId"), "name": part.get("toolName"),
            "arguments": part.get("arguments"), "type": "function"}
    return {k: v for k, v in call.items() if v is not None}  # undefined fields vanish in JS


def _aisdk_mixed_content(out: dict[str, Any], content: list[Any]) -> None:
    """Mixed parts: tool calls move to ``tool_calls``, a single tool result becomes content."""
    items = [_aisdk_content_item(i) for i in content]
    out["content"] = items
    calls = [i for i in items if isinstance(i, dict) and i.get("type") == "tool-call"]
    if calls:
        out["tool_calls"] = [_aisdk_tool_call(c) for c in calls]
        texts = [i for i in items if isinstance(i, dict) and i.get("type") == "text"]
        if texts:
            out["content"] = "".join(str(coalesce(t.get("text"), "")) for t in texts)
        else:
            del out["content"]
    if isinstance(out.get("content"), list):
        results = [i for i in out["content"]
                   if isinstance(i, dict) and i.get("type") == "tool-result"]
        if results and out.get("role") == "tool":
            if len(results) == 1:
                set_or_drop(out, "tool_call_id", results[0].get("toolCallId"))
                set_or_drop(out, "content", results[0].get("content"))
            else:
                out["content"] = results


def _aisdk_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = remove_null_fields(
        {k: v for k, v in msg.items() if k not in ("providerMetadata", "providerOptions")}
    )
    content = out.get("content")
    if isinstance(content, list) and content:
        if all(isinstance(i, dict) and i.get("type") == "text" and isinstance(i.get("text"), str)
               for i in content):
            out["content"] = "".join(i["text"] for i in content)
        else:
            _aisdk_mixed_content(out, content)
    return spread_tool_object_content(out)


def _aisdk_split_tool_results(messages: list[Any]) -> list[Any]:
    """One ``tool`` message per tool-result item, as ChatML expects."""
    result = []
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if (
            isinstance(msg, dict)
            and msg.get("role") == "tool"
            and isinstance(content, list)
            and len(content) > 1
            and all(isinstance(i, dict) and i.get("type") == "tool-result" for i in content)
        ):
            for item in content:
                split = {"role": "tool"}
                set_or_drop(split, "tool_call_id", item.get("toolCallId"))
                set_or_drop(split, "content", item.get("content"))
                result.append(split)
        else:
            result.append(msg)
    return result


def _aisdk_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    context_tools = None
    if isinstance(ctx.get("metadata"), dict):
        context_tools = tool_definitions(ctx["metadata"].get("tools"))
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        split = _aisdk_split_tool_results([_aisdk_message(m) for m in data["messages"]])
        tools = tool_definitions(data["tools"]) if isinstance(data.get("tools"), list) else None
        return attach_tools(split, tools) if tools else split
    if isinstance(data, list):
        if _is_aisdk_raw_tool_calls(data):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": tc["toolCallId"],
                        "name": tc["toolName"],
                        "arguments": stringify_args(coalesce(tc.get("args"), tc.get("input"))),
                        "type": "function",
                    }
                    for tc in data
                ],
            }
            if context_tools:
                message["tools"] = context_tools
            return [message]
        split = _aisdk_split_tool_results([_aisdk_message(m) for m in data])
        return attach_tools(split, context_tools) if context_tools else split
    if isinstance(data, dict) and "role" in data:
        return _aisdk_message(data)
    return data


def _aisdk_detect(ctx: NormalizerContext) -> bool:
    meta = parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict) and is_ai_sdk_meta(meta):
        return True
    for value in (ctx.get("metadata"), ctx.get("data")):
        if (
            _is_aisdk_tool_call_message(value)
            or _is_aisdk_tool_result_message(value)
            or _is_aisdk_messages(value)
        ):
            return True
    return _is_aisdk_raw_tool_calls(ctx.get("data"))


AISDK = Adapter("aisdk", _aisdk_detect, _aisdk_preprocess)
