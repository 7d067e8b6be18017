"""`evalflow sample`: a trace file in, the traces worth labelling out, with stratum and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow import cli


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("sample")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root / "data"))
        assert cli.main(["simulate", "--days", "2", "--per-day", "120", "--seed", "11"]) == 0
    lines = []
    for path in sorted((root / "data" / "landing").rglob("canonical.jsonl")):
        lines += path.read_text().splitlines()
    source = root / "traces.jsonl"
    source.write_text("\n".join(lines) + "\n")
    truth = [json.loads(x) for x in (root / "data" / "ground_truth" / "traces.jsonl").read_text().splitlines()]
    emails = [p["value"] for t in truth for p in t["pii"] if p["type"] == "EMAIL_ADDRESS"]
    assert emails  # the test below would be empty otherwise
    return root, source, emails


def run(root: Path, monkeypatch, *argv) -> int:
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(root / "data"))
    return cli.main(["sample", *map(str, argv)])


def test_unredacted_input_is_refused_without_naming_values(traffic, monkeypatch, capsys):
    root, source, emails = traffic
    out = root / "refused.jsonl"
    assert run(root, monkeypatch, source, "--budget", "20", "-o", out) == 1
    err = capsys.readouterr().err
    assert "does not look redacted" in err and "EMAIL_ADDRESS" in err and "--redact" in err
    assert not any(e in err for e in emails)
    assert not out.exists()


@pytest.fixture(scope="module")
def sampled(traffic):
    root, source, _ = traffic
    out = root / "sample.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root / "data"))
        assert cli.main(["sample", str(source), "--budget", "40", "-o", str(out), "--redact"]) == 0
    return out


def test_redact_on_the_way_writes_a_stratified_sample_with_reasons(traffic, sampled):
    _, _, emails = traffic
    rows = [json.loads(line) for line in sampled.read_text().splitlines()]
    assert 0 < len(rows) <= 40
    assert len({r["trace_id"] for r in rows}) == len(rows)
    assert len({r["session_id"] for r in rows}) == len(rows)  # one trace per session
    for row in rows:
        assert row["stratum"].startswith("intent=") and row["reason"] and row["intent_id"]
        assert {"messages", "user_query", "output", "timestamp"} <= set(row)
    assert [r["pick_order"] for r in rows] == list(range(1, len(rows) + 1))
    text = sampled.read_text()
    assert not any(e in text for e in emails)


def test_bad_lines_are_reported_with_reasons(sampled):
    report = sampled.with_name(sampled.name + ".quarantine.jsonl")
    reasons = {json.loads(line)["reason"] for line in report.read_text().splitlines()}
    assert {"truncated_json", "invalid_json", "missing_trace_id"} <= reasons


def test_an_already_redacted_file_needs_no_redact_and_samples_the_same(traffic, sampled, monkeypatch, tmp_path):
    root, _, _ = traffic
    # The sample is redacted: sampling it again, without --redact, passes the leak check.
    again = tmp_path / "again.jsonl"
    assert run(root, monkeypatch, sampled, "--budget", "10", "-o", again) == 0
    first = [json.loads(x)["trace_id"] for x in again.read_text().splitlines()]
    assert run(root, monkeypatch, sampled, "--budget", "10", "-o", again) == 0
    assert [json.loads(x)["trace_id"] for x in again.read_text().splitlines()] == first  # deterministic


def test_budget_must_be_positive(traffic, monkeypatch, capsys):
    root, source, _ = traffic
    assert run(root, monkeypatch, source, "--budget", "0", "-o", root / "x.jsonl") == 1
    assert "--budget" in capsys.readouterr().err


def test_pii_hidden_in_a_tool_result_is_caught(tmp_path, monkeypatch, capsys):
    from evalflow.cli.sample_file import leak_counts

    trace = {"user_query": "what did I buy?", "output": "Here are your purchases.",
             "tool_calls": [{"name": "lookup", "arguments": {},
                             "result": {"owner": {"contact": "jane.roe@example.com"}}}],
             "metadata": {"client_ip": "203.0.113.9"}}
    assert leak_counts([trace]) == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}
    assert leak_counts([{"user_query": "hi <EMAIL_ADDRESS_1a2b3c4d>", "output": "ok"}]) == {}
