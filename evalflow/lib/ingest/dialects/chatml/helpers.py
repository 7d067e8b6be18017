"""Helpers the adapters share.

Upstream: ``packages/shared/src/utils/chatml/helpers.ts`` (``parseMetadata``,
``getNestedProperty``, ``removeNullFields``, ``stringifyToolResultContent``,
``isRichToolResult``, tool-definition normalisation). The rest are steps several upstream
adapters repeat inline (spreading a tool message's object content, flattening OpenAI tool calls,
the AI SDK and scope checks on metadata), kept here once so that no adapter imports another.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.js import (
    coalesce,
    js_stringify,
    json_parse,
    prop,
    truthy,
)


def parse_metadata(metadata: Any) -> Any:
    """Helpers.parseMetadata: falsy -> None, string -> parsed or None, object -> itself."""
    if not truthy(metadata):
        return None
    if isinstance(metadata, str):
        try:
            return json_parse(metadata)
        except ValueError:
            return None
    if isinstance(metadata, (dict, list)):
        return metadata
    return None


def nested(obj: Any, *path: str) -> Any:
    current = obj
    for key in path:
        if not truthy(current) or not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def scope_name(meta: Any) -> Any:
    return nested(meta, "scope", "name")


def remove_null_fields(obj: Any) -> dict[str, Any]:
    if not truthy(obj) or not isinstance(obj, dict):
        return {}
    return {k: v for k, v in obj.items() if v is not None}


def stringify_args(args: Any) -> str:
    return args if isinstance(args, str) else js_stringify(args if args is not None else {})


def stringify_tool_result(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    return js_stringify(content)


def _is_rich_tool_result(content: Any) -> bool:
    """Tool results with nested values or 3+ keys are spread into the message (json view)."""
    if not isinstance(content, dict) or not content:
        return False
    if len(content) > 2:
        return True
    return any(truthy(v) and isinstance(v, (dict, list)) for v in content.values())


def spread_tool_object_content(message: dict[str, Any]) -> dict[str, Any]:
    """Shared tail of most adapters: object content of a tool message is spread or stringified."""
    content = message.get("content")
    if message.get("role") == "tool" and isinstance(content, dict):
        if _is_rich_tool_result(content):
            rest = {k: v for k, v in message.items() if k != "content"}
            return {**rest, **content}
        message["content"] = stringify_tool_result(content)
    return message


def _parse_if_string(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json_parse(value)
    except ValueError:
        return value


def _tool_definition(tool: Any) -> dict[str, Any] | None:
    """Helpers.normalizeToolDefinitionForChatMl: {name, description, parameters?} or None."""
    parsed = _parse_if_string(tool)
    if not isinstance(parsed, dict):
        return None
    source = parsed["function"] if isinstance(parsed.get("function"), dict) else parsed
    name = coalesce(
        source.get("name"),
        parsed.get("name"),
        parsed.get("id"),
        parsed.get("type") if parsed.get("type") != "function" else None,
    )
    if not isinstance(name, str) or not name:
        return None
    description = coalesce(source.get("description"), parsed.get("description"))
    parameters = coalesce(
        source.get("parameters"),
        source.get("parameters_json_schema"),
        source.get("inputSchema"),
        parsed.get("parameters"),
        parsed.get("parameters_json_schema"),
        parsed.get("inputSchema"),
    )
    result: dict[str, Any] = {
        "name": name,
        "description": description if isinstance(description, str) else "",
    }
    if isinstance(parameters, dict):
        result["parameters"] = parameters
    return result


def tool_definitions(tools: Any) -> list[dict[str, Any]]:
    parsed = tools if isinstance(tools, list) else _parse_if_string(tools)
    if not isinstance(parsed, list):
        return []
    return [d for d in (_tool_definition(t) for t in parsed) if d is not None]


def attach_tools(messages: list[Any], tools: list[dict[str, Any]]) -> list[Any]:
    """Copy the (deduplicated, named) tool definitions onto every message."""
    seen: set[str] = set()
    deduped = []
    for tool in tools:
        name = tool.get("name")
        if isinstance(name, str) and name and name not in seen:
            seen.add(name)
            deduped.append(tool)
    if not deduped:
        return messages
    return [{**(m if isinstance(m, dict) else {}), "tools": deduped} for m in messages]


def flatten_tool_calls(tool_calls: list[Any], *, langchain_args: bool) -> list[dict[str, Any]]:
    """OpenAI nested ``{id, function: {name, arguments}}`` -> flat ``{id, name, arguments}``.

    A missing id or name stays missing (``None``), and the message schema then rejects the call,
    as Langfuse's does.
    """
    flat = []
    for tc in tool_calls:
        if not truthy(tc) or not isinstance(tc, dict):
            continue
        func = tc.get("function")
        if truthy(func) and isinstance(func, (dict, list)):  # JS: any object, arrays included
            item = {
                "id": tc.get("id"),
                "name": prop(func, "name"),
                "arguments": stringify_args(prop(func, "arguments")),
                "type": tc.get("type") if truthy(tc.get("type")) else "function",
            }
            if "index" in tc:
                item["index"] = tc["index"]
        else:
            args = tc.get("arguments")
            if langchain_args:  # LangChain names them ``args``
                args = coalesce(tc.get("args"), args)
            item = {**tc, "name": tc.get("name"), "arguments": stringify_args(args)}
        flat.append(item)
    return flat


def optional_str(obj: dict[str, Any], key: str) -> bool:
    """zod ``z.string().optional()``: absent is fine, null is not."""
    return key not in obj or isinstance(obj[key], str)


def has_top_level_parts(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and isinstance(m.get("parts"), list) for m in messages)


def is_ai_sdk_meta(meta: dict[str, Any]) -> bool:
    """Whether metadata marks a Vercel AI SDK span (scope "ai" or an "ai.*" operation)."""
    scope = meta.get("scope")
    if meta.get("scope.name") == "ai" or (isinstance(scope, dict) and scope.get("name") == "ai"):
        return True
    attrs = meta.get("attributes")
    if isinstance(attrs, dict):
        op = attrs.get("operation.name")
        if isinstance(op, str) and op.startswith("ai."):
            return True
    for key in ("attributes.operation.name", "attributes.ai.operationId"):
        value = meta.get(key)
        if isinstance(value, str) and value.startswith("ai."):
            return True
    return False


def scope_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """``meta.scope`` when it is an object; a null scope makes the TS detector throw."""
    if "scope" not in meta:
        return None
    scope = meta["scope"]
    if scope is None:
        raise TypeError("scope is null")  # selectAdapter treats a throwing detector as no match
    return scope if isinstance(scope, dict) else None


def set_or_drop(obj: dict[str, Any], key: str, value: Any) -> None:
    """Assigning ``undefined`` in JS removes the key from the serialised object."""
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = value
