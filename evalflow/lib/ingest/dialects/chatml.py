"""Langfuse-compatible ChatML normalisation of one observation's input or output.

Langfuse shows an observation's input/output as a chat when its TypeScript normaliser
(``packages/shared/src/utils/chatml`` in langfuse/langfuse) can turn it into ChatML: a list of
``{role, name, content, type, tools, tool_calls, tool_call_id, json}`` messages. Frameworks write
that payload in a dozen shapes, so the normaliser picks one *adapter* per payload (LangGraph,
Vercel AI SDK, OpenAI, Gemini, Microsoft Agent, Pydantic AI, Semantic Kernel, generic), lets it
rewrite the payload, and then validates the result against a message schema.

This module re-implements those rules in Python so that our Langfuse adapter reads exports the way
Langfuse itself displays them; the ``*.chatml.json`` fixtures beside the Langfuse traces are the
TypeScript normaliser's own output and the tests compare against them. The code mirrors JavaScript
semantics where they change the result (truthiness, ``key in obj``, ``JSON.stringify`` spacing,
zod's "optional means absent, not null"), because reproducing the displayed messages exactly is
the point.

Public entry points: `deep_parse_json`, `normalize_input`, `normalize_output`, `select_adapter`.
Results are lists of message dicts, or None when the payload is not ChatML-shaped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

_ABSENT = object()  # JavaScript's ``undefined`` where None (``null``) means something else

# --------------------------------------------------------------------------------------------
# JavaScript semantics helpers
# --------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    """JavaScript truthiness: empty lists/dicts are truthy, 0/""/None/False are not."""
    if value is None or value is False:
        return False
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and value == value  # NaN is falsy
    if isinstance(value, str):
        return value != ""
    return True


def _has(value: Any, key: str) -> bool:
    """JS ``key in value`` for the values we meet: only objects have named keys."""
    return isinstance(value, dict) and key in value


def _prop(obj: Any, key: str) -> Any:
    """JS property read ``obj.key``: undefined on non-objects, a TypeError on null."""
    if obj is None:
        raise TypeError(f"cannot read {key!r} of null")
    return obj.get(key) if isinstance(obj, dict) else None


def _coalesce(*values: Any) -> Any:
    """JS ``a ?? b``: the first value that is not None (absent keys read as None here)."""
    for value in values:
        if value is not None:
            return value
    return None


def _js_number(value: Any) -> Any:
    """Integral floats print without ".0" in JavaScript; make Python agree before dumping."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_js_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _js_number(v) for k, v in value.items()}
    return value


def js_stringify(value: Any, indent: int | None = None) -> str:
    """``JSON.stringify`` output: no spaces after separators unless indented."""
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(_js_number(value), ensure_ascii=False, separators=separators, indent=indent)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")  # JSON.parse rejects NaN/Infinity


def _json_parse(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _parse_python_literal(text: str) -> Any:
    """Langfuse's fallback for Python ``repr`` dicts/lists (LangChain logs tool args that way).

    Like Langfuse, it swaps True/False/None and all single quotes for their JSON spelling and
    tries again; anything that still fails stays a string.
    """
    if "'" not in text or ("{" not in text and "[" not in text) or len(text) > 1_000_000:
        return _ABSENT
    trimmed = text.strip()
    if trimmed[:1] not in ("{", "["):
        return _ABSENT
    converted = re.sub(r"\bTrue\b", "true", trimmed)
    converted = re.sub(r"\bFalse\b", "false", converted)
    converted = re.sub(r"\bNone\b", "null", converted).replace("'", '"')
    try:
        return _json_parse(converted)
    except (ValueError, RecursionError):
        return _ABSENT


def deep_parse_json(value: Any, max_depth: int = 3, _depth: int = 0) -> Any:
    """Langfuse's ``deepParseJson``: parse JSON text, then strings nested in it, to a depth.

    Langfuse stores payloads and metadata as JSON text, often with JSON strings inside (OTel
    attributes, tool results). Its UI parses them before normalising, but only three levels
    deep, so a string nested deeper stays a string; numeric strings ("42") are never parsed.
    """
    if _depth >= max_depth:
        return value
    if isinstance(value, str):
        try:
            parsed = _json_parse(value)
        except (ValueError, RecursionError):
            parsed = _parse_python_literal(value)
            if parsed is _ABSENT:
                return value
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return value
        return deep_parse_json(parsed, max_depth, _depth + 1)
    if isinstance(value, list):
        return [deep_parse_json(v, max_depth, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: deep_parse_json(v, max_depth, _depth + 1) for k, v in value.items()
                if k not in ("__proto__", "constructor", "prototype")}
    return value


def parse_json_text(value: Any) -> Any:
    """One level of parsing: a stored payload that is JSON text becomes data, else unchanged.

    Langfuse parses an observation's input/output once before normalising; JSON text nested
    inside (a tool result that is itself a JSON string) stays text, as the UI shows it.
    """
    if not isinstance(value, str):
        return value
    try:
        return _json_parse(value)
    except (ValueError, RecursionError):
        return value


def _parse_metadata(metadata: Any) -> Any:
    """Helpers.parseMetadata: falsy -> None, string -> parsed or None, object -> itself."""
    if not _truthy(metadata):
        return None
    if isinstance(metadata, str):
        try:
            return _json_parse(metadata)
        except ValueError:
            return None
    if isinstance(metadata, (dict, list)):
        return metadata
    return None


def _nested(obj: Any, *path: str) -> Any:
    current = obj
    for key in path:
        if not _truthy(current) or not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def _scope_name(meta: Any) -> Any:
    return _nested(meta, "scope", "name")


def _remove_null_fields(obj: Any) -> dict[str, Any]:
    if not _truthy(obj) or not isinstance(obj, dict):
        return {}
    return {k: v for k, v in obj.items() if v is not None}


def _stringify_args(args: Any) -> str:
    return args if isinstance(args, str) else js_stringify(args if args is not None else {})


def _stringify_tool_result(content: Any) -> str:
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
    return any(_truthy(v) and isinstance(v, (dict, list)) for v in content.values())


def _spread_tool_object_content(message: dict[str, Any]) -> dict[str, Any]:
    """Shared tail of most adapters: object content of a tool message is spread or stringified."""
    content = message.get("content")
    if message.get("role") == "tool" and isinstance(content, dict):
        if _is_rich_tool_result(content):
            rest = {k: v for k, v in message.items() if k != "content"}
            return {**rest, **content}
        message["content"] = _stringify_tool_result(content)
    return message


def _parse_if_string(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return _json_parse(value)
    except ValueError:
        return value


def _tool_definition(tool: Any) -> dict[str, Any] | None:
    """Helpers.normalizeToolDefinitionForChatMl: {name, description, parameters?} or None."""
    parsed = _parse_if_string(tool)
    if not isinstance(parsed, dict):
        return None
    source = parsed["function"] if isinstance(parsed.get("function"), dict) else parsed
    name = _coalesce(
        source.get("name"),
        parsed.get("name"),
        parsed.get("id"),
        parsed.get("type") if parsed.get("type") != "function" else None,
    )
    if not isinstance(name, str) or not name:
        return None
    description = _coalesce(source.get("description"), parsed.get("description"))
    parameters = _coalesce(
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


def _tool_definitions(tools: Any) -> list[dict[str, Any]]:
    parsed = tools if isinstance(tools, list) else _parse_if_string(tools)
    if not isinstance(parsed, list):
        return []
    return [d for d in (_tool_definition(t) for t in parsed) if d is not None]


def _attach_tools(messages: list[Any], tools: list[dict[str, Any]]) -> list[Any]:
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


def _flatten_tool_calls(tool_calls: list[Any], *, langchain_args: bool) -> list[dict[str, Any]]:
    """OpenAI nested ``{id, function: {name, arguments}}`` -> flat ``{id, name, arguments}``.

    A missing id or name stays missing (``None``), and the message schema then rejects the call,
    as Langfuse's does.
    """
    flat = []
    for tc in tool_calls:
        if not _truthy(tc) or not isinstance(tc, dict):
            continue
        func = tc.get("function")
        if _truthy(func) and isinstance(func, (dict, list)):  # JS: any object, arrays included
            item = {
                "id": tc.get("id"),
                "name": _prop(func, "name"),
                "arguments": _stringify_args(_prop(func, "arguments")),
                "type": tc.get("type") if _truthy(tc.get("type")) else "function",
            }
            if "index" in tc:
                item["index"] = tc["index"]
        else:
            args = tc.get("arguments")
            if langchain_args:  # LangChain names them ``args``
                args = _coalesce(tc.get("args"), args)
            item = {**tc, "name": tc.get("name"), "arguments": _stringify_args(args)}
        flat.append(item)
    return flat


# --------------------------------------------------------------------------------------------
# Structural checks (the zod schemas adapters use for detection)
# --------------------------------------------------------------------------------------------


def _optional_str(obj: dict[str, Any], key: str) -> bool:
    """zod ``z.string().optional()``: absent is fine, null is not."""
    return key not in obj or isinstance(obj[key], str)


def _has_top_level_parts(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and isinstance(m.get("parts"), list) for m in messages)


def _is_langchain_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and m.get("type") in ("human", "ai", "tool", "system") for m in value
    )


def _is_langgraph_messages(value: Any) -> bool:
    if not isinstance(value, list) or _has_top_level_parts(value):
        return False
    for m in value:
        if not isinstance(m, dict) or not _optional_str(m, "role"):
            return False
        if "additional_kwargs" in m:
            kwargs = m["additional_kwargs"]
            if not isinstance(kwargs, dict):
                return False
            if "tool_calls" in kwargs and not isinstance(kwargs["tool_calls"], list):
                return False
    return True


def _is_openai_chat_request(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("messages"), list)
        and ("tools" not in value or isinstance(value["tools"], list))
    )


_OPENAI_ROLES = ("system", "user", "assistant", "tool", "function")


def _is_openai_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(m, dict) and m.get("role") in _OPENAI_ROLES for m in value)
        and not _has_top_level_parts(value)
    )


def _is_openai_responses_output(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("output"), list)
        and ("tools" not in value or isinstance(value["tools"], list))
    )


def _is_openai_choices(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("model"), str)
        and isinstance(value.get("choices"), list)
    )


def _is_openai_single_tool_message(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("role"), str):
        return False
    calls = value.get("tool_calls")
    return isinstance(calls, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("type"), str)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
        for c in calls
    )


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
        content = m.get("content", _ABSENT)
        if content is _ABSENT or isinstance(content, str):
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


def _is_gemini_raw(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("candidates"), list):
        return False
    for c in value["candidates"]:
        if not isinstance(c, dict) or not isinstance(c.get("content"), dict):
            return False
        content = c["content"]
        if "parts" in content and not isinstance(content["parts"], list):
            return False
        if not _optional_str(content, "role"):
            return False
    return True


def _is_gemini_adk_output(value: Any) -> bool:
    content = value.get("content") if isinstance(value, dict) else None
    return (
        isinstance(content, dict)
        and isinstance(content.get("parts"), list)
        and isinstance(content.get("role"), str)
    )


def _is_gemini_adk_input(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("config"), dict):
        return False
    config = value["config"]
    if "tools" in config and not isinstance(config["tools"], list):
        return False
    if not _optional_str(config, "system_instruction"):
        return False
    return isinstance(value.get("contents"), list)


def _is_gemini_request(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("contents"), list)
        and all(
            isinstance(c, dict) and isinstance(c.get("parts"), list) and _optional_str(c, "role")
            for c in value["contents"]
        )
    )


def _is_gemini_adk_run(value: Any) -> bool:
    """Google ADK ``Runner.run`` arguments: ``{user_id, session_id, new_message: {parts, role}}``.

    Not in the TypeScript source we read, but the recorded normaliser output shows the runner
    invocation read as its ``new_message``.
    """
    message = value.get("new_message") if isinstance(value, dict) else None
    return (
        isinstance(message, dict)
        and isinstance(message.get("parts"), list)
        and isinstance(message.get("role"), str)
    )


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


def _is_pydantic_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict)
        and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("parts"), list)
        for m in value
    )




# --------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapter:
    id: str
    detect: Callable[[dict[str, Any]], bool]
    preprocess: Callable[[Any, str, dict[str, Any]], Any]


# ---- LangGraph / LangChain ------------------------------------------------------------------

_LANGCHAIN_TYPE_TO_ROLE = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}
_JS_OBJECT_PROTOTYPE_KEYS = {
    "constructor", "toString", "toLocaleString", "valueOf", "hasOwnProperty", "isPrototypeOf",
    "propertyIsEnumerable", "__proto__", "__defineGetter__", "__defineSetter__",
    "__lookupGetter__", "__lookupSetter__",
}
_NOT_A_STRING = object()  # stands in for a non-string role that the message schema rejects


def _is_langgraph_tool_definition(msg: Any) -> bool:
    """LangGraph lists available tools as ``{role: tool, content: {type: function, ...}}``."""
    if not isinstance(msg, dict):
        return False
    content = msg.get("content")
    return (
        msg.get("role") == "tool"
        and isinstance(content, dict)
        and content.get("type") == "function"
        and _truthy(content.get("function"))
        and not _truthy(msg.get("tool_call_id"))
    )


def _langgraph_tool_definitions(messages: list[Any]) -> list[dict[str, Any]]:
    tools = []
    for msg in messages:
        if not _is_langgraph_tool_definition(msg):
            continue
        func = msg["content"]["function"]
        tool: dict[str, Any] = {"name": _prop(func, "name") or ""}
        if _prop(func, "description") is not None:
            tool["description"] = func["description"]
        if _prop(func, "parameters") is not None:
            tool["parameters"] = func["parameters"]
        tools.append(tool)
    return tools


def _langgraph_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = _remove_null_fields(msg)
    if _truthy(out.get("type")) and not _truthy(out.get("role")):
        kind = str(out["type"])
        if kind in _LANGCHAIN_TYPE_TO_ROLE:
            out["role"] = _LANGCHAIN_TYPE_TO_ROLE[kind]
            out["_originalType"] = kind
        elif kind in _JS_OBJECT_PROTOTYPE_KEYS:
            # The TS lookup table is a plain object, so type "constructor" (LangChain's
            # serialised messages) finds Object.prototype.constructor: the role becomes a
            # function and the schema rejects the message. Reproduce that outcome.
            out["role"] = _NOT_A_STRING
            out["_originalType"] = kind
    kwargs = out.get("additional_kwargs")
    if _truthy(kwargs) and isinstance(kwargs, dict) and _truthy(kwargs.get("tool_calls")):
        if not _truthy(out.get("tool_calls")):
            out["tool_calls"] = kwargs["tool_calls"]
        # drop it from additional_kwargs so the schema's kwargs spread cannot overwrite ours
        out["additional_kwargs"] = _remove_null_fields(
            {k: v for k, v in kwargs.items() if k != "tool_calls"}
        )
    if _truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = _flatten_tool_calls(out["tool_calls"], langchain_args=True)
    return _spread_tool_object_content(out)


def _langgraph_messages(messages: list[Any]) -> list[Any]:
    normalized = [_langgraph_message(m) for m in messages if not _is_langgraph_tool_definition(m)]
    tools = _langgraph_tool_definitions(messages)
    return _attach_tools(normalized, tools) if tools else normalized


def _langgraph_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, list):
        return _langgraph_messages(data)
    if _has(data, "messages") and isinstance(data["messages"], list):
        return {**data, "messages": _langgraph_messages(data["messages"])}
    if isinstance(data, dict) and ("role" in data or "type" in data):
        return [_langgraph_message(data)]
    return data


def _is_ai_sdk_meta(meta: dict[str, Any]) -> bool:
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


def _scope_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """``meta.scope`` when it is an object; a null scope makes the TS detector throw."""
    if "scope" not in meta:
        return None
    scope = meta["scope"]
    if scope is None:
        raise TypeError("scope is null")  # selectAdapter treats a throwing detector as no match
    return scope if isinstance(scope, dict) else None


def _wrapped_langgraph(value: Any) -> bool | None:
    """Checks ``{messages: [...]}``: None if not wrapped, False to reject, True to accept."""
    if not (isinstance(value, dict) and isinstance(value.get("messages"), list)):
        return None
    if isinstance(value.get("tools"), list):
        return False  # OpenAI chat request, not LangGraph
    if _is_langchain_messages(value["messages"]) or _is_langgraph_messages(value["messages"]):
        return True
    return None


def _langgraph_detect(ctx: dict[str, Any]) -> bool:
    meta = _parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict):
        scope = _scope_of(meta)
        if scope is not None:
            name = scope.get("name")
            if name == "ai" or name == "openinference.instrumentation.openai_agents":
                return False
            if isinstance(name, str) and (
                "openai_agents" in name or name.startswith("Microsoft.SemanticKernel")
            ):
                return False
            if name == "pydantic-ai":
                return False
        if _is_ai_sdk_meta(meta):
            return False
        if (
            any(k in meta for k in ("langgraph_step", "langgraph_node", "langgraph_path"))
            or "langgraph_checkpoint_ns" in meta
            or meta.get("framework") == "langgraph"
            or (isinstance(meta.get("tags"), list) and "langgraph" in meta["tags"])
        ):
            return True
        if any(k.startswith("ls_") for k in meta):
            return True
    for value in (ctx.get("metadata"), ctx.get("data")):
        if _is_langchain_messages(value) or _is_langgraph_messages(value):
            return True
        wrapped = _wrapped_langgraph(value)
        if wrapped is not None:
            return wrapped
    return False


LANGGRAPH = Adapter("langgraph", _langgraph_detect, _langgraph_preprocess)


# ---- Vercel AI SDK --------------------------------------------------------------------------


def _aisdk_tool_result_item(item: dict[str, Any]) -> dict[str, Any]:
    value = _coalesce(item.get("output"), item.get("result"))
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
        return {**cleaned, "arguments": _stringify_args(_coalesce(item.get("args"),
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
            out["content"] = "".join(str(_coalesce(t.get("text"), "")) for t in texts)
        else:
            del out["content"]
    if isinstance(out.get("content"), list):
        results = [i for i in out["content"]
                   if isinstance(i, dict) and i.get("type") == "tool-result"]
        if results and out.get("role") == "tool":
            if len(results) == 1:
                _set_or_drop(out, "tool_call_id", results[0].get("toolCallId"))
                _set_or_drop(out, "content", results[0].get("content"))
            else:
                out["content"] = results


def _aisdk_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = _remove_null_fields(
        {k: v for k, v in msg.items() if k not in ("providerMetadata", "providerOptions")}
    )
    content = out.get("content")
    if isinstance(content, list) and content:
        if all(isinstance(i, dict) and i.get("type") == "text" and isinstance(i.get("text"), str)
               for i in content):
            out["content"] = "".join(i["text"] for i in content)
        else:
            _aisdk_mixed_content(out, content)
    return _spread_tool_object_content(out)


def _set_or_drop(obj: dict[str, Any], key: str, value: Any) -> None:
    """Assigning ``undefined`` in JS removes the key from the serialised object."""
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = value


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
                _set_or_drop(split, "tool_call_id", item.get("toolCallId"))
                _set_or_drop(split, "content", item.get("content"))
                result.append(split)
        else:
            result.append(msg)
    return result


def _aisdk_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    context_tools = None
    if isinstance(ctx.get("metadata"), dict):
        context_tools = _tool_definitions(ctx["metadata"].get("tools"))
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        split = _aisdk_split_tool_results([_aisdk_message(m) for m in data["messages"]])
        tools = _tool_definitions(data["tools"]) if isinstance(data.get("tools"), list) else None
        return _attach_tools(split, tools) if tools else split
    if isinstance(data, list):
        if _is_aisdk_raw_tool_calls(data):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": tc["toolCallId"],
                        "name": tc["toolName"],
                        "arguments": _stringify_args(_coalesce(tc.get("args"), tc.get("input"))),
                        "type": "function",
                    }
                    for tc in data
                ],
            }
            if context_tools:
                message["tools"] = context_tools
            return [message]
        split = _aisdk_split_tool_results([_aisdk_message(m) for m in data])
        return _attach_tools(split, context_tools) if context_tools else split
    if isinstance(data, dict) and "role" in data:
        return _aisdk_message(data)
    return data


def _aisdk_detect(ctx: dict[str, Any]) -> bool:
    meta = _parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict) and _is_ai_sdk_meta(meta):
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


# ---- OpenAI (Chat Completions and Responses API) --------------------------------------------


def _joined_texts(items: Any) -> str:
    texts = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and "text" in item:
            texts.append(item["text"])
    return "\n".join(str(t) for t in texts if _truthy(t))


def _openai_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    working = msg
    if working.get("type") == "reasoning":
        content = _joined_texts(working.get("content"))
        summary = _joined_texts(working.get("summary"))
        if content or summary:
            thinking = {"type": "thinking", "content": content or summary}
            if content and summary:
                thinking["summary"] = summary
            return {"role": "assistant", "content": "", "thinking": [thinking]}
    name = working.get("name")
    if working.get("type") in ("function_call", "tool_call") and isinstance(name, str) and name:
        call = {
            "id": working.get("call_id") or working.get("id") or "",
            "name": working["name"],
            "arguments": _stringify_args(working.get("arguments")),
            "type": "function",
        }
        rest = {k: v for k, v in working.items()
                if k not in ("type", "name", "arguments", "call_id", "id", "status")}
        working = {**rest, "role": rest.get("role") or "assistant", "tool_calls": [call]}
    if working.get("type") == "function_call_output":
        output = working.get("output")
        content = output if isinstance(output, str) else js_stringify(
            output if output is not None else "")
        rest = {k: v for k, v in working.items() if k not in ("type", "call_id", "output")}
        working = {**rest, "role": "tool", "content": content}
        _set_or_drop(working, "tool_call_id", msg.get("call_id"))
    out = _remove_null_fields(working)
    content = out.get("content")
    if isinstance(content, list) and content:
        first = content[0]
        if isinstance(first, dict) and first.get("type") == "output_text" \
                and isinstance(first.get("text"), str):
            out["content"] = first["text"]
    if isinstance(out.get("toolCalls"), list):
        out["tool_calls"] = out.pop("toolCalls")
    if _truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = _flatten_tool_calls(out["tool_calls"], langchain_args=False)
    return _spread_tool_object_content(out)


def _openai_tool_definition(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        return {}
    func = tool["function"] if tool.get("function") is not None else tool
    result = {"name": _prop(func, "name"), "description": _coalesce(_prop(func, "description"), "")}
    if result["name"] is None:
        del result["name"]
    if _prop(func, "parameters") is not None:
        result["parameters"] = func["parameters"]
    return result


def _openai_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, dict) and "tools" in data and ("messages" in data or "output" in data):
        messages = _coalesce(data.get("messages"), data.get("output"))
        if isinstance(messages, list) and isinstance(data["tools"], list):
            tools = [_openai_tool_definition(t) for t in data["tools"]]
            return [{**_openai_message(m), "tools": tools} for m in messages]
    if isinstance(data, dict) and "output" in data and "messages" not in data \
            and "tools" not in data and isinstance(data["output"], list):
        return [_openai_message(m) for m in data["output"]]
    if isinstance(data, dict) and "choices" in data and isinstance(data["choices"], list) \
            and data["choices"]:
        first = data["choices"][0]
        if isinstance(first, dict) and "message" in first:
            return _openai_message(first["message"])
    if isinstance(data, list):
        return [_openai_message(m) for m in data]
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        return {**data, "messages": [_openai_message(m) for m in messages]
                if isinstance(messages, list) else messages}
    if isinstance(data, dict) and "role" in data:
        return _openai_message(data)
    return data


def _openai_detect(ctx: dict[str, Any]) -> bool:
    meta = _parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict):
        if (
            any(k in meta for k in ("langgraph_step", "langgraph_node", "langgraph_path"))
            or meta.get("framework") == "langgraph"
            or (isinstance(meta.get("tags"), list) and "langgraph" in meta["tags"])
        ):
            return False
        scope = _scope_of(meta)
        if scope is not None:
            name = scope.get("name")
            if (isinstance(name, str) and name.startswith("Microsoft.SemanticKernel")) \
                    or name == "pydantic-ai":
                return False
        raw_meta = ctx.get("metadata")
        if isinstance(raw_meta, dict) and isinstance(raw_meta.get("messages"), list):
            if any(
                isinstance(m, dict) and m.get("type") in ("human", "ai", "tool", "system")
                and "role" not in m
                for m in raw_meta["messages"]
            ):
                return False
    name = ctx.get("observationName")
    if isinstance(name, str) and "openai" in name.lower():
        return True
    if isinstance(meta, dict):
        if meta.get("ls_provider") == "openai":
            return True
        attrs = meta.get("attributes")
        if isinstance(attrs, dict) and attrs.get("llm.system") == "openai":
            return True
    checks = (
        _is_openai_chat_request,
        _is_openai_messages,
        _is_openai_responses_output,
        _is_openai_choices,
        _is_openai_single_tool_message,
    )
    return any(check(value) for value in (ctx.get("metadata"), ctx.get("data")) for check in checks)


OPENAI = Adapter("openai", _openai_detect, _openai_preprocess)


# ---- Gemini / Vertex AI / Google ADK --------------------------------------------------------


def _gemini_field(obj: Any, snake: str, camel: str) -> Any:
    if not isinstance(obj, dict):
        return None
    return _coalesce(obj.get(snake), obj.get(camel))


def _gemini_parts(parts: list[Any]) -> tuple[list[dict[str, Any]], list[str], str]:
    """Tool calls, thinking texts and plain text of a Gemini ``parts`` list."""
    calls: list[dict[str, Any]] = []
    thinking: list[str] = []
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        call = _gemini_field(part, "function_call", "functionCall")
        if _truthy(call) and isinstance(call, dict):
            entry = {
                "id": call.get("id") or "",
                "name": call.get("name"),
                "arguments": _stringify_args(call.get("args")),
                "type": "function",
            }
            calls.append({k: v for k, v in entry.items() if v is not None})
            continue
        if part.get("text") is not None:
            text = part["text"] if isinstance(part["text"], str) else js_stringify(part["text"], 2)
            (thinking if part.get("thought") is True else texts).append(text)
            continue
        response = _gemini_field(part, "function_response", "functionResponse")
        if _truthy(response) and isinstance(response, dict):
            value = response.get("response")
            texts.append(js_stringify(value if _truthy(value) else {}))
    return calls, thinking, "".join(texts)


def _gemini_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if out.get("type") == "tool_call" and isinstance(out.get("name"), str) and out["name"]:
        call = {
            "id": out.get("id") or "",
            "name": out["name"],
            "arguments": _stringify_args(out.get("args")),
            "type": "function",
        }
        rest = {k: v for k, v in out.items() if k not in ("type", "name", "args")}
        out = {**rest, "role": rest.get("role") or "assistant", "tool_calls": [call]}
    if _truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = [_gemini_tool_call(tc) for tc in out["tool_calls"]]
    if _truthy(out.get("parts")) and isinstance(out["parts"], list):
        calls, thinking, text = _gemini_parts(out["parts"])
        if calls:
            out["tool_calls"] = calls
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
        if text:
            out["content"] = text
        del out["parts"]
    content = out.get("content")
    if _truthy(content) and isinstance(content, dict) and "parts" in content \
            and isinstance(content["parts"], list):
        calls, thinking, _ = _gemini_parts(content["parts"])
        if calls:
            out["tool_calls"] = calls
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
        if _truthy(content.get("role")) and isinstance(content["role"], str):
            out["role"] = content["role"]
    if isinstance(out.get("content"), list):
        _, thinking, text = _gemini_parts(out["content"])
        if text:
            out["content"] = text
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
    return _spread_tool_object_content(out)


def _gemini_tool_call(tc: Any) -> dict[str, Any]:
    if not isinstance(tc, dict):
        return {}
    if tc.get("type") == "tool_call" and "args" in tc:
        entry = {
            "id": tc.get("id") or "",
            "name": tc.get("name"),
            "arguments": _stringify_args(tc.get("args")),
            "type": "function",
        }
        return {k: v for k, v in entry.items() if v is not None}
    return tc


def _gemini_tool_declarations(tools: list[Any]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        decls = _gemini_field(tool, "function_declarations", "functionDeclarations")
        if not isinstance(decls, list):
            continue
        for decl in decls:
            entry: dict[str, Any] = {"name": _prop(decl, "name") or ""}
            if _prop(decl, "description") is not None:
                entry["description"] = decl["description"]
            if _prop(decl, "parameters") is not None:
                entry["parameters"] = decl["parameters"]
            declarations.append(entry)
    return declarations


def _gemini_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    candidates = data.get("candidates") if isinstance(data, dict) else None
    if _is_gemini_raw(data) and candidates and _truthy(candidates[0].get("content")):
        others = {k: v for k, v in data.items() if k != "candidates"}
        return _gemini_message({**data["candidates"][0]["content"], **others})
    if _is_gemini_adk_output(data):
        others = {k: v for k, v in data.items() if k != "content"}
        return _gemini_message({**data["content"], **others})
    if _is_gemini_adk_input(data):
        config = data["config"]
        messages: list[Any] = []
        instruction = _gemini_field(config, "system_instruction", "systemInstruction")
        if _truthy(instruction) and isinstance(instruction, str):
            messages.append({"role": "system", "content": instruction})
        messages.extend(data["contents"])
        normalized = [_gemini_message(m) for m in messages]
        if isinstance(config.get("tools"), list):
            tools = _gemini_tool_declarations(config["tools"])
            if tools:
                return [{**m, "tools": tools} for m in normalized]
        return normalized
    if _is_gemini_request(data):
        return [_gemini_message(m) for m in data["contents"]]
    if _is_gemini_adk_run(data):
        return [_gemini_message(data["new_message"])]
    if isinstance(data, list):
        return [_gemini_message(m) for m in data]
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        return {**data, "messages": [_gemini_message(m) for m in messages]
                if isinstance(messages, list) else messages}
    return data


def _gemini_detect(ctx: dict[str, Any]) -> bool:
    meta = _parse_metadata(ctx.get("metadata"))
    scope = _scope_name(meta)
    if scope in ("pydantic-ai", "agent_framework"):
        return False
    if isinstance(scope, str) and "Microsoft.Extensions.AI" in scope:
        return False
    name = ctx.get("observationName")
    if isinstance(name, str) and ("gemini" in name.lower() or "vertex" in name.lower()):
        return True
    if isinstance(meta, dict):
        if meta.get("ls_provider") == "google_vertexai":
            return True
        attrs = meta.get("attributes")
        if isinstance(attrs, dict) and attrs.get("gen_ai.system") == "gcp.vertex.agent":
            return True
    checks = (_is_gemini_request, _is_gemini_adk_input, _is_gemini_raw, _is_gemini_adk_output,
              _is_gemini_adk_run)
    return any(check(value) for value in (ctx.get("metadata"), ctx.get("data")) for check in checks)


GEMINI = Adapter("gemini", _gemini_detect, _gemini_preprocess)


# ---- Microsoft Agent Framework / Microsoft.Extensions.AI -------------------------------------


def _ms_call_id(ids: Any) -> str:
    """Agent Framework ids are ``[run_id, call_id]``; the ``call_`` one is the tool call id."""
    if isinstance(ids, list):
        match = next((i for i in ids if isinstance(i, str) and i.startswith("call_")), None)
        return match or (ids[-1] if ids and _truthy(ids[-1]) else "")
    return ids if isinstance(ids, str) else ""


def _ms_agent_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if _truthy(out.get("parts")) and isinstance(out["parts"], list):
        calls, texts, call_id = [], [], None
        for part in out["parts"]:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_call":
                entry = {
                    "id": _ms_call_id(part.get("id")),
                    "name": part.get("name"),
                    "arguments": _stringify_args(part.get("arguments")),
                    "type": "function",
                }
                calls.append({k: v for k, v in entry.items() if v is not None})
            elif part.get("type") == "text" and isinstance(part.get("content"), str):
                texts.append(part["content"])
            elif part.get("type") == "tool_call_response":
                if isinstance(part.get("id"), (list, str)):
                    call_id = _ms_call_id(part["id"])
                texts.append(_stringify_tool_result(part.get("response")))
        if calls:
            out["tool_calls"] = calls
        if "".join(texts):
            out["content"] = "".join(texts)
        if _truthy(call_id) and out.get("role") == "tool":
            out["tool_call_id"] = call_id
        del out["parts"]
    return _spread_tool_object_content(out)


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


def _ms_agent_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, list):
        normalized = [_ms_agent_message(m) for m in data]
        definitions = _nested(
            _parse_metadata(ctx.get("metadata")), "attributes", "gen_ai.tool.definitions"
        )
        if _truthy(definitions):
            tools = _ms_tool_definitions(definitions)
            if tools:
                return _attach_tools(normalized, tools)
        return normalized
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = [_ms_agent_message(m) for m in messages]
            tools = _tool_definitions(data.get("tools"))
            if tools:
                messages = _attach_tools(messages, tools)
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


def _ms_agent_detect(ctx: dict[str, Any]) -> bool:
    meta = _parse_metadata(ctx.get("metadata"))
    scope = _coalesce(_scope_name(meta), meta.get("scope.name") if isinstance(meta, dict) else None)
    if scope == "agent_framework":
        return True
    if isinstance(scope, str) and "Microsoft.Extensions.AI" in scope:
        return True
    if scope == "pydantic-ai":
        return False
    if _nested(meta, "attributes", "gen_ai.provider.name") == "microsoft.agent_framework":
        return True
    if _has_pydantic_markers(ctx.get("metadata")) or _has_pydantic_markers(ctx.get("data")):
        return False
    return (
        _is_ms_agent_messages(ctx.get("metadata"))
        or _is_ms_agent_messages(ctx.get("data"))
        or _is_ms_agent_message(ctx.get("data"))
    )


MICROSOFT_AGENT = Adapter("microsoft-agent", _ms_agent_detect, _ms_agent_preprocess)


# ---- Pydantic AI ----------------------------------------------------------------------------


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
                     "arguments": _stringify_args(part.get("arguments")), "type": "function"}
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
        return _remove_null_fields(msg)
    parts = _pydantic_parts(msg["parts"])
    rest = {k: v for k, v in msg.items() if k not in ("role", "parts")}
    extra: dict[str, Any] = {}
    if parts.thinking:
        extra["thinking"] = parts.thinking
    if parts.redacted:
        extra["redacted_thinking"] = parts.redacted
    if msg.get("role") == "assistant" and parts.calls:
        return _remove_null_fields({"role": "assistant", "content": parts.text or "",
                                    "tool_calls": parts.calls, **extra, **rest})
    if msg.get("role") == "user" and parts.responses:
        messages = [_remove_null_fields({"role": "tool", **r}) for r in parts.responses]
        if parts.text:
            messages.append({"role": "user", "content": parts.text})
        return messages
    return _remove_null_fields({"role": msg.get("role"), "content": parts.text or "",
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
    if _truthy(tool.get("parameters_json_schema")):
        result["parameters"] = tool["parameters_json_schema"]
    return result


def _pydantic_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, list):
        normalized = _pydantic_messages(data)
        tools = _nested(_parse_metadata(ctx.get("metadata")), "attributes",
                        "model_request_parameters", "function_tools")
        if isinstance(tools, list) and tools:
            return _attach_tools(normalized, [_pydantic_tool_definition(t) for t in tools])
        return normalized
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = _pydantic_messages(messages)
            tools = _tool_definitions(data.get("tools"))
            if tools:
                messages = _attach_tools(messages, tools)
        return {**data, "messages": messages}
    return _pydantic_message(data)


def _pydantic_detect(ctx: dict[str, Any]) -> bool:
    if _scope_name(_parse_metadata(ctx.get("metadata"))) == "pydantic-ai":
        return True
    return _is_pydantic_messages(ctx.get("metadata")) or _is_pydantic_messages(ctx.get("data"))


PYDANTIC_AI = Adapter("pydantic-ai", _pydantic_detect, _pydantic_preprocess)


# ---- Semantic Kernel ------------------------------------------------------------------------


def _sk_message(msg: Any) -> dict[str, Any]:
    """Semantic Kernel puts the real message, as JSON text, in ``gen_ai.event.content``."""
    if not isinstance(msg, dict):
        return {}
    raw = msg.get("gen_ai.event.content")
    if isinstance(raw, str):
        try:
            inner = _json_parse(raw)
        except ValueError:
            inner = None
        if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
            inner = inner["message"]
        if isinstance(inner, dict):
            role = inner.get("role")
            out: dict[str, Any] = {"role": role.lower() if isinstance(role, str) else "assistant"}
            if inner.get("content") is not None:
                out["content"] = inner["content"]
            if isinstance(inner.get("tool_calls"), list) and inner["tool_calls"]:
                out["tool_calls"] = inner["tool_calls"]
            if inner.get("name") is not None:
                out["name"] = inner["name"]
            return out
    rest = {k: v for k, v in msg.items() if k not in ("gen_ai.event.content", "gen_ai.system")}
    return _remove_null_fields(rest)


def _sk_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, list):
        return [_sk_message(m) for m in data]
    if isinstance(data, dict) and "gen_ai.event.content" in data:
        return [_sk_message(data)]
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = _attach_tools([_sk_message(m) for m in messages],
                                     _tool_definitions(data.get("tools")))
        return {**data, "messages": messages}
    if isinstance(data, dict) and "role" in data:
        return _sk_message(data)
    return data


def _sk_detect(ctx: dict[str, Any]) -> bool:
    scope = _scope_name(_parse_metadata(ctx.get("metadata")))
    return isinstance(scope, str) and scope.startswith("Microsoft.SemanticKernel")


SEMANTIC_KERNEL = Adapter("semantic-kernel", _sk_detect, _sk_preprocess)


# ---- Generic fallback -----------------------------------------------------------------------


def _google_message(msg: Any) -> dict[str, Any]:
    """Gemini-style ``model`` role and ``parts`` lists, as the generic fallback reads them."""
    if not _truthy(msg) or not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if msg.get("role") == "model":
        out["role"] = "assistant"
    parts = msg.get("parts")
    if _truthy(parts) and isinstance(parts, list):
        structured = any(
            isinstance(p, dict) and (
                _truthy(p.get("function_call")) or p.get("type") == "tool_call"
                or _truthy(p.get("function_response")) or p.get("type") == "tool_call_response"
            )
            for p in parts
        )
        if structured:
            out["content"] = parts
        else:
            texts = []
            for p in parts:
                if isinstance(p, dict) and _truthy(p.get("text")):
                    texts.append(str(p["text"]))
                elif isinstance(p, dict) and _truthy(p.get("content")) and isinstance(
                        p["content"], str):
                    texts.append(p["content"])
                elif isinstance(p, (str, int, float)) and not isinstance(p, bool):
                    texts.append(str(p))
            out["content"] = "".join(t for t in texts if t != "")
        del out["parts"]
    return out


def _generic_preprocess(data: Any, kind: str, ctx: dict[str, Any]) -> Any:
    if not _truthy(data):
        return data
    if isinstance(data, dict) and isinstance(data.get("candidates"), list):
        candidate = data["candidates"][0] if data["candidates"] else None
        if isinstance(candidate, dict) and _truthy(candidate.get("content")):
            return _google_message(candidate["content"])
    if isinstance(data, dict) and "contents" in data and "messages" not in data:
        messages: list[Any] = []
        config = data.get("config")
        if isinstance(config, dict) and _truthy(config.get("system_instruction")):
            messages.append({"role": "system", "content": config["system_instruction"]})
        contents = data["contents"]
        if isinstance(contents, str):
            messages.append({"role": "user", "content": contents})
        elif isinstance(contents, list):
            messages.extend(_google_message(c) for c in contents)
        return messages if messages else data
    if isinstance(data, list):
        if len(data) == 1 and isinstance(data[0], list):
            return [_google_message(m) for m in data[0]]
        return [_google_message(m) for m in data]
    if isinstance(data, dict) and "messages" in data:
        messages_value = data["messages"]
        if isinstance(messages_value, str):
            try:
                messages_value = _json_parse(messages_value)
            except ValueError:
                pass
        return {**data, "messages": [_google_message(m) for m in messages_value]
                if isinstance(messages_value, list) else messages_value}
    if isinstance(data, dict) and ("role" in data or "parts" in data):
        return _google_message(data)
    return data


GENERIC = Adapter("generic", lambda ctx: True, _generic_preprocess)


# Order matters: the first adapter whose detector accepts wins (as in Langfuse).
ADAPTERS: tuple[Adapter, ...] = (
    LANGGRAPH,
    AISDK,
    OPENAI,
    GEMINI,
    MICROSOFT_AGENT,
    PYDANTIC_AI,
    SEMANTIC_KERNEL,
    GENERIC,
)


def select_adapter(ctx: dict[str, Any]) -> Adapter:
    for adapter in ADAPTERS:
        try:
            if adapter.detect(ctx):
                return adapter
        except (TypeError, AttributeError, KeyError, IndexError):
            continue  # a detector that trips over odd data is a non-match
    return GENERIC


# --------------------------------------------------------------------------------------------
# Message schema (Langfuse's ChatMlMessageSchema) and the final mapping
# --------------------------------------------------------------------------------------------

_MEDIA_REFERENCE = re.compile(r"^@@@langfuseMedia:(.*)@@@$")
_PICKED = ("role", "name", "content", "audio", "type", "tools", "tool_calls", "tool_call_id")
_TOOL_CALL_KEYS = ("id", "name", "arguments", "type", "index")
_TOOL_DEFINITION_KEYS = ("name", "description", "parameters")


def _valid_tool_definition(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and _optional_str(tool, "description")
        and ("parameters" not in tool or isinstance(tool["parameters"], dict))
    )


def _valid_tool_call(call: Any) -> bool:
    return (
        isinstance(call, dict)
        and isinstance(call.get("id"), str)
        and isinstance(call.get("name"), str)
        and isinstance(call.get("arguments"), str)
        and _optional_str(call, "type")
        and ("index" not in call or (isinstance(call["index"], (int, float))
                                     and not isinstance(call["index"], bool)))
    )


def _valid_audio(audio: Any) -> bool:
    return (
        isinstance(audio, dict)
        and isinstance(audio.get("data"), str)
        and _MEDIA_REFERENCE.match(audio["data"]) is not None
        and _optional_str(audio, "transcript")
    )


def _validate_message(msg: Any) -> dict[str, Any] | None:
    """One ChatML message as Langfuse's schema leaves it, or None if the schema rejects it."""
    if not isinstance(msg, dict):
        return None
    if not (_optional_str(msg, "role") and _optional_str(msg, "name")
            and _optional_str(msg, "tool_call_id")):
        return None
    content = msg.get("content")
    if "content" in msg and content is not None and not isinstance(content, (str, list, dict)):
        return None
    if "audio" in msg and not _valid_audio(msg["audio"]):
        return None
    if "additional_kwargs" in msg and not isinstance(msg["additional_kwargs"], dict):
        return None
    if "tools" in msg and not (isinstance(msg["tools"], list)
                               and all(_valid_tool_definition(t) for t in msg["tools"])):
        return None
    if "tool_calls" in msg and not (isinstance(msg["tool_calls"], list)
                                    and all(_valid_tool_call(c) for c in msg["tool_calls"])):
        return None
    # refine: a message needs a role unless its content is something other than null
    if "content" in msg and content is None and "role" not in msg:
        return None
    merged = {k: v for k, v in msg.items() if k != "additional_kwargs"}
    merged.update(msg.get("additional_kwargs") or {})
    # nested schemas are strict objects: they keep only their own keys, in schema order
    if "tool_calls" in msg:
        merged["tool_calls"] = [_pick(c, _TOOL_CALL_KEYS) for c in msg["tool_calls"]]
    if "tools" in msg:
        merged["tools"] = [_pick(t, _TOOL_DEFINITION_KEYS) for t in msg["tools"]]
    result = {k: merged[k] for k in _PICKED if k in merged}
    other = {k: v for k, v in merged.items() if k not in _PICKED}
    if other:
        result["json"] = other
    return result


def _pick(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: obj[k] for k in keys if k in obj}


def _validate_array(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list) or not value:
        return None
    messages = [_validate_message(m) for m in value]
    return None if any(m is None for m in messages) else messages


def map_to_chatml(value: Any) -> list[dict[str, Any]] | None:
    """Input side: a list of messages, ``[[...]]``, ``{messages: [...]}`` or one message."""
    result = _validate_array(value)
    if result is not None:
        return result
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return _validate_array(value[0])
    if isinstance(value, dict) and "messages" in value:
        result = _validate_array(value["messages"])
        if result is not None:
            # Langfuse validates the already-validated messages a second time here, which
            # nests each message's extras one level deeper (json -> {"json": {...}}).
            return _validate_array(result)
    # The normaliser our fixtures record takes no bare single message on the input side
    # (newer Langfuse versions do); callers fall back to their own reading of such payloads.
    return None


def map_output_to_chatml(value: Any) -> list[dict[str, Any]] | None:
    """Output side: ``{messages: [...]}`` (LangGraph state) or any message(s)."""
    if isinstance(value, dict) and "messages" in value:
        return _validate_array(value["messages"])
    return _validate_array(value if isinstance(value, list) else [value])


def _context(data: Any, metadata: Any, observation_name: str | None) -> dict[str, Any]:
    # normalizeInput falls back to the payload itself when there is no metadata
    return {
        "metadata": metadata if metadata is not None else data,
        "observationName": observation_name,
        "data": data,
    }


def _normalise(data: Any, kind: str, metadata: Any, observation_name: str | None) -> Any:
    ctx = _context(data, metadata, observation_name)
    preprocessed = select_adapter(ctx).preprocess(data, kind, ctx)
    return map_to_chatml(preprocessed) if kind == "input" else map_output_to_chatml(preprocessed)


def _safely(data: Any, kind: str, metadata: Any, observation_name: str | None) -> Any:
    # The TypeScript adapters read missing fields of odd payloads as undefined; the Python
    # port mirrors that where it matters, and anything it still trips over is simply not chat.
    try:
        return _normalise(data, kind, metadata, observation_name)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError):
        return None


def normalize_input(
    data: Any, metadata: Any = None, observation_name: str | None = None
) -> list[dict[str, Any]] | None:
    """ChatML messages of an observation input (already deep-parsed), or None."""
    return _safely(data, "input", metadata, observation_name)


def normalize_output(
    data: Any, metadata: Any = None, observation_name: str | None = None
) -> list[dict[str, Any]] | None:
    """ChatML messages of an observation output (already deep-parsed), or None."""
    return _safely(data, "output", metadata, observation_name)
