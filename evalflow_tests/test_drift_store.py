"""The drift tables (lib/drift/store.py): one transaction per week, re-runs that give the same rows,
alerts that are not delivered twice, and nightly alerts kept apart from the weekly ones."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.drift import store
from evalflow.lib.drift.report import SignalResult, WeekReport, alert_id

MONDAY = date(2026, 10, 5)
T1 = datetime(2026, 10, 12, 6, tzinfo=timezone.utc)
T2 = datetime(2026, 10, 13, 6, tzinfo=timezone.utc)


def report(at: datetime = T1, js: float = 0.03, severity: str | None = "WARN", week: date = MONDAY) -> WeekReport:
    return WeekReport(week, [
        SignalResult("traffic", "none", 7000, None, None, "7 of 7 days", {}),
        SignalResult("intent_mix", "golden", js, 0.01, severity, f"JS {js}", {"intents": []}),
        SignalResult("system_prompt", "golden", 0.5, 0.01, "ERROR", "new hash sp-1", {}),
    ], {"traces": 7000}, computed_at=at)


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse" / "evalflow.duckdb")


def write(warehouse: Warehouse, rep: WeekReport, **kwargs) -> None:
    with warehouse.connect() as con:
        store.write_week(con, rep, "/data/reports/drift/2026-10-05/report.html", "# week", **kwargs)


def test_a_week_writes_its_history_alerts_and_report(warehouse):
    write(warehouse, report())
    with warehouse.connect(read_only=True) as con:
        history = store.read_history(con)
        alerts = store.read_alerts(con)
        saved = store.read_report(con, MONDAY)
    assert history.height == 3 and history.get_column("signal").to_list() == ["intent_mix", "system_prompt", "traffic"]
    assert history.filter(history["signal"] == "intent_mix").row(0, named=True)["threshold"] == 0.01
    assert [(a["signal"], a["severity"], a["delivered_at"]) for a in alerts] == [
        ("system_prompt", "ERROR", None), ("intent_mix", "WARN", None)]
    assert alerts[0]["alert_id"] == alert_id(MONDAY, "system_prompt", "golden")
    assert saved["markdown"] == "# week" and saved["report"]["signals"][1]["signal"] == "intent_mix"


def test_a_rerun_gives_the_same_rows_and_keeps_delivered_alerts_delivered(warehouse):
    write(warehouse, report(T1))
    with warehouse.connect() as con:
        store.mark_delivered(con, [alert_id(MONDAY, "system_prompt", "golden")], T1)
    write(warehouse, report(T2))
    with warehouse.connect(read_only=True) as con:
        alerts = {a["signal"]: a for a in store.read_alerts(con)}
        pending = store.undelivered_alerts(con)
        history = store.read_history(con)
    assert history.height == 3  # replaced, not appended
    assert alerts["system_prompt"]["delivered_at"] == T1 and alerts["system_prompt"]["raised_at"] == T1
    assert [a["signal"] for a in pending] == ["intent_mix"]


def test_a_changed_alert_is_raised_again_and_a_resolved_one_goes(warehouse):
    write(warehouse, report(T1, js=0.03))
    with warehouse.connect() as con:
        store.mark_delivered(con, [a["alert_id"] for a in store.undelivered_alerts(con)], T1)
    write(warehouse, report(T2, js=0.05))  # the same breach, a new value: news again
    with warehouse.connect(read_only=True) as con:
        pending = store.undelivered_alerts(con)
    assert [(a["signal"], a["value"], a["raised_at"]) for a in pending] == [("intent_mix", 0.05, T2)]
    write(warehouse, report(T2, js=0.005, severity=None))
    with warehouse.connect(read_only=True) as con:
        assert [a["signal"] for a in store.read_alerts(con)] == ["system_prompt"]


def test_a_failed_write_leaves_the_week_as_it_was(warehouse, monkeypatch):
    write(warehouse, report(T1))

    def broken(con, tables):
        raise RuntimeError("killed")

    monkeypatch.setattr(store.catalog, "apply_catalog", broken)
    with pytest.raises(RuntimeError, match="killed"):
        write(warehouse, report(T2, js=0.09))
    with warehouse.connect(read_only=True) as con:
        history = store.read_history(con)
        assert history.filter(history["signal"] == "intent_mix").get_column("value").to_list() == [0.03]
        assert len(store.read_alerts(con)) == 2
        assert store.read_report(con, MONDAY)["report"]["computed_at"] == T1.isoformat()


def test_inside_the_callers_transaction(warehouse):
    with warehouse.transaction() as con:
        store.write_week(con, report(), "r.html", "# week", in_transaction=True)
    with warehouse.connect(read_only=True) as con:
        assert store.read_history(con).height == 3


def test_nightly_and_weekly_alerts_do_not_replace_each_other(warehouse):
    night = {"alert_id": alert_id(MONDAY, "system_prompt_nightly", "golden"), "week_start": MONDAY,
             "signal": "system_prompt_nightly", "baseline": "golden", "severity": "ERROR", "value": 1.0,
             "threshold": 0.01, "detail": "new hash"}
    with warehouse.connect() as con:
        store.write_alerts(con, MONDAY, [night], nightly=True)
    write(warehouse, report(T1))
    with warehouse.connect() as con:
        assert {a["signal"] for a in store.read_alerts(con)} == {"system_prompt_nightly", "system_prompt",
                                                                "intent_mix"}
        store.write_alerts(con, MONDAY, [], nightly=True)
        assert {a["signal"] for a in store.read_alerts(con)} == {"system_prompt", "intent_mix"}


def test_weeks_are_kept_apart_and_reads_work_before_any_write(warehouse):
    with warehouse.connect() as con:
        assert store.read_history(con).is_empty() and store.undelivered_alerts(con) == []
        assert store.read_report(con, MONDAY) is None
        store.mark_delivered(con, [], T1)
    write(warehouse, report(T1))
    write(warehouse, report(T1, week=date(2026, 10, 12)))
    with warehouse.connect(read_only=True) as con:
        weeks = store.read_history(con).get_column("week_start").unique().sort().to_list()
        assert weeks == [MONDAY, date(2026, 10, 12)]
        assert len(store.read_alerts(con, MONDAY)) == 2 and len(store.read_alerts(con)) == 4
