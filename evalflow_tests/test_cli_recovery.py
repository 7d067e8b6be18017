"""Recovery of the Dagster instance with real processes and real signals: dead runs, held pool
slots, a fresh instance created by several processes at once, process liveness, file locks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from evalflow.cli.instance import find_stale_runs, open_instance, pool_states, recover_stale_runs
from evalflow.lib.common.processes import LockHeld, exclusive_lock, process_alive

POOL = "duckdb_warehouse"

# A child process that materializes one asset in the pool and then hangs inside it, holding
# the pool's only slot, until it is killed.
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import dagster as dg
    from evalflow.cli.instance import open_instance, process_tags

    @dg.asset(pool="duckdb_warehouse")
    def slow_asset():
        Path(sys.argv[1]).write_text("holding")
        time.sleep(600)

    dg.materialize([slow_asset], instance=open_instance(), tags=process_tags())
""")


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _wait_for(predicate, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _start_holder(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / "holding"
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    child = subprocess.Popen([sys.executable, str(script), str(marker)], env=dict(os.environ))
    _wait_for(marker.exists, what="the child to hold the pool slot")
    return child, marker


def test_a_run_killed_with_sigkill_is_marked_failed_and_its_pool_slot_freed(dagster_home, tmp_path):
    child, _ = _start_holder(tmp_path)
    instance = open_instance()
    [held] = [s for s in pool_states(instance) if s.pool == POOL]
    assert len(held.holders) == 1
    assert find_stale_runs(instance) == []  # alive: not stale
    child.send_signal(signal.SIGKILL)
    child.wait()

    run_id = held.holders[0][0]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster leaves
    [stale] = find_stale_runs(instance)
    assert stale.run_id == run_id and child.pid in stale.pids and "gone" in stale.reason

    recovery = recover_stale_runs(instance)
    assert [r.run_id for r in recovery.failed_runs] == [run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "Marked failed by evalflow" in failure.message and str(child.pid) in failure.message
    assert [s.holders for s in pool_states(instance) if s.pool == POOL] == [[]]

    # The next run in the pool is not blocked: it finishes (it would wait for ever before).
    @dg.asset(pool=POOL)
    def next_asset():
        return 1

    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.setdefault(
        "ok", dg.materialize([next_asset], instance=instance).success), daemon=True)
    worker.start()
    worker.join(120)
    assert outcome.get("ok") is True


def test_the_pool_watcher_names_the_holder_and_recovers_it_when_it_dies(dagster_home, tmp_path):
    from evalflow.cli.instance import process_tags
    from evalflow.cli.runner import _PoolWatcher

    child, _ = _start_holder(tmp_path)
    instance = open_instance()

    @dg.asset(pool=POOL)
    def waiting_asset():
        return 1

    lines: list[str] = []
    outcome: dict = {}
    with _PoolWatcher(instance, str(os.getpid()), lines.append, interval_s=0.3):
        worker = threading.Thread(target=lambda: outcome.setdefault("ok", dg.materialize(
            [waiting_asset], instance=instance, tags=process_tags()).success), daemon=True)
        worker.start()
        _wait_for(lambda: any("waiting for pool" in line for line in lines), what="the waiting line")
        assert worker.is_alive()  # blocked by the live holder
        child.send_signal(signal.SIGKILL)
        child.wait()
        worker.join(120)
    assert outcome.get("ok") is True
    waiting = next(line for line in lines if "waiting for pool" in line)
    assert POOL in waiting and f"PID {child.pid}" in waiting
    assert any("recovered" in line for line in lines)


def test_runs_of_live_processes_are_never_touched(dagster_home, tmp_path):
    child, _ = _start_holder(tmp_path)
    try:
        instance = open_instance()
        recovery = recover_stale_runs(instance)
        assert recovery.failed_runs == [] and recovery.freed_slot_runs == []
        assert [len(s.holders) for s in pool_states(instance) if s.pool == POOL] == [1]
    finally:
        child.kill()
        child.wait()


def test_a_fresh_instance_opened_by_several_processes_at_once_has_one_schema(tmp_path):
    """Without the lock, two processes migrating a fresh SQLite instance at once left runs.db with
    two alembic heads about 1 time in 3, and every later command failed. (One trial of three
    processes per run of the suite: CI repeats it on every change.)"""
    for trial in range(1):
        home = tmp_path / f"home{trial}"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = dict(os.environ, DAGSTER_HOME=str(home))
        code = "from evalflow.cli.instance import open_instance; open_instance().get_runs(limit=1)"
        children = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
                    for _ in range(3)]
        errors = [c.communicate(timeout=120)[1] for c in children]
        assert [c.returncode for c in children] == [0, 0, 0], errors
        with sqlite3.connect(home / "history" / "runs.db") as con:
            heads = con.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(heads) == 1
        check = subprocess.run([sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().get_runs()"],
                               env=env, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stderr


def test_process_alive_sees_dead_and_reused_pids():
    assert process_alive(os.getpid(), recorded_at=time.time())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid)
    # Our own PID, recorded long before this process started, belongs to another process now.
    assert not process_alive(os.getpid(), recorded_at=time.time() - 10 * 365 * 86400)
    assert not process_alive(0) and not process_alive(-5)


def test_an_exclusive_lock_names_its_holder_and_dies_with_it(tmp_path):
    lock = tmp_path / "run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from evalflow.lib.common.processes import exclusive_lock\n"
         "with exclusive_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)", str(lock)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockHeld, match=f"PID {holder.pid}"):
        with exclusive_lock(lock, wait=False):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with exclusive_lock(lock, wait=False):  # the kernel released it with the dead process
        assert lock.read_text().split()[0] == str(os.getpid())


def test_the_daemon_sensor_recovers_a_dead_run(dagster_home, tmp_path):
    from evalflow.defs.recovery.automation import stale_run_sensor

    child, _ = _start_holder(tmp_path)
    instance = open_instance()
    idle = stale_run_sensor(dg.build_sensor_context(instance=instance))
    assert idle.skip_message == "no stale runs"  # the holder is alive
    child.send_signal(signal.SIGKILL)
    child.wait()
    result = stale_run_sensor(dg.build_sensor_context(instance=instance))
    assert result.skip_message.startswith("marked 1 stale run(s) failed")
    assert [s.holders for s in pool_states(instance) if s.pool == POOL] == [[]]
    assert instance.get_runs(limit=1)[0].status == dg.DagsterRunStatus.FAILURE
