"""Payload sampling for high traffic: a deterministic share keeps full payloads, all keep metadata."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file
from evalflow.lib.ingest.validation import keeps_payload

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def write(path, count):
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "trace_id": f"trace-{i}", "timestamp": "2026-10-05T10:00:00Z", "latency_ms": 250.0,
                "input_tokens": 100, "output_tokens": 40, "cost_usd": 0.001, "status": "ok",
                "messages": [{"role": "user", "content": "my card was declined"}], "output": "Sorry!",
                "tool_calls": [{"name": "lookup", "arguments": {}, "result": {}}],
            }) + "\n")


def test_a_tenth_of_traces_keep_their_payload_and_every_trace_keeps_metadata(tmp_path):
    path = tmp_path / "in.jsonl"
    write(path, 2000)
    result = ingest_file(path, KnownTraces(), IngestOptions(now=NOW, payload_keep_fraction=0.1))

    kept = [t for t in result.traces if t["payload_kept"]]
    dropped = [t for t in result.traces if not t["payload_kept"]]
    assert len(result.traces) == 2000
    assert 150 <= len(kept) <= 250
    assert all(t["output"] == "Sorry!" and t["messages"] for t in kept)
    assert all(t["output"] is None and t["messages"] == [] and t["user_query"] is None and t["tool_calls"] == []
               for t in dropped)
    assert all(t["latency_ms"] == 250.0 and t["input_tokens"] == 100 and t["cost_usd"] == 0.001 for t in dropped)


def test_the_choice_depends_only_on_trace_id(tmp_path):
    ids = [f"trace-{i}" for i in range(500)]
    first = [keeps_payload(i, 0.3) for i in ids]
    assert first == [keeps_payload(i, 0.3) for i in ids]
    # A larger fraction keeps a superset: raising the rate never drops a kept trace.
    assert all(keeps_payload(i, 0.6) for i, kept in zip(ids, first) if kept)
    assert keeps_payload("x", 1.0) and not keeps_payload("x", 0.0)
