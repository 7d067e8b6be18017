"""Kill drill on the weekly drift report: `evalflow run --select drift_report` killed with
SIGKILL while it computes and writes, at several moments; the tables are those of before or of
after (never half a week), the report files are whole, and the next run finishes by itself with
the rows an uninterrupted run writes."""

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


def _query(root: Path, sql: str):
    with duckdb.connect(str(root / "data" / "warehouse" / "evalflow.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _history(root: Path):
    return _query(root, "SELECT week_start, signal, baseline, round(value, 9), severity FROM drift_history "
                        "ORDER BY ALL")


def _start(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalflow.cli", "run", "--select", "drift_report"],
                            env=small_demo_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)


def _copy(small_demo: Path, root: Path) -> Path:
    shutil.copytree(small_demo / "data", root / "data")
    (root / "dagster_home").mkdir(parents=True)
    shutil.copy(small_demo / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    return root


def _without_drift(small_demo: Path, root: Path) -> Path:
    """A copy of the small demo with no drift rows at all: a kill must leave none or every row
    of a week."""
    root = _copy(small_demo, root)
    with duckdb.connect(str(root / "data" / "warehouse" / "evalflow.duckdb")) as con:
        con.execute("DELETE FROM drift_history; DELETE FROM alerts; DELETE FROM drift_reports")
    shutil.rmtree(root / "data" / "reports" / "drift")
    return root


def _into_the_step(root: Path) -> tuple[subprocess.Popen, list[str]]:
    """The run, once it has started materializing drift_report (and the lines it printed)."""
    process = _start(root)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "weekly reports: materializing drift_report" in line:
            break
    return process, seen


@pytest.fixture(scope="module")
def step_s(small_demo, tmp_path_factory) -> float:
    """Seconds from the start of the drift_report step to the run's end, on this machine now: the
    drill's kill delays are fractions of it, so a faster machine is still killed mid-step."""
    process, _ = _into_the_step(_without_drift(small_demo, tmp_path_factory.mktemp("drift-timing")))
    started = time.perf_counter()
    process.communicate(timeout=600)
    assert process.returncode == 0
    return time.perf_counter() - started


@pytest.mark.parametrize("fraction", [0.1, 0.4, 0.75])
def test_a_drift_report_killed_at_any_moment_leaves_whole_weeks_and_the_next_run_finishes(
        small_demo, step_s, tmp_path, fraction):
    expected = _history(small_demo)
    assert expected, "the demo wrote no drift report"
    delay_s = fraction * step_s
    for attempt in range(4):
        root = _without_drift(small_demo, tmp_path / f"drill-{attempt}")
        process, seen = _into_the_step(root)
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        if process.returncode == -signal.SIGKILL:
            break
        delay_s /= 2  # this run was faster than the timing run: kill it earlier
    assert process.returncode == -signal.SIGKILL, "".join(seen)

    weeks = {w for (w,) in _query(root, "SELECT DISTINCT week_start FROM drift_history")}
    for week in weeks:  # every week present is whole, with its report row
        assert _query(root, f"SELECT count(*) FROM drift_history WHERE week_start = '{week}'")[0][0] == \
            sum(1 for row in expected if row[0] == week)
        assert _query(root, f"SELECT count(*) FROM drift_reports WHERE week_start = '{week}'")[0][0] == 1
    for html in (root / "data" / "reports").rglob("report.html"):
        assert html.read_text().rstrip().endswith("</html>")  # written whole, then renamed

    again = subprocess.run([sys.executable, "-m", "evalflow.cli", "run", "--select", "drift_report"],
                           env=small_demo_env(root), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _history(root) == expected
