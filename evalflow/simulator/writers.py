"""The same trace written in three dialects: canonical JSONL, OTLP JSON and Langfuse export.

Writers take a finished canonical trace (plain JSON) plus its start/end in epoch milliseconds
and return one line of text. Everything they add (span ids, sub-span timings) is derived from
the trace id, so the output is a pure function of the trace.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from evalflow.simulator import catalog

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def iso(ms: int, zulu: bool = False) -> str:
    text = (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if zulu else text


def _span_id(trace_id: str, key: str) -> str:
    return hashlib.sha256(f"{trace_id}:{key}".encode()).hexdigest()[:16]


def _timings(start_ms: int, end_ms: int, n_tools: int, has_retrieval: bool) -> dict[str, Any]:
    """Sub-span windows: retrieval first, then the tools one after another, then the chat call."""
    total = max(end_ms - start_ms, 4)
    cursor = start_ms + max(1, total // 100)
    windows: dict[str, Any] = {}
    if has_retrieval:
        length = max(1, min(total // 12, 450))
        windows["retrieval"] = (cursor, cursor + length)
        cursor += length
    tools = []
    for _ in range(n_tools):
        length = max(1, total // 10)
        tools.append((cursor, cursor + length))
        cursor += length
    windows["tools"] = tools
    windows["chat"] = (min(cursor, end_ms - 1), end_ms - 1)
    return windows


def canonical_line(trace: dict[str, Any]) -> str:
    return dump(trace)


# --- OTLP ----------------------------------------------------------------------------------

def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP JSON writes int64 as a string
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {"arrayValue": {"values": [{"stringValue": v} for v in value]}}
    return {"stringValue": dump(value)}


def _attrs(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in pairs.items() if v is not None]


def _ns(ms: int) -> str:
    return str(ms * 1_000_000)


def _parts_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
        for m in messages
        if m.get("content") is not None
    ]


def otlp_line(trace: dict[str, Any], start_ms: int, end_ms: int) -> str:
    tid = trace["trace_id"]
    meta = trace["metadata"]
    docs = trace["retrieved_context"]
    windows = _timings(start_ms, end_ms, len(trace["tool_calls"]), bool(docs))
    root_id = _span_id(tid, "root")
    error = trace["status"] == "error"
    error_message = meta.get("error_message") or trace["error_type"]

    root_attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": trace["app"],
        "gen_ai.conversation.id": trace["session_id"],
        "session.id": trace["session_id"],
        "user.id": trace["user_id"],
        "llm.prompt_template.version": trace["prompt_template_id"],
    }
    # the application's metadata as app.* attributes (the fold strips the prefix); the error
    # message travels as the status description instead, where the fold reads it back
    root_attrs.update({f"app.{k}": v for k, v in meta.items() if k != "error_message"})
    if error:
        root_attrs["error.type"] = trace["error_type"]
    root: dict[str, Any] = {
        "traceId": tid, "spanId": root_id, "parentSpanId": "",
        "name": f"invoke_agent {trace['app']}", "kind": 2,
        "startTimeUnixNano": _ns(start_ms), "endTimeUnixNano": _ns(end_ms),
        "attributes": _attrs(root_attrs),
        "status": {"code": 2, "message": error_message} if error else {"code": 1},
    }
    feedback = trace["feedback"]
    if feedback:
        root["events"] = [{
            "timeUnixNano": _ns(end_ms + 5_000),
            "name": "gen_ai.evaluation.result",
            "attributes": _attrs({
                "gen_ai.evaluation.name": "user_feedback",
                "gen_ai.evaluation.score.value": float(feedback["score"]),
                "gen_ai.evaluation.score.label": f"thumbs_{feedback['thumbs']}",
                "gen_ai.evaluation.explanation": feedback["comment"],
            }),
        }]
    spans = [root]

    if docs:
        start, end = windows["retrieval"]
        # Two instrumentations in the wild: OTel GenAI's JSON attribute, OpenInference's flat keys.
        if int(tid[-1], 16) % 2 == 0:
            attrs = {
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": "northwind-kb",
                "gen_ai.retrieval.documents": dump(
                    [{"id": d["doc_id"], "score": d["score"], "content": d["text"]} for d in docs]
                ),
            }
        else:
            attrs = {"openinference.span.kind": "RETRIEVER", "input.value": trace["user_query"]}
            for i, d in enumerate(docs):
                attrs[f"retrieval.documents.{i}.document.id"] = d["doc_id"]
                attrs[f"retrieval.documents.{i}.document.content"] = d["text"]
                attrs[f"retrieval.documents.{i}.document.score"] = float(d["score"])
        spans.append({
            "traceId": tid, "spanId": _span_id(tid, "retrieval"), "parentSpanId": root_id,
            "name": "retrieval northwind-kb", "kind": 1,
            "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(end),
            "attributes": _attrs(attrs), "status": {"code": 1},
        })

    for i, call in enumerate(trace["tool_calls"]):
        start, end = windows["tools"][i]
        spans.append({
            "traceId": tid, "spanId": _span_id(tid, f"tool{i}"), "parentSpanId": root_id,
            "name": f"execute_tool {call['name']}", "kind": 1,
            "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(end),
            "attributes": _attrs({
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call["name"],
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": "call_" + _span_id(tid, f"call{i}")[:12],
                "gen_ai.tool.call.arguments": dump(call["arguments"]),
                "gen_ai.tool.call.result": dump(call["result"]),
            }),
            # the tool answered with an error payload; the span itself completed
            "status": {"code": 1},
        })

    start, end = windows["chat"]
    chat_attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": trace["model"],
        "gen_ai.response.model": trace["model"],
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": trace["input_tokens"],
        "gen_ai.usage.output_tokens": trace["output_tokens"],
        "gen_ai.usage.cost": trace["cost_usd"],
        "gen_ai.input.messages": dump(_parts_messages(trace["messages"])),
        "gen_ai.tool.definitions": dump(catalog.TOOLS[trace["prompt_template_id"]]),
        "llm.prompt_template.version": trace["prompt_template_id"],
    }
    if trace["output"] is not None:
        chat_attrs["gen_ai.output.messages"] = dump([{
            "role": "assistant", "parts": [{"type": "text", "content": trace["output"]}],
            "finish_reason": "stop",
        }])
        chat_attrs["gen_ai.response.finish_reasons"] = ["stop"]
    if error:
        chat_attrs["error.type"] = trace["error_type"]
    spans.append({
        "traceId": tid, "spanId": _span_id(tid, "chat"), "parentSpanId": root_id,
        "name": f"chat {trace['model']}", "kind": 3,
        "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(end),
        "attributes": _attrs(chat_attrs),
        "status": {"code": 2, "message": error_message} if error else {"code": 1},
    })

    request = {"resourceSpans": [{
        "resource": {"attributes": _attrs({
            "service.name": trace["app"],
            "service.version": meta.get("app_version"),
            "deployment.environment.name": "production",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": "1.38.0",
        })},
        "scopeSpans": [{"scope": {"name": "northwind.support", "version": "2.3.0"},
                        "spans": spans}],
    }]}
    return dump(request)


# --- Langfuse ------------------------------------------------------------------------------

def langfuse_line(trace: dict[str, Any], start_ms: int, end_ms: int) -> str:
    tid = trace["trace_id"]
    meta = trace["metadata"]
    docs = trace["retrieved_context"]
    windows = _timings(start_ms, end_ms, len(trace["tool_calls"]), bool(docs))
    root_id = _span_id(tid, "root")
    error = trace["status"] == "error"
    feedback = trace["feedback"]
    # Langfuse has no error-type field: OTel-ingested observations keep the span's attributes,
    # error.type included, in metadata.attributes (the message goes to statusMessage).
    error_metadata = {"attributes": {"error.type": trace["error_type"]}} if error else {}

    def observation(key: str, type_: str, name: str, start: int, end: int, **fields: Any):
        base = {
            "id": _span_id(tid, key), "traceId": tid, "type": type_, "name": name,
            "startTime": iso(start, zulu=True), "endTime": iso(end, zulu=True),
            "parentObservationId": None if key == "root" else root_id,
            "level": "DEFAULT", "statusMessage": None, "model": None, "input": None,
            "output": None, "usageDetails": {}, "costDetails": {}, "calculatedTotalCost": None,
            "latency": end - start, "metadata": {},
        }
        base.update(fields)
        return base

    observations = [observation(
        "root", "SPAN", "support-turn", start_ms, end_ms,
        input=trace["user_query"], output=trace["output"],
        level="ERROR" if error else "DEFAULT",
        statusMessage=meta.get("error_message") if error else None,
        metadata=error_metadata,
    )]
    if docs:
        start, end = windows["retrieval"]
        observations.append(observation(
            "retrieval", "RETRIEVER", "kb-search", start, end,
            input={"query": trace["user_query"], "top_k": len(docs)},
            output=[{"id": d["doc_id"], "content": d["text"], "score": d["score"]} for d in docs],
        ))
    for i, call in enumerate(trace["tool_calls"]):
        start, end = windows["tools"][i]
        failed = isinstance(call["result"], dict) and "error" in call["result"]
        observations.append(observation(
            f"tool{i}", "TOOL", call["name"], start, end,
            input=call["arguments"], output=call["result"],
            level="WARNING" if failed else "DEFAULT",
            statusMessage=call["result"]["error"] if failed else None,
        ))
    start, end = windows["chat"]
    prices = catalog.MODELS[trace["model"]]
    input_cost = round(trace["input_tokens"] * prices[0] / 1e6, 8)
    output_cost = round(trace["output_tokens"] * prices[1] / 1e6, 8)
    observations.append(observation(
        "chat", "GENERATION", f"chat {trace['model']}", start, end,
        model=trace["model"],
        modelParameters={"temperature": 0.2},
        input=[{"role": m["role"], "content": m["content"]} for m in trace["messages"]],
        output=None if trace["output"] is None else {"role": "assistant", "content": trace["output"]},
        usageDetails={"input": trace["input_tokens"], "output": trace["output_tokens"],
                      "total": trace["input_tokens"] + trace["output_tokens"]},
        costDetails={"input": input_cost, "output": output_cost, "total": trace["cost_usd"]},
        calculatedTotalCost=trace["cost_usd"],
        totalCost=trace["cost_usd"],
        # the template id as the name, no version: adapters read "name:version" otherwise,
        # and the same template would get two ids across dialects
        promptName=trace["prompt_template_id"], promptVersion=None,
        level="ERROR" if error else "DEFAULT",
        statusMessage=(meta.get("error_message") or trace["error_type"]) if error else None,
        metadata=error_metadata,
        toolDefinitions=catalog.TOOLS[trace["prompt_template_id"]],
    ))
    scores = []
    if feedback:
        scores.append({"name": "user_feedback", "value": feedback["score"], "dataType": "NUMERIC",
                       "source": "API", "comment": feedback["comment"],
                       "stringValue": feedback["thumbs"]})
    document = {
        "trace": {
            "id": tid,
            "projectId": "northwind-support-prod",
            "name": trace["app"],
            "timestamp": iso(start_ms, zulu=True),
            "environment": "production",
            "tags": [meta.get("channel", "web"), trace["prompt_template_id"]],
            "release": meta.get("app_version"),
            "version": trace["prompt_template_id"],
            "userId": trace["user_id"],
            "sessionId": trace["session_id"],
            "public": False,
            "input": trace["user_query"],
            "output": trace["output"],
            "metadata": meta,
            "scores": scores,
            "latency": round((end_ms - start_ms) / 1000, 3),
            "createdAt": iso(end_ms + 1_200, zulu=True),
            "updatedAt": iso(end_ms + 2_400, zulu=True),
        },
        "observations": observations,
    }
    return dump(document)


