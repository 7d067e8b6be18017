"""The drift stage's wiring: the weekly schedule's partition, the runner's weekly phase, the asset
checks' grouping of signals, the nightly prompt-hash audit and the alert webhook (a real HTTP
server on 127.0.0.1 that records what it is sent)."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from test_drift_report import golden_cases, golden_from, make_traffic, week_inputs

from evalflow.lib.common.settings import load_settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.drift import store
from evalflow.lib.drift.checks import CHECKS, check_for, check_results
from evalflow.lib.drift.config import DriftConfig
from evalflow.lib.drift.report import compute_week
from evalflow.lib.drift.webhook import deliver_pending


# ----------------------------------------------------------------------------- schedule, phases
@pytest.mark.parametrize("when, week", [
    (datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc), "2026-11-23"),  # a Monday: the week that just ended
    (datetime(2027, 1, 4, 6, 0, tzinfo=timezone.utc), "2026-12-28"),   # across a year end
])
def test_the_weekly_schedule_reports_the_week_that_ended_on_sunday(when, week):
    from evalflow.defs.drift.automation import drift_report_schedule

    request = drift_report_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == week
    assert request.run_key == f"drift-{week}"


def test_the_weekly_schedule_skips_before_a_week_with_data_has_ended(monkeypatch):
    from evalflow.defs.drift import automation

    start = dg.WeeklyPartitionsDefinition(start_date="2026-11-09", day_offset=1, timezone="UTC", end_offset=1)
    monkeypatch.setattr(automation, "weekly_partitions", start)
    first_monday = datetime(2026, 11, 9, 6, 0, tzinfo=timezone.utc)  # the data starts today
    skipped = automation.drift_report_schedule(dg.build_schedule_context(scheduled_execution_time=first_monday))
    assert isinstance(skipped, dg.SkipReason) and "2026-11-09" in skipped.skip_message
    later = first_monday.replace(day=16)
    assert automation.drift_report_schedule(
        dg.build_schedule_context(scheduled_execution_time=later)).partition_key == "2026-11-09"


def test_the_runner_reports_every_week_that_holds_a_day_monday_to_sunday():
    from evalflow.cli.runner import week_starts

    assert week_starts(date(2026, 11, 2), date(2026, 11, 2)) == ["2026-11-02"]
    assert week_starts(date(2026, 11, 8), date(2026, 11, 9)) == ["2026-11-02", "2026-11-09"]  # Sunday, Monday
    assert week_starts(date(2026, 11, 4), date(2026, 12, 1)) == ["2026-11-02", "2026-11-09", "2026-11-16",
                                                                 "2026-11-23", "2026-11-30"]


def test_drift_report_runs_in_its_own_weekly_phase_after_everything_it_reads():
    from evalflow.cli.runner import _load_definitions, _phases

    phases = {name: {k.to_user_string() for a in assets for k in a.keys}
              for name, assets, _ in _phases(_load_definitions())}
    assert phases["weekly reports"] == {"drift_report"}
    assert {"golden_set", "rolling_set", "lake_tables", "prompt_hash_audit"} <= phases["downstream"]


def test_the_weekly_partitions_run_monday_to_sunday():
    from evalflow.defs.partitions import weekly_partitions

    keys = weekly_partitions.get_partition_keys()
    assert keys and all(date.fromisoformat(k).weekday() == 0 for k in keys)  # not vacuously: weeks exist


# ----------------------------------------------------------------------------- checks
def test_every_signal_a_report_can_raise_belongs_to_one_check():
    window = make_traffic(date(2026, 9, 7), 14, 80, seed=1)
    week = make_traffic(date(2026, 9, 21), 7, 80, seed=2)
    previous = make_traffic(date(2026, 9, 14), 7, 80, seed=3)
    report = compute_week(week_inputs(week, previous, window), DriftConfig())
    names = {s.signal for s in report.signals} - {"traffic"}
    assert len(names) >= 10
    assert {n: check_for(n) for n in names if check_for(n) is None} == {}
    for name in names | {"system_prompt_nightly"}:  # one check each
        assert sum(name.startswith(prefixes) for _, prefixes in CHECKS.values()) == 1, name
    assert check_for("system_prompt_nightly") == "prompts_match_golden"
    assert check_for("kb_changed_docs") == "retrieval_stable"


class _Outcome:
    def __init__(self, week, signals):
        self.week, self._signals = week, signals

    def breaches(self):
        return [s for s in self._signals if s.severity]


def test_a_check_fails_with_the_worst_severity_of_its_signals_across_the_weeks():
    from evalflow.lib.drift.report import SignalResult

    outcomes = [
        _Outcome("2026-11-02", [SignalResult("intent_mix", "previous_week", 0.2, 0.1, "WARN", "moved")]),
        _Outcome("2026-11-09", [SignalResult("intent_mix", "golden", 0.4, 0.1, "ERROR", "moved more"),
                                SignalResult("retrieval", "golden", 0.9, 0.6, None, "fine")]),
    ]
    results = {r.name: r for r in check_results(outcomes)}
    assert set(results) == set(CHECKS)
    assert not results["intent_mix_stable"].passed and results["intent_mix_stable"].severity == "ERROR"
    assert results["intent_mix_stable"].metadata["weeks"] == "2026-11-02, 2026-11-09"
    assert results["retrieval_stable"].passed


# ----------------------------------------------------------------------------- webhook
class _Receiver(BaseHTTPRequestHandler):
    status = 200
    bodies: list = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.bodies, _Receiver.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _warehouse_with_alerts(tmp_path: Path, monkeypatch) -> Warehouse:
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.warehouse_path.parent.mkdir(parents=True)
    warehouse = Warehouse(settings.warehouse_path)
    alerts = [{"alert_id": f"alert-{i}", "week_start": date(2026, 11, 9), "signal": signal, "baseline": "golden",
               "severity": "WARN", "value": 0.3, "threshold": 0.1, "detail": f"{signal} moved"}
              for i, signal in enumerate(("intent_mix", "retrieval"))]
    with warehouse.connect() as con:
        store.write_alerts(con, date(2026, 11, 9), alerts)
    return warehouse


def test_new_alerts_are_posted_once_and_marked_delivered(tmp_path, monkeypatch, receiver):
    warehouse = _warehouse_with_alerts(tmp_path, monkeypatch)
    first = deliver_pending(load_settings(), url=receiver)
    assert first.delivered == 2 and first.skipped is None
    assert [a["signal"] for a in _Receiver.bodies[0]["alerts"]] == ["intent_mix", "retrieval"]
    assert _Receiver.bodies[0]["alerts"][0]["week_start"] == "2026-11-09"
    again = deliver_pending(load_settings(), url=receiver)
    assert again.delivered == 0 and again.skipped == "no undelivered alert"
    assert len(_Receiver.bodies) == 1
    with warehouse.connect(read_only=True) as con:
        assert store.undelivered_alerts(con) == []


def test_a_refused_post_keeps_the_alerts_for_the_next_try(tmp_path, monkeypatch, receiver):
    warehouse = _warehouse_with_alerts(tmp_path, monkeypatch)
    _Receiver.status = 503
    refused = deliver_pending(load_settings(), url=receiver)
    assert refused.delivered == 0 and "HTTP 503" in refused.skipped
    with warehouse.connect(read_only=True) as con:
        assert len(store.undelivered_alerts(con)) == 2
    _Receiver.status = 200
    assert deliver_pending(load_settings(), url=receiver).delivered == 2


def test_an_unreachable_webhook_loses_nothing(tmp_path, monkeypatch):
    warehouse = _warehouse_with_alerts(tmp_path, monkeypatch)
    outcome = deliver_pending(load_settings(), url="http://127.0.0.1:9/nothing-listens-here")
    assert outcome.delivered == 0 and "could not be reached" in outcome.skipped
    with warehouse.connect(read_only=True) as con:
        assert len(store.undelivered_alerts(con)) == 2


def test_without_a_url_the_sensor_does_nothing(tmp_path, monkeypatch):
    from evalflow.defs.drift.automation import alert_webhook_sensor

    _warehouse_with_alerts(tmp_path, monkeypatch)
    monkeypatch.delenv("EVALFLOW_ALERT_WEBHOOK_URL", raising=False)
    result = alert_webhook_sensor(dg.build_sensor_context())
    assert isinstance(result, dg.SkipReason) and "EVALFLOW_ALERT_WEBHOOK_URL is not set" in result.skip_message


def test_the_sensor_delivers_to_the_configured_url(tmp_path, monkeypatch, receiver):
    from evalflow.defs.drift.automation import alert_webhook_sensor

    _warehouse_with_alerts(tmp_path, monkeypatch)
    monkeypatch.setenv("EVALFLOW_ALERT_WEBHOOK_URL", receiver)
    result = alert_webhook_sensor(dg.build_sensor_context())
    assert "delivered 2 alerts" in result.skip_message
    assert len(_Receiver.bodies) == 1


# ----------------------------------------------------------------------------- nightly audit
@pytest.fixture
def audit_warehouse(tmp_path, monkeypatch) -> Warehouse:
    """The warehouse of <tmp>/data with one day of traffic, 2026-09-23, on a system prompt the
    golden set's baseline never had (the lake's golden version and the day's traffic are stand-ins)."""
    window = make_traffic(date(2026, 9, 7), 14, 60, seed=1)
    golden = golden_from(window, golden_cases())
    day = make_traffic(date(2026, 9, 23), 1, 60, seed=4, system_prompt="sp-cccccccccccccccc")
    monkeypatch.setattr("evalflow.lib.drift.inputs.load_golden", lambda _data_dir: golden)
    monkeypatch.setattr("evalflow.lib.drift.inputs.load_traffic", lambda *a, **k: day)
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    warehouse = Warehouse(load_settings().warehouse_path)
    with warehouse.connect() as con:
        con.execute("CREATE TABLE redacted_traces (event_date DATE)")
        con.execute("INSERT INTO redacted_traces VALUES ('2026-09-23')")
    return warehouse


def test_the_nightly_audit_alerts_on_a_hash_the_golden_set_never_saw(audit_warehouse, tmp_path):
    from evalflow.lib.drift import weekly

    outcome = weekly.audit_prompt_hashes(audit_warehouse, tmp_path / "data")
    assert outcome.day == date(2026, 9, 23) and outcome.worst_severity() is not None
    assert outcome.alert_rows == len([s for s in outcome.signals if s.severity]) > 0
    with audit_warehouse.connect(read_only=True) as con:
        alerts = store.read_alerts(con)
    assert alerts and all(a["signal"].endswith("_nightly") for a in alerts)
    assert {a["week_start"] for a in alerts} == {date(2026, 9, 21)}
    assert all(a["detail"].startswith("2026-09-23: ") for a in alerts)


def test_the_audit_asset_shows_the_alerts_row_count_and_fails_its_check(audit_warehouse):
    from evalflow.defs.drift.assets import prompt_hash_audit
    from evalflow.defs.resources import WarehouseResource

    result = dg.materialize([prompt_hash_audit], resources={"warehouse": WarehouseResource()})
    [materialization] = result.asset_materializations_for_node("prompt_hash_audit")
    assert materialization.metadata["dagster/row_count"].value == 1  # the system-prompt alert
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


@pytest.mark.parametrize("url, message", [
    ("ftp://hooks.example/T0K3N", "must start with http:// or https://"),
    ("https://[::1/T0K3N", "is not a valid URL"),
    ("http://hooks.example:99999/T0K3N", "is not a valid URL"),
    ("https:///T0K3N", "names no host"),
])
def test_a_bad_webhook_url_is_refused_without_echoing_it(monkeypatch, url, message):
    from evalflow.lib.common.settings import SettingError
    from evalflow.lib.drift.webhook import webhook_url

    monkeypatch.setenv("EVALFLOW_ALERT_WEBHOOK_URL", url)
    with pytest.raises(SettingError, match="EVALFLOW_ALERT_WEBHOOK_URL") as caught:
        webhook_url()
    assert message in str(caught.value) and "T0K3N" not in str(caught.value)
