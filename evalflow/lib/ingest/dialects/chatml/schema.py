"""The schema every normalised message must pass (Langfuse's ``ChatMlMessageSchema``).

Upstream this lives outside ``chatml/``: ``core.ts`` imports ``ChatMlArraySchema`` and
``ChatMlMessageSchema`` from ``packages/shared/src/utils/IORepresentation/chatML/types.ts``
(built on ``BaseChatMlMessageSchema``; the web app's copy is
``web/src/components/schemas/ChatMlSchema.ts``). These functions do what zod's ``safeParse`` of
that schema does to one message or to an array of them.
"""

from __future__ import annotations

import re
from typing import Any

from evalflow.lib.ingest.dialects.chatml.helpers import optional_str

_MEDIA_REFERENCE = re.compile(r"^@@@langfuseMedia:(.*)@@@$")
_PICKED = ("role", "name", "content", "audio", "type", "tools", "tool_calls", "tool_call_id")
_TOOL_CALL_KEYS = ("id", "name", "arguments", "type", "index")
_TOOL_DEFINITION_KEYS = ("name", "description", "parameters")


def _valid_tool_definition(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and optional_str(tool, "description")
        and ("parameters" not in tool or isinstance(tool["parameters"], dict))
    )


def _valid_tool_call(call: Any) -> bool:
    return (
        isinstance(call, dict)
        and isinstance(call.get("id"), str)
        and isinstance(call.get("name"), str)
        and isinstance(call.get("arguments"), str)
        and optional_str(call, "type")
        and ("index" not in call or (isinstance(call["index"], (int, float))
                                     and not isinstance(call["index"], bool)))
    )


def _valid_audio(audio: Any) -> bool:
    return (
        isinstance(audio, dict)
        and isinstance(audio.get("data"), str)
        and _MEDIA_REFERENCE.match(audio["data"]) is not None
        and optional_str(audio, "transcript")
    )


def _validate_message(msg: Any) -> dict[str, Any] | None:
    """One ChatML message as Langfuse's schema leaves it, or None if the schema rejects it."""
    if not isinstance(msg, dict):
        return None
    if not (optional_str(msg, "role") and optional_str(msg, "name")
            and optional_str(msg, "tool_call_id")):
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


def validate_array(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list) or not value:
        return None
    messages = [_validate_message(m) for m in value]
    return None if any(m is None for m in messages) else messages
