"""load_week_inputs and production_baseline on a tiny warehouse and lake in tmp_path: which traces,
vectors, versions and figures a week's report reads, and the whole path to the tables."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest

from evalflow.lib.drift.baseline import production_baseline
from evalflow.lib.drift.config import DriftConfig
from evalflow.lib.drift.inputs import FRAME_SCHEMA, load_golden, load_traffic, load_week_inputs
from evalflow.lib.drift.render import render_html, render_markdown
from evalflow.lib.drift.report import compute_week
from evalflow.lib.drift.store import read_alerts, read_history, write_week
from evalflow.lib.snapshots import store as snapshots
from evalflow.lib.snapshots.content import split_for

MONDAY = date(2026, 10, 5)
WINDOW = date(2026, 9, 14)  # the golden cases' week
DDL = """
CREATE TABLE redacted_traces (trace_id VARCHAR, event_date DATE, "timestamp" TIMESTAMPTZ, session_id VARCHAR,
    system_prompt_hash VARCHAR, tool_schema_hash VARCHAR, prompt_template_id VARCHAR, user_query VARCHAR,
    retrieved_context JSON);
CREATE TABLE trace_signals (trace_id VARCHAR, event_date DATE, intent_id VARCHAR, failure_modes VARCHAR[],
    is_failure BOOLEAN);
CREATE TABLE trace_embeddings (trace_id VARCHAR, event_date DATE, text_sha256 VARCHAR, model_version VARCHAR,
    backend VARCHAR);
CREATE TABLE embedding_cache (text_sha256 VARCHAR, model VARCHAR, model_version VARCHAR, backend VARCHAR,
    vector FLOAT[4], created_at TIMESTAMPTZ);
CREATE TABLE intent_catalog (intent_id VARCHAR, name VARCHAR);
"""
INTENTS = {"I-1": ("card / lost", "lost card replacement", "cards/lost#1", "A lost card is replaced in 5 days"),
           "I-2": ("transfer / wire", "wire transfer cutoff", "transfers/wire#1", "Wires sent before 5pm arrive")}


def add_week(con, start: date, per_day: int, *, prompt: str = "sp-1") -> None:
    """per_day traces a day in sessions of two (same intent), I-1 twice as often as I-2; the
    second trace of every fifth session is an injection; one trace a week has no signals and
    one is embedded by another model version."""
    traces, signals, embedded, vectors = [], [], [], []
    n = 0
    for day in range(7):
        for i in range(per_day):
            n += 1
            intent = "I-1" if (n // 2) % 3 else "I-2"
            _, words, doc_id, text = INTENTS[intent]
            trace_id = f"{start.isoformat()}-{n:04d}"
            when = datetime.combine(start + timedelta(days=day), datetime.min.time(), timezone.utc) + timedelta(
                minutes=i)
            context = json.dumps([{"doc_id": doc_id, "text": text, "score": 0.9}])
            traces.append([trace_id, when.date(), when, f"s-{start}-{n // 2}", prompt, f"how about {words}", context])
            if n != 3:
                modes = ["prompt_injection"] if (n // 2) % 5 == 0 and n % 2 else []
                signals.append([trace_id, when.date(), intent, modes, bool(modes) or n % 4 == 0])
            sha = hashlib.sha256(trace_id.encode()).hexdigest()
            version = "old" if n == 1 else "v1"
            embedded.append([trace_id, when.date(), sha, version])
            vectors.append([sha, version, [1.0, 0.0, 0.0, 0.0] if intent == "I-1" else [0.0, 1.0, 0.0, 0.0]])
    for table, rows, columns, fixed in (
            ("redacted_traces", traces, ("trace_id", "event_date", "timestamp", "session_id", "system_prompt_hash",
                                         "user_query", "retrieved_context"), "'ts-1', 'support-v3'"),
            ("trace_signals", signals, ("trace_id", "event_date", "intent_id", "failure_modes", "is_failure"), ""),
            ("trace_embeddings", embedded, ("trace_id", "event_date", "text_sha256", "model_version"), "'onnx'"),
            ("embedding_cache", vectors, ("text_sha256", "model_version", "vector"), "'m', 'onnx', now()")):
        con.register("incoming", pl.DataFrame(rows, schema=columns, orient="row").to_arrow())
        names = ", ".join(f'"{c}"' for c in columns)
        extra = {"redacted_traces": ', tool_schema_hash, prompt_template_id',
                 "trace_embeddings": ", backend", "embedding_cache": ", model, backend, created_at"}.get(table, "")
        con.execute(f"INSERT INTO {table} ({names}{extra}) SELECT {names}{', ' + fixed if fixed else ''} FROM incoming")
        con.unregister("incoming")


def case(i: int, query: str, verdict: str, source_date: str) -> dict:
    case_id = f"case-{i:016x}"
    return {"case_id": case_id, "split": split_for(case_id), "source_date": source_date,
            "input_payload": {"user_query": query}, "labels": {"accuracy": {"verdict": verdict}},
            "slice_tags": [], "failure_modes": []}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("drift-data")
    path = data / "warehouse" / "evalflow.duckdb"
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))
    con.execute(DDL)
    con.executemany("INSERT INTO intent_catalog VALUES (?, ?)", [(k, v[0]) for k, v in INTENTS.items()])
    add_week(con, WINDOW, 12)
    add_week(con, MONDAY - timedelta(days=7), 12)
    add_week(con, MONDAY, 12, prompt="sp-2")
    con.close()
    golden = [case(1, "lost card replacement please", "Pass", "2026-09-15"),
              case(2, "wire transfer cutoff today", "Pass", "2026-09-19"),
              case(3, "unrelated zebra question", "Fail", "2026-09-16")]
    snapshots.publish(data, "golden@v1", golden, author="t", message="first",
                      created_at=datetime(2026, 9, 25, tzinfo=timezone.utc))
    snapshots.publish(data, "rolling@2026-10-07", [case(7, "lost card", "Fail", "2026-10-06"),
                                                   case(8, "wire cutoff", "Pass", "2026-10-05")],
                      author="t", message="rolling")
    snapshots.publish(data, "rolling@2026-09-30", [case(9, "lost card", "Pass", "2026-09-29")],
                      author="t", message="rolling")
    return data, path, golden


CONFIG = DriftConfig(embedding_sample=10, embedding_min=5, min_traces=20)


def test_the_week_and_the_week_before(world):
    data, path, _ = world
    with duckdb.connect(str(path), read_only=True) as con:
        inputs = load_week_inputs(con, data, MONDAY, CONFIG)
    week = inputs.week
    assert (week.start, week.end, week.traces, week.days_with_data()) == (MONDAY, MONDAY + timedelta(days=6), 84, 7)
    assert week.frame.columns == list(FRAME_SCHEMA)
    assert set(week.frame.get_column("system_prompt_hash").to_list()) == {"sp-2"}
    no_signals = week.frame.filter(week.frame["trace_id"] == f"{MONDAY}-0003").row(0, named=True)
    assert no_signals["injection"] is None and no_signals["is_failure"] is None and no_signals["intent_id"] is None
    assert 0 < week.frame.get_column("injection").sum() < 84
    first = json.loads(week.frame.get_column("retrieved_context")[0])[0]
    assert first["doc_id"] in ("cards/lost#1", "transfers/wire#1")
    assert inputs.previous_week is not None and inputs.previous_week.traces == 84
    assert inputs.intent_names == {"I-1": "card / lost", "I-2": "transfer / wire"}


def test_the_traffic_counts_the_failure_modes_that_make_a_safety_case():
    """safety_share (the traffic) and safety_coverage (the golden set's safety edge set) must
    mean the same modes: inputs.py keeps its own two lists, split by kind."""
    from evalflow.lib.drift.inputs import INJECTION_MODES, POLICY_MODES
    from evalflow.lib.eval_cases.build import SAFETY_FAILURE_MODES

    assert set(INJECTION_MODES) | set(POLICY_MODES) == SAFETY_FAILURE_MODES


def test_embeddings_are_a_capped_sample_of_one_trace_per_session_from_one_model(world):
    data, path, _ = world
    with duckdb.connect(str(path), read_only=True) as con:
        traffic = load_traffic(con, MONDAY, MONDAY + timedelta(days=6), CONFIG)
        again = load_traffic(con, MONDAY, MONDAY + timedelta(days=6), CONFIG)
        everything = load_traffic(con, MONDAY, MONDAY + timedelta(days=6), DriftConfig(embedding_sample=1000))
        none = load_traffic(con, MONDAY, MONDAY + timedelta(days=6), CONFIG, embeddings=False)
    assert traffic.embeddings.shape == (10, 4) and traffic.embedding_key == ("v1", "onnx")
    assert (traffic.embeddings == again.embeddings).all()  # seeded
    assert traffic.embedded_traces == 83  # the one trace embedded by another model version is left out
    assert everything.embeddings.shape == (42, 4)  # 43 sessions, one of them embedded by another model only
    assert none.embeddings.shape == (0, 0)


def test_the_golden_version_its_recomputed_baseline_and_the_weeks_rolling_cases(world):
    data, path, golden = world
    with duckdb.connect(str(path), read_only=True) as con:
        inputs = load_week_inputs(con, data, MONDAY, CONFIG)
    assert inputs.golden.ref == "golden@v1" and len(inputs.golden.cases) == 3
    assert inputs.golden.manifest["production_baseline_recomputed"] is True
    base = inputs.golden.baseline
    assert base["window"] == {"start": "2026-09-15", "end": "2026-09-19"}
    assert base["traces"] == 60 and base["system_prompt_hashes"] == {"sp-1": 1.0}
    assert set(base["intent_shares"]) == {"I-1", "I-2"} and base["intent_design_effect"] > 1.5
    top_k = base["retrieval"]["top_k"]
    assert top_k[golden[0]["case_id"]] == ["cards/lost#1"] and top_k[golden[2]["case_id"]] == []
    assert inputs.golden_traffic.traces == 60
    assert inputs.golden_traffic.frame.get_column("user_query").null_count() == 60  # no text needed there
    assert inputs.golden_traffic.embeddings.shape[0] == 10
    assert sorted(c["case_id"] for c in inputs.rolling_cases) == [f"case-{7:016x}", f"case-{8:016x}"]
    assert [(h["ref"], round(h["pass_rate"], 4)) for h in inputs.golden_history] == [("golden@v1", 0.6667)]
    rates = {r["week_start"]: r["failure_rate"] for r in inputs.failure_rate_history}
    assert set(rates) == {WINDOW, MONDAY - timedelta(days=7), MONDAY}
    assert load_golden(data).ref == "golden@v1"


def test_the_production_baseline_is_plain_json_and_deterministic(world):
    data, path, golden = world
    with duckdb.connect(str(path), read_only=True) as con:
        first = production_baseline(con, golden, top_k=3)
        second = production_baseline(con, list(reversed(golden)), top_k=3)
        undated = production_baseline(con, [{**c, "source_date": None} for c in golden])
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["retrieval"]["k"] == 3
    assert first["retrieval"]["kb_docs"] == {
        "cards/lost#1": hashlib.sha256(INTENTS["I-1"][3].encode()).hexdigest(),
        "transfers/wire#1": hashlib.sha256(INTENTS["I-2"][3].encode()).hexdigest()}
    assert first["safety_traces"] == 60 and 0 < first["safety_signal_share"] < 0.2
    assert undated["window"] is None and undated["traces"] == 0


def test_a_week_start_that_is_not_a_monday_is_refused(world):
    data, path, _ = world
    with duckdb.connect(str(path), read_only=True) as con:
        with pytest.raises(ValueError, match="week_start must be a Monday, got 2026-10-06 \\(Tuesday\\)"):
            load_week_inputs(con, data, MONDAY + timedelta(days=1), CONFIG)


def test_from_the_warehouse_to_the_tables(world, tmp_path):
    """The whole path the weekly asset takes: inputs, report, HTML and markdown, tables."""
    data, path, _ = world
    with duckdb.connect(str(path), read_only=True) as con:
        inputs = load_week_inputs(con, data, MONDAY, CONFIG)
    report = compute_week(inputs, CONFIG)
    assert report.signal("system_prompt", "golden").severity == "ERROR"  # sp-2 is new this week
    assert report.signal("system_prompt", "previous_week").severity == "ERROR"
    assert report.signal("retrieval", "golden").value == 1.0
    page = render_html(report, read_history_or_empty(tmp_path), title="week")
    html_path = tmp_path / "report.html"
    html_path.write_text(page)
    target = tmp_path / "w.duckdb"
    with duckdb.connect(str(target)) as con:
        write_week(con, report, str(html_path), render_markdown(report))
        assert read_history(con).height == len(report.signals)
        assert {(a["signal"], a["baseline"]) for a in read_alerts(con)} >= {("system_prompt", "golden")}


def read_history_or_empty(folder):
    with duckdb.connect(str(folder / "empty.duckdb")) as con:
        return read_history(con)


def test_a_week_before_the_golden_window_ends_is_compared_with_the_week_before_only(world):
    data, path, _ = world
    # golden@v1 was drawn from traffic of 2026-09-15..19: the week of WINDOW - 7 days ends before
    # that, so what production looked like later is no baseline for it.
    earlier = WINDOW - timedelta(days=7)
    with duckdb.connect(str(path), read_only=True) as con:
        before = load_week_inputs(con, data, earlier, CONFIG)
        during = load_week_inputs(con, data, WINDOW, CONFIG)
    assert before.golden.ref == "golden@v1" and before.golden_traffic is None  # its queries, not its baseline
    assert before.golden_note == ("not compared with golden@v1: it was drawn from traffic up to 2026-09-19, "
                                  "after this week")
    report = compute_week(before, CONFIG)
    assert {s.baseline for s in report.signals} <= {"previous_week", "none"}
    assert "week before only" in render_markdown(report)
    assert during.golden is not None and during.golden_note is None  # the week that holds the window's end


def test_a_run_over_several_weeks_reads_what_they_share_once(world, tmp_path, monkeypatch):
    """report_weeks reads the lake and the golden window's traffic once for all its weeks, and a
    week's traffic serves as the next week's week before; each week's report is the one it gets
    alone."""
    import shutil
    from collections import Counter

    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.drift import inputs, weekly

    data, path, _ = world
    shutil.copy(path, tmp_path / "w.duckdb")
    weeks = [WINDOW, MONDAY - timedelta(days=7), MONDAY]
    with duckdb.connect(str(path), read_only=True) as con:
        alone = [compute_week(load_week_inputs(con, data, week, DriftConfig()), DriftConfig()) for week in weeks]
    lake, traffic = [], []
    lake_reads, load_traffic_ = inputs._lake_reads, inputs.load_traffic
    monkeypatch.setattr(inputs, "_lake_reads", lambda *a: lake.append(a) or lake_reads(*a))

    def counted(con, start, end, config, **kw):
        traffic.append((start, end, kw.get("texts", True), kw.get("embeddings", True)))
        return load_traffic_(con, start, end, config, **kw)

    monkeypatch.setattr(inputs, "load_traffic", counted)
    outcomes = weekly.report_weeks(Warehouse(tmp_path / "w.duckdb"), data, [w.isoformat() for w in reversed(weeks)])
    assert [o.week for o in outcomes] == [w.isoformat() for w in weeks]  # oldest first
    assert len(lake) == 1
    assert Counter(traffic).most_common(1)[0][1] == 1  # no window read twice
    assert (MONDAY - timedelta(days=7), MONDAY - timedelta(days=1), True, True) in traffic  # 09-28, read as a week
    for outcome, expected in zip(outcomes, alone):
        assert [(s.signal, s.baseline, s.value, s.threshold, s.severity, s.detail) for s in outcome.report.signals] \
            == [(s.signal, s.baseline, s.value, s.threshold, s.severity, s.detail) for s in expected.signals]
    assert outcomes[-1].report.figures["golden"] == "golden@v1"
    assert len({t for t in traffic if t[2] is False}) == 1  # the golden window's traffic, once


def test_the_weekly_asset_writes_the_week_and_shows_its_figures(world, tmp_path, monkeypatch):
    import shutil

    import dagster as dg

    from evalflow.defs.drift.assets import drift_report
    from evalflow.defs.resources import WarehouseResource

    data, _, _ = world
    shutil.copytree(data, tmp_path / "data")
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    result = dg.materialize([drift_report], partition_key=MONDAY.isoformat(),
                            resources={"warehouse": WarehouseResource()})
    [materialization] = result.asset_materializations_for_node("drift_report")
    meta = materialization.metadata
    html = tmp_path / "data" / "reports" / "drift" / MONDAY.isoformat() / "report.html"
    assert meta["report"].value == str(html) and html.is_file()
    assert meta["summary"].value.startswith(f"# Drift report, week {MONDAY.isoformat()}")
    assert meta["traces"].value == 84
    with duckdb.connect(str(tmp_path / "data" / "warehouse" / "evalflow.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM drift_history WHERE week_start = ?", [MONDAY]).fetchone()[0]
    assert meta["dagster/row_count"].value == rows > 0
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["prompts_match_golden"].passed  # sp-2 is new this week
