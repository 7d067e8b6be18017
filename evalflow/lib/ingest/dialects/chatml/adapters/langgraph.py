"""LangGraph / LangChain messages.

Upstream: ``packages/shared/src/utils/chatml/adapters/langgraph.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    attach_tools,
    flatten_tool_calls,
    has_top_level_parts,
    is_ai_sdk_meta,
    optional_str,
    parse_metadata,
    remove_null_fields,
    scope_of,
    spread_tool_object_content,
)
from evalflow.lib.ingest.dialects.chatml.js import has, prop, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _is_langchain_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and m.get("type") in ("human", "ai", "tool", "system") for m in value
    )


def _is_langgraph_messages(value: Any) -> bool:
    if not isinstance(value, list) or has_top_level_parts(value):
        return False
    for m in value:
        if not isinstance(m, dict) or not optional_str(m, "role"):
            return False
        if "additional_kwargs" in m:
            kwargs = m["additional_kwargs"]
            if not isinstance(kwargs, dict):
                return False
            if "tool_calls" in kwargs and not isinstance(kwargs["tool_calls"], list):
                return False
    return True


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
        and truthy(content.get("function"))
        and not truthy(msg.get("tool_call_id"))
    )


def _langgraph_tool_definitions(messages: list[Any]) -> list[dict[str, Any]]:
    tools = []
    for msg in messages:
        if not _is_langgraph_tool_definition(msg):
            continue
        func = msg["content"]["function"]
        tool: dict[str, Any] = {"name": prop(func, "name") or ""}
        if prop(func, "description") is not None:
            tool["description"] = func["description"]
        if prop(func, "parameters") is not None:
            tool["parameters"] = func["parameters"]
        tools.append(tool)
    return tools


def _langgraph_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = remove_null_fields(msg)
    if truthy(out.get("type")) and not truthy(out.get("role")):
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
    if truthy(kwargs) and isinstance(kwargs, dict) and truthy(kwargs.get("tool_calls")):
        if not truthy(out.get("tool_calls")):
            out["tool_calls"] = kwargs["tool_calls"]
        # drop it from additional_kwargs so the schema's kwargs spread cannot overwrite ours
        out["additional_kwargs"] = remove_null_fields(
            {k: v for k, v in kwargs.items() if k != "tool_calls"}
        )
    if truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = flatten_tool_calls(out["tool_calls"], langchain_args=True)
    return spread_tool_object_content(out)


def _langgraph_messages(messages: list[Any]) -> list[Any]:
    normalized = [_langgraph_message(m) for m in messages if not _is_langgraph_tool_definition(m)]
    tools = _langgraph_tool_definitions(messages)
    return attach_tools(normalized, tools) if tools else normalized


def _langgraph_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, list):
        return _langgraph_messages(data)
    if has(data, "messages") and isinstance(data["messages"], list):
        return {**data, "messages": _langgraph_messages(data["messages"])}
    if isinstance(data, dict) and ("role" in data or "type" in data):
        return [_langgraph_message(data)]
    return data


def _wrapped_langgraph(value: Any) -> bool | None:
    """Checks ``{messages: [...]}``: None if not wrapped, False to reject, True to accept."""
    if not (isinstance(value, dict) and isinstance(value.get("messages"), list)):
        return None
    if isinstance(value.get("tools"), list):
        return False  # OpenAI chat request, not LangGraph
    if _is_langchain_messages(value["messages"]) or _is_langgraph_messages(value["messages"]):
        return True
    return None


def _langgraph_detect(ctx: NormalizerContext) -> bool:
    meta = parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict):
        scope = scope_of(meta)
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
        if is_ai_sdk_meta(meta):
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
