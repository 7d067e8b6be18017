"""What the drift assets do, week by week: read the inputs, compute the signals, render the report
files, write the tables. The assets (defs/drift/) call these and turn the outcomes into metadata
and asset checks.

Files of a week, under `<data>/reports/drift/<week_start>/`: `report.html` (opens offline, charts
inline), `summary.md` (what the asset's metadata shows) and `report.json` (every signal with its
data). Each is written to a temporary name and renamed, and the tables are written after the
files in one transaction, so a kill leaves either the previous week's report or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import polars as pl

from evalflow.lib.common.warehouse import Warehouse

REPORTS = Path("reports") / "drift"


def reports_dir(data_dir: Path) -> Path:
    return Path(data_dir) / REPORTS


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@dataclass
class WeekOutcome:
    week: str  # the Monday, ISO
    report: Any  # report.WeekReport
    html_path: Path
    markdown: str

    def breaches(self) -> list:
        return self.report.breaches()

    def figures(self) -> dict[str, Any]:
        """The week's key figures for its materialization (plain values; the asset adds the
        report's path and the markdown summary): a person sees the key numbers and the alerts
        without opening the report."""
        return {k: v for k, v in self.report.figures.items() if v is not None and not isinstance(v, (dict, list))}


def report_week(con, data_dir: Path, week: date, config, reads=None, history: pl.DataFrame | None = None,
                log: Callable[[str], None] = lambda _: None) -> WeekOutcome:
    """One week's report on an open warehouse connection (read and written in one place). `reads`
    (inputs.load_run_reads) and `history` (store.read_history) are what report_weeks reads once for
    all its weeks; by default they are read here."""
    from evalflow.lib.drift import store
    from evalflow.lib.drift.inputs import load_week_inputs
    from evalflow.lib.drift.render import render_html, render_markdown, week_title
    from evalflow.lib.drift.report import compute_week

    store.ensure_tables(con)
    inputs = load_week_inputs(con, data_dir, week, config, reads)
    report = compute_week(inputs, config)
    if history is None:
        history = store.read_history(con)  # the trend charts add this week's rows themselves
    folder = reports_dir(data_dir) / week.isoformat()
    markdown = render_markdown(report)
    html_path = folder / "report.html"
    _write_atomically(folder / "report.json", report.to_json() + "\n")
    _write_atomically(folder / "summary.md", markdown)
    _write_atomically(html_path, render_html(report, history, title=week_title(week)))
    store.write_week(con, report, str(html_path), markdown)
    breaches = report.breaches()
    log(f"drift report {week}: {report.figures.get('traces', 0)} traces, "
        + (", ".join(f"{s.signal} vs {s.baseline} ({s.severity})" for s in breaches) or "no alert")
        + f"; {html_path}")
    return WeekOutcome(week.isoformat(), report, html_path, markdown)


def report_weeks(warehouse: Warehouse, data_dir: Path, weeks: list[str],
                 log: Callable[[str], None] = lambda _: None) -> list[WeekOutcome]:
    """The reports of `weeks` (Mondays, ISO), oldest first, so each week's trend charts hold the
    weeks before it. One warehouse connection; the lake, the golden window's traffic and
    drift_history are read once for all the weeks, and each week's traffic serves as the next
    week's week before."""
    from evalflow.lib.drift import store
    from evalflow.lib.drift.config import load_drift_config
    from evalflow.lib.drift.inputs import load_run_reads
    from evalflow.lib.drift.render import trend_frame

    config = load_drift_config(data_dir)
    mondays = sorted(date.fromisoformat(week) for week in weeks)
    if not mondays:
        return []
    outcomes = []
    with warehouse.connect() as con:
        store.ensure_tables(con)
        reads = load_run_reads(con, data_dir, mondays, config)
        history = store.read_history(con)
        for week in mondays:
            outcome = report_week(con, data_dir, week, config, reads, history, log)
            history = trend_frame(outcome.report, history)  # what drift_history now holds, for the next week
            outcomes.append(outcome)
    return outcomes


def publish_drift_tables(data_dir: Path, warehouse: Warehouse) -> dict[str, int]:
    """drift_history, alerts and drift_reports to the lake, where analysts read them."""
    from evalflow.lib.common.lake import publish_tables
    from evalflow.lib.drift.store import DRIFT_TABLES

    return publish_tables(data_dir, warehouse, DRIFT_TABLES, message="publish the drift tables")


@dataclass
class AuditOutcome:
    day: date | None
    golden: str | None
    signals: list = field(default_factory=list)
    summary: str = ""
    alert_rows: int = 0  # rows of `alerts` after the audit (the asset's row count)

    def worst_severity(self) -> str | None:
        found = {s.severity for s in self.signals if s.severity}
        return "ERROR" if "ERROR" in found else ("WARN" if found else None)

    def metadata(self) -> dict[str, Any]:
        return {"day": self.day.isoformat() if self.day else "none", "golden": self.golden or "none",
                "mismatches": sum(1 for s in self.signals if s.severity), "result": self.summary}


def audit_prompt_hashes(warehouse: Warehouse, data_dir: Path, day: date | None = None) -> AuditOutcome:
    """The nightly audit: `day` (default: the newest day with traffic) against the golden set's
    production baseline; breaches become `*_nightly` alerts of that day's week."""
    from evalflow.lib.common.warehouse import has_table
    from evalflow.lib.drift import store
    from evalflow.lib.drift.config import load_drift_config
    from evalflow.lib.drift.inputs import load_golden, load_traffic
    from evalflow.lib.drift.report import alert_id, template_hash_check

    def alert_rows(con) -> int:
        return con.execute("SELECT count(*) FROM alerts").fetchone()[0] if has_table(con, "alerts") else 0

    config = load_drift_config(data_dir)
    golden = load_golden(data_dir)
    with warehouse.connect() as con:
        if day is None and has_table(con, "redacted_traces"):
            day = con.execute("SELECT max(event_date) FROM redacted_traces").fetchone()[0]
        if day is None:
            return AuditOutcome(None, golden.ref if golden else None, summary="no traffic yet",
                                alert_rows=alert_rows(con))
        if golden is None or golden.baseline is None:
            return AuditOutcome(day, golden.ref if golden else None, alert_rows=alert_rows(con),
                                summary=f"{day}: no golden version with a production baseline to compare with")
        traffic = load_traffic(con, day, day, config, embeddings=False, texts=False)
        signals = template_hash_check(traffic, golden, config)
        week = day - timedelta(days=day.weekday())
        rows = [{"alert_id": alert_id(week, s.signal, s.baseline), "week_start": week, "signal": s.signal,
                 "baseline": s.baseline, "severity": s.severity, "value": s.value, "threshold": s.threshold,
                 "detail": f"{day}: {s.detail}"} for s in signals if s.severity]
        if rows:
            # Earlier nights' alerts of the week stay (their record and delivery are kept); a
            # mismatch seen again keeps its alert_id (one alert per signal and week) and, its
            # detail naming this night, is raised and sent again.
            fresh = {row["alert_id"] for row in rows}
            kept = [a for a in store.read_alerts(con, week)
                    if a["signal"].endswith(store.NIGHTLY_SUFFIX) and a["alert_id"] not in fresh]
            store.write_alerts(con, week, kept + rows, nightly=True)
        rows_now = alert_rows(con)
    breaches = [s for s in signals if s.severity]
    summary = (f"{day}: {traffic.traces} traces; "
               + ("; ".join(f"{s.signal} {s.severity}: {s.detail}" for s in breaches)
                  or f"every hash and template id is one {golden.ref}'s baseline knew"))
    return AuditOutcome(day, golden.ref, signals, summary, rows_now)
