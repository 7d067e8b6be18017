"""Message normalisation shared by every dialect.

Frameworks write chat messages in many shapes (OpenAI chat, OTel GenAI `parts`, Anthropic
content blocks, Gemini `contents/parts`, LangChain `type: human|ai`). The canonical trace keeps
one shape: {"role", "content": str | None, optional "name", "tool_calls", "tool_call_id"}.
"""

from __future__ import annotations

import json
from typing import Any


def to_text(content: Any) -> str | None:
    """Flatten message content (string, list of parts, dict) to plain text."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = [to_text(part) for part in content]
        pieces = [p for p in pieces if p]
        return "\n".join(pieces) if pieces else None
    if isinstance(content, dict):
        for key in ("text", "content", "message_content.text"):
            if isinstance(content.get(key), str):
                return content[key]
        return json.dumps(content, ensure_ascii=False, sort_keys=True)
    return str(content)


# --- generic message helpers (span dialects, LangSmith) -------------------------------------
# Each helper accepts the loose shapes frameworks emit and returns canonical messages:
# {"role", "content", optional "name", "tool_calls": [{"id", "name", "arguments"}],
# "tool_call_id"}. Unknown shapes give [] / None rather than raising: a trace with an odd
# message still carries counts, latency and cost.

_ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "model": "assistant",  # Gemini
    "bot": "assistant",
    "function": "tool",
    "chat": None,  # LangChain ChatMessage: the role is in the body
}

# LangChain serialised classes (``{"lc": 1, "id": [..., "HumanMessage"], "kwargs": {...}}``).
_LANGCHAIN_CLASS_ROLES = {
    "HumanMessage": "user",
    "HumanMessageChunk": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "SystemMessageChunk": "system",
    "ToolMessage": "tool",
    "ToolMessageChunk": "tool",
    "FunctionMessage": "tool",
}

_TEXT_PART_TYPES = {"text", "input_text", "output_text"}
_TOOL_CALL_PART_TYPES = {"tool_call", "tool-call", "tool_use", "function_call"}
_TOOL_RESULT_PART_TYPES = {
    "tool_call_response",
    "tool-result",
    "tool_result",
    "function_call_output",
}
# Reasoning is not part of what the user saw; it is dropped rather than mixed into content.
_SKIPPED_PART_TYPES = {"reasoning", "thinking", "redacted_thinking"}


def parse_json_maybe(value: Any) -> Any:
    """Decode a string that holds JSON (attributes often carry JSON as text); else unchanged."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped[:1] == '"':
            try:
                return json.loads(stripped)
            except ValueError:
                return value
    return value


def normalize_role(role: Any) -> str | None:
    if not isinstance(role, str) or not role:
        return None
    role = role.lower()
    return _ROLE_ALIASES.get(role, role)


def normalize_tool_call(call: Any) -> dict[str, Any] | None:
    """One requested tool call as {"id", "name", "arguments"} from any framework's shape."""
    if not isinstance(call, dict):
        return None
    if isinstance(call.get("tool_call"), dict):  # OpenInference flattened wrapper
        call = call["tool_call"]
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    name = function.get("name") or call.get("name") or call.get("toolName")
    if "arguments" in function:
        arguments = function.get("arguments")
    else:
        arguments = next(
            (call[k] for k in ("arguments", "args", "input") if k in call), None
        )
    call_id = call.get("id") or call.get("toolCallId") or call.get("call_id")
    if name is None and arguments is None:
        return None
    return {"id": call_id, "name": name, "arguments": parse_json_maybe(arguments)}


def _tool_result_text(part: dict[str, Any]) -> str | None:
    for key in ("response", "output", "result", "content"):
        if key in part:
            value = part[key]
            if isinstance(value, dict) and "value" in value and "type" in value:
                value = value["value"]  # Vercel v5+: {"type": "text"|"json", "value": ...}
            return value if isinstance(value, str) else to_text(value)
    return None


def _content_from_parts(parts: list[Any]) -> tuple[str | None, list[dict], str | None]:
    """(text, tool_calls, tool_call_id) from a list of typed content parts."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    tool_call_id = None
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("message_content"), dict):  # OpenInference `contents`
            part = part["message_content"]
        kind = part.get("type")
        if kind in _SKIPPED_PART_TYPES:
            continue
        if kind in _TOOL_CALL_PART_TYPES:
            call = normalize_tool_call(part)
            if call:
                calls.append(call)
        elif kind in _TOOL_RESULT_PART_TYPES:
            tool_call_id = part.get("id") or part.get("toolCallId") or part.get("tool_use_id")
            text = _tool_result_text(part)
            if text:
                texts.append(text)
        elif kind in _TEXT_PART_TYPES or kind is None:
            text = part.get("text", part.get("content"))
            text = text if isinstance(text, str) else to_text(text)
            if text:
                texts.append(text)
        else:  # images, audio, files: summarised, the bytes are not kept
            texts.append(f"[{kind}]")
    return ("\n".join(texts) if texts else None), calls, tool_call_id


def _unwrap_message(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The message body and a role hint, for the wrapped shapes (LangChain, OpenInference)."""
    if raw.get("lc") and isinstance(raw.get("kwargs"), dict):
        class_name = raw["id"][-1] if isinstance(raw.get("id"), list) and raw["id"] else ""
        return raw["kwargs"], _LANGCHAIN_CLASS_ROLES.get(class_name)
    if isinstance(raw.get("data"), dict) and isinstance(raw.get("type"), str):
        return raw["data"], normalize_role(raw["type"])  # langchain messages_to_dict
    if isinstance(raw.get("message"), dict) and "role" not in raw:
        return raw["message"], None  # OpenInference `llm.input_messages.N.message.*`
    return raw, None


def normalize_message(raw: Any) -> dict[str, Any] | None:
    """One message in canonical shape, or None when it is not a message."""
    if isinstance(raw, str):
        return {"role": "user", "content": raw}
    if not isinstance(raw, dict):
        return None
    body, role = _unwrap_message(raw)
    role = normalize_role(body.get("role")) or role or normalize_role(body.get("type"))
    calls: list[dict[str, Any]] = []
    tool_call_id = body.get("tool_call_id")
    if isinstance(body.get("parts"), list):  # OTel GenAI, Gemini
        content, calls, part_call_id = _content_from_parts(body["parts"])
    elif isinstance(body.get("content"), list):  # OpenAI multi-part, Anthropic, Vercel
        content, calls, part_call_id = _content_from_parts(body["content"])
    elif isinstance(body.get("contents"), list):  # OpenInference
        content, calls, part_call_id = _content_from_parts(body["contents"])
    else:
        content, part_call_id = to_text(body.get("content", body.get("text"))), None
    tool_call_id = tool_call_id or part_call_id
    raw_calls = body.get("tool_calls")
    if not isinstance(raw_calls, list):
        extra = body.get("additional_kwargs")
        raw_calls = extra.get("tool_calls") if isinstance(extra, dict) else None
    for call in raw_calls or []:
        normalized = normalize_tool_call(call)
        if normalized:
            calls.append(normalized)
    if isinstance(body.get("function_call"), dict):  # legacy OpenAI functions
        normalized = normalize_tool_call(body["function_call"])
        if normalized:
            calls.append(normalized)
    if role is None and content is None and not calls:
        return None
    if role is None:
        role = "tool" if tool_call_id else "user"
    message: dict[str, Any] = {"role": role, "content": content}
    if isinstance(body.get("name"), str) and body["name"]:
        message["name"] = body["name"]
    if calls:
        message["tool_calls"] = calls
    if tool_call_id:
        message["tool_call_id"] = tool_call_id
    return message


def normalize_messages(value: Any) -> list[dict[str, Any]]:
    """A message list from JSON text, a list of messages, or a {"messages"|"prompt"} wrapper.

    A plain (non-JSON) string gives []: whether loose text is a user query depends on where it
    came from, which only the caller knows.
    """
    value = parse_json_maybe(value)
    if isinstance(value, dict):
        system = value.get("system")
        if isinstance(value.get("messages"), list):
            messages = normalize_messages(value["messages"])
        elif isinstance(value.get("prompt"), str):  # Vercel `ai.prompt`: {"prompt": "..."}
            messages = [{"role": "user", "content": value["prompt"]}]
        elif any(k in value for k in ("role", "parts", "lc", "message")):
            single = normalize_message(value)
            messages = [single] if single else []
        else:
            messages = []
        if isinstance(system, str) and system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system})
        return messages
    if not isinstance(value, list):
        return []
    if len(value) == 1 and isinstance(value[0], list):  # LangChain batches: [[msg, msg]]
        value = value[0]
    messages = [normalize_message(item) for item in value if not isinstance(item, list)]
    return [m for m in messages if m]


def normalize_output(value: Any) -> list[dict[str, Any]]:
    """Assistant message(s) from a model output in any common shape.

    Handles message lists, OpenAI completions (``choices``), LangChain ``generations``,
    {"text": ...} summaries and plain text.
    """
    value = parse_json_maybe(value)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, list):
        return [_as_assistant(m) for m in normalize_messages(value)]
    if not isinstance(value, dict):
        return [{"role": "assistant", "content": to_text(value)}]
    if isinstance(value.get("choices"), list):
        out = []
        for choice in value["choices"]:
            if isinstance(choice, dict):
                raw = choice.get("message") or choice.get("delta")
                message = normalize_message(raw) if raw else None
                if message is None and isinstance(choice.get("text"), str):
                    message = {"role": "assistant", "content": choice["text"]}
                if message:
                    out.append(_as_assistant(message))
        return out
    if isinstance(value.get("generations"), list):
        return _generations_output(value["generations"])
    if any(k in value for k in ("role", "parts", "lc")):
        message = normalize_message(value)
        return [_as_assistant(message)] if message else []
    for key in ("messages", "output", "text", "content", "answer", "result"):
        if key in value and value[key] not in (None, ""):
            return normalize_output(value[key])
    return []


def _as_assistant(message: dict[str, Any]) -> dict[str, Any]:
    # A bare output string parsed by normalize_message defaults to "user"; outputs are the model's.
    if message.get("role") == "user":
        return {**message, "role": "assistant"}
    return message


def _generations_output(generations: list[Any]) -> list[dict[str, Any]]:
    batch = generations[0] if generations and isinstance(generations[0], list) else generations
    out = []
    for generation in batch:
        if not isinstance(generation, dict):
            continue
        message = normalize_message(generation["message"]) if generation.get("message") else None
        if message is None and isinstance(generation.get("text"), str):
            message = {"role": "assistant", "content": generation["text"]}
        if message:
            out.append(_as_assistant(message))
    return out


def unflatten_indexed(attributes: dict[str, Any], prefix: str) -> list[Any]:
    """Rebuild a list from flattened attributes ``prefix.N.rest.of.key``.

    ``llm.input_messages.0.message.role`` with prefix ``llm.input_messages`` becomes
    ``[{"message": {"role": ...}}]``. Nested numeric segments become lists too
    (``contents.0.message_content.text``). An already-structured ``attributes[prefix]`` list
    (Phoenix exports nest instead of flattening) is returned as is.
    """
    structured = attributes.get(prefix)
    if isinstance(structured, list):
        return structured
    head = prefix + "."
    tree: dict[Any, Any] = {}
    for key, value in attributes.items():
        if not key.startswith(head):
            continue
        segments = key[len(head):].split(".")
        if not segments[0].isdigit():
            continue
        node = tree
        for segment in segments[:-1]:
            segment_key = int(segment) if segment.isdigit() else segment
            child = node.get(segment_key)
            if not isinstance(child, dict):
                child = node[segment_key] = {}
            node = child
        last = segments[-1]
        node[int(last) if last.isdigit() else last] = value
    return _listify(tree) if tree else []


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all ints into lists ordered by index."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(child) for key, child in node.items()}
    if converted and all(isinstance(key, int) for key in converted):
        return [converted[key] for key in sorted(converted)]
    return {str(key): child for key, child in converted.items()}


def messages_from_indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Messages flattened into attributes (OpenInference ``llm.input_messages.N.message.*``,
    OpenLLMetry ``gen_ai.prompt.N.role|content``)."""
    return normalize_messages(unflatten_indexed(attributes, prefix))


def tool_calls_from_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls as {"name", "arguments", "result"}: each assistant request paired with the
    tool message that answered it (by tool_call_id, else the next unanswered tool message)."""
    calls: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            entry = {"name": call.get("name"), "arguments": call.get("arguments"), "result": None}
            calls.append(entry)
            if call.get("id"):
                by_id[str(call["id"])] = entry
        if message.get("role") == "tool":
            target = by_id.pop(str(message.get("tool_call_id")), None)
            if target is None:
                target = next((c for c in calls if c["result"] is None), None)
            if target is not None:
                target["result"] = parse_json_maybe(message.get("content"))
    return calls


# --- plain-text transcripts ----------------------------------------------------------------
# Some SDK integrations (Langfuse's OpenAI wrapper under AutoGen/Agno) store a prompt as one
# string, "system: ...\nuser: ...", one message per "role:" line with continuation lines.

_TRANSCRIPT_ROLES = ("system", "developer", "user", "assistant", "tool", "human", "ai", "function")


def _transcript_line_role(line: str) -> tuple[str, str] | None:
    head, sep, rest = line.partition(": ")
    if sep and head in _TRANSCRIPT_ROLES:
        return head, rest
    if line.rstrip() in tuple(role + ":" for role in _TRANSCRIPT_ROLES):
        return line.rstrip()[:-1], ""
    return None


def parse_role_transcript(text: Any) -> list[dict[str, Any]]:
    """Messages of a "role: text" transcript; [] unless the first line names a role."""
    if not isinstance(text, str) or not text:
        return []
    lines = text.split("\n")
    if _transcript_line_role(lines[0]) is None:
        return []
    messages: list[dict[str, Any]] = []
    for line in lines:
        started = _transcript_line_role(line)
        if started:
            role, first = started
            messages.append({"role": _ROLE_ALIASES.get(role) or role, "content": [first]})
        else:
            messages[-1]["content"].append(line)
    for message in messages:
        content = "\n".join(message["content"])
        message["content"] = None if content in ("", "None") else content  # Python's repr of None
    return messages
