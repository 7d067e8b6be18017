"""Kill drills on the real command: `evalflow run` as a subprocess, stopped with SIGKILL at
several moments, then run again; it must finish by itself and reach the result of a run that
was never interrupted. Also: a reader holding the warehouse, a second run at once, SIGTERM,
a sample stranded before its export."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import small_demo_env

from evalflow import cli


def _env(root: Path) -> dict[str, str]:
    return small_demo_env(root)


def _start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalflow.cli", "run", *args], env=_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def _run(root: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalflow.cli", "run", *args], env=_env(root),
                          capture_output=True, text=True, timeout=timeout)


def _read_until(process: subprocess.Popen, marker: str, timeout_s: float = 300) -> str:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"never saw {marker!r}; output:\n{''.join(seen)}")


def _query(root: Path, sql: str, store: str = "warehouse/evalflow.duckdb"):
    with duckdb.connect(str(root / "data" / store), read_only=True) as con:
        return con.execute(sql).fetchall()


def _outcome(root: Path) -> dict:
    """What a finished run leaves, independent of run ids and timestamps."""
    return {
        "raw": _query(root, "SELECT count(*), count(DISTINCT trace_id) FROM raw_traces", "raw/raw.duckdb"),
        "redacted": _query(root, "SELECT count(*), count(DISTINCT trace_id) FROM redacted_traces"),
        "quarantine": _query(root, "SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 1"),
        "embedded": _query(root, "SELECT count(*) FROM trace_embeddings"),
        "assigned": _query(root, "SELECT count(*) FROM intent_assignments"),
        "signals": _query(root, "SELECT count(*) FROM trace_signals"),
        "candidates": _query(root, "SELECT status, count(*) FROM eval_candidates GROUP BY 1 ORDER BY 1"),
        "exported": _query(root, "SELECT trace_id FROM eval_candidates WHERE status = 'exported' ORDER BY 1"),
        "batches": len(list((root / "data" / "annotation").glob("batch-*"))),
        "batch_rows": _query(root, "SELECT count(*) FROM annotation_batches"),
    }


@pytest.fixture(scope="module")
def landing(small_demo) -> Path:
    """The session's small demo's landing folder, copied into each drill's own data folder."""
    return small_demo / "data" / "landing"


def _fresh(tmp_path: Path, landing: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(landing, root / "data" / "landing")
    (root / "dagster_home").mkdir(parents=True)
    (root / "dagster_home" / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    return root


@pytest.fixture(scope="module")
def reference(small_demo) -> Path:
    """What an uninterrupted `evalflow demo` (simulate, then run) built from that landing folder."""
    return small_demo


def _kill_when(process: subprocess.Popen, marker: str, delay_s: float) -> str:
    output = _read_until(process, marker)
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return output


def test_killed_at_every_phase_the_next_run_finishes_and_matches(tmp_path, landing, reference, monkeypatch):
    root = _fresh(tmp_path, landing, "drill")
    # 1. While a run lands, a second run is refused with one line (exit 75); the first is then
    # killed while redacting and embedding (the daily partitions).
    first = _start(root)
    _read_until(first, "[1/4] landing")
    second = _run(root)
    assert second.returncode == 75
    assert second.stderr.strip().splitlines()[-1].startswith("evalflow: error: another evalflow run (PID")
    _kill_when(first, "[2/4] daily partitions", 2.0)
    # 2. Killed while clustering and sampling (downstream): the run starts by recovering the
    # killed one before it.
    output = _kill_when(_start(root), "[3/4] downstream", 2.0)
    assert "recovered: run" in output and "is gone" in output, output
    # 3. Killed right after the sample, before its export (the stranded-sample case).
    process = _start(root)
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    _kill_after_materialization(process, "eval_candidates")
    final = _run(root)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "recovered: run" in final.stderr
    assert _outcome(root) == _outcome(reference)
    # Nothing is left behind: no stale run, no pool slot held (what `evalflow doctor` reports).
    import dagster as dg

    from evalflow.cli.instance import find_stale_runs

    instance = dg.DagsterInstance.get()
    assert find_stale_runs(instance) == []
    assert instance.event_log_storage.get_concurrency_run_ids() == set()


def _kill_after_materialization(process: subprocess.Popen, asset: str) -> None:
    """SIGKILL the run the moment `asset` is materialized (read from the instance's event log,
    which SQLite lets us read while the run writes)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stdout.read()


def test_a_reader_holding_the_warehouse_delays_the_run_but_never_fails_it(tmp_path, landing, reference):
    root = _fresh(tmp_path, landing, "reader")
    shutil.copytree(reference / "data" / "warehouse", root / "data" / "warehouse")
    shutil.copytree(reference / "data" / "raw", root / "data" / "raw")
    release = tmp_path / "release-reader"
    # The reader holds its connection until the run has said it waits for it (not for a fixed
    # time: a slow start of the run on a loaded machine must not let the reader go first).
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, pathlib, sys, time\n"
         "con = duckdb.connect(sys.argv[1], read_only=True)\n"
         "print(con.execute('SELECT count(*) FROM redacted_traces').fetchone()[0], flush=True)\n"
         "deadline = time.monotonic() + 300\n"
         "while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() < deadline:\n"
         "    time.sleep(0.1)\n",
         str(root / "data" / "warehouse" / "evalflow.duckdb"), str(release)],
        stdout=subprocess.PIPE, text=True)
    assert int(reader.stdout.readline()) > 0
    run = _start(root, "--select", "landed_traces")  # its landing writes the warehouse: it must wait
    try:
        _read_until(run, f"locked by PID {reader.pid}")
    finally:
        release.touch()
    reader.wait()
    rest = run.communicate(timeout=600)[0]
    assert run.returncode == 0, rest


def test_sigterm_stops_a_waiting_run_within_seconds_and_leaves_no_slot(tmp_path, landing, reference, monkeypatch):
    import dagster as dg

    root = _fresh(tmp_path, landing, "sigterm")
    shutil.copytree(reference / "data" / "warehouse", root / "data" / "warehouse")
    shutil.copytree(reference / "data" / "raw", root / "data" / "raw")
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1], read_only=True)\n"
         "print('held', flush=True); time.sleep(120)", str(root / "data" / "warehouse" / "evalflow.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "held"
        process = _start(root)
        _read_until(process, "evalflow: waiting for")
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        reader.kill()
        reader.wait()
    assert process.returncode == 143, rest
    assert stopped_after < 10, stopped_after  # before: ignored for 30+ s
    assert "SIGTERM received" in rest and "marked canceled" in rest
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    instance = dg.DagsterInstance.get()
    latest = instance.get_runs(limit=1)[0]
    assert latest.status == dg.DagsterRunStatus.CANCELED
    assert instance.event_log_storage.get_concurrency_run_ids() == set()


@pytest.mark.parametrize("variable, value, message", [
    ("EVALFLOW_REJECT_RATE_THRESHOLD", "2", "EVALFLOW_REJECT_RATE_THRESHOLD must be at least 0 and below 1"),
    ("EVALFLOW_REJECT_RATE_THRESHOLD", "-1", "EVALFLOW_REJECT_RATE_THRESHOLD must be at least 0"),
    ("EVALFLOW_PII_SCORE_THRESHOLD", "abc", "EVALFLOW_PII_SCORE_THRESHOLD must be a number"),
    ("EVALFLOW_MAX_JSON_DEPTH", "1.5", "EVALFLOW_MAX_JSON_DEPTH must be a whole number"),
    ("EVALFLOW_EMBED_TEXT", "everything", "EVALFLOW_EMBED_TEXT must be one of"),
    ("EVALFLOW_PARTITIONS_START", "yesterday", "EVALFLOW_PARTITIONS_START must be a date"),
    ("EVALFLOW_LOCK_WAIT_S", "-3", "EVALFLOW_LOCK_WAIT_S must be at least 0"),
    ("EVALFLOW_ALERT_WEBHOOK_URL", "hooks.example/secret-token", "EVALFLOW_ALERT_WEBHOOK_URL must start with http"),
    ("EVALFLOW_DRIFT_SEED", "abc", "EVALFLOW_DRIFT_SEED must be a whole number"),
    ("EVALFLOW_INTENT_OVERRIDES", "/nonexistent/review.toml", "EVALFLOW_INTENT_OVERRIDES names"),
])
def test_a_bad_setting_stops_every_command_at_start_with_one_line(tmp_path, monkeypatch, capsys,
                                                                  variable, value, message):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "a.jsonl").write_text('{"trace_id": "t", "timestamp": "2026-10-05T10:00:00Z"}\n')
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evalflow: error: {err[0].removeprefix('evalflow: error: ')}"]
    assert message in err[0]
    assert not (tmp_path / "data" / "raw").exists()  # checked before any work


@pytest.mark.parametrize("name, text, message", [
    ("drift.toml", "min_traces = 'many'\n", "drift.toml: min_traces must be a whole number"),
    ("contamination.toml", "[thresholds]\nngram_n = 'long'\n", "contamination.toml: thresholds.ngram_n: expected int"),
    ("intent_overrides.toml", "[[rename]]\nname = 'no intent'\n", "intent_overrides.toml: rename[0]"),
])
def test_a_bad_file_in_the_data_folder_stops_every_command_at_start(tmp_path, monkeypatch, capsys, name, text,
                                                                   message):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "a.jsonl").write_text('{"trace_id": "t", "timestamp": "2026-10-05T10:00:00Z"}\n')
    (tmp_path / "data" / name).write_text(text)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "data" / "raw").exists()  # checked before any work


def test_the_code_location_refuses_a_bad_setting(monkeypatch):
    from evalflow.definitions import defs
    from evalflow.lib.common.settings import SettingError

    monkeypatch.setenv("EVALFLOW_PII_SCORE_THRESHOLD", "1.5")
    with pytest.raises(SettingError, match="EVALFLOW_PII_SCORE_THRESHOLD must be at least 0 and at most 1"):
        defs()


def test_an_empty_landing_folder_is_one_line_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "data" / "landing").mkdir(parents=True)
    assert cli.main(["run"]) == 1
    captured = capsys.readouterr()
    assert [line for line in captured.err.strip().splitlines() if line.startswith("evalflow:")] == [
        f"evalflow: error: no trace files in {tmp_path / 'data' / 'landing'} (.jsonl, .ndjson or .json): put your "
        "exported traces there, or run `evalflow simulate` for demo traffic"]
    assert "materializing" not in captured.out


def test_simulate_with_a_negative_day_count_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["simulate", "--days", "-3"])
    assert exit_info.value.code == 2
    assert "--days: must be at least 1, got -3" in capsys.readouterr().err


def test_a_data_folder_that_is_a_file_is_a_user_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").write_text("not a folder")
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert cli.main(["run"]) == 1
    assert "EVALFLOW_DATA_DIR points at a file" in capsys.readouterr().err


def test_a_bug_exits_70_and_shows_its_traceback_with_debug(monkeypatch, capsys):
    def broken(args):
        raise ValueError("an impossible state")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_handler(parser(), broken))
    assert cli.main(["doctor"]) == 70
    err = capsys.readouterr().err
    assert "internal error: ValueError: an impossible state" in err and "--debug" in err
    assert "Traceback" not in err
    assert cli.main(["--debug", "doctor"]) == 70
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def _with_handler(parser, handler):
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(handler=handler)
    return parser


def test_run_select_names_an_unknown_asset_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert cli.main(["run", "--select", "redacted_trace"]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("evalflow:")]
    assert len(err) == 1 and err[0].startswith("evalflow: error: no asset named redacted_trace; the assets are: ")
    assert "redacted_traces" in err[0]


def test_run_one_stage_over_one_day(tmp_path, landing, reference):
    """Re-running one stage for one day: `evalflow run --select ... --partitions DAY`."""
    root = _fresh(tmp_path, landing, "one-day")
    shutil.copytree(reference / "data" / "warehouse", root / "data" / "warehouse")
    shutil.copytree(reference / "data" / "raw", root / "data" / "raw")
    day = _query(reference, "SELECT CAST(min(event_date) AS VARCHAR) FROM redacted_traces")[0][0]
    done = _run(root, "--select", "redacted_traces", "--partitions", day)
    assert done.returncode == 0, done.stderr
    # redacted_traces and pii_audit are computed together: selecting one materializes both.
    assert f"materializing pii_audit, redacted_traces over {day}..{day}" in done.stderr  # progress: stderr
    assert "landed_traces" not in done.stderr and "intent_clusters" not in done.stderr
    assert "Built:" in done.stdout  # results: stdout
    assert _outcome(root)["redacted"] == _outcome(reference)["redacted"]
    empty = _run(root, "--select", "redacted_traces", "--partitions", "2001-01-01..2001-01-02")
    assert empty.returncode == 1
    assert empty.stderr.strip().splitlines()[-1].startswith("evalflow: error: no staged traces between 2001-01-01")


def test_a_bad_webhook_url_is_named_without_echoing_it(tmp_path, monkeypatch, capsys):
    # A webhook URL often carries a secret token: the error names the variable, not the value.
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("EVALFLOW_ALERT_WEBHOOK_URL", "hooks.example/T0/B0/secret-token")
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "EVALFLOW_ALERT_WEBHOOK_URL" in err and "secret-token" not in err
