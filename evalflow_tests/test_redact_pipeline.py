"""Raw PII stops at redaction: canaries planted in every field of simulated traces appear
nowhere in the warehouse, the exports or Dagster's event log after `evalflow run`."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from evalflow import cli

# Unique values that exist nowhere else. Names in a sentence a person would write, so that
# missing them is a real recall failure, not an unfair test.
CANARIES = {
    "email": "quillon.vantreight@example.org",
    "phone": "+1 (415) 555-0199",
    "card": "4539 1488 0343 6467",
    "person": "Margaret Thornbury",
    "iban": "DE89 3704 0044 0532 0130 00",
    # addresses on domains that are not public suffixes (issue 11): company-internal mail
    "internal_email": "quillon.vantreight@payroll.corp.internal",
    "local_email": "m.thornbury+hr@people.local",
}
CANARY_IDS = {"user_id": "canary-user-4242", "session_id": "canary-session-4242"}


def plant(trace: dict, index: int) -> dict:
    c = CANARIES
    trace = dict(trace)
    trace.update(CANARY_IDS)
    trace["trace_id"] = f"canary-trace-{index}"
    sentence = f"I am {c['person']}, email {c['email']}, phone {c['phone']}, card {c['card']}, IBAN {c['iban']}, " \
               f"work mail {c['internal_email']}."
    trace["messages"] = [{"role": "system", "content": "You are a bank assistant."},
                         {"role": "user", "content": f"Earlier: {sentence}"},
                         {"role": "assistant", "content": f"Thanks {c['person']}."},
                         {"role": "user", "content": sentence}]
    trace["user_query"] = sentence
    trace["output"] = f"Dear {c['person']}, we will call {c['phone']} and write to {c['email']}."
    trace["retrieved_context"] = [{"doc_id": "kb-v1/contact#1", "text": f"Escalations: {c['email']}", "score": 0.9}]
    trace["tool_calls"] = [{"name": "lookup_account", "arguments": {"email": c["email"], "card": c["card"],
                                                                    "cc": [c["local_email"], c["internal_email"]]},
                            "result": [{"holder": c["person"], "phone": c["phone"], "iban": c["iban"]},
                                       {"notes": [f"verified {c['email']}"]}]}]
    trace["error_type"] = None
    trace["feedback"] = {"thumbs": "down", "score": 0.0, "comment": f"call me on {c['phone']}"}
    trace["metadata"] = {"customer_email": c["email"], c["email"]: "key that is PII", "nested": {"card": c["card"]}}
    return trace


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("canary")
    data_dir = root / "data"
    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        patch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.2")
        patch.setenv("EVALFLOW_PSEUDONYM_KEY", "canary-test-key")
        assert cli.main(["simulate", "--days", "2", "--per-day", "30", "--seed", "9"]) == 0
        day = sorted((data_dir / "landing").iterdir())[0]
        lines = (day / "canonical.jsonl").read_text().splitlines()
        planted = []
        for line in lines:
            try:
                trace = json.loads(line)
            except json.JSONDecodeError:
                continue  # one of the simulator's planted malformed lines
            if isinstance(trace.get("timestamp"), str) and trace.get("trace_id") and len(planted) < 5:
                trace.update(timestamp=f"{day.name}T12:00:00+00:00", end_time=None, input_tokens=100,
                             output_tokens=20, latency_ms=500.0, status="ok")
                planted.append(json.dumps(plant(trace, len(planted))))
        (day / "canary.jsonl").write_text("\n".join(planted) + "\n")
        assert cli.main(["run"]) == 0
    return root


def every_string_in_duckdb(path: Path) -> str:
    chunks = []
    with duckdb.connect(str(path), read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            chunks.append(json.dumps(rows, default=str))
    return "\n".join(chunks)


def assert_no_canary(text: str, where: str) -> None:
    for name, value in {**CANARIES, **CANARY_IDS}.items():
        assert value not in text, f"{name} canary found in {where}"
    for domain in ("corp.internal", "people.local"):  # no half-redacted internal address either
        assert domain not in text, f"{domain} found in {where}"
    digits = "".join(ch for ch in CANARIES["card"] if ch.isdigit())
    assert digits not in text.replace(" ", "").replace("-", ""), f"card digits found in {where}"


def test_canaries_were_really_planted_and_sit_in_the_raw_store_only(run_dir):
    raw = every_string_in_duckdb(run_dir / "data" / "raw" / "raw.duckdb")
    for name in ("email", "internal_email", "local_email"):
        assert CANARIES[name] in raw, name  # the test would be empty otherwise


def test_no_canary_in_any_warehouse_table(run_dir):
    warehouse = run_dir / "data" / "warehouse" / "evalflow.duckdb"
    assert_no_canary(every_string_in_duckdb(warehouse), "the warehouse")  # intent_catalog.examples too
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM intent_catalog").fetchone()[0] > 0
        redacted = con.execute(
            "SELECT count(*) FROM redacted_traces WHERE user_query LIKE 'I am <PERSON_%'").fetchone()[0]
    assert redacted == 5  # the planted traces made it through, redacted


def test_no_canary_in_exports(run_dir):
    exports = run_dir / "data" / "exports"
    for path in exports.rglob("*") if exports.exists() else []:
        if path.is_file():
            assert_no_canary(path.read_bytes().decode("utf-8", "replace"), str(path))


def test_no_canary_in_annotation_batches(run_dir):
    files = [p for p in (run_dir / "data" / "annotation").rglob("*") if p.is_file()]
    assert any(p.name == "pass1_tasks.json" for p in files)
    text = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    assert "I am <PERSON_" in text  # the planted traces were sampled (60 traces, budget 200), redacted
    assert_no_canary(text, "the annotation batches")


def test_no_canary_in_dagster_metadata_or_logs(run_dir):
    with dg.DagsterInstance.from_config(str(run_dir / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert runs
        text = "\n".join(str(entry) for run in runs for entry in instance.all_logs(run.run_id))
    assert "redacted_traces" in text
    assert_no_canary(text, "the Dagster event log")
