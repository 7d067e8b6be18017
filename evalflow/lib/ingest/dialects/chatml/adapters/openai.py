"""OpenAI Chat Completions, and Responses API output.

Upstream: ``packages/shared/src/utils/chatml/adapters/openai.ts``, as it was before commit
1e5971561c0c taught it Responses-API *input*.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    flatten_tool_calls,
    has_top_level_parts,
    parse_metadata,
    remove_null_fields,
    scope_of,
    set_or_drop,
    spread_tool_object_content,
    stringify_args,
)
from evalflow.lib.ingest.dialects.chatml.js import coalesce, js_stringify, prop, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


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
        and not has_top_level_parts(value)
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


def _joined_texts(items: Any) -> str:
    texts = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and "text" in item:
            texts.append(item["text"])
    return "\n".join(str(t) for t in texts if truthy(t))


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
            "arguments": stringify_args(working.get("arguments")),
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
        set_or_drop(working, "tool_call_id", msg.get("call_id"))
    out = remove_null_fields(working)
    content = out.get("content")
    if isinstance(content, list) and content:
        first = content[0]
        if isinstance(first, dict) and first.get("type") == "output_text" \
                and isinstance(first.get("text"), str):
            out["content"] = first["text"]
    if isinstance(out.get("toolCalls"), list):
        out["tool_calls"] = out.pop("toolCalls")
    if truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = flatten_tool_calls(out["tool_calls"], langchain_args=False)
    return spread_tool_object_content(out)


def _openai_tool_definition(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        return {}
    func = tool["function"] if tool.get("function") is not None else tool
    result = {"name": prop(func, "name"), "description": coalesce(prop(func, "description"), "")}
    if result["name"] is None:
        del result["name"]
    if prop(func, "parameters") is not None:
        result["parameters"] = func["parameters"]
    return result


def _openai_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, dict) and "tools" in data and ("messages" in data or "output" in data):
        messages = coalesce(data.get("messages"), data.get("output"))
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


def _openai_detect(ctx: NormalizerContext) -> bool:
    meta = parse_metadata(ctx.get("metadata"))
    if isinstance(meta, dict):
        if (
            any(k in meta for k in ("langgraph_step", "langgraph_node", "langgraph_path"))
            or meta.get("framework") == "langgraph"
            or (isinstance(meta.get("tags"), list) and "langgraph" in meta["tags"])
        ):
            return False
        scope = scope_of(meta)
        if scope is not None:
            name = scope.get("name")
            if (isinstance(name, str) and name.startswith("Microsoft.SemanticKernel")) \
                    or name == "pydantic-ai":
                return False
        raw_meta = ctx.get("metadata")
        if (
            isinstance(raw_meta, dict)
            and isinstance(raw_meta.get("messages"), list)
            and any(
                isinstance(m, dict) and m.get("type") in ("human", "ai", "tool", "system")
                and "role" not in m
                for m in raw_meta["messages"]
            )
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
