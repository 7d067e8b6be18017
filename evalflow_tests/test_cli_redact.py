"""`evalflow redact`: clean a file before sharing it."""

from __future__ import annotations

import json

import pytest

from evalflow import cli


@pytest.fixture(autouse=True)
def key(monkeypatch, tmp_path):
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", "cli-test-key")
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))


def test_text_lines_get_redacted_text_and_entity_offsets_into_the_input(tmp_path):
    source = tmp_path / "in.jsonl"
    texts = {"a": "Email dana.whitfield@example.com or call +1 (212) 555-0143.",
             "b": "Nothing personal here."}
    source.write_text("\n".join(json.dumps({"id": k, "text": v}) for k, v in texts.items()) + "\nnot json\n")
    out = tmp_path / "out.jsonl"

    assert cli.main(["redact", str(source), "-o", str(out)]) == 0

    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    a = rows["a"]
    assert "dana.whitfield@example.com" not in a["redacted_text"] and "555-0143" not in a["redacted_text"]
    spans = {texts["a"][e["start"]:e["end"]]: e["type"] for e in a["entities"]}
    assert spans["dana.whitfield@example.com"] == "EMAIL_ADDRESS"
    assert spans["+1 (212) 555-0143"] == "PHONE_NUMBER"
    assert rows["b"] == {"id": "b", "redacted_text": "Nothing personal here.", "entities": []}
    (bad,) = map(json.loads, (tmp_path / "out.jsonl.quarantine.jsonl").read_text().splitlines())
    assert bad["line_no"] == 3 and bad["reason"] == "invalid_json"


def test_traces_mode_redacts_field_by_field(tmp_path):
    source = tmp_path / "traces.jsonl"
    source.write_text(json.dumps({
        "trace_id": "t1", "timestamp": "2026-10-05T10:00:00Z", "user_id": "customer-991",
        "messages": [{"role": "user", "content": "My card 4539 1488 0343 6467 was declined"}],
        "tool_calls": [{"name": "freeze_card", "arguments": {"card": "4539-1488-0343-6467"}, "result": {"ok": True}}],
        "metadata": {"email": "ops@northwind-bank.com"},
    }) + "\n")
    out = tmp_path / "clean.jsonl"

    assert cli.main(["redact", "--traces", str(source), "-o", str(out)]) == 0

    (trace,) = map(json.loads, out.read_text().splitlines())
    text = json.dumps(trace)
    assert "4539" not in text and "ops@northwind-bank.com" not in text and "customer-991" not in text
    card = trace["tool_calls"][0]["arguments"]["card"]
    assert card.startswith("<CREDIT_CARD_") and card in trace["messages"][0]["content"]


def test_missing_input_is_one_line(tmp_path, capsys):
    assert cli.main(["redact", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert capsys.readouterr().err.strip() == f"evalflow: error: no such file: {tmp_path / 'nope.jsonl'}"


def test_addresses_on_internal_domains_are_reported_and_replaced(tmp_path):
    source = tmp_path / "mail.jsonl"
    text = "Escalate to jane.doe@corp.internal and bob@payroll.local; DSN postgres://admin:pw@db.local:5432/x"
    source.write_text(json.dumps({"id": "m", "text": text}) + "\n")
    out = tmp_path / "mail.out.jsonl"

    assert cli.main(["redact", str(source), "-o", str(out)]) == 0

    (row,) = map(json.loads, out.read_text().splitlines())
    spans = {text[e["start"]:e["end"]]: e["type"] for e in row["entities"]}
    assert spans == {"jane.doe@corp.internal": "EMAIL_ADDRESS", "bob@payroll.local": "EMAIL_ADDRESS",
                     "admin:pw": "URL_CREDENTIALS"}
    for value in ("jane.doe", "corp.internal", "payroll.local", "admin:pw"):
        assert value not in row["redacted_text"]
    assert "@db.local:5432/x" in row["redacted_text"]
