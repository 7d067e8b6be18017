"""Langfuse trace exports: ``{"trace": {...}, "observations": [...]}`` -> one canonical trace.

A Langfuse trace is a tree of observations (SPAN, GENERATION, TOOL, AGENT, RETRIEVER, ...), each
with its own input/output payload stored as JSON text, written by whichever framework produced
it. We fold the tree into the canonical row:

- the *main conversation* gives ``messages``, ``user_query`` and the prompt hashes: usually the
  last generation's input plus output, or an agent span's when generations log only part of
  the chat. Messages are read with the Langfuse-compatible ChatML normaliser in
  `evalflow.lib.ingest.dialects.chatml`, so we see the chat Langfuse itself shows, then given
  canonical roles where frameworks blur tool turns. As in every dialect (see
  `evalflow.lib.ingest.canonical`), ``messages`` is what the final model call saw: the conversation
  without its final assistant answer, which is ``output`` only;
- ``model`` comes from the generations (the exact model version), not from agent spans;
- usage and cost are summed over the innermost generations only, because frameworks such as the
  Vercel AI SDK wrap per-step generations in an outer generation that repeats their totals;
- TOOL observations (and spans that are plainly tool executions) become ``tool_calls``;
  RETRIEVER observations become ``retrieved_context``; trace scores become ``feedback``;
- ``trace.metadata`` (the application's own metadata) is merged into ``metadata``; the
  adapter's keys (dialect, framework, tags...) win, and a colliding application key is kept as
  ``trace.metadata.<key>``. Langfuse's OTel envelope there (attributes, resourceAttributes,
  scope) is telemetry, not application metadata: only its ``app.*`` attributes are taken.

Public functions: `detect`, `to_traces`, `observation_messages`; `DIALECT` registers the adapter.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime, timezone
from typing import Any

from evalflow.lib.ingest.canonical import (
    last_user_query,
    merge_app_metadata,
    new_trace,
    stable_hash,
    system_prompt,
    tool_schema_hash,
)
from evalflow.lib.ingest.dialects import Dialect, DialectError, chatml
from evalflow.lib.ingest.dialects.messages import normalize_role, parse_role_transcript, to_text
from evalflow.lib.ingest.dialects.spans import APP_ATTRIBUTE_PREFIX

DIALECT_NAME = "langfuse"
# A trace.metadata key that collides with one of the adapter's keys is kept under this prefix.
TRACE_METADATA_PREFIX = "trace.metadata."
# What Langfuse's OTel ingestion adds to trace.metadata next to the application's own keys.
_OTEL_ENVELOPE_KEYS = ("attributes", "resourceAttributes", "scope")
_ERROR_TEXT_LIMIT = 200


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _looks_like_observation(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "id" in value
        and "traceId" in value
        and "type" in value
        and "startTime" in value
    )


def detect(document: Any) -> bool:
    """A Langfuse export: ``{"trace": {"id": ...}, "observations": [...]}``.

    A bare list of observations (what ``GET /api/public/observations`` returns) is accepted too.
    """
    if isinstance(document, dict):
        trace = document.get("trace")
        return (
            isinstance(trace, dict)
            and "id" in trace
            and isinstance(document.get("observations"), list)
        )
    return (
        isinstance(document, list)
        and len(document) > 0
        and all(_looks_like_observation(o) for o in document)
    )


# --------------------------------------------------------------------------------------------
# Per-observation messages
# --------------------------------------------------------------------------------------------


def _observation_metadata(observation: dict[str, Any]) -> Any:
    return chatml.deep_parse_json(observation.get("metadata"))


def _canonical_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("arguments")}


def _from_chatml(message: dict[str, Any]) -> dict[str, Any]:
    """A Langfuse ChatML message in canonical-ish shape; ``tools``/``json`` kept when present."""
    out: dict[str, Any] = {"role": message.get("role"), "content": to_text(message.get("content"))}
    if message.get("name") is not None:
        out["name"] = message["name"]
    if message.get("tool_calls"):
        out["tool_calls"] = [_canonical_tool_call(c) for c in message["tool_calls"]]
    if message.get("tool_call_id") is not None:
        out["tool_call_id"] = message["tool_call_id"]
    for extra in ("tools", "json"):
        if message.get(extra) is not None:
            out[extra] = message[extra]
    return out


def observation_messages(observation: dict[str, Any]) -> dict[str, list[dict[str, Any]] | None]:
    """The chat Langfuse shows for one observation: ``{"input": [...] | None, "output": ...}``.

    Each side is None when the payload is absent or not ChatML-shaped. Messages carry ``role``
    and flattened ``content`` plus ``name``/``tool_calls``/``tool_call_id`` when present, and the
    normaliser's ``tools`` (declared tool definitions) and ``json`` (unrecognised fields).
    """
    metadata = _observation_metadata(observation)
    name = observation.get("name")
    result: dict[str, list[dict[str, Any]] | None] = {}
    for side, normalise in (("input", chatml.chatml_input_messages), ("output", chatml.chatml_output_messages)):
        payload = observation.get(side)
        messages = None
        if payload is not None:
            messages = normalise(chatml.deep_parse_json(payload), metadata, name)
        result[side] = [_from_chatml(m) for m in messages] if messages is not None else None
    return result


# --------------------------------------------------------------------------------------------
# Canonical conversation of one observation
# --------------------------------------------------------------------------------------------

_CANONICAL_ROLES = ("system", "developer", "user", "assistant", "tool")


def _unwrap_json_message(message: dict[str, Any]) -> dict[str, Any]:
    """Role-less output items such as an OpenAI choice ``{index, message: {...}}``."""
    inner = (message.get("json") or {}).get("message")
    if message.get("role") is None and message.get("content") is None and isinstance(inner, dict):
        unwrapped = {"role": inner.get("role"), "content": to_text(inner.get("content"))}
        calls = inner.get("tool_calls")
        if isinstance(calls, list) and calls:
            unwrapped["tool_calls"] = [_nested_tool_call(c) for c in calls if isinstance(c, dict)]
        return unwrapped
    return message


def _nested_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    func = call.get("function") if isinstance(call.get("function"), dict) else call
    return {"id": call.get("id"), "name": func.get("name"), "arguments": func.get("arguments")}


def _canonical_message(message: dict[str, Any], default_role: str | None) -> dict[str, Any] | None:
    """Strip normaliser extras; None for carriers with nothing to say (e.g. tools-only items)."""
    message = _unwrap_json_message(message)
    role = message.get("role") or default_role
    if role is None or (message.get("content") is None and not message.get("tool_calls")
                        and role != "assistant"):
        return None
    out: dict[str, Any] = {"role": normalize_role(role) or role, "content": message.get("content")}
    for key in ("name", "tool_calls", "tool_call_id"):
        if message.get(key):
            out[key] = message[key]
    return out


def _fallback_messages(payload: Any, role: str) -> list[dict[str, Any]]:
    """Plain-text payloads: a ``role: text`` transcript, a bare string, or ``{prompt|args}``."""
    if isinstance(payload, str):
        transcript = parse_role_transcript(payload)
        return transcript or [{"role": role, "content": payload}]
    if isinstance(payload, dict):
        system = payload.get("system") or payload.get("instructions")
        prefix = [{"role": "system", "content": system}] if isinstance(system, str) else []
        for key in ("prompt", "input", "query", "question", "content", "text", "completion"):
            if isinstance(payload.get(key), str):
                return prefix + [{"role": role, "content": payload[key]}]
        args = payload.get("args")
        if isinstance(args, list) and args and isinstance(args[0], str):
            return [{"role": role, "content": args[0]}]
    return []


def _conversation(observation: dict[str, Any]) -> list[dict[str, Any]]:
    """Input messages followed by the output message(s), as in Langfuse's chat view."""
    inputs, outputs = _conversation_parts(observation)
    return inputs + outputs


def _conversation_parts(
    observation: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The conversation split into (input side, output side), tool turns repaired."""
    normalised = observation_messages(observation)
    inputs: list[dict[str, Any]] = []
    if normalised["input"] is not None:
        inputs = [m for m in (_canonical_message(x, None) for x in normalised["input"]) if m]
    elif observation.get("input") is not None:
        inputs = _fallback_messages(_payload(observation["input"]), "user")
    outputs: list[dict[str, Any]] = []
    if normalised["output"] is not None:
        outputs = [m for m in (_canonical_message(x, "assistant") for x in normalised["output"])
                   if m]
    elif observation.get("output") is not None:
        outputs = _fallback_messages(_payload(observation["output"]), "assistant")
    # Agent state (LangGraph ``{messages}``, Pydantic AI runs) repeats the input in the output.
    if inputs and outputs[: len(inputs)] == inputs:
        outputs = outputs[len(inputs):]
    repaired = _repair_tool_turns(inputs + outputs)  # one message out per message in
    return repaired[: len(inputs)], repaired[len(inputs):]


def _split_answer(
    observation: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(messages the final model call saw, its answer): the conversation without its last
    output message when that is the assistant's. An agent span's output may hold the loop's
    intermediate tool turns; they stay in the history, as the final call saw them."""
    if observation is None:
        return [], None
    inputs, outputs = _conversation_parts(observation)
    if outputs and outputs[-1].get("role") == "assistant":
        return inputs + outputs[:-1], outputs[-1]
    return inputs + outputs, None


def _parsed_json(text: Any) -> Any:
    if isinstance(text, str) and text[:1] in "[{":
        return chatml.parse_json_text(text)
    return None


def _as_tool_call_list(content: Any) -> list[dict[str, Any]] | None:
    """OpenAI-style tool calls serialised as a message's text (Koog logs calls that way)."""
    calls = _parsed_json(content)
    if not (isinstance(calls, list) and calls and all(
            isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)):
        return None
    return [_nested_tool_call(c) for c in calls]


def _repair_tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give tool requests and results their canonical roles where frameworks blur them.

    - a "tool" message whose text is a list of tool calls is the assistant's request (Koog);
    - a message whose role is the name of a called tool is that tool's result (LangChain.js);
    - a "user" message holding a JSON object right after a tool request is the tool's
      response (Gemini sends function responses with role "user").
    """
    repaired: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # tool calls not answered yet
    for message in messages:
        message = dict(message)
        role = message.get("role")
        calls = _as_tool_call_list(message.get("content")) if role == "tool" else None
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls}
        elif role not in _CANONICAL_ROLES and any(c.get("name") == role for c in pending):
            message["name"], message["role"] = role, "tool"
        elif role == "user" and pending and isinstance(_parsed_json(message.get("content")), dict):
            message["role"] = "tool"
            if pending[0].get("name"):
                message.setdefault("name", pending[0]["name"])
        if message.get("tool_calls"):
            pending = list(message["tool_calls"])
        elif message.get("role") == "tool" and pending:
            pending.pop(0)
        elif message.get("role") != "tool":
            pending = []
        repaired.append(message)
    return repaired


def _tool_definitions(observation: dict[str, Any]) -> list[dict[str, Any]]:
    """Tools the generation declared: from the normalised input, else the export's own field."""
    normalised = observation_messages(observation)
    for message in normalised["input"] or []:
        if message.get("tools"):
            return message["tools"]
    declared = observation.get("toolDefinitions")
    if isinstance(declared, dict) and declared:
        return [{"name": k, **(v if isinstance(v, dict) else {"definition": v})}
                for k, v in declared.items()]
    if isinstance(declared, list):
        return declared
    return []


# --------------------------------------------------------------------------------------------
# Observation tree helpers
# --------------------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    """An ISO timestamp as an aware datetime (naive ones read as UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _times(observations: list[dict[str, Any]], key: str) -> list[tuple[datetime, str]]:
    """(parsed, raw) pairs of one timestamp field, earliest first; unparseable ones skipped."""
    pairs = [(t, o[key]) for o in observations if (t := _parse_time(o.get(key))) is not None]
    return sorted(pairs)


def _sort_key(observation: dict[str, Any]) -> tuple[str, str]:
    return (str(observation.get("startTime") or ""), str(observation.get("endTime") or ""))


def _innermost_generations(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Generations with no generation below them; outer ones repeat their children's usage."""
    by_id = {o.get("id"): o for o in observations}
    has_generation_below: set[Any] = set()
    for obs in observations:
        if obs.get("type") != "GENERATION":
            continue
        parent, seen = obs.get("parentObservationId"), set()
        while parent in by_id and parent not in seen:
            seen.add(parent)
            if by_id[parent].get("type") == "GENERATION":
                has_generation_below.add(parent)
            parent = by_id[parent].get("parentObservationId")
    return [
        o for o in observations
        if o.get("type") == "GENERATION" and o.get("id") not in has_generation_below
    ]


def _number_or_none(value: Any) -> float | None:
    """The value itself if it is an int or float (not a bool), else None; strings are not parsed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _usage(observation: dict[str, Any], side: str) -> float | None:
    """Tokens of one side; usage types named ``input``/``input_*`` count as input, etc.

    Langfuse keeps reasoning, audio and cache tokens as extra usage types next to the plain
    ``input``/``output`` ones; its own pricing treats the prefixed types as part of that side.
    """
    details = observation.get("usageDetails")
    if isinstance(details, dict) and details:
        values = [_number_or_none(v) for k, v in details.items() if k == side or k.startswith(side + "_")]
        values = [v for v in values if v is not None]
        if values:
            return sum(values)
    legacy = observation.get("usage")
    if isinstance(legacy, dict):
        legacy_key = {"input": "promptTokens", "output": "completionTokens"}[side]
        for key in (side, legacy_key):
            if _number_or_none(legacy.get(key)) is not None:
                return legacy[key]
    return _number_or_none(observation.get(f"{side}Usage")) or None


def _cost(observation: dict[str, Any]) -> float | None:
    for value in (
        observation.get("calculatedTotalCost"),
        _nested_value(observation, "costDetails", "total"),
        observation.get("totalCost"),
    ):
        if _number_or_none(value):
            return value
    return None


def _nested_value(obj: dict[str, Any], key: str, inner: str) -> Any:
    value = obj.get(key)
    return value.get(inner) if isinstance(value, dict) else None


def _round(value: float | None) -> float | None:
    """Drop float summation noise (0.1 + 0.2); costs are far coarser than 1e-12 USD."""
    return round(value, 12) if value is not None else None


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


# --------------------------------------------------------------------------------------------
# Tool calls, retrieval, feedback
# --------------------------------------------------------------------------------------------

_TOOL_NAME_PREFIXES = ("running tool: ", "execute_tool ", "tool.")
_EVENT_SUFFIX = re.compile(r"\.(start|finish|success|error)-\d+$")  # BeeAI emits one per event


def _attributes(metadata: Any) -> dict[str, Any]:
    attrs = metadata.get("attributes") if isinstance(metadata, dict) else None
    return attrs if isinstance(attrs, dict) else {}


def _payload(value: Any) -> Any:
    """A stored payload as data: JSON text parsed, Python ``repr`` dicts read as literals."""
    value = chatml.deep_parse_json(value)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _unwrap_langchain(value: Any) -> Any:
    """A LangChain ToolMessage as a tool's result: keep its content.

    LangChain.js serialises it as ``{lc, type: constructor, kwargs: {content}}``, Python as
    ``{content, type: tool, tool_call_id, ...}``.
    """
    if isinstance(value, dict) and "lc" in value and isinstance(value.get("kwargs"), dict):
        return value["kwargs"].get("content", value["kwargs"])
    if isinstance(value, dict) and value.get("type") == "tool" and "tool_call_id" in value:
        return value.get("content")
    return value


def _called_tool_names(observations: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for obs in observations:
        if obs.get("type") != "GENERATION":
            continue
        for side in observation_messages(obs).values():
            for message in side or []:
                names.update(c["name"] for c in message.get("tool_calls", []) if c.get("name"))
    return names


def _is_tool_observation(obs: dict[str, Any], called: set[str]) -> bool:
    if obs.get("type") == "TOOL":
        return True
    if obs.get("type") not in ("SPAN", "EVENT", None):
        return False
    attrs = _attributes(_observation_metadata(obs))
    has_payload = obs.get("input") is not None or obs.get("output") is not None
    if attrs.get("openinference.span.kind") == "TOOL" or "gen_ai.tool.name" in attrs:
        return has_payload  # event-style spans without payload repeat the same call
    return obs.get("name") in called


def _tool_name(obs: dict[str, Any]) -> str:
    attrs = _attributes(_observation_metadata(obs))
    for key in ("gen_ai.tool.name", "tool.name", "ai.toolCall.name"):
        if isinstance(attrs.get(key), str) and attrs[key]:
            return attrs[key]
    name = str(obs.get("name") or "")
    for prefix in _TOOL_NAME_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    return _EVENT_SUFFIX.sub("", name)


def _tool_calls(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    called = _called_tool_names(observations)
    return [
        {
            "name": _tool_name(obs),
            "arguments": _payload(obs.get("input")),
            "result": _unwrap_langchain(_payload(obs.get("output"))),
        }
        for obs in sorted(observations, key=_sort_key)
        if _is_tool_observation(obs, called)
    ]


def _document(doc: Any, index: int) -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {"doc_id": str(index), "text": to_text(doc), "score": None}
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    doc_id = next((doc[k] for k in ("doc_id", "id", "document_id") if doc.get(k) is not None),
                  meta.get("id", meta.get("source", index)))
    text = next((doc[k] for k in ("text", "page_content", "pageContent", "content")
                 if isinstance(doc.get(k), str)), None)
    score = next((doc[k] for k in ("score", "relevance_score", "similarity")
                  if _number_or_none(doc.get(k)) is not None), None)
    return {"doc_id": str(doc_id), "text": text if text is not None else to_text(doc),
            "score": score}


def _retrieved_context(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for obs in sorted(observations, key=_sort_key):
        if obs.get("type") != "RETRIEVER":
            continue
        output = _payload(obs.get("output"))
        if isinstance(output, dict):
            output = next((output[k] for k in ("documents", "docs", "nodes", "results")
                           if isinstance(output.get(k), list)), [output])
        if isinstance(output, list):
            documents += [_document(doc, i) for i, doc in enumerate(output)]
    return documents


_HUMAN_SCORE_SOURCES = ("API", "ANNOTATION")  # Langfuse's other source is EVAL (LLM judges)


def _score_summaries(scores: Any) -> list[dict[str, Any]]:
    keys = ("name", "value", "stringValue", "longStringValue", "source", "dataType", "comment")
    if not isinstance(scores, list):
        return []
    return [{k: s.get(k) for k in keys if s.get(k) is not None}
            for s in scores if isinstance(s, dict)]


def _feedback(scores: Any) -> dict[str, Any] | None:
    """The first human score (user feedback sent via the API, or an annotator's) as feedback.

    Automated evaluator scores (source EVAL) are not feedback: they stay in
    ``metadata["scores"]`` so an LLM judge's "toxicity 0.8" is never read as a user's rating.
    """
    human = [s for s in scores if isinstance(s, dict) and s.get("source") in _HUMAN_SCORE_SOURCES
             and s.get("dataType") != "CORRECTION"] if isinstance(scores, list) else []
    if not human:
        return None
    chosen = human[0]
    value = _number_or_none(chosen.get("value"))
    thumbs = None
    name = str(chosen.get("name") or "").lower()
    if chosen.get("dataType") == "BOOLEAN" or "thumb" in name or "feedback" in name:
        if value in (0, 1):
            thumbs = "up" if value == 1 else "down"
        elif isinstance(chosen.get("stringValue"), str):
            thumbs = {"true": "up", "false": "down"}.get(chosen["stringValue"].lower())
    return {"thumbs": thumbs, "score": float(value) if value is not None else None,
            "comment": chosen.get("comment")}


# --------------------------------------------------------------------------------------------
# Framework and trace-level fields
# --------------------------------------------------------------------------------------------

# Instrumentation scopes that say which agent framework produced a trace. Generic scopes (the
# Langfuse SDK, plain OTel) say nothing, and client libraries rank below agent frameworks.
_SCOPE_FRAMEWORKS = {
    "pydantic-ai": "pydantic-ai",
    "ai": "vercel-ai-sdk",
    "agent_framework": "microsoft-agent-framework",
    "ai.koog": "koog",
    "langsmith": "langsmith",
    "crewai.telemetry": "crewai",
}
_CLIENT_LIBRARIES = {"openai", "litellm", "anthropic", "google_genai", "vertexai", "bedrock"}
_GENERIC_SCOPES = {"langfuse-sdk", "opentelemetry", ""}


def _scope_framework(scope: str) -> tuple[int, str] | None:
    """(rank, framework) for a scope name; lower rank is more specific."""
    if scope in _GENERIC_SCOPES:
        return None
    if scope in _SCOPE_FRAMEWORKS:
        return 0, _SCOPE_FRAMEWORKS[scope]
    if scope.startswith("openinference.instrumentation."):
        name = scope.rsplit(".", 1)[-1]
        return (2 if name in _CLIENT_LIBRARIES else 0), name.replace("_", "-")
    if "Microsoft.Extensions.AI" in scope:
        return 1, "microsoft-extensions-ai"
    if scope.startswith("Microsoft.SemanticKernel"):
        return 0, "semantic-kernel"
    return 3, scope


def _depth(obs: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> int:
    depth, parent, seen = 0, obs.get("parentObservationId"), set()
    while parent in by_id and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = by_id[parent].get("parentObservationId")
    return depth


def _framework(observations: list[dict[str, Any]]) -> str | None:
    """The most specific instrumentation scope, nearest the root; LangChain/LangGraph by keys."""
    by_id = {o.get("id"): o for o in observations}
    candidates = []
    langchain = None
    for obs in observations:
        metadata = _observation_metadata(obs)
        if not isinstance(metadata, dict):
            continue
        if any(k.startswith("langgraph_") for k in metadata) or obs.get("name") == "LangGraph":
            langchain = "langgraph"
        elif langchain is None and any(k.startswith("ls_") for k in metadata):
            langchain = "langchain"
        scope = metadata.get("scope")
        name = scope.get("name") if isinstance(scope, dict) else None
        ranked = _scope_framework(name) if isinstance(name, str) else None
        if ranked:
            candidates.append((ranked[0], _depth(obs, by_id), ranked[1]))
    # LangGraph markers only decide when no specific scope does: Koog, for one, copies the
    # langgraph_node/langgraph_step metadata keys.
    if candidates:
        return min(candidates)[2]
    return langchain or "langfuse-sdk"


def _text(value: Any) -> str | None:
    """Text of a trace input/output: a string, or the text field of a small wrapper object."""
    value = _payload(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("output", "content", "text", "response", "answer", "result"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _final_assistant_text(messages: list[dict[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "assistant" and message.get("content"):
            return message["content"]
    return None


def _conversation_rank(obs: dict[str, Any], messages: list[dict[str, Any]]) -> tuple:
    """Prefer a conversation with the user's query and a final answer, then the longest;
    ties go to generations (what the model saw) and then to the latest one."""
    has_user = any(m.get("role") == "user" and m.get("content") for m in messages)
    last = messages[-1] if messages else {}
    answered = last.get("role") == "assistant" and bool(last.get("content"))
    return (has_user, answered, len(messages), obs.get("type") == "GENERATION", _sort_key(obs))


def _main_conversation(
    observations: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The observation whose chat best covers the interaction, with its messages.

    Usually the last generation (its input holds the whole history). Some frameworks log only
    the new turn per generation (Microsoft Agent Framework) or unreadable generation inputs
    (Claude Agent SDK via LangSmith); then an agent/conversation span carries the full chat.
    """
    best: tuple | None = None
    chosen: tuple[dict[str, Any] | None, list[dict[str, Any]]] = (None, [])
    for obs in observations:
        if obs.get("input") is None and obs.get("output") is None:
            continue
        if obs.get("type") not in ("GENERATION", "AGENT", "CHAIN", "SPAN"):
            continue
        messages = _conversation(obs)
        if not messages:
            continue
        rank = _conversation_rank(obs, messages)
        if best is None or rank > best:
            best, chosen = rank, (obs, messages)
    return chosen


def _latency_ms(
    trace: dict[str, Any], start: datetime | None, end: datetime | None
) -> float | None:
    if _number_or_none(trace.get("latency")) is not None:
        return round(trace["latency"] * 1000, 3)  # Langfuse reports seconds
    if start and end:
        return round((end - start).total_seconds() * 1000, 3)
    return None


def _error(observations: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(error_type, error message) of the ERROR-level observations, earliest first.

    The type is an explicit ``error.type`` / ``exception.type`` attribute (OTel-ingested
    observations keep their span attributes in metadata.attributes), else the status message;
    the full message goes to metadata (it can quote user data, which the PII stage redacts).
    """
    failed = [o for o in sorted(observations, key=_sort_key) if o.get("level") == "ERROR"]
    if not failed:
        return None, None
    typed = next((str(value) for obs in failed
                  for value in (_attributes(_observation_metadata(obs)).get(k)
                                for k in ("error.type", "exception.type"))
                  if isinstance(value, str) and value), None)
    message = next((str(o["statusMessage"]) for o in failed if o.get("statusMessage")), None)
    return (typed or message or "error")[:_ERROR_TEXT_LIMIT], message


def _prompt_template_id(observations: list[dict[str, Any]]) -> str | None:
    for obs in sorted(observations, key=_sort_key, reverse=True):
        if obs.get("promptName"):
            version = obs.get("promptVersion")
            return f"{obs['promptName']}:{version}" if version is not None else obs["promptName"]
        if obs.get("promptId"):
            return str(obs["promptId"])
    return None


def _fold(trace: dict[str, Any], observations: list[dict[str, Any]]) -> dict[str, Any]:
    main, _ = _main_conversation(observations)
    messages, answer = _split_answer(main)
    generations = sorted((o for o in observations if o.get("type") == "GENERATION"), key=_sort_key)
    innermost = _innermost_generations(observations)
    starts, ends = _times(observations, "startTime"), _times(observations, "endTime")
    start = _parse_time(trace.get("timestamp")) or (starts[0][0] if starts else None)
    error, error_message = _error(observations)
    # a generation names the exact model version; agent spans often carry only an alias
    model = next((g["model"] for g in reversed(generations) if g.get("model")), None)
    if main is not None and main.get("type") == "GENERATION" and main.get("model"):
        model = main["model"]
    model = model or (main or {}).get("model")
    # tools declared by the chosen observation, else by the latest generation declaring any
    tools = next((t for t in (_tool_definitions(o) for o in [main, *reversed(generations)] if o)
                  if t), [])
    folded = new_trace(
        trace_id=str(trace["id"]),
        session_id=trace.get("sessionId"),
        user_id=trace.get("userId"),
        timestamp=trace.get("timestamp") or (starts[0][1] if starts else None),
        end_time=ends[-1][1] if ends else None,
        app=trace.get("name") or trace.get("environment"),
        model=model,
        prompt_template_id=_prompt_template_id(observations),
        system_prompt_hash=stable_hash(system_prompt(messages)),
        tool_schema_hash=tool_schema_hash(tools),
        messages=messages,
        user_query=last_user_query(messages) or _text(trace.get("input")),
        retrieved_context=_retrieved_context(observations),
        tool_calls=_tool_calls(observations),
        output=_text(trace.get("output")) or _final_assistant_text([answer] if answer else []),
        latency_ms=_latency_ms(trace, start, ends[-1][0] if ends else None),
        input_tokens=_sum([_usage(g, "input") for g in innermost]),
        output_tokens=_sum([_usage(g, "output") for g in innermost]),
        cost_usd=_round(_sum([_cost(g) for g in innermost])),
        status="error" if error else "ok",
        error_type=error,
        feedback=_feedback(trace.get("scores")),
        metadata={
            "dialect": DIALECT_NAME,
            "framework": _framework(observations),
            "tags": list(trace["tags"]) if isinstance(trace.get("tags"), list) else [],
            "observation_count": len(observations),
            "environment": trace.get("environment"),
            "release": trace.get("release"),
            "version": trace.get("version"),
            "main_observation_id": (main or {}).get("id"),
            "scores": _score_summaries(trace.get("scores")),
            # annotators' corrected outputs: a ready-made expected answer for eval cases
            "corrections": _score_summaries(trace.get("corrections")),
        },
    )
    merge_app_metadata(folded["metadata"], _trace_metadata(trace), TRACE_METADATA_PREFIX)
    if error_message is not None:
        folded["metadata"].setdefault("error_message", error_message)
    return folded


def _trace_metadata(trace: dict[str, Any]) -> dict[str, Any]:
    """The application's own metadata in ``trace.metadata`` (JSON text in some exports: parsed
    one level only, so a value that is itself JSON text stays text).

    Langfuse's OTel ingestion also stores the root span's ``attributes``, ``resourceAttributes``
    and ``scope`` there: telemetry, not application metadata (the attributes can hold the whole
    payload as input.value). Of those only the application's ``app.*`` attributes are taken,
    prefix stripped, by the same rule as the OTLP fold (`spans.APP_ATTRIBUTE_PREFIX`).
    """
    metadata = chatml.parse_json_text(trace.get("metadata"))
    if not isinstance(metadata, dict):
        return {} if metadata in (None, "", [], {}) else {"trace_metadata": metadata}
    app = {k: v for k, v in metadata.items() if k not in _OTEL_ENVELOPE_KEYS}
    attributes = chatml.parse_json_text(metadata.get("attributes"))
    if isinstance(attributes, dict):
        prefix = APP_ATTRIBUTE_PREFIX
        app.update({k[len(prefix):]: v for k, v in attributes.items()
                    if isinstance(k, str) and k.startswith(prefix) and len(k) > len(prefix)})
    return app


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _group_bare_observations(observations: list[Any]) -> list[tuple[dict, list]]:
    """A bare observation list: one pseudo-trace per traceId (no trace-level fields known)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for obs in observations:
        if isinstance(obs, dict) and obs.get("traceId") is not None:
            obs = _clean_observation(obs)
            groups.setdefault(obs["traceId"], []).append(obs)
    if not groups:
        raise DialectError("adapter_error", "Langfuse observation list without trace ids")
    pairs = []
    for trace_id, members in groups.items():
        starts = _times(members, "startTime")
        pairs.append(({"id": trace_id, "timestamp": starts[0][1] if starts else None}, members))
    return pairs


_TEXT_FIELDS = ("id", "traceId", "parentObservationId", "type", "name", "level")


def _clean_observation(observation: dict[str, Any]) -> dict[str, Any]:
    """Ids, type, name and level as text (or None), so the tree can be indexed safely."""
    cleaned = dict(observation)
    for key in _TEXT_FIELDS:
        value = cleaned.get(key)
        if value is not None and not isinstance(value, str):
            cleaned[key] = json.dumps(value, sort_keys=True, default=str)
    return cleaned


def to_traces(document: Any) -> list[dict[str, Any]]:
    """One canonical trace per Langfuse trace in the document."""
    if isinstance(document, list):
        pairs = _group_bare_observations(document)
    else:
        trace = document.get("trace") if isinstance(document, dict) else None
        if not isinstance(trace, dict) or trace.get("id") in (None, ""):
            raise DialectError("adapter_error", "Langfuse export without a trace id")
        observations = document.get("observations")
        if not isinstance(observations, list):
            raise DialectError("adapter_error", "Langfuse export without an observations list")
        pairs = [(trace, [_clean_observation(o) for o in observations if isinstance(o, dict)])]
    try:
        return [_fold(trace, observations) for trace, observations in pairs]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise DialectError("adapter_error", f"Langfuse export could not be folded: {exc}") from exc


DIALECT = Dialect(name=DIALECT_NAME, detect=detect, to_traces=to_traces)
