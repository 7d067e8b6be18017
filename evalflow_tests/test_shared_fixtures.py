"""Every third-party trace export in ../shared/data/traces ingests through the real path."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file

TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
pytestmark = pytest.mark.skipif(not TRACES.exists(), reason=f"shared trace fixtures not found at {TRACES}")

# Files that are not trace exports: the Langfuse ChatML ground truth (expected adapter output)
# and a Vercel capture summary (a list of test names and attribute names, no spans). They are
# correctly reported as unknown_dialect rather than guessed at.
NOT_TRACE_EXPORTS = ("*.chatml.json", "capture-results.json")


def trace_exports() -> list[Path]:
    if not TRACES.exists():
        return []
    excluded = {p for pattern in NOT_TRACE_EXPORTS for p in TRACES.rglob(pattern)}
    return sorted(p for p in TRACES.rglob("*.json") if p not in excluded)


def ingest(path: Path):
    return ingest_file(path, KnownTraces(), IngestOptions(now=datetime.now(timezone.utc)))


@pytest.mark.parametrize("path", trace_exports(), ids=lambda p: str(p.relative_to(TRACES)))
def test_trace_export_ingests_without_quarantine(path):
    result = ingest(path)
    assert result.quarantine == [], [(q["reason"], q["detail"]) for q in result.quarantine]
    assert result.traces, "no trace came out of a trace export"
    for trace in result.traces:
        assert trace["trace_id"] and trace["timestamp"]
        assert trace["dialect"] in {"langfuse", "langsmith", "otlp", "openinference", "vercel", "genai"} \
            or trace["dialect"]


def test_the_three_trace_dialect_families_are_all_exercised():
    dialects = {t["dialect"] for path in trace_exports() for t in ingest(path).traces}
    assert {"langfuse", "langsmith"} <= dialects
    assert dialects - {"langfuse", "langsmith"}, "no span-based dialect was detected"


@pytest.mark.parametrize("pattern", NOT_TRACE_EXPORTS)
def test_non_trace_files_are_explained_not_guessed(pattern):
    path = next(TRACES.rglob(pattern))
    result = ingest(path)
    assert not result.traces
    assert [q["reason"] for q in result.quarantine] == [reasons.UNKNOWN_DIALECT]
