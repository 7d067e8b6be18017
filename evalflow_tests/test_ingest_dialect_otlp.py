"""OTLP JSON -> spans -> one canonical trace per trace id (OTel GenAI, current and deprecated)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.dialects import otlp
from evalflow.lib.ingest.dialects.spans import epoch_ms, fold_spans, latency_ms

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


# --- builders for OTLP JSON -----------------------------------------------------------------


def anyvalue(value):
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP/JSON writes int64 as a string
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [anyvalue(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attrs(value)}}
    return {"stringValue": value}


def attrs(mapping):
    return [{"key": k, "value": anyvalue(v)} for k, v in mapping.items()]


def span(trace_id, span_id, name, start_ms, end_ms, attributes, parent="", status=None, events=()):
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(T0 + start_ms * 1_000_000),
        "endTimeUnixNano": str(T0 + end_ms * 1_000_000),
        "attributes": attrs(attributes),
        "status": status or {"code": 1},
        "events": list(events),
    }


def request(*spans, service="support-bot"):
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs({"service.name": service})},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


def fold(document):
    assert otlp.detect(document)
    return fold_spans(otlp.to_spans(document))


TRACE_A = "5b8efff798038103d269b633813fc60c"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"
TRACE_C = "4bf92f3577b34da6a3ce929d0e0e4736"


# --- current GenAI conventions --------------------------------------------------------------


def agent_request():
    """An agent turn: chat (asks for a tool) -> retrieval -> tool -> chat (answers)."""
    first_chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 15,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]}]
        ),
    }
    final_chat = {
        **first_chat,
        "gen_ai.usage.input_tokens": 300,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a support agent."}]),
        "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "lookup_order"}]),
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "tool_call", "id": "c1", "name": "lookup_order", "arguments": {"id": 42}}
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c1", "response": "shipped"}],
                },
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "Order 42 has shipped."}]}]
        ),
    }
    retrieval = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.retrieval.documents": json.dumps(
            [{"id": "kb-7", "score": 0.91, "content": "Orders ship in 2 days."}, {"id": "kb-9", "score": 0.5}]
        ),
    }
    tool = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.call.arguments": '{"id": 42}',
        "gen_ai.tool.call.result": '{"status": "shipped"}',
    }
    root = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.conversation.id": "conv-1",
        "user.id": "user-9",
    }
    return request(
        span(TRACE_A, "a000000000000001", "invoke_agent support", 0, 2500, root),
        span(TRACE_A, "a000000000000002", "chat gpt-4o", 10, 900, first_chat, parent="a000000000000001"),
        span(TRACE_A, "a000000000000003", "retrieval kb", 905, 950, retrieval, parent="a000000000000001"),
        span(TRACE_A, "a000000000000004", "execute_tool", 960, 1000, tool, parent="a000000000000001"),
        span(TRACE_A, "a000000000000005", "chat gpt-4o", 1010, 2400, final_chat, parent="a000000000000001"),
    )


def test_current_genai_attributes_fold_into_one_trace():
    (result,) = fold(agent_request())

    expected_messages = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Where is order 42?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "name": "lookup_order", "arguments": {"id": 42}}],
        },
        {"role": "tool", "content": "shipped", "tool_call_id": "c1"},
    ]
    assert result["trace_id"] == TRACE_A
    # messages = what the final call saw; its answer is only in output (canonical convention)
    assert result["messages"] == expected_messages
    assert result["user_query"] == "Where is order 42?"
    assert result["output"] == "Order 42 has shipped."
    assert result["model"] == "gpt-4o-2024-08-06"
    assert (result["input_tokens"], result["output_tokens"]) == (420, 55)
    assert (result["session_id"], result["user_id"], result["app"]) == ("conv-1", "user-9", "support-bot")
    assert result["timestamp"] == T0  # raw ns: the validator owns the conversion
    assert result["latency_ms"] == 2500.0
    assert result["status"] == "ok"
    assert result["metadata"]["span_count"] == 5
    assert result["metadata"]["provider"] == "openai"
    assert result["metadata"]["service_name"] == "support-bot"
    assert result["payload_kept"] is True


def test_retrieved_context_is_kept_apart_from_messages():
    (result,) = fold(agent_request())

    expected = [
        {"doc_id": "kb-7", "text": "Orders ship in 2 days.", "score": 0.91},
        {"doc_id": "kb-9", "text": None, "score": 0.5},
    ]
    assert result["retrieved_context"] == expected
    assert all("Orders ship" not in (m["content"] or "") for m in result["messages"])


def test_tool_spans_become_tool_calls():
    (result,) = fold(agent_request())

    expected = [{"name": "lookup_order", "arguments": {"id": 42}, "result": {"status": "shipped"}}]
    assert result["tool_calls"] == expected


def test_stable_hashes_for_system_prompt_and_tool_schema():
    (first,) = fold(agent_request())
    (second,) = fold(agent_request())

    assert first["system_prompt_hash"] is not None
    assert first["tool_schema_hash"] is not None
    assert (first["system_prompt_hash"], first["tool_schema_hash"]) == (
        second["system_prompt_hash"],
        second["tool_schema_hash"],
    )


def test_structured_message_values_are_decoded():
    # Exporters that support structured attributes send messages as arrayValue of kvlists.
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}],
    }
    (result,) = fold(request(span(TRACE_A, "a1", "chat", 0, 10, chat)))

    assert result["messages"] == [{"role": "user", "content": "hi"}]
    assert result["output"] == "hello"
    assert result["model"] == "claude-sonnet-4"


# --- deprecated conventions -----------------------------------------------------------------


def test_deprecated_indexed_prompt_and_completion_openllmetry():
    chat = {
        "gen_ai.system": "openai",
        "llm.request.type": "chat",
        "gen_ai.request.model": "gpt-3.5-turbo",
        "gen_ai.usage.prompt_tokens": 11,
        "gen_ai.usage.completion_tokens": 7,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Capital of France?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Paris.",
    }
    (result,) = fold(request(span(TRACE_A, "a1", "openai.chat", 0, 300, chat)))

    assert result["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert result["output"] == "Paris."
    assert (result["input_tokens"], result["output_tokens"]) == (11, 7)
    assert result["model"] == "gpt-3.5-turbo"
    assert result["metadata"]["provider"] == "openai"


def test_deprecated_prompt_and_completion_json_strings():
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 5,
        "gen_ai.usage.completion_tokens": 3,
        "gen_ai.prompt": json.dumps([{"role": "user", "content": "ping"}]),
        "gen_ai.completion": json.dumps([{"role": "assistant", "content": "pong"}]),
    }
    (result,) = fold(request(span(TRACE_A, "a1", "chat", 0, 10, chat)))

    assert (result["user_query"], result["output"]) == ("ping", "pong")
    assert (result["input_tokens"], result["output_tokens"]) == (5, 3)


# --- application metadata and user feedback -------------------------------------------------


def evaluation_event(name, score=None, label=None, explanation=None):
    values = {"gen_ai.evaluation.name": name, "gen_ai.evaluation.score.value": score,
              "gen_ai.evaluation.score.label": label, "gen_ai.evaluation.explanation": explanation}
    return {"timeUnixNano": str(T0 + 20_000_000), "name": "gen_ai.evaluation.result",
            "attributes": attrs({k: v for k, v in values.items() if v is not None})}


def test_root_app_attributes_become_metadata_with_the_prefix_stripped():
    root = {
        "gen_ai.operation.name": "invoke_agent",
        "session.id": "s-1",
        "app.channel": "ios",
        "app.turn": 2,
        "app.customer_email": "ana@example.com",
        "app.dialect": "mine",  # collides with the adapter's own key
        "http.route": "/chat",  # another semantic-convention namespace: not metadata
    }
    chat = {"gen_ai.operation.name": "chat", "app.ignored": "only the root's count"}
    (result,) = fold(request(span(TRACE_A, "a1", "agent", 0, 10, root),
                             span(TRACE_A, "a2", "chat", 1, 9, chat, parent="a1")))

    metadata = result["metadata"]
    assert {k: metadata[k] for k in ("channel", "turn", "customer_email")} == {
        "channel": "ios", "turn": 2, "customer_email": "ana@example.com"}
    assert metadata["dialect"] == "otlp" and metadata["app.dialect"] == "mine"
    assert not {"route", "http.route", "session.id", "ignored"} & metadata.keys()


def test_error_status_message_is_kept_as_error_message():
    root = span(TRACE_A, "a1", "agent", 0, 10, {"error.type": "ToolExecutionError"},
                status={"code": 2, "message": "lookup failed for ACC-12345678"})
    (result,) = fold(request(root))

    assert (result["status"], result["error_type"]) == ("error", "ToolExecutionError")
    assert result["metadata"]["error_message"] == "lookup failed for ACC-12345678"
    app_says = span(TRACE_A, "a1", "agent", 0, 10, {"app.error_message": "the app's own"},
                    status={"code": 2, "message": "status text"})
    (result,) = fold(request(app_says))
    assert result["metadata"]["error_message"] == "the app's own"


@pytest.mark.parametrize(
    "event, expected",
    [
        (evaluation_event("user_feedback", 1.0, "thumbs_up", "quick and helpful"),
         {"thumbs": "up", "score": 1.0, "comment": "quick and helpful"}),
        (evaluation_event("user_feedback", 0.0, "thumbs_down"),
         {"thumbs": "down", "score": 0.0, "comment": None}),
        (evaluation_event("thumbs", 1), {"thumbs": "up", "score": 1.0, "comment": None}),
        (evaluation_event("user_feedback", 4.0, "helpful"),
         {"thumbs": None, "score": 4.0, "comment": None}),
    ],
)
def test_feedback_evaluation_event_becomes_feedback(event, expected):
    (result,) = fold(request(span(TRACE_A, "a1", "agent", 0, 10, {}, events=[event])))

    assert result["feedback"] == expected
    assert result["metadata"]["evaluations"][0]["name"] == event["attributes"][0]["value"]["stringValue"]


def test_an_automated_evaluation_is_not_user_feedback():
    judge = evaluation_event("Relevance", 0.2, "irrelevant", "off topic")
    (result,) = fold(request(span(TRACE_A, "a1", "agent", 0, 10, {}, events=[judge])))

    assert result["feedback"] is None
    assert result["metadata"]["evaluations"] == [
        {"name": "Relevance", "score.value": 0.2, "score.label": "irrelevant",
         "explanation": "off topic"}]


# --- status, grouping, ids ------------------------------------------------------------------


def test_error_span_marks_trace_failed_with_exception_type():
    event = {
        "timeUnixNano": str(T0 + 5_000_000),
        "name": "exception",
        "attributes": attrs({"exception.type": "openai.RateLimitError", "exception.message": "429"}),
    }
    failed = span(
        TRACE_A, "a2", "chat", 1, 5, {"gen_ai.operation.name": "chat"}, parent="a1",
        status={"code": 2, "message": "rate limited"}, events=[event],
    )
    (result,) = fold(request(span(TRACE_A, "a1", "agent", 0, 10, {}), failed))

    assert (result["status"], result["error_type"]) == ("error", "openai.RateLimitError")


def test_error_status_string_code_uses_message_capped_at_200_chars():
    message = "upstream timed out " * 20
    failed = span(TRACE_A, "a1", "chat", 0, 10, {}, status={"code": "STATUS_CODE_ERROR", "message": message})
    (result,) = fold(request(failed))

    assert result["status"] == "error"
    assert result["error_type"] == message[:200]


def test_spans_of_two_traces_mixed_give_two_traces():
    chat = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}
    document = request(
        span(TRACE_A, "a1", "root a", 0, 100, {"session.id": "s-a"}),
        span(TRACE_B, "b1", "root b", 50, 400, {"session.id": "s-b"}),
        span(TRACE_A, "a2", "chat", 10, 90, chat, parent="a1"),
        span(TRACE_B, "b2", "chat", 60, 390, chat, parent="b1"),
        span(TRACE_B, "b3", "chat", 61, 391, chat, parent="b1"),
    )
    result = {t["trace_id"]: t for t in fold(document)}

    expected = {
        TRACE_A: ("s-a", 2, 10, 100.0),
        TRACE_B: ("s-b", 3, 20, 350.0),
    }
    assert {
        tid: (t["session_id"], t["metadata"]["span_count"], t["input_tokens"], t["latency_ms"])
        for tid, t in result.items()
    } == expected


def test_vercel_parent_and_do_generate_tokens_are_not_double_counted():
    usage = {"ai.usage.promptTokens": 14, "ai.usage.completionTokens": 20}
    parent = {"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o-mini", **usage,
              "ai.prompt": '{"prompt":"haiku"}', "ai.response.text": "code flows"}
    child = {"ai.operationId": "ai.generateText.doGenerate",
             "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
             "gen_ai.usage.input_tokens": 14, "gen_ai.usage.output_tokens": 20, **usage,
             "ai.prompt.messages": '[{"role":"user","content":[{"type":"text","text":"haiku"}]}]',
             "ai.response.text": "code flows"}
    (result,) = fold(request(
        span(TRACE_A, "a1", "ai.generateText", 0, 100, parent),
        span(TRACE_A, "a2", "ai.generateText.doGenerate", 1, 99, child, parent="a1"),
    ))

    assert (result["input_tokens"], result["output_tokens"]) == (14, 20)
    assert result["model"] == "gpt-4o-mini-2024-07-18"
    assert (result["user_query"], result["output"]) == ("haiku", "code flows")
    assert result["metadata"]["framework"] == "vercel-ai-sdk"


def test_openinference_attributes_inside_otlp():
    retriever = {
        "openinference.span.kind": "RETRIEVER",
        "retrieval.documents.0.document.id": "d1",
        "retrieval.documents.0.document.content": "Refunds within 30 days.",
        "retrieval.documents.0.document.score": 0.8,
    }
    llm = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.prompt_template.template": "Answer using {context}",
        "llm.prompt_template.variables": '{"context": "..."}',
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "refund"}}',
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Can I get a refund?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Yes, within 30 days.",
        "llm.token_count.prompt": 50,
        "llm.token_count.completion": 6,
    }
    (result,) = fold(request(
        span(TRACE_A, "a1", "chain", 0, 100, {"openinference.span.kind": "CHAIN"}),
        span(TRACE_A, "a2", "retrieve", 1, 10, retriever, parent="a1"),
        span(TRACE_A, "a3", "llm", 11, 99, llm, parent="a1"),
    ))

    assert result["retrieved_context"] == [{"doc_id": "d1", "text": "Refunds within 30 days.", "score": 0.8}]
    assert result["prompt_template_id"] is not None
    assert result["tool_schema_hash"] is not None
    assert (result["user_query"], result["output"]) == ("Can I get a refund?", "Yes, within 30 days.")
    assert (result["input_tokens"], result["output_tokens"]) == (50, 6)


def test_base64_ids_are_read_as_hex():
    b64 = base64.b64encode(bytes.fromhex(TRACE_A)).decode()
    document = request(span(b64, base64.b64encode(bytes.fromhex("a000000000000001")).decode(), "x", 0, 1, {}))

    (result,) = fold(document)

    assert result["trace_id"] == TRACE_A


def test_snake_case_field_names_are_accepted():
    document = {
        "resource_spans": [
            {
                "resource": {"attributes": attrs({"service.name": "svc"})},
                "scope_spans": [
                    {"spans": [{"trace_id": TRACE_A, "span_id": "a1", "name": "x",
                                "start_time_unix_nano": str(T0), "end_time_unix_nano": str(T0 + 10**9),
                                "attributes": attrs({"session.id": "s"})}]}
                ],
            }
        ]
    }
    (result,) = fold(document)

    assert (result["trace_id"], result["session_id"], result["latency_ms"]) == (TRACE_A, "s", 1000.0)


def test_detect_rejects_other_documents():
    assert not otlp.detect({"post": [], "patch": []})
    assert not otlp.detect({"captureDate": "2026-02-03T15:20:07.289Z", "results": []})
    assert not otlp.detect([{"resourceSpans": []}])
    assert otlp.to_spans({"results": []}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"startTimeUnixNano": "0", "endTimeUnixNano": "0"}, reasons.MISSING_TIMESTAMP),
        ({"endTimeUnixNano": ""}, reasons.MISSING_TIMESTAMP),
        ({"traceId": ""}, reasons.MISSING_TRACE_ID),
        ({"traceId": "0" * 32}, reasons.MISSING_TRACE_ID),  # all-zero is OTLP's "invalid"
        ({"traceId": "", "startTimeUnixNano": "0"}, reasons.MISSING_TRACE_ID),
    ],
)
def test_spans_without_trace_id_or_time_are_marked_not_derived(change, expected):
    # OTLP requires both: no derived id, no file time (those are for bare attribute dicts).
    document = request(span(TRACE_A, "a1", "x", 0, 1, {}), span(TRACE_A, "b2", "y", 0, 1, {}, parent="a1"))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1].update(change)

    good, bad = otlp.to_spans(document)

    assert good.problem is None
    assert bad.problem[0] == expected
    assert bad.trace_id in (None, TRACE_A)


def test_a_marked_span_holds_back_its_whole_trace_and_only_it():
    from evalflow.lib.ingest.dialects.spans import hold_back_broken

    broken_root = span(TRACE_A, "a1", "root", 0, 10, {})
    broken_root["endTimeUnixNano"] = "0"
    orphan_child = span("", "c3", "child", 1, 2, {}, parent="b2")  # no traceId; parent is in TRACE_B
    unlinked = span("", "z9", "loose", 1, 2, {})
    document = request(broken_root, span(TRACE_A, "a2", "llm", 1, 5, {}, parent="a1"),
                       span(TRACE_B, "b1", "root", 0, 10, {}), span(TRACE_B, "b2", "mid", 1, 9, {}, parent="b1"),
                       orphan_child, unlinked, span(TRACE_C, "e1", "fine", 0, 10, {}))

    kept, held = hold_back_broken(otlp.to_spans(document))

    assert [s.span_id for s in kept] == ["e1"]
    assert [(h.trace_id, h.reason, sorted(s.span_id for s in h.spans)) for h in held] == [
        (TRACE_A, reasons.MISSING_TIMESTAMP, ["a1", "a2"]),
        (TRACE_B, reasons.MISSING_TRACE_ID, ["b1", "b2", "c3"]),
        (None, reasons.MISSING_TRACE_ID, ["z9"]),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_767_225_600, 1_767_225_600_000.0),  # seconds
        (1_767_225_600_000, 1_767_225_600_000.0),  # milliseconds
        (1_767_225_600_000_000, 1_767_225_600_000.0),  # microseconds
        (1_767_225_600_000_000_000, 1_767_225_600_000.0),  # nanoseconds
        ("1767225600000000000", 1_767_225_600_000.0),
        ("2026-01-01T00:00:00Z", 1_767_225_600_000.0),
        ("not a time", None),
        (None, None),
    ],
)
def test_epoch_ms_reads_every_unit(value, expected):
    assert epoch_ms(value) == expected


def test_latency_is_none_when_end_precedes_start():
    assert latency_ms(2_000, 1_000) is None


# --- the project's own OTLP/JSON export file ------------------------------------------------


def test_project_fixture_file_folds_to_its_known_trace():
    """evalflow_tests/fixtures/traces/otlp/chat-with-tool.json: an agent span, a chat asking for
    a tool, the tool execution and the answering chat, as an exporter writes them to a file."""
    path = Path(__file__).resolve().parent / "fixtures" / "traces" / "otlp" / "chat-with-tool.json"

    (trace,) = fold(json.loads(path.read_text(encoding="utf-8")))

    assert trace["trace_id"] == "4c5d6e7f8091a2b3c4d5e6f708192a3b"
    assert (trace["session_id"], trace["user_id"], trace["app"]) == ("s-9", "u-3", "bike-rental-bot")
    assert trace["model"] == "gpt-4o-2024-08-06"
    assert trace["messages"] == [
        {"role": "system", "content": "You help people rent bikes."},
        {"role": "user", "content": "Is a bike free at Dock 4?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c-4", "name": "bikes_at", "arguments": {"dock": 4}}]},
        {"role": "tool", "content": '{"free": 3}', "tool_call_id": "c-4"},
    ]
    assert trace["output"] == "Yes, 3 bikes are free at Dock 4."
    assert trace["tool_calls"] == [{"name": "bikes_at", "arguments": {"dock": 4}, "result": {"free": 3}}]
    assert (trace["input_tokens"], trace["output_tokens"]) == (90 + 130, 14 + 12)
    assert trace["latency_ms"] == 2400.0
    assert trace["metadata"]["span_count"] == 4
