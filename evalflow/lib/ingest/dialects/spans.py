"""Fold spans into canonical traces.

OTLP, OpenInference, Vercel AI SDK and bare GenAI attribute dicts all reduce to `Span`s; this
module turns the spans of one trace into ONE canonical trace (docs/warehouse.md, `redacted_traces`):

- the root span gives identity, start, end and latency;
- LLM spans give model, messages (the last call's input: what the model saw), output (that
  call's answer) and summed usage;
- retriever spans give retrieved_context, kept apart from the prompt;
- tool spans give tool_calls;
- template / system / tool-definition attributes give the three stable ids;
- ``gen_ai.evaluation.result`` events named as user feedback give feedback;
- the root span's application attributes give the application's metadata: attributes under the
  ``app.`` namespace, prefix stripped (``app.channel`` -> ``metadata["channel"]``), and
  OpenInference's ``metadata`` attribute (a JSON object). Semantic-convention namespaces
  (gen_ai.*, llm.*, openinference.*, ai.*, session.*, ...) are read into fields, not copied.

Timestamps stay raw (the validator normalises every dialect the same way); only latency is
computed here, from whatever epoch unit or ISO string the root carries.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.canonical import (
    last_user_query,
    merge_app_metadata,
    new_trace,
    stable_hash,
    system_prompt,
    tool_schema_hash,
)
from evalflow.lib.ingest.dialects import Span
from evalflow.lib.ingest.dialects.messages import (
    messages_from_indexed,
    normalize_messages,
    normalize_output,
    normalize_tool_call,
    parse_json_maybe,
    to_text,
    tool_calls_from_messages,
    unflatten_indexed,
)

# Adapters that had to invent a trace id prefix it with this, so the fold can flag it.
DERIVED_PREFIX = "derived-"
ERROR_TYPE_MAX = 200

_LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
_EMBEDDING_OPERATIONS = {"embeddings", "embedding"}
_TOOL_OPERATIONS = {"execute_tool"}
_RETRIEVAL_OPERATIONS = {"retrieval", "retrieve"}

# Attribute keys in order of preference (current names before deprecated ones).
_INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
    "ai.usage.tokens",  # Vercel embeddings
)
_OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
_COST_KEYS = ("gen_ai.usage.cost", "llm.cost.total", "gen_ai.usage.cost_usd")
_RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "ai.response.model", "llm.model_name")
_REQUEST_MODEL_KEYS = (
    "gen_ai.request.model",
    "ai.model.id",
    "embedding.model_name",
    "llm.request.model",
)
_PROVIDER_KEYS = (
    "gen_ai.provider.name",
    "llm.provider",
    "gen_ai.system",
    "llm.system",
    "ai.model.provider",
)
_SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "langfuse.session.id",
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.session_id",
    "conversation.id",
)
_USER_KEYS = (
    "user.id",
    "enduser.id",
    "langfuse.user.id",
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.user_id",
)
_TOOL_ARGUMENT_KEYS = (
    "gen_ai.tool.call.arguments",
    "ai.toolCall.args",
    "ai.toolCall.input",
    "input.value",
    "input",
)
_TOOL_RESULT_KEYS = (
    "gen_ai.tool.call.result",
    "ai.toolCall.result",
    "ai.toolCall.output",
    "output.value",
    "output",
)
_VERCEL_TELEMETRY_PREFIX = "ai.telemetry.metadata."
# The application's own attributes on the root span: "app.<key>" -> metadata["<key>"].
APP_ATTRIBUTE_PREFIX = "app."
_OPENINFERENCE_METADATA_KEY = "metadata"
_EVALUATION_EVENT = "gen_ai.evaluation.result"
_FEEDBACK_NAME_MARKERS = ("feedback", "thumb")
_THUMBS_UP = {"up", "thumbs_up", "thumb_up", "thumbsup", "positive", "like", "true", "good", "1"}
_THUMBS_DOWN = {"down", "thumbs_down", "thumb_down", "thumbsdown", "negative", "dislike", "false",
                "bad", "0"}


# --- public ---------------------------------------------------------------------------------


def fold_spans(spans: list[Span]) -> list[dict[str, Any]]:
    """One canonical trace per trace id, in order of first appearance."""
    groups: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        groups[span.trace_id or derived_trace_id(_span_identity(span))].append(span)
    return [fold_trace(trace_id, group) for trace_id, group in groups.items()]


@dataclass
class HeldBack:
    """Spans kept out of the fold, and why. trace_id is None for a span without a trace id
    that no other span links to: it is quarantined alone."""

    trace_id: str | None
    reason: str
    detail: str
    spans: list[Span] = field(default_factory=list)


def hold_back_broken(spans: list[Span]) -> tuple[list[Span], list[HeldBack]]:
    """(spans to fold, spans held back). A span marked with a `problem` takes its whole trace
    with it: folding the others would stage a half-built trace (no root, or no model call, so
    wrong times, tokens and messages) that looks valid.

    A span without a trace id cannot be grouped, but its span ids can tie it to a trace: when
    its parent, or a child, is a span of trace T (directly or through other id-less spans), T
    is missing a span and is held back too. With no such link it is held back alone.
    """
    if not any(span.problem for span in spans):
        return spans, []
    problems: dict[str, tuple[str, str]] = {}
    for span in spans:
        if span.problem and span.trace_id:
            problems.setdefault(span.trace_id, span.problem)
    trace_of_span = {s.span_id: s.trace_id for s in spans if s.trace_id and s.span_id}
    trace_of_parent = {s.parent_id: s.trace_id for s in spans if s.trace_id and s.parent_id}
    attached: dict[int, str] = {}  # id(span) -> the trace an id-less span belongs to
    pending = [s for s in spans if s.problem and not s.trace_id]
    while pending:  # repeat: a chain of id-less spans links only one step per pass
        unlinked = []
        for span in pending:
            trace_id = (trace_of_span.get(span.parent_id) if span.parent_id else None) or (
                trace_of_parent.get(span.span_id) if span.span_id else None)
            if trace_id is None:
                unlinked.append(span)
                continue
            attached[id(span)] = trace_id
            reason, detail = span.problem
            problems.setdefault(trace_id, (reason, f"{detail} (linked to this trace by span id)"))
            if span.span_id:
                trace_of_span.setdefault(span.span_id, trace_id)
            if span.parent_id:
                trace_of_parent.setdefault(span.parent_id, trace_id)
        if len(unlinked) == len(pending):
            break
        pending = unlinked
    held = {trace_id: HeldBack(trace_id, reason, detail) for trace_id, (reason, detail) in problems.items()}
    loose: list[HeldBack] = []
    kept: list[Span] = []
    for span in spans:
        trace_id = span.trace_id or attached.get(id(span))
        if trace_id in held:
            held[trace_id].spans.append(span)
        elif span.problem:  # no trace id and no link to a trace
            loose.append(HeldBack(None, *span.problem, [span]))
        else:
            kept.append(span)
    return kept, [*held.values(), *loose]


def fold_trace(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """Fold the spans of one trace (already grouped) into a canonical trace."""
    spans = _in_start_order(spans)
    root = _root(spans)
    roles = {id(span): span_role(span) for span in spans}
    model_spans = _leaf_model_spans(spans, roles)
    llm_spans = [s for s in model_spans if roles[id(s)] == "llm"]
    last_llm = llm_spans[-1] if llm_spans else None

    # Without an LLM span (a retrieval-only or chain-only trace) the root's input is the query.
    source = last_llm or (root if roles[id(root)] != "tool" else None)
    messages = _span_messages(source) if source else []
    output_messages = _span_output(last_llm) if last_llm else []
    # messages = what the final call saw; its answer goes to `output` only (canonical.py)
    history = _with_system_instructions(last_llm, messages)
    tool_calls = _tool_calls(spans, roles) or tool_calls_from_messages(history + output_messages)
    start, end = _trace_bounds(root, spans)

    trace = new_trace(
        trace_id=trace_id,
        timestamp=start,
        end_time=end,
        app=_service_name(spans),
        session_id=_first_attr(spans, root, _SESSION_KEYS),
        user_id=_first_attr(spans, root, _USER_KEYS),
        model=_model(llm_spans or model_spans),
        messages=history,
        user_query=last_user_query(history),
        # the root's own output is what the user saw when the last LLM call only asked for a tool
        output=_output_text(output_messages) or _output_text(_span_output(root)),
        retrieved_context=_retrieved_context(spans),
        tool_calls=tool_calls,
        latency_ms=latency_ms(start, end),
        input_tokens=_sum_attr(model_spans, _INPUT_TOKEN_KEYS),
        output_tokens=_sum_attr(model_spans, _OUTPUT_TOKEN_KEYS),
        cost_usd=_sum_attr(model_spans, _COST_KEYS, as_float=True),
        prompt_template_id=_prompt_template_id(spans),
        system_prompt_hash=stable_hash(system_prompt(history)),
        tool_schema_hash=tool_schema_hash(_tool_definitions(spans)),
        feedback=_feedback(spans),
    )
    _apply_status(trace, spans)
    trace["payload_kept"] = bool(
        history or trace["retrieved_context"] or tool_calls or trace["output"]
    )
    trace["metadata"] = _metadata(trace_id, root, spans, model_spans, has_time=start is not None)
    merge_app_metadata(trace["metadata"], app_metadata(root), APP_ATTRIBUTE_PREFIX)
    error_message = _error_message(root, spans)
    if error_message is not None:
        trace["metadata"].setdefault("error_message", error_message)
    return trace


def derived_trace_id(document: Any) -> str:
    """An id for a document that has none: the same content always gets the same id, so a
    re-sent file is recognised. The prefix lets the fold flag it (TRACE_ID_DERIVED)."""
    return DERIVED_PREFIX + (stable_hash(document, 32) or "empty")


def span_role(span: Span) -> str:
    """What a span does: "llm", "embedding", "retriever", "tool" or "other"."""
    attrs = span.attributes
    operation = str(attrs.get("gen_ai.operation.name") or "").lower()
    kind = str(attrs.get("openinference.span.kind") or "").upper()
    vercel = str(attrs.get("ai.operationId") or "")
    if operation in _TOOL_OPERATIONS or kind == "TOOL" or vercel == "ai.toolCall":
        return "tool"
    if operation in _EMBEDDING_OPERATIONS or kind == "EMBEDDING" or vercel.startswith("ai.embed"):
        return "embedding"
    if operation in _RETRIEVAL_OPERATIONS or kind == "RETRIEVER":
        return "retriever"
    if (
        operation in _LLM_OPERATIONS
        or kind == "LLM"
        or vercel.startswith(("ai.generate", "ai.stream"))
        or str(attrs.get("llm.request.type") or "").lower() in ("chat", "completion")
    ):
        return "llm"
    if any(k.startswith(("llm.input_messages", "gen_ai.input.messages")) for k in attrs):
        return "llm"
    return "other"


def latency_ms(start: Any, end: Any) -> float | None:
    """Milliseconds between two raw timestamps, when both can be read; else None."""
    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    if start_ms is None or end_ms is None or end_ms < start_ms:
        return None
    return round(end_ms - start_ms, 3)


def epoch_ms(value: Any) -> float | None:
    """Epoch milliseconds from an epoch number in s/ms/us/ns (told apart by magnitude) or an
    ISO-8601 string; None when unreadable. Only for latency: the validator owns timestamps."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _iso_ms(text)
        value = number
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    magnitude = abs(value)
    if magnitude >= 1e17:
        return value / 1e6  # nanoseconds
    if magnitude >= 1e14:
        return value / 1e3  # microseconds
    if magnitude >= 1e11:
        return float(value)  # milliseconds
    return value * 1e3  # seconds


def vercel_time(value: Any) -> Any:
    """OpenTelemetry JS HrTime ``[seconds, nanos]`` -> float epoch seconds; else unchanged."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return value[0] + value[1] / 1e9
    return value


# --- structure ------------------------------------------------------------------------------


def _span_identity(span: Span) -> dict[str, Any]:
    return {"name": span.name, "start": span.start, "attributes": span.attributes}


def _in_start_order(spans: list[Span]) -> list[Span]:
    """Spans sorted by start where readable; unreadable starts keep their file order."""
    indexed = list(enumerate(spans))

    def order(pair: tuple[int, Span]) -> tuple[bool, float, int]:
        start = epoch_ms(pair[1].start)
        return (start is None, start or 0.0, pair[0])

    return [span for _, span in sorted(indexed, key=order)]


def _root(spans: list[Span]) -> Span:
    """The span with no parent in this group; the earliest one if several are orphans."""
    ids = {span.span_id for span in spans if span.span_id}
    roots = [span for span in spans if not span.parent_id or span.parent_id not in ids]
    return (roots or spans)[0]


def _leaf_model_spans(spans: list[Span], roles: dict[int, str]) -> list[Span]:
    """LLM/embedding spans with no LLM/embedding span below them.

    Vercel emits ai.generateText with a child ai.generateText.doGenerate carrying the same
    usage; LangChain inside LlamaIndex nests similarly. Counting only leaves avoids doubling.
    """
    model = [s for s in spans if roles[id(s)] in ("llm", "embedding")]
    parents_of_models: set[str] = set()
    by_id = {s.span_id: s for s in spans if s.span_id}
    for span in model:
        seen: set[str] = set()
        parent = span.parent_id
        while parent and parent in by_id and parent not in seen:
            seen.add(parent)
            parents_of_models.add(parent)
            parent = by_id[parent].parent_id
    return [s for s in model if not s.span_id or s.span_id not in parents_of_models]


def _trace_bounds(root: Span, spans: list[Span]) -> tuple[Any, Any]:
    """Raw (start, end) of the root; the earliest start / latest end of any span as fallback."""
    start, end = root.start, root.end
    if start is None:
        readable = [s.start for s in spans if epoch_ms(s.start) is not None]
        start = readable[0] if readable else None
    if end is None:
        readable = [s.end for s in spans if epoch_ms(s.end) is not None]
        end = max(readable, key=epoch_ms) if readable else None
    return start, end


def _iso_ms(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() * 1e3


# --- attributes -----------------------------------------------------------------------------


def _first(attrs: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def _first_attr(spans: list[Span], root: Span, keys: Iterable[str]) -> str | None:
    """The root's value if it has one (it describes the whole interaction), else any span's."""
    keys = tuple(keys)
    for span in [root, *spans]:
        value = _first(span.attributes, keys)
        if value is not None:
            return str(value)
    return None


def _parse_number(value: Any) -> float | None:
    """An int or float (not a bool) as it is, a numeric string parsed ("12" -> 12, "0.5" -> 0.5:
    span attributes often carry numbers as strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    return None


def _sum_attr(spans: list[Span], keys: tuple[str, ...], as_float: bool = False) -> Any:
    """Sum of the first present key per span; None when no span reports it (unknown, not 0)."""
    values = [_parse_number(_first(span.attributes, keys)) for span in spans]
    values = [v for v in values if v is not None]
    if not values:
        return None
    total = sum(values)
    return float(total) if as_float else int(total)


def _model(spans: list[Span]) -> str | None:
    """The model that answered (response model) of the last call, else the requested one."""
    for span in reversed(spans):
        model = _first(span.attributes, _RESPONSE_MODEL_KEYS + _REQUEST_MODEL_KEYS)
        if model is not None:
            return str(model)
    return None


def _service_name(spans: list[Span]) -> str | None:
    for span in spans:
        name = span.resource.get("service.name")
        if name:
            return str(name)
    return None


# --- messages -------------------------------------------------------------------------------


def _span_messages(span: Span) -> list[dict[str, Any]]:
    """Input messages of one LLM span, from the richest attribute present."""
    attrs = span.attributes
    candidates = (
        lambda: messages_from_indexed(attrs, "llm.input_messages"),
        lambda: normalize_messages(attrs.get("gen_ai.input.messages")),
        lambda: messages_from_indexed(attrs, "gen_ai.prompt"),
        lambda: normalize_messages(attrs.get("gen_ai.prompt")),
        lambda: normalize_messages(attrs.get("ai.prompt.messages")),
        lambda: normalize_messages(attrs.get("ai.prompt")),
        lambda: _messages_from_value(_first(attrs, ("input.value", "input"))),
    )
    for candidate in candidates:
        messages = candidate()
        if messages:
            return messages
    return []


def _messages_from_value(value: Any) -> list[dict[str, Any]]:
    """OpenInference ``input.value``: JSON messages / request body, or the user's plain text."""
    messages = normalize_messages(value)
    if messages:
        return messages
    parsed = parse_json_maybe(value)
    if isinstance(parsed, str) and parsed.strip():
        return [{"role": "user", "content": parsed}]
    return []


def _with_system_instructions(span: Span | None, messages: list[dict]) -> list[dict]:
    """Prepend ``gen_ai.system_instructions`` (kept out of input messages by the current
    conventions) so the system prompt is part of the history and of system_prompt_hash."""
    if span is None or any(m.get("role") in ("system", "developer") for m in messages):
        return messages
    raw = parse_json_maybe(span.attributes.get("gen_ai.system_instructions"))
    if isinstance(raw, list):  # a list of parts: [{"type": "text", "content": "..."}]
        raw = [p.get("content", p.get("text")) if isinstance(p, dict) else p for p in raw]
    text = to_text(raw)
    if not text:
        return messages
    return [{"role": "system", "content": text}, *messages]


def _span_output(span: Span) -> list[dict[str, Any]]:
    attrs = span.attributes
    for messages in (
        messages_from_indexed(attrs, "llm.output_messages"),
        normalize_output(attrs.get("gen_ai.output.messages")),
        messages_from_indexed(attrs, "gen_ai.completion"),
        normalize_output(attrs.get("gen_ai.completion")),
        _vercel_output(attrs),
        normalize_output(_first(attrs, ("output.value", "output"))),
    ):
        if messages:
            return [_assistant(m) for m in messages]
    return []


def _assistant(message: dict[str, Any]) -> dict[str, Any]:
    return message if message.get("role") != "user" else {**message, "role": "assistant"}


def _vercel_output(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    text = _first(attrs, ("ai.response.text", "ai.response.object"))
    raw_calls = parse_json_maybe(attrs.get("ai.response.toolCalls"))
    calls = [normalize_tool_call(c) for c in raw_calls] if isinstance(raw_calls, list) else []
    calls = [c for c in calls if c]
    if text is None and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": to_text(text)}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _output_text(messages: list[dict[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("content"):
            return message["content"]
    return None


# --- retrieval, tools, templates ------------------------------------------------------------


def _retrieved_context(spans: list[Span]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for span in spans:
        docs.extend(_openinference_documents(span.attributes))
        docs.extend(_genai_documents(span.attributes))
    return docs


def _openinference_documents(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for item in unflatten_indexed(attrs, "retrieval.documents"):
        if not isinstance(item, dict):
            continue
        doc = item.get("document", item)
        if isinstance(doc, dict):
            docs.append(_document(doc.get("id"), doc.get("content"), doc.get("score")))
    return docs


def _genai_documents(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    raw = parse_json_maybe(attrs.get("gen_ai.retrieval.documents"))
    if not isinstance(raw, list):
        return []
    return [
        _document(d.get("id"), d.get("content", d.get("text")), d.get("score"))
        for d in raw
        if isinstance(d, dict)
    ]


def _document(doc_id: Any, text: Any, score: Any) -> dict[str, Any]:
    return {
        "doc_id": None if doc_id is None else str(doc_id),
        "text": to_text(text),
        "score": _parse_number(score),
    }


def _tool_calls(spans: list[Span], roles: dict[int, str]) -> list[dict[str, Any]]:
    return [_tool_call(span) for span in spans if roles[id(span)] == "tool"]


def _tool_call(span: Span) -> dict[str, Any]:
    attrs = span.attributes
    name = _first(attrs, ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")) or span.name
    arguments = _first(attrs, _TOOL_ARGUMENT_KEYS)
    result = _first(attrs, _TOOL_RESULT_KEYS)
    return {
        "name": name,
        "arguments": parse_json_maybe(arguments),
        "result": parse_json_maybe(result),
    }


def _prompt_template_id(spans: list[Span]) -> str | None:
    for span in spans:
        attrs = span.attributes
        version = attrs.get("llm.prompt_template.version")
        template = attrs.get("llm.prompt_template.template")
        name = _first(attrs, ("langfuse.observation.prompt.name",))
        if name is not None:
            lf_version = attrs.get("langfuse.observation.prompt.version")
            return f"{name}:{lf_version}" if lf_version is not None else str(name)
        if version not in (None, ""):
            return str(version)
        if template not in (None, ""):
            return stable_hash(template)
    return None


def _prompt_template_variables(spans: list[Span]) -> Any:
    for span in spans:
        variables = span.attributes.get("llm.prompt_template.variables")
        if variables not in (None, ""):
            return parse_json_maybe(variables)
    return None


def _tool_definitions(spans: list[Span]) -> list[Any]:
    """Tool schemas offered to the model, parsed, from the first span that lists them."""
    for span in spans:
        attrs = span.attributes
        for tools in (
            _openinference_tools(attrs),
            parse_json_maybe(attrs.get("gen_ai.tool.definitions")),
            attrs.get("ai.prompt.tools"),
            unflatten_indexed(attrs, "llm.request.functions"),
        ):
            if isinstance(tools, list) and tools:
                return [parse_json_maybe(tool) for tool in tools]
    return []


def _openinference_tools(attrs: dict[str, Any]) -> list[Any]:
    """``llm.tools.N.tool.json_schema`` (JSON text per tool) -> the schemas."""
    tools = []
    for item in unflatten_indexed(attrs, "llm.tools"):
        if isinstance(item, dict):
            tool = item.get("tool")
            tools.append(tool.get("json_schema", tool) if isinstance(tool, dict) else item)
    return tools


# --- status and metadata --------------------------------------------------------------------


def _apply_status(trace: dict[str, Any], spans: list[Span]) -> None:
    failed = [span for span in spans if span.status == "error"]
    if not failed:
        return
    trace["status"] = "error"
    error = next((e for e in (_error_type(span) for span in failed) if e), None)
    trace["error_type"] = error[:ERROR_TYPE_MAX] if error else None


def _error_type(span: Span) -> str | None:
    """The exception type from an exception event, else error.type, else the status message."""
    for event in span.events:
        attrs = event.get("attributes") or {}
        if event.get("name") == "exception" and attrs.get("exception.type"):
            return str(attrs["exception.type"])
    if span.attributes.get("error.type"):
        return str(span.attributes["error.type"])
    return span.status_message or None


def _error_message(root: Span, spans: list[Span]) -> str | None:
    """A failing span's status description (the root's first): OTel's error message. It can
    quote user data, so it goes to metadata, where the PII stage looks, not to error_type."""
    for span in [root, *spans]:
        if span.status == "error" and span.status_message:
            return str(span.status_message)
    return None


def app_metadata(root: Span) -> dict[str, Any]:
    """The application's metadata on the root span (rule in the module docstring)."""
    metadata: dict[str, Any] = {}
    embedded = parse_json_maybe(root.attributes.get(_OPENINFERENCE_METADATA_KEY))
    if isinstance(embedded, dict):
        metadata.update(embedded)
    prefix = APP_ATTRIBUTE_PREFIX
    for key, value in root.attributes.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            metadata[key[len(prefix):]] = value
    return metadata


def _feedback(spans: list[Span]) -> dict[str, Any] | None:
    """The user's rating from the first ``gen_ai.evaluation.result`` event named as feedback
    (``user_feedback``, ``thumbs``...). Other evaluations are automated judges, not users:
    they stay in metadata["evaluations"]."""
    for span in spans:
        for event in span.events:
            attrs = event.get("attributes") or {}
            if event.get("name") != _EVALUATION_EVENT or not _is_feedback(attrs):
                continue
            score = _parse_number(attrs.get("gen_ai.evaluation.score.value"))
            comment = attrs.get("gen_ai.evaluation.explanation")
            return {
                "thumbs": _thumbs(attrs.get("gen_ai.evaluation.score.label"), score),
                "score": float(score) if score is not None else None,
                "comment": str(comment) if comment not in (None, "") else None,
            }
    return None


def _is_feedback(attrs: dict[str, Any]) -> bool:
    name = str(attrs.get("gen_ai.evaluation.name") or "").lower()
    return any(marker in name for marker in _FEEDBACK_NAME_MARKERS)


def _thumbs(label: Any, score: Any) -> str | None:
    text = str(label).strip().lower().replace("-", "_").replace(" ", "_") if label else ""
    if text in _THUMBS_UP:
        return "up"
    if text in _THUMBS_DOWN:
        return "down"
    if not text and score in (0, 1):
        return "up" if score == 1 else "down"
    return None


def _evaluations(spans: list[Span]) -> list[dict[str, Any]]:
    """Every evaluation result event, summarised (the feedback one included)."""
    found = []
    for span in spans:
        for event in span.events:
            if event.get("name") != _EVALUATION_EVENT:
                continue
            attrs = event.get("attributes") or {}
            found.append({k[len("gen_ai.evaluation."):]: v for k, v in attrs.items()
                          if k.startswith("gen_ai.evaluation.")})
    return found


def _metadata(
    trace_id: str, root: Span, spans: list[Span], model_spans: list[Span], has_time: bool
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dialect": root.dialect,
        "span_count": len(spans),
        "root_span_name": root.name,
    }
    optional = {
        "service_name": _service_name(spans),
        "provider": _first_value(model_spans, _PROVIDER_KEYS),
        "request_model": _first_value(model_spans, _REQUEST_MODEL_KEYS),
        "framework": _framework(spans),
        "prompt_template_variables": _prompt_template_variables(spans),
        "tool_definitions": _tool_definitions(spans) or None,
        "telemetry_metadata": _vercel_telemetry(root),
        "evaluations": _evaluations(spans),
    }
    metadata.update({k: v for k, v in optional.items() if v not in (None, {}, [])})
    flags = []
    if trace_id.startswith(DERIVED_PREFIX):
        flags.append(reasons.TRACE_ID_DERIVED)
    if not has_time:  # ingestion fills the time from the file's landing time
        flags.append(reasons.TIMESTAMP_INFERRED)
    if flags:
        metadata["flags"] = flags
    return metadata


def _first_value(spans: list[Span], keys: tuple[str, ...]) -> Any:
    for span in reversed(spans):
        value = _first(span.attributes, keys)
        if value is not None:
            return value
    return None


def _framework(spans: list[Span]) -> str | None:
    keys = {key for span in spans for key in span.attributes}
    if "ai.operationId" in keys:
        return "vercel-ai-sdk"
    if "openinference.span.kind" in keys:
        return "openinference"
    if any(key.startswith("traceloop.") for key in keys):
        return "openllmetry"
    return None


def _vercel_telemetry(root: Span) -> dict[str, Any]:
    """Vercel ``experimental_telemetry.metadata``: the app's own tags for the call."""
    prefix = _VERCEL_TELEMETRY_PREFIX
    return {k[len(prefix):]: v for k, v in root.attributes.items() if k.startswith(prefix)}
