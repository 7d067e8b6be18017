"""Every trace export ingests through the real path: the project's own fixtures
(evalflow_tests/fixtures/traces) and the third-party exports in ../shared/data/traces (beside the
checkout; see conftest.py for when their absence skips or fails)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file

PROJECT = Path(__file__).resolve().parent / "fixtures" / "traces"
TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
needs_data = pytest.mark.shared_data("traces")
ROOTS = [pytest.param(PROJECT, id="project"), pytest.param(TRACES, id="shared", marks=needs_data)]

# Files that are not trace exports: the Langfuse ChatML ground truth (expected adapter output)
# and a Vercel capture summary (a list of test names and attribute names, no spans). They are
# correctly reported as unknown_dialect rather than guessed at.
NOT_TRACE_EXPORTS = ("*.chatml.json", "capture-results.json")


def trace_exports(root: Path = TRACES) -> list[Path]:
    if not root.exists():
        return []
    excluded = {p for pattern in NOT_TRACE_EXPORTS for p in root.rglob(pattern)}
    return sorted(p for p in root.rglob("*.json") if p not in excluded)


def exports() -> list:
    """The project's exports, then the shared ones; without ../shared one placeholder stands for
    them, so their absence shows as a skip (or a failure under CI) rather than nothing."""
    project = [pytest.param(p, id=f"project/{p.relative_to(PROJECT)}") for p in trace_exports(PROJECT)]
    shared = [pytest.param(p, id=f"shared/{p.relative_to(TRACES)}", marks=needs_data)
              for p in trace_exports(TRACES)]
    return project + (shared or [pytest.param(TRACES, id="shared", marks=needs_data)])


def ingest(path: Path):
    return ingest_file(path, KnownTraces(), IngestOptions(now=datetime.now(timezone.utc)))


@pytest.mark.parametrize("path", exports())
def test_trace_export_ingests_without_quarantine(path):
    result = ingest(path)
    assert result.quarantine == [], [(q["reason"], q["detail"]) for q in result.quarantine]
    assert result.traces, "no trace came out of a trace export"
    for trace in result.traces:
        assert trace["trace_id"] and trace["timestamp"]
        assert trace["dialect"] in {"langfuse", "langsmith", "otlp", "openinference", "vercel", "genai"} \
            or trace["dialect"]


@pytest.mark.parametrize("root", ROOTS)
def test_the_three_trace_dialect_families_are_all_exercised(root):
    dialects = {t["dialect"] for path in trace_exports(root) for t in ingest(path).traces}
    assert {"langfuse", "langsmith"} <= dialects
    assert dialects - {"langfuse", "langsmith"}, "no span-based dialect was detected"


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("pattern", NOT_TRACE_EXPORTS)
def test_non_trace_files_are_explained_not_guessed(root, pattern):
    path = next(root.rglob(pattern))
    result = ingest(path)
    assert not result.traces
    assert [q["reason"] for q in result.quarantine] == [reasons.UNKNOWN_DIALECT]
