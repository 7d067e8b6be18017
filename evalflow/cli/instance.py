"""The embedded Dagster instance: created once under a lock, and cleaned of runs whose process died.

Two things Dagster's local (SQLite) instance does not do by itself, measured on main before
this module existed:
- Two processes that create a fresh instance at the same moment can both run the schema
  migrations, leaving `runs.db` with two alembic heads; every later command then fails (1 trial
  in 3). `open_instance` creates and migrates it under an exclusive file lock.
- A run killed with SIGKILL, by the OOM killer or by a reboot stays STARTED in the run storage
  and keeps its slot of the `duckdb_warehouse` pool (limit 1), so every later run waits for
  that slot forever. `recover_stale_runs` finds such runs (their process is gone), marks them
  failed with the reason and frees their pool slots through Dagster's public storage API.
  `evalflow run` and `evalflow doctor` call it before they start; the `stale_run_sensor` calls
  it every minute while the daemon runs.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from evalflow.lib.common.processes import exclusive_lock, process_alive

INSTANCE_LOCK = ".evalflow-instance.lock"
# Tags every run started by `evalflow` carries, so its process can be checked later.
PID_TAG = "evalflow/pid"
HOST_TAG = "evalflow/host"
# A run the daemon created but whose worker never reported a PID (killed while starting) is
# considered dead after this long.
NEVER_STARTED_AFTER_S = 600.0


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def open_instance(home: Path | None = None) -> dg.DagsterInstance:
    """DagsterInstance.get(), with its storage created and migrated by one process at a time."""
    home = Path(home or os.environ["DAGSTER_HOME"])
    with exclusive_lock(home / INSTANCE_LOCK):
        instance = dg.DagsterInstance.get()
        # Touch every storage inside the lock: each creates its SQLite files and stamps its
        # schema version on first use.
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_keys()
        instance.all_instigator_state()
    return instance


@dataclass(frozen=True)
class StaleRun:
    run_id: str
    job_name: str
    status: str
    pids: tuple[int, ...]
    reason: str


def _recorded_pids(instance: dg.DagsterInstance, run) -> list[tuple[int, float]]:
    """(pid, when it was recorded) for every process known to have worked on the run: our own
    tag (the `evalflow` process), and the PIDs Dagster's engine events report (the run worker,
    step subprocesses)."""
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp() if record else time.time()
    pids: list[tuple[int, float]] = []
    if run.tags.get(PID_TAG, "").isdigit() and run.tags.get(HOST_TAG, socket.gethostname()) == socket.gethostname():
        pids.append((int(run.tags[PID_TAG]), created))
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        metadata = getattr(event.engine_event_data, "metadata", None) or {} if event else {}
        pid = metadata.get("pid")
        text = getattr(pid, "text", None) or getattr(pid, "value", None)
        if text is not None and str(text).isdigit():
            pids.append((int(text), entry.timestamp))
    return pids


def find_stale_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[StaleRun]:
    """Runs in progress (starting, started, canceling) none of whose processes is alive."""
    now = now or time.time()
    stale = []
    for run in instance.get_runs(dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES))):
        if run.status == dg.DagsterRunStatus.SUSPENDED:
            continue  # no worker by design
        pids = _recorded_pids(instance, run)
        if pids:
            if any(process_alive(pid, recorded_at) for pid, recorded_at in pids):
                continue
            gone = ", ".join(str(p) for p in sorted({p for p, _ in pids}))
            reason = (f"the process that ran it (PID {gone}) is gone: killed (SIGKILL, out of memory) "
                      "or the machine restarted")
        else:
            record = instance.get_run_record_by_id(run.run_id)
            updated = record.update_timestamp.timestamp() if record else now
            if now - updated < NEVER_STARTED_AFTER_S:
                continue
            reason = f"it reported no process for {int(now - updated)} s after it was launched"
        stale.append(StaleRun(run.run_id, run.job_name, run.status.value,
                              tuple(sorted({p for p, _ in pids})), reason))
    return stale


@dataclass(frozen=True)
class Recovery:
    failed_runs: list[StaleRun]
    freed_slot_runs: list[str]


def recover_stale_runs(instance: dg.DagsterInstance) -> Recovery:
    """Mark dead runs failed (with the reason, visible in the UI) and free the pool slots of
    every run that is no longer in progress."""
    stale = find_stale_runs(instance)
    for run in stale:
        dagster_run = instance.get_run_by_id(run.run_id)
        if dagster_run is None or dagster_run.is_finished:
            continue
        instance.report_run_failed(dagster_run, message=f"Marked failed by evalflow: {run.reason}.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    freed = []
    for run_id in sorted(instance.event_log_storage.get_concurrency_run_ids()):
        dagster_run = instance.get_run_by_id(run_id)
        if dagster_run is None or dagster_run.is_finished:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return Recovery(stale, freed)


@dataclass(frozen=True)
class PoolState:
    pool: str
    limit: int | None
    holders: list[tuple[str, str]]  # (run id, step key) holding a slot
    waiting: list[tuple[str, str]]  # (run id, step key) waiting for one


def pool_states(instance: dg.DagsterInstance) -> list[PoolState]:
    storage = instance.event_log_storage
    states = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        states.append(PoolState(pool, info.limit, [(s.run_id, s.step_key) for s in info.claimed_slots],
                                [(s.run_id, s.step_key) for s in info.pending_steps]))
    return states


def describe_run(instance: dg.DagsterInstance, run_id: str) -> str:
    """'run 1a2b3c4d (__ephemeral_asset_job__, STARTED since 10:02:03 UTC, PID 4242)'."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id[:8]} (no longer in the run storage)"
    record = instance.get_run_record_by_id(run_id)
    since = ""
    if record and record.start_time:
        since = " since " + datetime.fromtimestamp(record.start_time, timezone.utc).strftime("%H:%M:%S UTC")
    pids = sorted({p for p, _ in _recorded_pids(instance, run)})
    pid = f", PID {', '.join(map(str, pids))}" if pids else ""
    return f"run {run_id[:8]} ({run.job_name}, {run.status.value}{since}{pid})"
