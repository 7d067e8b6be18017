"""Gemini, Vertex AI and Google ADK.

Upstream: ``packages/shared/src/utils/chatml/adapters/gemini.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    optional_str,
    parse_metadata,
    scope_name,
    spread_tool_object_content,
    stringify_args,
)
from evalflow.lib.ingest.dialects.chatml.js import coalesce, js_stringify, prop, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _is_gemini_raw(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("candidates"), list):
        return False
    for c in value["candidates"]:
        if not isinstance(c, dict) or not isinstance(c.get("content"), dict):
            return False
        content = c["content"]
        if "parts" in content and not isinstance(content["parts"], list):
            return False
        if not optional_str(content, "role"):
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
    if not optional_str(config, "system_instruction"):
        return False
    return isinstance(value.get("contents"), list)


def _is_gemini_request(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("contents"), list)
        and all(
            isinstance(c, dict) and isinstance(c.get("parts"), list) and optional_str(c, "role")
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


def _gemini_field(obj: Any, snake: str, camel: str) -> Any:
    if not isinstance(obj, dict):
        return None
    return coalesce(obj.get(snake), obj.get(camel))


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
        if truthy(call) and isinstance(call, dict):
            entry = {
                "id": call.get("id") or "",
                "name": call.get("name"),
                "arguments": stringify_args(call.get("args")),
                "type": "function",
            }
            calls.append({k: v for k, v in entry.items() if v is not None})
            continue
        if part.get("text") is not None:
            text = part["text"] if isinstance(part["text"], str) else js_stringify(part["text"], 2)
            (thinking if part.get("thought") is True else texts).append(text)
            continue
        response = _gemini_field(part, "function_response", "functionResponse")
        if truthy(response) and isinstance(response, dict):
            value = response.get("response")
            texts.append(js_stringify(value if truthy(value) else {}))
    return calls, thinking, "".join(texts)


def _gemini_message(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if out.get("type") == "tool_call" and isinstance(out.get("name"), str) and out["name"]:
        call = {
            "id": out.get("id") or "",
            "name": out["name"],
            "arguments": stringify_args(out.get("args")),
            "type": "function",
        }
        rest = {k: v for k, v in out.items() if k not in ("type", "name", "args")}
        out = {**rest, "role": rest.get("role") or "assistant", "tool_calls": [call]}
    if truthy(out.get("tool_calls")) and isinstance(out["tool_calls"], list):
        out["tool_calls"] = [_gemini_tool_call(tc) for tc in out["tool_calls"]]
    if truthy(out.get("parts")) and isinstance(out["parts"], list):
        calls, thinking, text = _gemini_parts(out["parts"])
        if calls:
            out["tool_calls"] = calls
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
        if text:
            out["content"] = text
        del out["parts"]
    content = out.get("content")
    if truthy(content) and isinstance(content, dict) and "parts" in content \
            and isinstance(content["parts"], list):
        calls, thinking, _ = _gemini_parts(content["parts"])
        if calls:
            out["tool_calls"] = calls
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
        if truthy(content.get("role")) and isinstance(content["role"], str):
            out["role"] = content["role"]
    if isinstance(out.get("content"), list):
        _, thinking, text = _gemini_parts(out["content"])
        if text:
            out["content"] = text
        if thinking:
            out["thinking"] = [{"type": "thinking", "content": t} for t in thinking]
    return spread_tool_object_content(out)


def _gemini_tool_call(tc: Any) -> dict[str, Any]:
    if not isinstance(tc, dict):
        return {}
    if tc.get("type") == "tool_call" and "args" in tc:
        entry = {
            "id": tc.get("id") or "",
            "name": tc.get("name"),
            "arguments": stringify_args(tc.get("args")),
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
            entry: dict[str, Any] = {"name": prop(decl, "name") or ""}
            if prop(decl, "description") is not None:
                entry["description"] = decl["description"]
            if prop(decl, "parameters") is not None:
                entry["parameters"] = decl["parameters"]
            declarations.append(entry)
    return declarations


def _gemini_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    candidates = data.get("candidates") if isinstance(data, dict) else None
    if _is_gemini_raw(data) and candidates and truthy(candidates[0].get("content")):
        others = {k: v for k, v in data.items() if k != "candidates"}
        return _gemini_message({**data["candidates"][0]["content"], **others})
    if _is_gemini_adk_output(data):
        others = {k: v for k, v in data.items() if k != "content"}
        return _gemini_message({**data["content"], **others})
    if _is_gemini_adk_input(data):
        config = data["config"]
        messages: list[Any] = []
        instruction = _gemini_field(config, "system_instruction", "systemInstruction")
        if truthy(instruction) and isinstance(instruction, str):
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


def _gemini_detect(ctx: NormalizerContext) -> bool:
    meta = parse_metadata(ctx.get("metadata"))
    scope = scope_name(meta)
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
