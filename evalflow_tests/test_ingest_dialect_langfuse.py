"""Langfuse trace exports -> canonical traces, and per-observation ChatML against Langfuse's own.

Two sets of exports, each ``*.trace.json`` with ``*.chatml.json`` beside it (what Langfuse's
TypeScript ChatML normaliser makes of every observation's input and output; our Python
normaliser must reproduce those messages):

- evalflow_tests/fixtures/traces/langfuse: small exports the project wrote itself, modelled on
  the framework shapes (Pydantic AI, Google ADK, Koog, Microsoft Agent Framework, Claude Agent
  SDK) with invented values; their ChatML is upstream's behaviour worked through by hand;
- ../shared/data/traces/langfuse: 21 real exports with the ChatML Langfuse itself recorded
  (third-party data beside the checkout; see conftest.py for when its absence skips or fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow.lib.ingest.dialects import DialectError, detect_dialect, langfuse
from evalflow.lib.ingest.dialects.messages import to_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "traces" / "langfuse"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGFUSE = DATA / "traces" / "langfuse"
needs_data = pytest.mark.shared_data("traces/langfuse")

# (file, observation id, side) pairs whose ground truth we knowingly do not reproduce, with the
# reason. Empty: every ChatML message in the fixtures matches.
KNOWN_DIFFERENCES: dict[tuple[str, str, str], str] = {}


def trace_files(directory: Path = LANGFUSE) -> list[str]:
    return sorted(p.name for p in directory.glob("*.trace.json")) if directory.is_dir() else []


def exports() -> list:
    """Every export, the project's first; without ../shared one placeholder stands for the
    shared ones, so their absence shows as a skip (or a failure under CI) rather than nothing."""
    project = [pytest.param(FIXTURES / n, id=f"project/{n}") for n in trace_files(FIXTURES)]
    shared = [pytest.param(LANGFUSE / n, id=f"shared/{n}", marks=needs_data)
              for n in trace_files(LANGFUSE)]
    return project + (shared or [pytest.param(LANGFUSE, id="shared", marks=needs_data)])


def load(name: str | Path):
    path = name if isinstance(name, Path) else LANGFUSE / name
    return json.loads(path.read_text(encoding="utf-8"))


def ground_truth(trace_path: str | Path) -> dict:
    path = trace_path if isinstance(trace_path, Path) else LANGFUSE / trace_path
    return load(path.with_name(path.name.replace(".trace.json", ".chatml.json")))


def observations_by_id(document: dict) -> dict[str, dict]:
    return {o["id"]: o for o in document["observations"]}


# --- 1. every export folds into a usable canonical trace ------------------------------------


@pytest.mark.parametrize("path", exports())
def test_every_export_gives_a_canonical_trace(path):
    document = load(path)
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


def _compare_file(path: str | Path) -> tuple[int, int, list[str]]:
    """(messages matched, messages expected, descriptions of mismatches) for one export."""
    observations = observations_by_id(load(path))
    name = path.name if isinstance(path, Path) else path
    matched = total = 0
    problems: list[str] = []
    for obs_id, sides in ground_truth(path).items():
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


@pytest.mark.parametrize("path", exports())
def test_observation_messages_match_langfuse_chatml(path):
    matched, total, problems = _compare_file(path)
    assert not problems, "\n".join(problems)
    assert matched == total


@pytest.mark.parametrize("path", exports())
def test_observations_langfuse_cannot_read_do_not_raise(path):
    observations = observations_by_id(load(path))
    for obs_id, sides in ground_truth(path).items():
        result = langfuse.observation_messages(observations[obs_id])
        assert set(result) == {"input", "output"}
        for side, expected in sides.items():
            if not expected["success"]:
                assert result[side] is None or isinstance(result[side], list)


@pytest.mark.parametrize(("directory", "at_least"), [
    pytest.param(FIXTURES, 45, id="project"),  # 45 messages where upstream succeeds
    pytest.param(LANGFUSE, 190, id="shared", marks=needs_data),  # 196 where Langfuse succeeded
])
def test_overall_match_rate_is_complete(directory, at_least):
    matched = total = 0
    for name in trace_files(directory):
        file_matched, file_total, _ = _compare_file(directory / name)
        matched, total = matched + file_matched, total + file_total
    assert total >= at_least
    assert matched == total, f"{matched}/{total} messages match"


@pytest.mark.parametrize("path", exports())
def test_normaliser_output_is_structurally_identical(path):
    """Stricter than the brief: every field Langfuse emits (json extras, tool definitions,
    tool-call ids and arguments) comes out the same, so the port is exact, not approximate."""
    from evalflow.lib.ingest.dialects import chatml

    observations = observations_by_id(load(path))
    for obs_id, sides in ground_truth(path).items():
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


def test_project_pydantic_ai_trace_values():
    """The same checks on the project's own Pydantic AI export, values worked out by hand."""
    trace = langfuse.to_traces(load(FIXTURES / "pydantic-ai-dice.trace.json"))[0]
    assert trace["trace_id"] == "5f0c1e7a9b2d4c6e8f1a3b5c7d9e0f12"
    assert trace["app"] == "dice-table"
    assert trace["model"] == "gpt-4o-mini-2024-07-18"
    assert trace["user_query"] == "Roll two dice for me."
    # no trace-level output: the final generation's answer
    assert trace["output"] == "You rolled 3 and 5: 8 in total."
    assert trace["tool_calls"] == [{"name": "roll_dice", "arguments": {"n": 2}, "result": "3 and 5"}]
    # two generations: usageDetails input 120+161, output 22+14
    assert (trace["input_tokens"], trace["output_tokens"]) == (281, 36)
    # costDetails.total 3.12e-05 + 3.255e-05
    assert trace["cost_usd"] == pytest.approx(0.00006375)
    assert trace["latency_ms"] == pytest.approx(3250.0)  # trace latency 3.25 s
    assert trace["metadata"]["framework"] == "pydantic-ai"
    assert trace["metadata"]["tags"] == ["example", "dice"]
    assert trace["metadata"]["main_observation_id"] == "d1000000000000d1"
    assert trace["tool_schema_hash"] and trace["system_prompt_hash"]
    # what the final generation saw; its answer is only in output
    assert [m["role"] for m in trace["messages"]] == ["system", "user", "assistant", "tool"]
    assert trace["messages"][2]["tool_calls"][0]["name"] == "roll_dice"
    assert trace["messages"][3] == {"role": "tool", "content": "3 and 5", "tool_call_id": "call_d1"}


def test_project_framework_quirks_get_canonical_roles():
    """The framework quirks above, on the project's own exports of the same shapes."""
    by_name = {n: langfuse.to_traces(load(FIXTURES / f"{n}.trace.json"))[0] for n in (
        "google-adk-units",           # Gemini function response sent as role user
        "koog-greeter",               # tool calls logged as role tool text
        "microsoft-agent-concierge",  # generations log only the new turn
        "claude-agent-trains",        # generation inputs are not chat-shaped
    )}
    adk = by_name["google-adk-units"]
    assert adk["user_query"] == "How many km is 5 miles?"
    assert [m["role"] for m in adk["messages"]] == ["system", "user", "assistant", "tool"]
    assert adk["messages"][3]["name"] == "convert"  # the function response, named by its call
    assert adk["output"] == "5 miles is about 8.05 km."
    assert adk["metadata"]["framework"] == "google-adk"
    koog = by_name["koog-greeter"]
    assert [c["name"] for m in koog["messages"] for c in m.get("tool_calls", [])] == [
        "WelcomeTool", "StayTool"]
    assert [m["role"] for m in koog["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool"]
    assert koog["metadata"]["framework"] == "koog"  # despite its langgraph_node metadata
    agent = by_name["microsoft-agent-concierge"]
    assert agent["metadata"]["main_observation_id"] == "a4000000000000a4"  # the agent span
    assert agent["user_query"] == "Book a table for two at 19:30."
    assert [m["role"] for m in agent["messages"]] == ["system", "user", "assistant", "tool"]
    assert agent["output"] == "Done: table 7 for two at 19:30."
    claude = by_name["claude-agent-trains"]
    assert claude["user_query"] == "When do the next trains leave Ghent and Bruges?"
    assert claude["messages"][0] == {"role": "system", "content": "You are a rail travel assistant."}
    assert claude["output"] == "Ghent: 07:12. Bruges: 07:20."
    assert [c["name"] for c in claude["tool_calls"]] == ["mcp__trains__next_departure"] * 2


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
