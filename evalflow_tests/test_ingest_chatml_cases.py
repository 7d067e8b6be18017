"""The ChatML port, adapter by adapter, on the project's own hand-written cases.

evalflow_tests/fixtures/chatml/<adapter>.json holds small payloads in the shapes each upstream
adapter (langfuse/langfuse packages/shared/src/utils/chatml/adapters) handles, with invented
values, and the messages upstream's normaliser makes of them, worked through its TypeScript
source and checked against the ChatML Langfuse recorded for similar shapes in its framework
traces. ``expected`` is null where upstream's message schema rejects the result, so Langfuse
shows the payload as JSON rather than as a chat. As in upstream's own adapter tests, a payload
goes to the normaliser as it is, without parsing JSON text inside it first; the Langfuse export
fixtures (test_ingest_dialect_langfuse.py) cover that step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalflow.lib.ingest.dialects import chatml

CASES = Path(__file__).resolve().parent / "fixtures" / "chatml"


def load_cases() -> list:
    params = []
    for path in sorted(CASES.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}/{case['case']}"))
    return params


def normalise(case: dict):
    function = chatml.chatml_input_messages if case["side"] == "input" else chatml.chatml_output_messages
    return function(case["data"], case["metadata"], case.get("observation_name"))


@pytest.mark.parametrize("case", load_cases())
def test_messages_match_upstream(case):
    assert normalise(case) == case["expected"]


@pytest.mark.parametrize("case", load_cases())
def test_upstream_picks_the_same_adapter(case):
    # normalizeInput/normalizeOutput: metadata falls back to the payload itself
    context = {"metadata": case["data"] if case["metadata"] is None else case["metadata"],
               "observationName": case.get("observation_name"), "data": case["data"]}
    assert chatml.select_adapter(context).id == case["adapter"]


def test_every_adapter_has_cases_that_read_as_chat():
    cases = [p.values[0] for p in load_cases()]
    adapters = {a.id for a in chatml.ADAPTERS}
    assert {c["adapter"] for c in cases} == adapters
    for adapter in adapters:
        mine = [c for c in cases if c["adapter"] == adapter]
        assert any(c["expected"] for c in mine), f"{adapter}: no case Langfuse reads as a chat"
    assert {c["side"] for c in cases} == {"input", "output"}
    assert any(c["expected"] is None for c in cases)  # and some it does not
