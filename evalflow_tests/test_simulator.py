"""The traffic simulator: deterministic, long-tailed, and honest about what it planted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.canonical import CANONICAL_FIELDS, stable_hash, system_prompt
from evalflow.lib.redact.luhn import luhn_valid_number
from evalflow.simulator import FAULT_CODES, PII_TYPES, SimulationSummary, kb, resolve_path, simulate

START = date(2026, 10, 1)


def run(root: Path, **kwargs) -> SimulationSummary:
    return simulate(root / "landing", root / "truth", **kwargs)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def file_lines(root: Path, rel: str) -> list[str]:
    return (root / "landing" / rel).read_bytes().decode("utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return root, run(root, days=3, per_day=50)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    root = tmp_path_factory.mktemp("medium")
    return root, run(root, days=5, per_day=400)


@pytest.fixture(scope="module")
def truth(medium):
    root, _ = medium
    return read_jsonl(root / "truth" / "traces.jsonl")


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(small, tmp_path):
    root, _ = small
    run(tmp_path, days=3, per_day=50)
    assert all_bytes(tmp_path) == all_bytes(root)


def test_same_seed_is_identical_in_a_fresh_process_with_another_hash_seed(small, tmp_path):
    root, _ = small
    script = (
        "import sys; from pathlib import Path; from evalflow.simulator import simulate; "
        "r = Path(sys.argv[1]); simulate(r / 'landing', r / 'truth', days=3, per_day=50)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)
    assert all_bytes(tmp_path) == all_bytes(root)


def test_another_seed_gives_other_traffic(small, tmp_path):
    root, _ = small
    run(tmp_path, days=3, per_day=50, seed=8)
    result = all_bytes(tmp_path)
    expected = all_bytes(root)
    assert result.keys() == expected.keys()
    assert result["landing/2026-10-01/canonical.jsonl"] != expected["landing/2026-10-01/canonical.jsonl"]


def test_rejects_an_empty_simulation(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        run(tmp_path, days=0)


# --- summary and layout ---------------------------------------------------------------------


def test_summary_counts_match_what_was_written(small):
    root, summary = small
    truths = read_jsonl(root / "truth" / "traces.jsonl")
    malformed = read_jsonl(root / "truth" / "malformed.jsonl")
    assert summary.traces == len(truths) == 150
    assert summary.malformed_lines == len(malformed) == 10
    counts = Counter(t["dialect"] for t in truths)
    assert summary.by_dialect == {d: counts[d] for d in ("canonical", "otlp", "langfuse")}
    assert sum(summary.by_dialect.values()) == summary.traces
    assert summary.intents >= 40
    assert Path(summary.ground_truth_path) == root / "truth"
    lines_written = sum(len(file_lines(root, rel)) for rel in summary.files)
    assert lines_written == summary.traces + summary.malformed_lines


def test_every_day_has_the_three_dialect_files(small):
    root, summary = small
    expected = [f"{START + timedelta(days=d)}/{name}.jsonl" for d in range(3)
                for name in ("canonical", "otlp", "langfuse")]
    assert summary.files == expected
    assert all((root / "landing" / rel).is_file() for rel in expected)
    assert not any(p.name.endswith(".json") for p in (root / "landing").rglob("*"))  # no truth leaks


def test_dialect_mix_is_mostly_canonical(truth):
    shares = Counter(t["dialect"] for t in truth)
    total = sum(shares.values())
    assert 0.7 < shares["canonical"] / total < 0.9
    assert 0.05 < shares["otlp"] / total < 0.15
    assert 0.05 < shares["langfuse"] / total < 0.15


# --- intents --------------------------------------------------------------------------------


def test_intent_mix_is_long_tailed(small):
    root, _ = small
    events = json.loads((root / "truth" / "events.json").read_text())
    shares = {i["name"]: i["base_share"] for i in events["intents"]}
    assert len(shares) >= 40
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4)
    rare = [name for name, share in shares.items() if share < 0.005]
    assert len(rare) >= 5
    assert max(shares.values()) > 20 * min(shares.values())
    assert {i["name"] for i in events["intents"] if i["is_rare"]} == set(rare)
    assert {"prompt_injection", "policy_violation"} <= set(shares)


def test_traffic_follows_the_intent_shares(truth):
    counts = Counter(t["intent"] for t in truth)
    assert counts.most_common(1)[0][0] == "check_balance"
    assert len(counts) >= 35  # 2,000 traces reach deep into the tail
    assert any(t["is_rare"] for t in truth)


def test_multi_turn_sessions_carry_their_history(medium, truth):
    root, _ = medium
    later_turns = [t for t in truth if t["turn"] > 1 and t["dialect"] == "canonical"]
    assert later_turns
    sample = later_turns[0]
    line = file_lines(root, sample["file"])[sample["line"] - 1]
    trace = json.loads(line)
    roles = [m["role"] for m in trace["messages"]]
    assert roles[0] == "system" and roles.count("user") == sample["turn"]
    session = [t for t in truth if t["session_id"] == sample["session_id"]]
    assert {t["user_id"] for t in session} == {sample["user_id"]}


# --- malformed lines ------------------------------------------------------------------------


def test_every_planted_bad_line_is_recorded_with_its_reason(small):
    root, summary = small
    malformed = read_jsonl(root / "truth" / "malformed.jsonl")
    truths = read_jsonl(root / "truth" / "traces.jsonl")
    assert {m["kind"] for m in malformed} == {
        "truncated_json", "not_json", "nul_byte", "missing_trace_id", "missing_timestamp",
        "wrong_type", "exact_duplicate", "conflicting_duplicate", "timestamp_before_2000",
        "end_before_start",
    }
    allowed = set(reasons.QUARANTINE_REASONS) | {reasons.DUPLICATE}
    bad_at = {(m["file"], m["line"]): m for m in malformed}
    good_at = {(t["file"], t["line"]): t for t in truths}
    assert not bad_at.keys() & good_at.keys()
    for rel in summary.files:
        for number, _line in enumerate(file_lines(root, rel), start=1):
            # every line is accounted for, as a good trace or as a recorded bad line
            assert ((rel, number) in bad_at) != ((rel, number) in good_at), (rel, number)

    for m in malformed:
        assert m["reason"] in allowed
        assert m["file"].endswith("canonical.jsonl")
        lines = file_lines(root, m["file"])
        line = lines[m["line"] - 1]
        kind = m["kind"]
        if kind == "truncated_json":
            assert line.startswith("{")
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
        elif kind == "not_json":
            assert not line.lstrip().startswith(("{", "["))
        elif kind == "nul_byte":
            assert "\x00" in line
        else:
            record = json.loads(line)
            if kind == "missing_trace_id":
                assert "trace_id" not in record
            elif kind == "missing_timestamp":
                assert "timestamp" not in record
            elif kind == "wrong_type":
                assert record["input_tokens"] == "ten"
            elif kind == "timestamp_before_2000":
                assert record["timestamp"] < "2000"
            elif kind == "end_before_start":
                start = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(record["end_time"].replace("Z", "+00:00"))
                assert end < start
            elif kind == "exact_duplicate":
                assert m["original_line"] < m["line"]
                assert lines[m["original_line"] - 1] == line
            elif kind == "conflicting_duplicate":
                original = json.loads(lines[m["original_line"] - 1])
                assert m["original_line"] < m["line"]
                assert original["trace_id"] == record["trace_id"] == m["trace_id"]
                assert original != record


def test_good_lines_are_canonical_and_well_formed(small):
    root, _ = small
    for t in read_jsonl(root / "truth" / "traces.jsonl"):
        if t["dialect"] != "canonical":
            continue
        record = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        assert list(record) == list(CANONICAL_FIELDS)
        assert record["trace_id"] == t["trace_id"] and re.fullmatch(r"[0-9a-f]{32}", t["trace_id"])
        assert record["timestamp"].endswith(("+00:00", "Z"))
        assert record["end_time"] >= record["timestamp"]  # both in the same ISO form
        assert re.fullmatch(r"u-\d{6}", record["user_id"])
        assert record["app"] == "support-assistant"
        assert record["system_prompt_hash"] == stable_hash(system_prompt(record["messages"]))


def test_timestamps_stay_inside_the_simulated_month(truth):
    first = datetime(2026, 10, 1, tzinfo=timezone.utc)
    last = first + timedelta(days=5)
    for t in truth:
        moment = datetime.fromisoformat(t["timestamp"])
        assert first <= moment < last
        file_day = date.fromisoformat(t["file"][:10])
        # a trace lands in its own day's file, or (late, near midnight) in the next one
        assert file_day - moment.date() in (timedelta(0), timedelta(days=1))


# --- PII ------------------------------------------------------------------------------------


def test_pii_offsets_point_at_the_recorded_value(truth, medium):
    root, _ = medium
    lines_by_file: dict[str, list[str]] = {}
    checked = 0
    for t in truth:
        if t["dialect"] != "canonical":
            continue
        lines = lines_by_file.setdefault(t["file"], file_lines(root, t["file"]))
        record = json.loads(lines[t["line"] - 1])
        for p in t["pii"]:
            text = resolve_path(record, p["field"])
            assert text[p["start"]:p["end"]] == p["value"], (t["trace_id"], p)
            checked += 1
    assert checked > 1000


def test_pii_is_everywhere_and_of_every_kind(truth):
    occurrences = [p for t in truth for p in t["pii"]]
    assert {p["type"] for p in occurrences} == set(PII_TYPES)
    roots = {re.split(r"[.\[]", p["field"])[0] for p in occurrences}
    assert {"messages", "user_query", "tool_calls", "output", "metadata"} <= roots
    assert any(".arguments." in p["field"] for p in occurrences)
    assert any(re.search(r"\.result\[\d+\]", p["field"]) for p in occurrences)  # lists of dicts
    names = [p["value"] for p in occurrences if p["type"] == "PERSON" and " " in p["value"]]
    assert any(n.isupper() for n in names) and any(n.islower() for n in names)
    assert any(n.istitle() for n in names)
    assert any(not n.isascii() for n in names)  # García, Müller, Amélie...
    phones = {p["value"] for p in occurrences if p["type"] == "PHONE_NUMBER"}
    for prefix in ("+44 ", "+49 ", "+91 ", "("):
        assert any(v.startswith(prefix) for v in phones), prefix
    cards = {p["value"] for p in occurrences if p["type"] == "CREDIT_CARD"}
    assert all(luhn_valid_number(c) for c in cards)
    assert any(" " in c for c in cards) and any("-" in c for c in cards)
    accounts = {p["value"] for p in occurrences if p["type"] == "ACCOUNT_ID"}
    assert all(re.fullmatch(r"ACC-\d{8}", a) for a in accounts)


def test_pii_of_other_dialects_is_in_the_written_line(truth, medium):
    root, _ = medium
    others = [t for t in truth if t["dialect"] != "canonical" and t["pii"]]
    assert {t["dialect"] for t in others} == {"otlp", "langfuse"}
    for t in others:
        line = file_lines(root, t["file"])[t["line"] - 1]
        for p in t["pii"]:
            assert p["value"] in line, (t["trace_id"], p)


# --- dialect shapes -------------------------------------------------------------------------


def test_otlp_lines_use_genai_attributes(truth, medium):
    root, _ = medium
    rows = [t for t in truth if t["dialect"] == "otlp"]
    keys: set[str] = set()
    for t in rows:
        request = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert {s["traceId"] for s in spans} == {t["trace_id"]}
        assert all(re.fullmatch(r"[0-9a-f]{16}", s["spanId"]) for s in spans)
        assert all(isinstance(s["startTimeUnixNano"], str) for s in spans)
        for s in spans:
            keys |= {a["key"] for a in s["attributes"]}
        chat = [s for s in spans if s["name"].startswith("chat ")]
        attrs = {a["key"]: a["value"] for a in chat[0]["attributes"]}
        messages = json.loads(attrs["gen_ai.input.messages"]["stringValue"])
        assert messages[-1]["role"] == "user" and messages[-1]["parts"][0]["type"] == "text"
    assert {"gen_ai.provider.name", "gen_ai.request.model", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens", "gen_ai.input.messages", "gen_ai.output.messages",
            "gen_ai.tool.name", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
            "session.id", "user.id"} <= keys
    assert "gen_ai.retrieval.documents" in keys
    assert "retrieval.documents.0.document.id" in keys


def test_langfuse_lines_are_trace_plus_observations(truth, medium):
    root, _ = medium
    rows = [t for t in truth if t["dialect"] == "langfuse"]
    types: set[str] = set()
    for t in rows:
        document = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        assert document["trace"]["id"] == t["trace_id"]
        assert document["trace"]["sessionId"] == t["session_id"]
        types |= {o["type"] for o in document["observations"]}
        generation = [o for o in document["observations"] if o["type"] == "GENERATION"][0]
        assert generation["input"][-1]["role"] == "user"
        assert set(generation["usageDetails"]) == {"input", "output", "total"}
    assert types == {"SPAN", "GENERATION", "TOOL", "RETRIEVER"}


# --- planted changes and faults -------------------------------------------------------------


def test_planted_changes_are_visible_in_the_data(truth, medium):
    root, _ = medium
    events = json.loads((root / "truth" / "events.json").read_text())
    change = events["prompt_template_change"]
    kb_change = events["kb_change"]
    assert START < date.fromisoformat(change["date"]) < START + timedelta(days=5)
    assert change["system_prompt_hash_from"] != change["system_prompt_hash_to"]
    before = [t for t in truth if t["timestamp"] < change["at"]]
    after = [t for t in truth if t["timestamp"] >= change["at"]]
    assert before and after
    assert {t["prompt_template_id"] for t in before} == {"support-v3"}
    assert {t["prompt_template_id"] for t in after} == {"support-v4"}

    seen_hashes, seen_doc_prefixes = set(), set()
    for t in truth:
        if t["dialect"] != "canonical":
            continue
        record = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        # truth timestamps and event times share one ISO format, so strings compare as times
        old_prompt = t["timestamp"] < change["at"]
        expected_hash = change["system_prompt_hash_from" if old_prompt else "system_prompt_hash_to"]
        assert record["system_prompt_hash"] == expected_hash
        seen_hashes.add(record["system_prompt_hash"])
        kb_version = "kb-v1" if t["timestamp"] < kb_change["at"] else "kb-v2"
        for doc in record["retrieved_context"]:
            assert doc["doc_id"].startswith(kb_version + "/")
            seen_doc_prefixes.add(doc["doc_id"].split("/")[0])
    assert len(seen_hashes) == 2 and seen_doc_prefixes == {"kb-v1", "kb-v2"}

    shift = events["intent_mix_shift"]
    grown = "mobile_app_login_issue"
    share = lambda rows: sum(t["intent"] == grown for t in rows) / len(rows)  # noqa: E731
    assert share([t for t in truth if t["timestamp"] >= shift["at"]]) > 2 * share(
        [t for t in truth if t["timestamp"] < shift["at"]])
    assert {t["model"] for t in after} == {"gpt-4o-mini", "gpt-4o"}
    assert {t["model"] for t in before} == {"gpt-4o-mini"}


def test_abusive_customers_are_a_small_share_and_stay_abusive_for_the_rest_of_the_session(truth, medium):
    """toxic_request: an abusive line (catalog.ABUSIVE_LINES) in this user turn or an earlier one
    of the session, never in an attack intent; toxic_answer: an abusive opener before the answer
    of the abusive turn."""
    from evalflow.simulator import catalog

    root, _ = medium
    toxic = [t for t in truth if "toxic_request" in t["faults"]]
    assert 0.005 * len(truth) < len(toxic) < 0.02 * len(truth)
    assert not any(t["intent"] in ("prompt_injection", "policy_violation") for t in toxic)
    by_session: dict[str, list[dict]] = {}
    for t in truth:
        by_session.setdefault(t["session_id"], []).append(t)
    for t in truth:
        if t["dialect"] != "canonical":
            continue
        record = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        users = [m["content"] for m in record["messages"] if m["role"] == "user"]
        abusive = any(line in u for u in users for line in catalog.ABUSIVE_LINES)
        assert abusive == ("toxic_request" in t["faults"]), t["trace_id"]
        opener = any((record["output"] or "").startswith(o) for o in catalog.ABUSIVE_ANSWER_OPENERS)
        assert opener == ("toxic_answer" in t["faults"]), t["trace_id"]
    for turns in by_session.values():
        flags = ["toxic_request" in t["faults"] for t in sorted(turns, key=lambda t: t["turn"])]
        assert flags == sorted(flags)  # once abusive, every later turn carries it


def test_fault_codes_match_the_written_traces(truth, medium):
    root, _ = medium
    codes = Counter(code for t in truth for code in t["faults"])
    assert set(codes) <= set(FAULT_CODES)
    for code in ("error", "refusal", "negative_feedback", "contradicts_context",
                 "verbose_answer", "latency_outlier", "prompt_injection", "policy_violation"):
        assert codes[code] > 0, code
    chunks = {f"{c.topic}#{c.index}": c for topic in kb.CHUNKS.values() for c in topic}
    contradictions = 0
    for t in truth:
        if t["dialect"] != "canonical":
            continue
        record = json.loads(file_lines(root, t["file"])[t["line"] - 1])
        faults = set(t["faults"])
        assert (record["status"] == "error") == ("error" in faults)
        if "error" in faults:
            assert record["error_type"] and record["output"] is None
        if "negative_feedback" in faults:
            assert record["feedback"] == {"thumbs": "down", "score": 0.0,
                                          "comment": record["feedback"]["comment"]}
        elif record["feedback"] is not None:
            assert record["feedback"]["thumbs"] == "up"
        if "verbose_answer" in faults:
            assert record["output_tokens"] > 400
        if record["status"] == "ok" and record["retrieved_context"]:
            top = record["retrieved_context"][0]
            chunk = chunks[top["doc_id"].split("/", 1)[1]]
            wrong = chunk.template.format(fact=chunk.wrong).rstrip(".")
            if "contradicts_context" in faults:
                assert wrong in record["output"] and top["text"].rstrip(".") not in record["output"]
                contradictions += 1
            else:
                assert wrong not in record["output"]
    assert contradictions > 0
