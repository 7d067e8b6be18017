"""The same interaction folds to the same canonical values whatever dialect carried it.

The simulator writes each good trace in one of three dialects (canonical JSONL, OTLP JSON,
Langfuse export) and keeps, in ground_truth/expected_canonical.jsonl, the canonical line it
meant for every one of them. Here every landing file goes through `ingest_file`, and every
ingested trace is compared with its intended canonical values, field by field, per dialect:
a failure names the dialect and the field.

Compared with a tolerance, and why:
- cost_usd: float arithmetic (a sum over model calls) may differ in the last bits;
- latency_ms: computed from start/end (nanoseconds, ISO strings) or copied; within 1 ms;
- timestamp / end_time: each dialect writes its own encoding (ISO with "Z" or "+00:00",
  epoch nanoseconds); they must be the same instant once parsed to UTC, to the millisecond
  (the simulator's resolution).
- metadata: the keys the simulator wrote must be there with equal values; adapters may add
  their own keys (dialect, framework, span_count...).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from evalflow.lib.ingest.canonical import tool_schema_hash
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file, iter_landing_files
from evalflow.simulator import catalog, simulate

DIALECTS = ("canonical", "otlp", "langfuse")
DAYS, PER_DAY, SEED = 3, 150, 3
START = date(2026, 10, 1)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(expected canonical by trace id, truth by trace id, ingested rows by trace id)."""
    root = tmp_path_factory.mktemp("consistency")
    landing, truth_dir = root / "landing", root / "truth"
    simulate(landing, truth_dir, days=DAYS, per_day=PER_DAY, seed=SEED, start_date=START)
    expected = {t["trace_id"]: t for t in _read_jsonl(truth_dir / "expected_canonical.jsonl")}
    truth = {t["trace_id"]: t for t in _read_jsonl(truth_dir / "traces.jsonl")}
    now = datetime(START.year, START.month, START.day, tzinfo=timezone.utc) + timedelta(days=DAYS + 1)
    known = KnownTraces()
    ingested: dict[str, dict[str, Any]] = {}
    for path in iter_landing_files(landing):
        result = ingest_file(path, known, IngestOptions(now=now),
                             display_path=path.relative_to(landing).as_posix())
        for row in result.traces:
            assert row["trace_id"] not in ingested, row["trace_id"]
            ingested[row["trace_id"]] = row
    return expected, truth, ingested, landing


def _pairs(world, dialect: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ingested row, expected canonical) for every good trace the simulator wrote in `dialect`."""
    expected, truth, ingested, _ = world
    ids = [tid for tid, t in truth.items() if t["dialect"] == dialect]
    return [(ingested[tid], expected[tid]) for tid in ids if tid in ingested]


# --- field views: what "the same value" means for each field --------------------------------


def _utc_ms(value: Any) -> Any:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _messages(trace: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(m.get("role"), m.get("content")) for m in trace["messages"]]


def _documents(trace: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [(d.get("doc_id"), d.get("text"), pytest.approx(d.get("score"), abs=1e-9))
            for d in trace["retrieved_context"]]


def _tool_calls(trace: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [(c.get("name"), c.get("arguments"), c.get("result")) for c in trace["tool_calls"]]


def _exact(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda trace: trace.get(name)


EXACT_FIELDS = ("session_id", "user_id", "app", "model", "prompt_template_id",
                "system_prompt_hash", "tool_schema_hash", "user_query", "output",
                "input_tokens", "output_tokens", "status", "error_type", "feedback")

# field -> (view of the ingested row, view of the expected canonical trace)
VIEWS: dict[str, tuple[Callable, Callable]] = {
    **{name: (_exact(name), _exact(name)) for name in EXACT_FIELDS},
    "messages": (_messages, _messages),
    "retrieved_context": (_documents, _documents),
    "tool_calls": (_tool_calls, _tool_calls),
    "cost_usd": (_exact("cost_usd"),
                 lambda t: pytest.approx(t["cost_usd"], rel=1e-9, abs=1e-12)),
    "latency_ms": (_exact("latency_ms"), lambda t: pytest.approx(t["latency_ms"], abs=1.0)),
    "timestamp": (lambda t: _utc_ms(t["timestamp"]), lambda t: _utc_ms(t["timestamp"])),
    "end_time": (lambda t: _utc_ms(t["end_time"]), lambda t: _utc_ms(t["end_time"])),
    # the keys the simulator wrote, with their values; adapters may add keys of their own
    "metadata": (lambda t: t["metadata"], lambda t: t["metadata"]),
}


def _same(field: str, got_trace: dict[str, Any], want_trace: dict[str, Any]) -> tuple[bool, Any, Any]:
    got_view, want_view = VIEWS[field]
    want = want_view(want_trace)
    got = got_view(got_trace)
    if field == "metadata":
        got = {k: got.get(k, "<missing>") for k in want}
    return got == want, got, want


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_good_trace_is_ingested_once_with_its_dialect(world, dialect):
    expected, truth, ingested, _ = world
    ids = {tid for tid, t in truth.items() if t["dialect"] == dialect}
    assert ids <= expected.keys()
    missing = sorted(ids - ingested.keys())
    assert not missing, f"{dialect}: {len(missing)} good traces not ingested, e.g. {missing[:3]}"
    dialects = Counter(ingested[tid]["dialect"] for tid in ids)
    assert dialects == {dialect: len(ids)}


def test_only_intended_traces_are_ingested(world):
    expected, _, ingested, _ = world
    # the planted malformed lines are all rejected, so every staged trace has an expectation
    assert ingested.keys() == expected.keys()


def test_expected_canonical_of_a_canonical_trace_is_its_landing_line(world):
    expected, truth, _, landing = world
    lines: dict[str, list[str]] = {}
    checked = 0
    for tid, t in truth.items():
        if t["dialect"] != "canonical":
            continue
        file_lines = lines.setdefault(t["file"], (landing / t["file"]).read_text("utf-8").splitlines())
        assert json.loads(file_lines[t["line"] - 1]) == expected[tid]
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("field", sorted(VIEWS))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_folds_to_the_intended_canonical_values(world, dialect, field):
    pairs = _pairs(world, dialect)
    assert pairs
    mismatches = []
    for got_trace, want_trace in pairs:
        same, got, want = _same(field, got_trace, want_trace)
        if not same:
            mismatches.append((got_trace["trace_id"], got, want))
    assert not mismatches, (
        f"{dialect}: {field} differs in {len(mismatches)}/{len(pairs)} traces; first: "
        f"trace {mismatches[0][0]}\n  got:  {mismatches[0][1]!r}\n  want: {mismatches[0][2]!r}"
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_sample_exercises_every_field_in_every_dialect(world, dialect):
    """The comparison above is only as good as the sample: each dialect must carry feedback
    (up and down), errors, tool calls, retrieval, multi-turn history and PII-bearing metadata."""
    wanted = [want for _, want in _pairs(world, dialect)]
    assert len(wanted) >= 30
    thumbs = {w["feedback"]["thumbs"] for w in wanted if w["feedback"]}
    assert thumbs == {"up", "down"}, thumbs
    assert any(w["status"] == "error" and w["metadata"].get("error_message") for w in wanted)
    assert any(w["tool_calls"] for w in wanted)
    assert any(w["retrieved_context"] for w in wanted)
    assert any(sum(m["role"] == "user" for m in w["messages"]) > 1 for w in wanted)
    assert any({"customer_email", "client_ip", "customer_name"} & w["metadata"].keys()
               for w in wanted)
    assert len({w["tool_schema_hash"] for w in wanted}) == 2  # support-v3 and support-v4


# --- one tool_schema_hash for every shape -----------------------------------------------------

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
SHAPES = {
    "openai": [
        {"type": "function", "function": {"name": "weather", "description": "Weather now.",
                                          "parameters": PARAMS}},
        {"type": "function", "function": {"name": "branches", "description": "Branches.",
                                          "parameters": {"type": "object"}}},
    ],
    # OTel gen_ai.tool.definitions, Vercel ai.prompt.tools, LangSmith functions
    "otel": [
        {"type": "function", "name": "branches", "description": "Branches.",
         "parameters": {"type": "object"}},
        {"type": "function", "name": "weather", "description": "Weather now.", "parameters": PARAMS},
    ],
    "bare_json_text": json.dumps([
        {"name": "weather", "description": "Weather now.", "parameters": PARAMS},
        {"name": "branches", "description": "Branches.", "parameters": {"type": "object"}},
    ]),
    "per_tool_json_text": [
        json.dumps({"name": "weather", "description": "Weather now.", "parameters": PARAMS}),
        json.dumps({"name": "branches", "description": "Branches.",
                    "parameters": {"type": "object"}}),
    ],
    "anthropic": [
        {"name": "weather", "description": "Weather now.", "input_schema": PARAMS},
        {"name": "branches", "description": "Branches.", "input_schema": {"type": "object"}},
    ],
    "gemini": [{"function_declarations": [
        {"name": "weather", "description": "Weather now.", "parameters": PARAMS},
        {"name": "branches", "description": "Branches.", "parameters": {"type": "object"}},
    ]}],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_tool_schema_hash_is_the_same_for_every_shape_and_order(shape):
    assert tool_schema_hash(SHAPES[shape]) == tool_schema_hash(SHAPES["openai"])
    assert tool_schema_hash(SHAPES[shape]) is not None


def test_tool_schema_hash_tells_schemas_apart():
    changed = json.loads(json.dumps(SHAPES["openai"]))
    changed[0]["function"]["parameters"]["required"] = []
    assert tool_schema_hash(changed) != tool_schema_hash(SHAPES["openai"])
    assert tool_schema_hash(SHAPES["openai"][:1]) != tool_schema_hash(SHAPES["openai"])
    assert tool_schema_hash([{"x": 1}]) != tool_schema_hash([{"x": 2}])  # unknown shapes kept
    assert tool_schema_hash(None) is None and tool_schema_hash([]) is None


def test_the_simulators_tool_versions_hash_apart():
    assert tool_schema_hash(catalog.TOOLS["support-v3"]) != tool_schema_hash(catalog.TOOLS["support-v4"])
