"""The fallback adapter, tried last; it accepts every payload.

Upstream: ``packages/shared/src/utils/chatml/adapters/generic.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.js import json_parse, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _google_message(msg: Any) -> dict[str, Any]:
    """Gemini-style ``model`` role and ``parts`` lists, as the generic fallback reads them."""
    if not truthy(msg) or not isinstance(msg, dict):
        return {}
    out = dict(msg)
    if msg.get("role") == "model":
        out["role"] = "assistant"
    parts = msg.get("parts")
    if truthy(parts) and isinstance(parts, list):
        structured = any(
            isinstance(p, dict) and (
                truthy(p.get("function_call")) or p.get("type") == "tool_call"
                or truthy(p.get("function_response")) or p.get("type") == "tool_call_response"
            )
            for p in parts
        )
        if structured:
            out["content"] = parts
        else:
            texts = []
            for p in parts:
                if isinstance(p, dict) and truthy(p.get("text")):
                    texts.append(str(p["text"]))
                elif isinstance(p, dict) and truthy(p.get("content")) and isinstance(
                        p["content"], str):
                    texts.append(p["content"])
                elif isinstance(p, (str, int, float)) and not isinstance(p, bool):
                    texts.append(str(p))
            out["content"] = "".join(t for t in texts if t != "")
        del out["parts"]
    return out


def _generic_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, dict) and isinstance(data.get("candidates"), list):
        candidate = data["candidates"][0] if data["candidates"] else None
        if isinstance(candidate, dict) and truthy(candidate.get("content")):
            return _google_message(candidate["content"])
    if isinstance(data, dict) and "contents" in data and "messages" not in data:
        messages: list[Any] = []
        config = data.get("config")
        if isinstance(config, dict) and truthy(config.get("system_instruction")):
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
                messages_value = json_parse(messages_value)
            except ValueError:
                pass
        return {**data, "messages": [_google_message(m) for m in messages_value]
                if isinstance(messages_value, list) else messages_value}
    if isinstance(data, dict) and ("role" in data or "parts" in data):
        return _google_message(data)
    return data


GENERIC = Adapter("generic", lambda ctx: True, _generic_preprocess)
