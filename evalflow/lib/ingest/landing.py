"""Parse each landing file once, stage its traces, and account for every line.

Files are recognised by content hash: a file re-sent under another name, or the same folder
scanned again, adds nothing. Each file is staged in its own transaction, so a crash part-way
through a folder leaves the files before it staged and the rest to be picked up next time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from evalflow.lib.common.settings import Settings, record_first_day
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, file_sha256, ingest_file, iter_landing_files
from evalflow.lib.ingest.reader import ReadLimits
from evalflow.lib.ingest.store import (
    landed_file_hashes,
    publish_accounting,
    raw_store,
    stage_file,
    staged_trace_hashes,
)
from evalflow.lib.redact.store import analyst_warehouse


@dataclass
class LandingSummary:
    files_seen: int = 0
    files_new: int = 0
    files_already_landed: int = 0
    lines_read: int = 0
    ingested: int = 0
    quarantined: int = 0
    deduplicated: int = 0
    traces_staged: int = 0
    event_dates: set[date] = field(default_factory=set)
    reasons: dict[str, int] = field(default_factory=dict)
    per_file: list[dict[str, Any]] = field(default_factory=list)


def ingest_options(settings: Settings, now: datetime | None = None) -> IngestOptions:
    return IngestOptions(
        now=now or datetime.now(timezone.utc),
        limits=ReadLimits(
            line_soft_cap_bytes=settings.line_soft_cap_bytes,
            line_hard_cap_bytes=settings.line_hard_cap_bytes,
            field_cap_bytes=settings.field_cap_bytes,
            max_json_depth=settings.max_json_depth,
        ),
        skew_tolerance_s=settings.clock_skew_tolerance_s,
        payload_keep_fraction=settings.payload_keep_fraction,
    )


def land_new_files(settings: Settings, now: datetime | None = None) -> LandingSummary:
    """Stage new landing files into the raw store; copy the accounting to the warehouse."""
    summary = _land(settings, now)
    raw = raw_store(settings)
    publish_accounting(raw, analyst_warehouse(settings))
    days = all_event_dates(raw)
    if days:
        # The daily partitions start at the first day with data (lib/common/settings.py).
        record_first_day(settings.data_dir, days[0])
    return summary


def _land(settings: Settings, now: datetime | None) -> LandingSummary:
    warehouse = raw_store(settings)
    landed = landed_file_hashes(warehouse)
    known = KnownTraces(hashes=staged_trace_hashes(warehouse))
    options = ingest_options(settings, now)
    summary = LandingSummary()
    # One landed_at for every file of this landing: it is how the reject-rate check finds the
    # files landed together with the ones feeding a partition (reject_rate_for_days).
    landed_at = datetime.now(timezone.utc)
    for path in iter_landing_files(settings.landing_dir):
        summary.files_seen += 1
        if file_sha256(path) in landed:
            summary.files_already_landed += 1
            continue
        display = str(path.relative_to(settings.landing_dir))
        result = ingest_file(path, known, options, display_path=display)
        if result.file_sha256 in landed:  # the same content twice in one scan
            summary.files_already_landed += 1
            continue
        stage_file(warehouse, result, landed_at=landed_at)
        landed.add(result.file_sha256)
        summary.files_new += 1
        summary.lines_read += result.lines_read
        summary.ingested += result.outcomes["ingested"]
        summary.quarantined += result.outcomes["quarantined"]
        summary.deduplicated += result.outcomes["deduplicated"]
        summary.traces_staged += len(result.traces)
        summary.event_dates.update(row["event_date"] for row in result.traces)
        for reason, count in result.reasons.items():
            summary.reasons[reason] = summary.reasons.get(reason, 0) + count
        summary.per_file.append({
            "path": display, "lines_read": result.lines_read, "ingested": result.outcomes["ingested"],
            "quarantined": result.outcomes["quarantined"], "deduplicated": result.outcomes["deduplicated"],
        })
    return summary


def landing_totals(warehouse: Warehouse) -> dict[str, int]:
    """Accounting over every file ever landed: ingested + quarantined + deduplicated = lines_read."""
    with warehouse.connect() as con:
        row = con.execute(
            "SELECT count(*), coalesce(sum(lines_read),0), coalesce(sum(ingested),0), "
            "coalesce(sum(quarantined),0), coalesce(sum(deduplicated),0), coalesce(sum(traces_staged),0) "
            "FROM landed_files"
        ).fetchone()
    keys = ("files", "lines_read", "ingested", "quarantined", "deduplicated", "traces_staged")
    return dict(zip(keys, (int(v) for v in row)))


def reject_rate_for_days(warehouse: Warehouse, days: list[date]) -> tuple[float, int, int]:
    """Quarantined / lines read over the landing files behind these days' partitions.

    Those are the files that fed the days, plus the files that staged no trace at all (every
    line quarantined or duplicate: a gzip read as text, a garbage upload) and so feed no
    partition, when they landed in the same landing as a feeding file or landed on one of the
    days (UTC). Without them such a file is in no check, and a landing whose bad share is over
    the threshold passes. The landing-day rule covers a landing of bad files only: no event day
    is touched, so no run follows it, but the daily schedule rebuilds that day next.
    """
    if not days:
        return 0.0, 0, 0
    with warehouse.connect() as con:
        quarantined, lines = con.execute(
            "WITH fed AS (SELECT DISTINCT source_file_sha256 AS file_sha256 FROM staged_traces "
            "             WHERE event_date IN (SELECT unnest($days))), "
            "landings AS (SELECT DISTINCT landed_at FROM landed_files "
            "             WHERE file_sha256 IN (SELECT file_sha256 FROM fed)) "
            "SELECT coalesce(sum(quarantined),0), coalesce(sum(lines_read),0) FROM landed_files "
            "WHERE file_sha256 IN (SELECT file_sha256 FROM fed) "
            "OR (traces_staged = 0 AND (landed_at IN (SELECT landed_at FROM landings) "
            "    OR CAST(timezone('UTC', landed_at) AS DATE) IN (SELECT unnest($days))))",
            {"days": days},
        ).fetchone()
    quarantined, lines = int(quarantined), int(lines)
    return (quarantined / lines if lines else 0.0), quarantined, lines


def all_event_dates(warehouse: Warehouse) -> list[date]:
    with warehouse.connect() as con:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT event_date FROM staged_traces ORDER BY 1").fetchall()]


def landing_dir_exists(path: Path) -> bool:
    return path.exists() and any(path.iterdir())
