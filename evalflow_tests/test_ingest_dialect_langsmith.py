"""LangSmith run payloads (post + patch, run lists, single runs) -> canonical traces.

The file checks run on the project's own post/patch payloads (evalflow_tests/fixtures/traces/
langsmith, invented values) and on the langsmith-sdk's recorded ones in ../shared/data (third-party
data beside the checkout; see conftest.py for when its absence skips or fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow.lib.ingest.dialects import langsmith

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "traces" / "langsmith"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRACES = DATA / "traces" / "langsmith"
needs_data = pytest.mark.shared_data("traces/langsmith")

HOWDY = "Howdy! How can I assist you today?"
MATRIX = (
    "Write a bash script that takes a matrix represented as a string with format "
    "'[1,2],[3,4],[5,6]' and prints the transpose in the same format."
)

EXPECTED = {
    # file: (trace_id, model, user_query, input_tokens, output_tokens, raw timestamp)
    "langsmith_js_wrap_openai_default.json": (
        "dc34609e-3eeb-459d-bc2a-6fedb01d2e6e", "gpt-4o-mini-2024-07-18", "howdy", 9, 9, 1728803137170
    ),
    "langsmith_js_wrap_openai_reasoning.json": (
        "e954b8e3-c337-4a05-bf0a-ca2baac3ba48", "o1-mini-2024-09-12", MATRIX, 43, 1901, 1728803138291
    ),
    "langsmith_js_wrap_openai_stream.json": (
        "33c08c32-435c-4788-b973-b5bee4a31f87", "gpt-4o-mini-2024-07-18", "howdy", 9, 9, 1728803135809
    ),
    "langsmith_py_wrap_openai_.json": (
        "d0d84d31-923d-4cb5-94a8-40a0a0087578", "gpt-4o-mini-2024-07-18", "howdy", 9, 9,
        "2024-10-11T20:58:23.298773+00:00",
    ),
    "langsmith_py_wrap_openai_reasoning.json": (
        "a8b34ded-ccd2-4fb7-bccb-9cd625066a14", "o1-mini-2024-09-12", MATRIX, 43, 2497,
        "2024-10-11T20:58:24.544431+00:00",
    ),
    "langsmith_py_wrap_openai_stream.json": (
        "fe8ffecb-72ce-4cd2-bdb7-01f34654c391", "gpt-4o-mini-2024-07-18", "howdy", 9, 9,
        "2024-10-11T20:58:20.695375+00:00",
    ),
    # streamed without stream_options.include_usage: no usage anywhere, tokens unknown
    "langsmith_py_wrap_openai_stream_no_usage.json": (
        "de56b9f0-eed2-4195-8786-c6dc0fa897e3", "gpt-4o-mini-2024-07-18", "howdy", None, None,
        "2024-10-11T20:58:22.254895+00:00",
    ),
}


HELLO = "hello there"
SHELL = "Write a one-line shell command that counts the lines of every .py file."
PROJECT_EXPECTED = {
    # epoch-millisecond times (JS SDK), the patch matched to its post through dotted_order
    "js-wrap-openai.json": (
        "3f2a9c4e-7b1d-4e8a-9f60-1c2d3e4f5a6b", "gpt-4o-mini-2024-07-18", HELLO, 10, 9, 1767600000000
    ),
    # output_tokens as reported: they include the 384 reasoning tokens
    "py-wrap-openai-reasoning.json": (
        "8e1b7d3c-2a4f-4c6e-8d0a-b1c2d3e4f5a6", "o1-mini-2024-09-12", SHELL, 25, 420,
        "2026-01-05T09:00:00.250000+00:00",
    ),
    # streamed without usage: tokens unknown, not zero
    "py-wrap-openai-stream-no-usage.json": (
        "c4d5e6f7-0a1b-4c2d-8e3f-405162738495", "gpt-4o-mini-2024-07-18", HELLO, None, None,
        "2026-01-05T10:00:00+00:00",
    ),
}


def load(name):
    path = name if isinstance(name, Path) else TRACES / name
    return json.loads(path.read_text(encoding="utf-8"))


def fixture_files() -> list:
    project = [pytest.param(FIXTURES / n, PROJECT_EXPECTED[n], id=f"project/{n}")
               for n in sorted(PROJECT_EXPECTED)]
    shared = [pytest.param(TRACES / n, EXPECTED[n], id=f"shared/{n}", marks=needs_data)
              for n in sorted(EXPECTED)]
    return project + shared


@pytest.mark.parametrize(("path", "expected"), fixture_files())
def test_fixture_files(path, expected):
    document = load(path)

    traces = langsmith.to_traces(document)

    (trace,) = traces
    result = (
        trace["trace_id"],
        trace["model"],
        trace["user_query"],
        trace["input_tokens"],
        trace["output_tokens"],
        trace["timestamp"],
    )
    assert langsmith.detect(document)
    assert result == expected
    assert trace["status"] == "ok"
    assert trace["tool_calls"] == [] and trace["retrieved_context"] == []
    assert trace["metadata"]["run_count"] == 1  # post and patch merged into one run


@pytest.mark.parametrize(
    ("path", "question", "answer"),
    [pytest.param(FIXTURES / "js-wrap-openai.json", HELLO, "Hi! What can I do for you?",
                  id="project/js-wrap-openai.json"),
     pytest.param(FIXTURES / "py-wrap-openai-stream-no-usage.json", HELLO, "Hi there!",
                  id="project/py-wrap-openai-stream-no-usage.json")]
    + [pytest.param(TRACES / name, "howdy", HOWDY, id=f"shared/{name}", marks=needs_data) for name in (
        "langsmith_js_wrap_openai_default.json", "langsmith_js_wrap_openai_stream.json",
        "langsmith_py_wrap_openai_stream.json", "langsmith_py_wrap_openai_stream_no_usage.json")],
)
def test_fixture_output_is_the_final_assistant_text(path, question, answer):
    (trace,) = langsmith.to_traces(load(path))

    # messages = what the model saw; the (streamed or aggregated) answer is only in output
    assert trace["messages"] == [{"role": "user", "content": question}]
    assert trace["output"] == answer


@pytest.mark.parametrize(("path", "end_time", "latency_ms"), [
    pytest.param(FIXTURES / "js-wrap-openai.json", 1767600001250, 1250.0, id="project"),
    pytest.param(TRACES / "langsmith_js_wrap_openai_default.json", 1728803138285, 1115.0,
                 id="shared", marks=needs_data),
])
def test_js_patch_without_id_is_merged_through_dotted_order(path, end_time, latency_ms):
    (trace,) = langsmith.to_traces(load(path))

    assert trace["end_time"] == end_time
    assert trace["latency_ms"] == latency_ms


@pytest.mark.parametrize(("path", "latency_ms"), [
    # 09:00:00.250 -> 09:00:04.000
    pytest.param(FIXTURES / "py-wrap-openai-reasoning.json", 3750.0, id="project"),
    # 20:58:23.298773 -> 20:58:24.417106
    pytest.param(TRACES / "langsmith_py_wrap_openai_.json", 1118.333, id="shared", marks=needs_data),
])
def test_py_latency_from_iso_times(path, latency_ms):
    (trace,) = langsmith.to_traces(load(path))

    assert trace["latency_ms"] == pytest.approx(latency_ms)


# --- inline runs ----------------------------------------------------------------------------

TRACE = "0c1f9a2e-0000-4000-8000-000000000001"


def run(run_id, run_type, name, order, parent=None, **fields):
    return {
        "id": run_id,
        "trace_id": TRACE,
        "parent_run_id": parent,
        "run_type": run_type,
        "name": name,
        "dotted_order": order,
        **fields,
    }


def agent_payload():
    root = run(
        TRACE, "chain", "support_agent", "20260105T100000000000Z" + TRACE,
        start_time="2026-01-05T10:00:00+00:00",
        inputs={"question": "Where is order 42?"},
        session_name="support-prod",
        extra={"metadata": {"session_id": "thread-7", "user_id": "u-42"}},
    )
    retriever = run(
        "r-2", "retriever", "kb", root["dotted_order"] + ".20260105T100000100000Zr-2", parent=TRACE,
        inputs={"query": "order 42"},
        outputs={"documents": [
            {
                "page_content": "Orders ship within 2 days.",
                "metadata": {"id": "kb-1", "score": 0.9},
                "type": "Document",
            }
        ]},
    )
    llm = run(
        "r-3", "llm", "ChatOpenAI", root["dotted_order"] + ".20260105T100000200000Zr-3", parent=TRACE,
        inputs={
            "messages": [
                {"role": "system", "content": "You are support."},
                {"role": "user", "content": "Where is order 42?"},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup_order"}}],
        },
        outputs={
            "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"id": 42}'},
                }
            ]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 8},
        },
        extra={"metadata": {"ls_model_name": "gpt-4o-mini", "ls_provider": "openai"}},
    )
    tool = run(
        "r-4", "tool", "lookup_order", root["dotted_order"] + ".20260105T100000300000Zr-4", parent=TRACE,
        inputs={"input": '{"id": 42}'},
    )
    patches = [
        {"id": "r-4", "outputs": {"output": "shipped"}, "end_time": "2026-01-05T10:00:00.400000+00:00"},
        {"id": TRACE, "outputs": {"output": "It shipped."}, "end_time": "2026-01-05T10:00:02+00:00",
         "error": "TimeoutError('downstream slow')\n\nTraceback (most recent call last): ..."},
    ]
    return {"post": [root, retriever, llm, tool], "patch": patches}


def test_agent_trace_folds_children_into_one_trace():
    (trace,) = langsmith.to_traces(agent_payload())

    assert trace["trace_id"] == TRACE
    assert (trace["session_id"], trace["user_id"], trace["app"]) == ("thread-7", "u-42", "support-prod")
    assert trace["user_query"] == "Where is order 42?"
    assert trace["output"] == "It shipped."  # the root's answer: the last LLM call asked for a tool
    assert trace["model"] == "gpt-4o-mini"
    assert (trace["input_tokens"], trace["output_tokens"]) == (30, 8)
    assert trace["latency_ms"] == 2000.0
    assert trace["metadata"]["run_count"] == 4
    assert trace["tool_schema_hash"] is not None
    assert trace["system_prompt_hash"] is not None


def test_tool_runs_become_tool_calls_with_patched_results():
    (trace,) = langsmith.to_traces(agent_payload())

    assert trace["tool_calls"] == [{"name": "lookup_order", "arguments": {"id": 42}, "result": "shipped"}]


def test_retriever_runs_become_retrieved_context():
    (trace,) = langsmith.to_traces(agent_payload())

    expected = [{"doc_id": "kb-1", "text": "Orders ship within 2 days.", "score": 0.9}]
    assert trace["retrieved_context"] == expected


def test_error_in_a_patch_marks_the_trace_failed():
    (trace,) = langsmith.to_traces(agent_payload())

    assert (trace["status"], trace["error_type"]) == ("error", "TimeoutError")


def test_runs_of_two_traces_in_one_batch():
    def ask(text):
        return {"messages": [{"role": "user", "content": text}]}

    first = {**run("a", "llm", "m", "20260105T100000000000Za", inputs=ask("one")), "trace_id": "a"}
    second = {**run("b", "llm", "m", "20260105T100001000000Zb", inputs=ask("two")), "trace_id": "b"}

    result = [(t["trace_id"], t["user_query"]) for t in langsmith.to_traces({"post": [first, second]})]

    assert result == [("a", "one"), ("b", "two")]


def test_bare_list_and_single_run_with_child_runs():
    child = {"id": "c", "run_type": "llm", "name": "ChatAnthropic", "parent_run_id": "p",
             "dotted_order": "20260105T100000000000Zp.20260105T100000000001Zc",
             "inputs": {"messages": [[{"lc": 1, "type": "constructor",
                                       "id": ["langchain", "schema", "messages", "HumanMessage"],
                                       "kwargs": {"content": "bonjour"}}]]},
             "outputs": {"generations": [[{"text": "salut", "message": {
                 "lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
                 "kwargs": {"content": "salut",
                            "usage_metadata": {"input_tokens": 3, "output_tokens": 2}}}}]],
                 "llm_output": {"token_usage": {"prompt_tokens": 3, "completion_tokens": 2}}}}
    parent = {"id": "p", "run_type": "chain", "name": "chain", "start_time": "2026-01-05T10:00:00Z",
              "dotted_order": "20260105T100000000000Zp", "child_runs": [child]}

    (from_single,) = langsmith.to_traces(parent)
    (from_list,) = langsmith.to_traces([parent])

    expected = ("p", "bonjour", "salut", 3, 2)
    for trace in (from_single, from_list):
        assert (trace["trace_id"], trace["user_query"], trace["output"],
                trace["input_tokens"], trace["output_tokens"]) == expected


def test_streamed_tokens_rebuild_the_answer_when_outputs_lack_a_message():
    events = [{"name": "new_token", "kwargs": {"token": {"choices": [{"delta": {"content": piece}}]}}}
              for piece in ("Hel", "lo", "!")]
    streamed = run("s", "llm", "ChatOpenAI", "20260105T100000000000Zs", events=events,
                   inputs={"messages": [{"role": "user", "content": "hi"}]}, outputs={})
    streamed["trace_id"] = "s"

    (trace,) = langsmith.to_traces({"post": [streamed]})

    assert trace["output"] == "Hello!"
    assert trace["input_tokens"] is None


@pytest.mark.parametrize(
    "document",
    [
        {"resourceSpans": []},
        {"trace": {"id": "t"}, "observations": []},
        {"captureDate": "2026-02-03", "results": [{"name": "x", "success": True}]},
        [{"name": "ai.generateText", "spanContext": {"traceId": "t", "spanId": "s"}, "attributes": {}}],
        {"post": []},
        {"trace_id": "t1", "timestamp": "2026-01-01T00:00:00Z", "messages": []},
    ],
)
def test_other_documents_are_not_claimed(document):
    assert not langsmith.detect(document)
    assert langsmith.to_traces(document) == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("ValueError('bad input')", "ValueError"),
        ("openai.RateLimitError: Error code: 429", "openai.RateLimitError"),
        ("something broke\nmore detail", "something broke"),
        ("x" * 500, "x" * 200),
    ],
)
def test_error_type(error, expected):
    assert langsmith.error_type(error) == expected
