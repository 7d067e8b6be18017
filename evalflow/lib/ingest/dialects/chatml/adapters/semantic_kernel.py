"""Microsoft Semantic Kernel.

Upstream: ``packages/shared/src/utils/chatml/adapters/semantic-kernel.ts``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import (
    attach_tools,
    parse_metadata,
    remove_null_fields,
    scope_name,
    tool_definitions,
)
from evalflow.lib.ingest.dialects.chatml.js import json_parse, truthy
from evalflow.lib.ingest.dialects.chatml.types import Adapter, NormalizerContext


def _sk_message(msg: Any) -> dict[str, Any]:
    """Semantic Kernel puts the real message, as JSON text, in ``gen_ai.event.content``."""
    if not isinstance(msg, dict):
        return {}
    raw = msg.get("gen_ai.event.content")
    if isinstance(raw, str):
        try:
            inner = json_parse(raw)
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
    return remove_null_fields(rest)


def _sk_preprocess(data: Any, kind: str, ctx: NormalizerContext) -> Any:
    if not truthy(data):
        return data
    if isinstance(data, list):
        return [_sk_message(m) for m in data]
    if isinstance(data, dict) and "gen_ai.event.content" in data:
        return [_sk_message(data)]
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, list):
            messages = attach_tools([_sk_message(m) for m in messages],
                                     tool_definitions(data.get("tools")))
        return {**data, "messages": messages}
    if isinstance(data, dict) and "role" in data:
        return _sk_message(data)
    return data


def _sk_detect(ctx: NormalizerContext) -> bool:
    scope = scope_name(parse_metadata(ctx.get("metadata")))
    return isinstance(scope, str) and scope.startswith("Microsoft.SemanticKernel")


SEMANTIC_KERNEL = Adapter("semantic-kernel", _sk_detect, _sk_preprocess)
