"""Langfuse trace exports -> canonical traces, and per-observation ChatML against Langfuse's own.

The fixtures in ../shared/data/traces/langfuse are 21 real exports (``*.trace.json``), each with
``*.chatml.json`` beside it: what Langfuse's TypeScript ChatML normaliser made of every
observation's input and output. Our Python normaliser must reproduce those messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow.lib.ingest.dialects import DialectError, detect_dialect, langfuse
from evalflow.lib.ingest.dialects.messages import to_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGFUSE = DATA / "traces" / "langfuse"
needs_data = pytest.mark.skipif(
    not LANGFUSE.is_dir(), reason=f"shared Langfuse fixtures not found at {LANGFUSE}"
)

# (file, observation id, side) pairs whose ground truth we knowingly do not reproduce, with the
# reason. Empty: every ChatML message in the fixtures matches.
KNOWN_DIFFERENCES: dict[tuple[str, str, str], str] = {}


def trace_files() -> list[str]:
    return sorted(p.name for p in LANGFUSE.glob("*.trace.json")) if LANGFUSE.is_dir() else []


def load(name: str):
    return json.loads((LANGFUSE / name).read_text(encoding="utf-8"))


def ground_truth(trace_name: str) -> dict:
    return load(trace_name.replace(".trace.json", ".chatml.json"))


def observations_by_id(document: dict) -> dict[str, dict]:
    return {o["id"]: o for o in document["observations"]}


# --- 1. every export folds into a usable canonical trace ------------------------------------


@needs_data
@pytest.mark.parametrize("name", trace_files())
def test_every_export_gives_a_canonical_trace(name):
    document = load(name)
    assert langfuse.detect(document)
    assert detect_dialect(document).name == "langfuse"
    traces = langfuse.to_traces(document)
    assert len(traces) == 1
    trace = traces[0]
    assert trace["trace_id"] == document["trace"]["id"]
    assert trace["timestamp"] == document["trace"]["timestamp"]
    assert trace["status"] in ("ok", "error")
    assert trace["metadata"]["dialect"] == "langfuse"
    assert trace["metadata"]["framework"]
    assert trace["metadata"]["observation_count"] == len(document["observations"])
    generations = [o for o in document["observations"] if o["type"] == "GENERATION"]
    if generations:
        assert trace["model"], "a trace with generations names its model"
        assert trace["messages"], "a trace with generations carries its conversation"
        assert trace["input_tokens"] is not None
        for message in trace["messages"]:
            assert set(message) <= {"role", "content", "name", "tool_calls", "tool_call_id"}
            assert message["role"] in ("system", "developer", "user", "assistant", "tool")
            assert message["content"] is None or isinstance(message["content"], str)
    json.dumps(trace)  # the row must stay JSON-serialisable


# --- 2. per-observation messages match Langfuse's ChatML normaliser -------------------------


def _comparable(message: dict) -> tuple:
    """What the comparison looks at: role, flattened text, and tool-call names."""
    calls = message.get("tool_calls") or []
    return message.get("role"), to_text(message.get("content")), [c.get("name") for c in calls]


def _compare_file(name: str) -> tuple[int, int, list[str]]:
    """(messages matched, messages expected, descriptions of mismatches) for one export."""
    observations = observations_by_id(load(name))
    matched = total = 0
    problems: list[str] = []
    for obs_id, sides in ground_truth(name).items():
        ours = langfuse.observation_messages(observations[obs_id])
        for side, expected in sides.items():
            if not expected["success"] or (name, obs_id, side) in KNOWN_DIFFERENCES:
                continue
            got = ours[side] or []
            total += len(expected["data"])
            for index, want in enumerate(expected["data"]):
                have = got[index] if index < len(got) else None
                if have is not None and _comparable(have) == _comparable(want):
                    matched += 1
                else:
                    problems.append(f"{obs_id} {side}[{index}]: want {_comparable(want)!r:.160}"
                                    f" got {None if have is None else _comparable(have)!r:.160}")
            if len(got) != len(expected["data"]):
                problems.append(f"{obs_id} {side}: {len(got)} messages, want "
                                f"{len(expected['data'])}")
    return matched, total, problems


@needs_data
@pytest.mark.parametrize("name", trace_files())
def test_observation_messages_match_langfuse_chatml(name):
    matched, total, problems = _compare_file(name)
    assert not problems, "\n".join(problems)
    assert matched == total


@needs_data
@pytest.mark.parametrize("name", trace_files())
def test_observations_langfuse_cannot_read_do_not_raise(name):
    observations = observations_by_id(load(name))
    for obs_id, sides in ground_truth(name).items():
        result = langfuse.observation_messages(observations[obs_id])
        assert set(result) == {"input", "output"}
        for side, expected in sides.items():
            if not expected["success"]:
                assert result[side] is None or isinstance(result[side], list)


@needs_data
def test_overall_match_rate_is_complete():
    matched = total = 0
    for name in trace_files():
        file_matched, file_total, _ = _compare_file(name)
        matched, total = matched + file_matched, total + file_total
    assert total >= 190  # the fixtures hold 196 messages where Langfuse succeeded
    assert matched == total, f"{matched}/{total} messages match"


@needs_data
@pytest.mark.parametrize("name", trace_files())
def test_normaliser_output_is_structurally_identical(name):
    """Stricter than the brief: every field Langfuse emits (json extras, tool definitions,
    tool-call ids and arguments) comes out the same, so the port is exact, not approximate."""
    from evalflow.lib.ingest.dialects import chatml

    observations = observations_by_id(load(name))
    for obs_id, sides in ground_truth(name).items():
        obs = observations[obs_id]
        metadata = chatml.deep_parse_json(obs.get("metadata"))
        for side, expected in sides.items():
            normalise = (chatml.chatml_input_messages if side == "input"
                         else chatml.chatml_output_messages)
            got = normalise(chatml.deep_parse_json(obs[side]), metadata, obs.get("name"))
            if expected["success"]:
                assert got == expected["data"], (obs_id, side)
            else:
                assert got is None, (obs_id, side)


# --- 3. one known trace, values worked out by hand from the export ---------------------------


@needs_data
def test_pydantic_ai_tools_trace_values():
    trace = langfuse.to_traces(load("pydantic-ai-tools-2025-12-04.trace.json"))[0]
    assert trace["trace_id"] == "7a38edd8123db47ad8dcb8aa4c5e3926"
    assert trace["app"] == "joke-generator"
    assert trace["model"] == "gpt-4o-mini-2024-07-18"
    assert trace["user_query"] == (
        "Now write a funny joke about 'programming' based on the suggestions you received. "
        "Just output the joke, nothing else."
    )
    assert trace["output"] == "Why do programmers hate nature?  \nIt has too many bugs!"
    # the three TOOL observations, in start order, with their parsed arguments and results
    assert [c["name"] for c in trace["tool_calls"]] == [
        "get_pun_suggestion", "get_dad_joke_suggestion", "get_one_liner_suggestion",
    ]
    assert all(c["arguments"] == {"topic": "programming"} for c in trace["tool_calls"])
    assert trace["tool_calls"][0]["result"].startswith("Pun idea:")
    # four generations: usageDetails input 265+417+502+131, output 73+53+14+69
    assert trace["input_tokens"] == 1315
    assert trace["output_tokens"] == 209
    # costDetails.total 8.355e-05 + 9.435e-05 + 8.37e-05 + 6.1049999e-05
    assert trace["cost_usd"] == pytest.approx(0.000322649999)
    assert trace["latency_ms"] == pytest.approx(7424.0)
    assert trace["metadata"]["framework"] == "pydantic-ai"
    assert trace["metadata"]["tags"] == ["example", "joke-generator"]
    assert trace["tool_schema_hash"] and trace["system_prompt_hash"]
    # what the final generation saw; its answer is only in output (canonical convention)
    roles = [m["role"] for m in trace["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "tool", "assistant", "user"]
    assert trace["output"] not in [m["content"] for m in trace["messages"]]
    requested = [c["name"] for c in trace["messages"][2]["tool_calls"]]
    assert requested == [c["name"] for c in trace["tool_calls"]]


@needs_data
def test_framework_quirks_get_canonical_roles():
    """Conversations come out in canonical roles whatever the framework wrote."""
    by_name = {n: langfuse.to_traces(load(n))[0] for n in (
        "google-adk-2025-08-28.trace.json",       # Gemini function response sent as role user
        "koog-2025-08-26.trace.json",             # tool calls logged as role tool text
        "microsoft-agent-2025-12-17.trace.json",  # generations log only the new turn
        "claude-agent-2025-12-22.trace.json",     # generation inputs are not chat-shaped
    )}
    adk = by_name["google-adk-2025-08-28.trace.json"]
    assert adk["user_query"] == "hi"
    assert [m["role"] for m in adk["messages"]] == ["system", "user", "assistant", "tool"]
    assert adk["output"]  # the final answer, kept out of messages
    koog = by_name["koog-2025-08-26.trace.json"]
    assert [c["name"] for m in koog["messages"] for c in m.get("tool_calls", [])] == [
        "HelloTool", "ByeTool"]
    assert koog["metadata"]["framework"] == "koog"
    agent = by_name["microsoft-agent-2025-12-17.trace.json"]
    assert agent["user_query"] == "What's the weather in Tokyo?"
    assert agent["output"].startswith("Current conditions in Tokyo")
    claude = by_name["claude-agent-2025-12-22.trace.json"]
    assert claude["user_query"] == "What's the weather like in Berlin and New York?"
    assert [c["name"] for c in claude["tool_calls"]] == ["mcp__weather__get_weather"] * 2


# --- detection and errors (no fixtures needed) -----------------------------------------------


def test_detect_accepts_exports_and_bare_observation_lists_only():
    assert langfuse.detect({"trace": {"id": "t1"}, "observations": []})
    assert not langfuse.detect({"trace": {"name": "no id"}, "observations": []})
    assert not langfuse.detect({"abc123": {"input": {"success": True, "data": []}}})  # chatml GT
    assert not langfuse.detect([])
    observation = {"id": "o1", "traceId": "t1", "type": "GENERATION",
                   "startTime": "2025-01-01T00:00:00Z", "model": "m",
                   "input": json.dumps([{"role": "user", "content": "hi"}]),
                   "output": json.dumps({"role": "assistant", "content": "hello"})}
    assert langfuse.detect([observation])
    [trace] = langfuse.to_traces([observation])
    assert trace["trace_id"] == "t1" and trace["timestamp"] == "2025-01-01T00:00:00Z"
    assert trace["user_query"] == "hi" and trace["output"] == "hello" and trace["model"] == "m"
    assert trace["messages"] == [{"role": "user", "content": "hi"}]  # the answer: output only


def test_error_level_sets_status_and_truncated_error_type():
    document = {
        "trace": {"id": "t1", "timestamp": "2025-01-01T00:00:00Z"},
        "observations": [{"id": "o1", "traceId": "t1", "type": "SPAN", "level": "ERROR",
                          "startTime": "2025-01-01T00:00:00Z", "statusMessage": "x" * 500}],
    }
    [trace] = langfuse.to_traces(document)
    assert trace["status"] == "error"
    assert trace["error_type"] == "x" * 200


def test_unusable_export_raises_adapter_error():
    with pytest.raises(DialectError) as error:
        langfuse.to_traces({"trace": {"id": None}, "observations": []})
    assert error.value.reason == "adapter_error"
    with pytest.raises(DialectError):
        langfuse.to_traces({"trace": {"id": "t1"}, "observations": "not a list"})


def test_feedback_comes_from_human_scores_only():
    scores = [
        {"name": "toxicity", "value": 0.8, "source": "EVAL", "dataType": "NUMERIC"},
        {"name": "user-feedback", "value": 0, "source": "API", "dataType": "BOOLEAN",
         "comment": "wrong refund window"},
    ]
    document = {"trace": {"id": "t1", "timestamp": "2025-01-01T00:00:00Z", "scores": scores},
                "observations": []}
    [trace] = langfuse.to_traces(document)
    assert trace["feedback"] == {"thumbs": "down", "score": 0.0, "comment": "wrong refund window"}
    assert [s["name"] for s in trace["metadata"]["scores"]] == ["toxicity", "user-feedback"]
    document["trace"]["scores"] = scores[:1]  # an LLM judge's score is not user feedback
    assert langfuse.to_traces(document)[0]["feedback"] is None


def test_retriever_observations_become_retrieved_context():
    retriever = {"id": "r1", "traceId": "t1", "type": "RETRIEVER", "name": "search",
                 "startTime": "2025-01-01T00:00:00Z",
                 "output": json.dumps({"documents": [
                     {"id": "kb-7", "page_content": "Refunds within 30 days.", "score": 0.91},
                     {"metadata": {"source": "faq.md"}, "text": "Shipping is free."},
                 ]})}
    [trace] = langfuse.to_traces({"trace": {"id": "t1"}, "observations": [retriever]})
    assert trace["retrieved_context"] == [
        {"doc_id": "kb-7", "text": "Refunds within 30 days.", "score": 0.91},
        {"doc_id": "faq.md", "text": "Shipping is free.", "score": None},
    ]
    assert trace["timestamp"] == "2025-01-01T00:00:00Z"  # no trace timestamp: earliest start


def _generation(obs_id, start, messages, output, **fields):
    return {"id": obs_id, "traceId": "t1", "type": "GENERATION", "name": "chat", "model": "m",
            "startTime": start, "endTime": start, "input": json.dumps(messages),
            "output": None if output is None else json.dumps(output), **fields}


def test_trace_metadata_is_merged_without_clobbering_the_adapters_keys():
    document = {
        "trace": {"id": "t1", "timestamp": "2025-01-01T00:00:00Z", "environment": "production",
                  "metadata": {
                      "channel": "ios", "turn": 2, "customer_email": "ana@example.com",
                      "environment": "staging",  # collides with the adapter's own key
                      # Langfuse's OTel envelope: telemetry, only app.* attributes are taken
                      "attributes": {"app.locale": "en-GB", "input.value": "the whole payload"},
                      "resourceAttributes": {"service.name": "bot"},
                      "scope": {"name": "langfuse-sdk"},
                  }},
        "observations": [],
    }
    [trace] = langfuse.to_traces(document)
    metadata = trace["metadata"]
    assert {k: metadata[k] for k in ("channel", "turn", "customer_email", "locale")} == {
        "channel": "ios", "turn": 2, "customer_email": "ana@example.com", "locale": "en-GB"}
    assert metadata["dialect"] == "langfuse" and metadata["framework"] == "langfuse-sdk"
    assert metadata["environment"] == "production"
    assert metadata["trace.metadata.environment"] == "staging"
    assert not {"attributes", "resourceAttributes", "scope"} & metadata.keys()
    document["trace"]["metadata"] = json.dumps({"channel": "web"})  # stored as JSON text
    assert langfuse.to_traces(document)[0]["metadata"]["channel"] == "web"


def test_error_type_attribute_wins_over_the_status_message():
    failed = _generation("g1", "2025-01-01T00:00:01Z", [{"role": "user", "content": "hi"}], None,
                         level="ERROR", statusMessage="Rate limit reached for m",
                         metadata={"attributes": {"error.type": "RateLimitError"}})
    [trace] = langfuse.to_traces({"trace": {"id": "t1"}, "observations": [failed]})
    assert (trace["status"], trace["error_type"]) == ("error", "RateLimitError")
    assert trace["metadata"]["error_message"] == "Rate limit reached for m"


def test_a_failed_turn_has_no_output_even_with_earlier_answers_in_its_history():
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
               {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"}]
    failed = _generation("g1", "2025-01-01T00:00:01Z", history, None, level="ERROR",
                         statusMessage="timeout")
    [trace] = langfuse.to_traces({"trace": {"id": "t1"}, "observations": [failed]})
    assert trace["output"] is None  # "hello" answered an earlier turn
    assert trace["messages"] == history and trace["user_query"] == "and?"


def test_tool_schema_hash_reads_openai_tool_definitions():
    def trace_with(tools):
        generation = _generation("g1", "2025-01-01T00:00:01Z", [{"role": "user", "content": "hi"}],
                                 {"role": "assistant", "content": "hello"}, toolDefinitions=tools)
        return langfuse.to_traces({"trace": {"id": "t1"}, "observations": [generation]})[0]

    def tool(name, description):
        return {"type": "function", "function": {"name": name, "description": description,
                                                 "parameters": {"type": "object"}}}

    first = trace_with([tool("a", "A"), tool("b", "B")])
    assert first["tool_schema_hash"] == trace_with([tool("b", "B"), tool("a", "A")])["tool_schema_hash"]
    assert first["tool_schema_hash"] != trace_with([tool("a", "A"), tool("b", "other")])["tool_schema_hash"]


def test_chatml_package_imports_run_one_way():
    """Adapters import only types/helpers/js (never each other, never core), as upstream's do."""
    import ast

    from evalflow.lib.ingest.dialects import chatml

    package = Path(chatml.__file__).parent
    allowed = {"types", "helpers", "js"}
    for path in sorted((package / "adapters").glob("*.py")):
        if path.name == "__init__.py":
            continue
        imported = {node.module.removeprefix(chatml.__name__ + ".")
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith(chatml.__name__)}
        assert imported <= allowed, (path.name, imported - allowed)
