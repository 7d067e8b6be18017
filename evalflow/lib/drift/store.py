"""The drift report's tables in the warehouse, and their writes and reads.

- `drift_history`: one row per week, signal and baseline (value, threshold, severity, detail):
  what the report's trend charts read.
- `alerts`: one row per breach (a signal over its threshold in a week, against one baseline),
  with a stable `alert_id` (hash of week, signal and baseline) and `delivered_at`, NULL until
  the webhook sensor delivered it. The nightly prompt-hash check adds its rows here too (signals
  named *_nightly, written by `write_alerts(..., nightly=True)`), and a weekly write leaves them be.
- `drift_reports`: one row per week: where its HTML report is, the markdown summary, and the
  whole report as JSON (every signal's data: per-intent contributions, per-case overlaps...).

`write_week` replaces one week's rows of the three tables in one transaction: a re-run of a week
gives the same rows, and an alert that is unchanged (same severity, value, threshold and detail)
keeps its raised_at and delivered_at, so it is not sent twice; a changed one is raised again,
and one that no longer breaches is gone.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import polars as pl

from evalflow.lib.common import catalog
from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.warehouse import has_table

if TYPE_CHECKING:
    from evalflow.lib.drift.report import WeekReport

DRIFT_TABLES = ("drift_history", "alerts", "drift_reports")
DRIFT_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_history (
    week_start DATE NOT NULL,
    signal VARCHAR NOT NULL,
    baseline VARCHAR NOT NULL,
    value DOUBLE,
    threshold DOUBLE,
    severity VARCHAR,
    detail VARCHAR,
    computed_at TIMESTAMPTZ,
    PRIMARY KEY (week_start, signal, baseline)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR PRIMARY KEY,
    week_start DATE NOT NULL,
    signal VARCHAR NOT NULL,
    baseline VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    value DOUBLE,
    threshold DOUBLE,
    detail VARCHAR,
    raised_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS drift_reports (
    week_start DATE PRIMARY KEY,
    html_path VARCHAR,
    markdown VARCHAR,
    report_json JSON,
    computed_at TIMESTAMPTZ
);
"""
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "week_start": pl.Date, "signal": pl.String, "baseline": pl.String, "value": pl.Float64,
    "threshold": pl.Float64, "severity": pl.String, "detail": pl.String, "computed_at": pl.Datetime("us", "UTC"),
}
_ALERT_COLUMNS = ("alert_id", "week_start", "signal", "baseline", "severity", "value", "threshold", "detail",
                  "raised_at", "delivered_at")


def ensure_tables(con) -> None:
    for statement in DRIFT_SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


@contextmanager
def _transaction(con, in_transaction: bool) -> Iterator[None]:
    """One transaction of our own, or (in_transaction) the caller's, which commits or rolls back.

    DuckDB cannot tell whether a connection is inside a transaction, and a BEGIN inside one aborts
    it, so the caller says."""
    if in_transaction:
        yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _merge_alerts(existing: dict[str, tuple], alerts: Sequence[dict[str, Any]], now: datetime) -> list[tuple]:
    rows = []
    for alert in alerts:
        before = existing.get(alert["alert_id"])
        unchanged = before is not None and all(
            _same(before[i], alert[c]) for i, c in ((0, "severity"), (1, "value"), (2, "threshold"), (3, "detail")))
        raised_at, delivered_at = (before[4], before[5]) if unchanged else (now, None)
        rows.append((alert["alert_id"], alert["week_start"], alert["signal"], alert["baseline"], alert["severity"],
                     alert["value"], alert["threshold"], alert["detail"], raised_at, delivered_at))
    return rows


NIGHTLY_SUFFIX = "_nightly"


def write_alerts(con, week_start: date, alerts: Sequence[dict[str, Any]], *, nightly: bool = False,
                 now: datetime | None = None, in_transaction: bool = False) -> None:
    """Replace the week's weekly alerts (or, with `nightly`, its alerts of signals named
    *_nightly: the nightly hash check's) with `alerts` (rows as WeekReport.alerts() gives them:
    alert_id, week_start, signal, baseline, severity, value, threshold, detail), keeping
    raised_at and delivered_at of unchanged ones. One transaction (the caller's with
    `in_transaction`)."""
    with _transaction(con, in_transaction):
        ensure_tables(con)
        _replace_alerts(con, week_start, alerts, nightly, now or utcnow())
        catalog.apply_catalog(con, ("alerts",))


def _replace_alerts(con, week_start: date, alerts: Sequence[dict[str, Any]], nightly: bool, now: datetime) -> None:
    where = f"week_start = ? AND {'' if nightly else 'NOT '}ends_with(signal, '{NIGHTLY_SUFFIX}')"
    existing = {r[0]: r[1:] for r in con.execute(
        f"SELECT alert_id, severity, value, threshold, detail, raised_at, delivered_at FROM alerts WHERE {where}",
        [week_start]).fetchall()}
    rows = _merge_alerts(existing, alerts, now)
    con.execute(f"DELETE FROM alerts WHERE {where}", [week_start])
    if rows:
        con.executemany(f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES "
                        f"({', '.join('?' for _ in _ALERT_COLUMNS)})", rows)


def write_week(con, report: WeekReport, html_path: str, markdown: str, *, in_transaction: bool = False) -> None:
    """Replace the week's rows of drift_history, alerts and drift_reports in one transaction (on a
    plain connection; with `in_transaction`, inside the caller's). See the module doc for what a
    re-run keeps."""
    now = report.computed_at or utcnow()
    history = report.history_rows()
    week = report.week_start
    with _transaction(con, in_transaction):
        ensure_tables(con)
        con.execute("DELETE FROM drift_history WHERE week_start = ?", [week])
        if history:
            con.executemany("INSERT INTO drift_history (week_start, signal, baseline, value, threshold, severity, "
                            "detail, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [(r["week_start"], r["signal"], r["baseline"], r["value"], r["threshold"], r["severity"],
                              r["detail"], r["computed_at"] or now) for r in history])
        _replace_alerts(con, week, report.alerts(), False, now)
        con.execute("DELETE FROM drift_reports WHERE week_start = ?", [week])
        con.execute("INSERT INTO drift_reports (week_start, html_path, markdown, report_json, computed_at) "
                    "VALUES (?, ?, ?, ?, ?)", [week, html_path, markdown, report.to_json(), now])
        catalog.apply_catalog(con, DRIFT_TABLES)


def read_history(con) -> pl.DataFrame:
    """Every drift_history row (HISTORY_SCHEMA), by week, signal and baseline; empty without the table."""
    if not has_table(con, "drift_history"):
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    frame = pl.from_arrow(con.sql(f"SELECT {', '.join(HISTORY_SCHEMA)} FROM drift_history "
                                  "ORDER BY week_start, signal, baseline").to_arrow_table())
    return frame.cast(HISTORY_SCHEMA) if frame.height else pl.DataFrame(schema=HISTORY_SCHEMA)


def read_alerts(con, week_start: date | None = None) -> list[dict[str, Any]]:
    if not has_table(con, "alerts"):
        return []
    where, params = ("WHERE week_start = ?", [week_start]) if week_start else ("", [])
    rows = con.execute(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts {where} "
                       "ORDER BY week_start, severity, signal, baseline", params).fetchall()
    return [dict(zip(_ALERT_COLUMNS, r)) for r in rows]


def undelivered_alerts(con) -> list[dict[str, Any]]:
    """Alerts the webhook has not delivered yet, oldest first."""
    if not has_table(con, "alerts"):
        return []
    rows = con.execute(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE delivered_at IS NULL "
                       "ORDER BY raised_at, week_start, alert_id").fetchall()
    return [dict(zip(_ALERT_COLUMNS, r)) for r in rows]


def mark_delivered(con, alert_ids: Sequence[str], at: datetime) -> None:
    """Set delivered_at on these alerts (those still undelivered): one UPDATE, one transaction."""
    if not alert_ids:
        return
    con.execute(f"UPDATE alerts SET delivered_at = ? WHERE delivered_at IS NULL AND alert_id IN "
                f"({', '.join('?' for _ in alert_ids)})", [at, *alert_ids])


def read_report(con, week_start: date) -> dict[str, Any] | None:
    """The drift_reports row of a week (report_json parsed), or None."""
    import json

    if not has_table(con, "drift_reports"):
        return None
    rows = con.execute("SELECT week_start, html_path, markdown, report_json, computed_at FROM drift_reports "
                       "WHERE week_start = ?", [week_start]).fetchall()
    if not rows:
        return None
    week, path, markdown, text, at = rows[0]
    return {"week_start": week, "html_path": path, "markdown": markdown, "report": json.loads(text),
            "computed_at": at}
