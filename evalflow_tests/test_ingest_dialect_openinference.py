"""OpenInference / Vercel AI SDK span exports and bare GenAI attribute dicts -> canonical traces.

The file checks run on the project's own fixtures (evalflow_tests/fixtures/traces/openinference,
invented values) and on Arize's recorded ones in ../shared/data (third-party data beside the
checkout; see conftest.py for when its absence skips or fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.dialects import openinference
from evalflow.lib.ingest.dialects.spans import fold_spans

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "traces" / "openinference"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRACES = DATA / "traces" / "openinference"
needs_data = pytest.mark.shared_data("traces/openinference")

WEATHER_TOOL = [{"name": "get_weather", "arguments": {"location": "Paris"}, "result": "rainy, 57°F"}]


def load(relative, root=TRACES):
    return json.loads((root / relative).read_text(encoding="utf-8"))


def fold_document(document):
    """What ingestion does: the first of our dialects that claims the document, then fold."""
    dialect = next(d for d in (openinference.DIALECT, *openinference.EXTRA_DIALECTS) if d.detect(document))
    return dialect.name, fold_spans(dialect.to_spans(document))


# --- fixtures: bare attribute dicts (genai/) ------------------------------------------------

WEATHER_CHAT = ("gpt-4-0613", "Weather in Paris?", ["get_weather"], 97, 52)
GENAI_EXPECTED = {
    # file: (model, user_query, tool names, input_tokens, output_tokens)
    "openinference_client_span_input_output_only.json": WEATHER_CHAT,
    "openinference_client_span_tool_calls.json": WEATHER_CHAT,
    "otel_genai_client_span_tool_calls.json": WEATHER_CHAT,
    "otel_genai_deprecated_client_span_tool_calls.json": WEATHER_CHAT,
    "otel_genai_tool_execution_span.json": (None, None, ["get_weather"], None, None),
}


@needs_data
@pytest.mark.parametrize("name", sorted(GENAI_EXPECTED))
def test_bare_attribute_files(name):
    dialect, traces = fold_document(load(f"genai/{name}"))

    (trace,) = traces
    result = (
        trace["model"],
        trace["user_query"],
        [call["name"] for call in trace["tool_calls"]],
        trace["input_tokens"],
        trace["output_tokens"],
    )
    assert dialect == "genai_attributes"
    assert result == GENAI_EXPECTED[name]


@needs_data
@pytest.mark.parametrize("name", sorted(GENAI_EXPECTED))
def test_bare_attribute_files_get_a_derived_id_and_no_time(name):
    document = load(f"genai/{name}")

    (first,) = fold_document(document)[1]
    (again,) = fold_document(document)[1]

    assert first["trace_id"].startswith("derived-")
    assert first["trace_id"] == again["trace_id"]  # a re-sent file is recognised
    assert first["timestamp"] is None
    assert first["metadata"]["flags"] == [reasons.TRACE_ID_DERIVED, reasons.TIMESTAMP_INFERRED]


@needs_data
@pytest.mark.parametrize(
    "name",
    [
        "openinference_client_span_input_output_only.json",
        "openinference_client_span_tool_calls.json",
        "otel_genai_client_span_tool_calls.json",
        "otel_genai_deprecated_client_span_tool_calls.json",
    ],
)
def test_chat_files_give_history_output_and_paired_tool_call(name):
    (trace,) = fold_document(load(f"genai/{name}"))[1]

    # what the final call saw: the question, the tool request and its result; the answer is
    # only in output (the canonical convention)
    expected_roles = ["user", "assistant", "tool"]
    assert [m["role"] for m in trace["messages"]] == expected_roles
    assert trace["output"] == "The weather in Paris is currently rainy with a temperature of 57°F."
    assert trace["tool_calls"] == WEATHER_TOOL


@needs_data
def test_tool_execution_span_keeps_arguments_and_result():
    (trace,) = fold_document(load("genai/otel_genai_tool_execution_span.json"))[1]

    expected = [
        {
            "name": "get_weather",
            "arguments": {"city": "New York"},
            "result": {
                "status": "success",
                "report": "The weather in New York is sunny with a temperature of 25 degrees Celsius "
                "(77 degrees Fahrenheit).",
            },
        }
    ]
    assert trace["tool_calls"] == expected
    assert trace["messages"] == []


# --- fixtures: Vercel AI SDK v6 span lists (vercel_v6/) ---------------------------------------

HAIKU = "Write a haiku about programming."
SUMS = "And what is 3 + 3?"
RECIPE = "Generate a simple recipe for scrambled eggs."
POEM = "Write a short poem about TypeScript."

VERCEL_EXPECTED = {
    # file: [(trace_id, model, user_query, input_tokens, output_tokens), ...] in file order
    "ai-generateText.json": [
        ("700d5f98fe2420adcf6ab0822f7a323c", "gpt-4o-mini", HAIKU, 14, 20),
        ("673a889f59126f8b4c90dce5a1f99368", "gpt-4o-mini", SUMS, 50, 9),
    ],
    "ai-generateText-doGenerate.json": [
        ("b3e700af9eab81e19f72f964d62a35af", "gpt-4o-mini-2024-07-18", HAIKU, 14, 20),
        ("edff2fc5854be6170e8cccccec0c82cf", "gpt-4o-mini-2024-07-18", SUMS, 50, 9),
    ],
    "ai-generateObject.json": [("f99cc53c9bb8fe40462f7a48999e7088", "gpt-4o-mini", RECIPE, 63, 156)],
    "ai-generateObject-doGenerate.json": [
        ("8f60802815d6e97da2dbc4708a8e5c7b", "gpt-4o-mini-2024-07-18", RECIPE, 63, 156)
    ],
    "ai-streamText.json": [("8185b815e471184c6525a601a042be42", "gpt-4o-mini", POEM, 15, 112)],
    "ai-streamText-doStream.json": [
        ("478d4dcc697ecfabc5e7a3d6e4216291", "gpt-4o-mini-2024-07-18", POEM, 15, 112)
    ],
    # embeddings: a model call with tokens but no chat
    "ai-embed.json": [("91621bbaaf1920e94ae594e91b3a99fd", "text-embedding-3-small", None, 10, None)],
    "ai-embed-doEmbed.json": [("045d21a7f69972edf509fe0ff911f3f5", "text-embedding-3-small", None, 10, None)],
}


@needs_data
@pytest.mark.parametrize("name", sorted(VERCEL_EXPECTED))
def test_vercel_span_files(name):
    dialect, traces = fold_document(load(f"vercel_v6/{name}"))

    result = [
        (t["trace_id"], t["model"], t["user_query"], t["input_tokens"], t["output_tokens"]) for t in traces
    ]
    assert dialect == "openinference"
    assert result == VERCEL_EXPECTED[name]


@needs_data
@pytest.mark.parametrize("name", ["all-spans.json", "spans-by-operation.json"])
def test_vercel_collections_give_one_trace_per_trace_id(name):
    _, traces = fold_document(load(f"vercel_v6/{name}"))

    expected_ids = {tid for rows in VERCEL_EXPECTED.values() for tid, *_ in rows}
    assert len(traces) == 10
    assert {t["trace_id"] for t in traces} == expected_ids


@needs_data
def test_vercel_times_are_epoch_seconds_and_latency_is_measured():
    (trace,) = fold_document(load("vercel_v6/ai-streamText.json"))[1]

    # startTime [1770132000, 594000000], endTime [1770132005, 986741708]
    assert trace["timestamp"] == pytest.approx(1770132000.594)
    assert trace["end_time"] == pytest.approx(1770132005.986741708)
    assert trace["latency_ms"] == pytest.approx(5392.742, abs=0.01)
    assert "flags" not in trace["metadata"]


@needs_data
def test_vercel_multi_turn_keeps_system_prompt_and_history():
    first, second = fold_document(load("vercel_v6/ai-generateText-doGenerate.json"))[1]

    expected = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 equals 4."},
        {"role": "user", "content": "And what is 3 + 3?"},
    ]
    assert second["messages"] == expected
    assert second["output"] == "3 + 3 equals 6."
    assert second["system_prompt_hash"] is not None
    assert first["system_prompt_hash"] is None
    assert second["metadata"]["telemetry_metadata"] == {"testCategory": "multi-turn-conversation"}


@needs_data
def test_capture_summary_is_not_claimed():
    document = load("vercel_v6/capture-results.json")

    assert not openinference.detect(document)
    assert not openinference.detect_attributes(document)
    assert openinference.to_spans(document) == []
    assert openinference.attributes_to_spans(document) == []


@needs_data
def test_every_fixture_file_yields_a_trace():
    for path in sorted(TRACES.rglob("*.json")):
        if path.name == "capture-results.json":
            continue
        _, traces = fold_document(json.loads(path.read_text(encoding="utf-8")))
        assert traces, path.name


# --- the project's own fixtures: the same checks, every checkout ----------------------------

MUSEUM_CHAT = ("gpt-4.1-mini-2025-04-14", "What time does the Lisbon museum open?", ["opening_hours"], 64, 18)
PROJECT_GENAI_EXPECTED = {
    # file: (model, user_query, tool names, input_tokens, output_tokens)
    "openinference-flat-tool-calls.json": MUSEUM_CHAT,
    "otel-genai-current.json": MUSEUM_CHAT,
    "otel-genai-deprecated.json": MUSEUM_CHAT,
    "otel-genai-tool-execution.json": (None, None, ["opening_hours"], None, None),
}
MUSEUM_TOOL = [
    {"name": "opening_hours", "arguments": {"museum": "MAAT"}, "result": "10:00-19:00, closed Tuesdays"}
]


@pytest.mark.parametrize("name", sorted(PROJECT_GENAI_EXPECTED))
def test_project_bare_attribute_files(name):
    document = load(f"genai/{name}", FIXTURES)
    dialect, (trace,) = fold_document(document)

    result = (trace["model"], trace["user_query"], [call["name"] for call in trace["tool_calls"]],
              trace["input_tokens"], trace["output_tokens"])
    assert dialect == "genai_attributes"
    assert result == PROJECT_GENAI_EXPECTED[name]
    # no trace id or time in a bare attribute dict: a stable derived id, no timestamp
    assert trace["trace_id"].startswith("derived-")
    assert trace["trace_id"] == fold_document(document)[1][0]["trace_id"]
    assert trace["timestamp"] is None
    assert trace["metadata"]["flags"] == [reasons.TRACE_ID_DERIVED, reasons.TIMESTAMP_INFERRED]


@pytest.mark.parametrize("name", sorted(set(PROJECT_GENAI_EXPECTED) - {"otel-genai-tool-execution.json"}))
def test_project_chat_files_give_history_output_and_paired_tool_call(name):
    (trace,) = fold_document(load(f"genai/{name}", FIXTURES))[1]

    assert [m["role"] for m in trace["messages"]] == ["user", "assistant", "tool"]
    assert trace["output"] == "The MAAT in Lisbon opens at 10:00 and is closed on Tuesdays."
    assert trace["tool_calls"] == MUSEUM_TOOL


def test_project_tool_execution_span_keeps_arguments_and_result():
    (trace,) = fold_document(load("genai/otel-genai-tool-execution.json", FIXTURES))[1]

    assert trace["tool_calls"] == [{"name": "opening_hours", "arguments": {"museum": "MAAT"},
                                    "result": {"status": "ok", "hours": "10:00-19:00, closed Tuesdays"}}]
    assert trace["messages"] == []


PROJECT_VERCEL_EXPECTED = {
    # file: [(trace_id, model, user_query, input_tokens, output_tokens), ...] in file order
    "ai-generateText-doGenerate.json": [
        ("1e2d3c4b5a69788796a5b4c3d2e1f0a9", "gpt-4o-mini-2024-07-18", "Name a fruit.", 9, 3),
        ("2f3e4d5c6b7a89988a7b6c5d4e3f2a1b", "gpt-4o-mini-2024-07-18", "And a vegetable?", 31, 3),
    ],
    # an embedding: a model call with tokens but no chat
    "ai-embed.json": [("3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9", "text-embedding-3-small", None, 2, None)],
}


@pytest.mark.parametrize("name", sorted(PROJECT_VERCEL_EXPECTED))
def test_project_vercel_span_files(name):
    dialect, traces = fold_document(load(f"vercel/{name}", FIXTURES))

    result = [(t["trace_id"], t["model"], t["user_query"], t["input_tokens"], t["output_tokens"])
              for t in traces]
    assert dialect == "openinference"
    assert result == PROJECT_VERCEL_EXPECTED[name]


def test_project_vercel_collection_gives_one_trace_per_trace_id():
    spans = [s for name in sorted(PROJECT_VERCEL_EXPECTED) for s in load(f"vercel/{name}", FIXTURES)]

    _, traces = fold_document(spans)

    assert sorted(t["trace_id"] for t in traces) == sorted(
        tid for rows in PROJECT_VERCEL_EXPECTED.values() for tid, *_ in rows)


def test_project_vercel_times_multi_turn_history_and_telemetry_metadata():
    first, second = fold_document(load("vercel/ai-generateText-doGenerate.json", FIXTURES))[1]

    # startTime [1767690000, 100000000], endTime [1767690001, 350000000]: epoch seconds
    assert first["timestamp"] == pytest.approx(1767690000.1)
    assert first["end_time"] == pytest.approx(1767690001.35)
    assert first["latency_ms"] == pytest.approx(1250.0)
    assert "flags" not in first["metadata"]
    assert second["messages"] == [
        {"role": "system", "content": "Answer in two words."},
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "A pear."},
        {"role": "user", "content": "And a vegetable?"},
    ]
    assert second["output"] == "A leek."
    assert second["system_prompt_hash"] is not None and first["system_prompt_hash"] is None
    assert second["metadata"]["telemetry_metadata"] == {"category": "multi-turn"}


def test_project_capture_summary_is_not_claimed():
    document = load("vercel/capture-results.json", FIXTURES)

    assert not openinference.detect(document)
    assert not openinference.detect_attributes(document)
    assert openinference.to_spans(document) == []
    assert openinference.attributes_to_spans(document) == []


def test_every_project_fixture_file_yields_a_trace():
    paths = sorted(p for p in FIXTURES.rglob("*.json") if p.name != "capture-results.json")
    assert len(paths) == 6
    for path in paths:
        _, traces = fold_document(json.loads(path.read_text(encoding="utf-8")))
        assert traces, path.name


# --- inline: Phoenix-style export with nested attributes ------------------------------------


def phoenix_spans():
    trace_id = "2f9d1c0a7e6b4d3c8a1b0c9d8e7f6a5b"
    context = lambda span_id: {"trace_id": trace_id, "span_id": span_id}  # noqa: E731
    return [
        {
            "name": "RAG query",
            "context": context("s1"),
            "parent_id": None,
            "span_kind": "CHAIN",
            "start_time": "2026-01-05T10:00:00.000000+00:00",
            "end_time": "2026-01-05T10:00:01.500000+00:00",
            "status_code": "OK",
            "attributes": {"session": {"id": "sess-1"}, "user": {"id": "u-1"}, "input": {"value": "refund?"}},
        },
        {
            "name": "retrieve",
            "context": context("s2"),
            "parent_id": "s1",
            "span_kind": "RETRIEVER",
            "start_time": "2026-01-05T10:00:00.100000+00:00",
            "end_time": "2026-01-05T10:00:00.200000+00:00",
            "attributes": {
                "retrieval": {
                    "documents": [
                        {"document": {"id": "policy-3", "content": "Refunds within 30 days.", "score": 0.87}},
                    ]
                }
            },
        },
        {
            "name": "ChatOpenAI",
            "context": context("s3"),
            "parent_id": "s1",
            "span_kind": "LLM",
            "start_time": "2026-01-05T10:00:00.300000+00:00",
            "end_time": "2026-01-05T10:00:01.400000+00:00",
            "status_code": "ERROR",
            "status_message": "openai.APITimeoutError: Request timed out.",
            "attributes": {
                "llm": {
                    "model_name": "gpt-4o-mini",
                    "prompt_template": {"template": "Context: {context}\nQ: {question}", "version": "v3"},
                    "input_messages": [
                        {"message": {"role": "system", "content": "Answer from the context."}},
                        {"message": {"role": "user", "content": "Can I get a refund?"}},
                    ],
                    "token_count": {"prompt": 80, "completion": 0},
                }
            },
        },
    ]


def test_phoenix_nested_export_folds_with_retrieval_template_and_error():
    dialect, traces = fold_document(phoenix_spans())

    (trace,) = traces
    assert dialect == "openinference"
    assert trace["trace_id"] == "2f9d1c0a7e6b4d3c8a1b0c9d8e7f6a5b"
    assert (trace["session_id"], trace["user_id"]) == ("sess-1", "u-1")
    expected_docs = [{"doc_id": "policy-3", "text": "Refunds within 30 days.", "score": 0.87}]
    assert trace["retrieved_context"] == expected_docs
    assert trace["prompt_template_id"] == "v3"
    assert trace["user_query"] == "Can I get a refund?"
    assert (trace["status"], trace["error_type"]) == ("error", "openai.APITimeoutError: Request timed out.")
    assert trace["timestamp"] == "2026-01-05T10:00:00.000000+00:00"
    assert trace["latency_ms"] == 1500.0
    assert trace["metadata"]["span_count"] == 3


def test_flattened_openinference_tool_calls_in_output_messages():
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Book a table for 2",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "book_table",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"people": 2}',
    }
    span = {"name": "llm", "context": {"trace_id": "t", "span_id": "s"}, "attributes": attributes}

    (trace,) = fold_document([span])[1]

    assert trace["tool_calls"] == [{"name": "book_table", "arguments": {"people": 2}, "result": None}]
    assert trace["output"] is None


def test_span_without_trace_id_gets_a_derived_one():
    span = {"name": "llm", "attributes": {"openinference.span.kind": "LLM", "input.value": "hello"}}

    (trace,) = fold_document([span])[1]

    assert trace["trace_id"].startswith("derived-")
    assert trace["user_query"] == "hello"
    assert reasons.TRACE_ID_DERIVED in trace["metadata"]["flags"]


@pytest.mark.parametrize(
    "document",
    [
        {"post": [{"id": "r1", "run_type": "llm"}]},  # LangSmith
        {"trace": {"id": "t"}, "observations": [{"id": "o", "traceId": "t", "type": "GENERATION"}]},
        {"resourceSpans": []},  # OTLP
        {"trace_id": "t1", "timestamp": "2026-01-01T00:00:00Z", "messages": []},  # canonical
        {"captureDate": "2026-02-03T15:20:07.289Z", "results": [{"name": "embed", "success": True}]},
        [],
        "text",
    ],
)
def test_other_documents_are_not_claimed(document):
    assert not openinference.detect(document)
    assert not openinference.detect_attributes(document)


def test_trace_without_llm_span_takes_the_query_from_the_root_input():
    spans = phoenix_spans()[:2]  # the CHAIN root and its RETRIEVER, no LLM call

    (trace,) = fold_document(spans)[1]

    assert trace["user_query"] == "refund?"
    assert trace["model"] is None
    assert len(trace["retrieved_context"]) == 1
