"""Materialize the whole asset graph in-process, the way `evalflow run` and the demo do.

Dagster runs one partitions definition per run, so the graph goes in phases: unpartitioned
assets that feed the daily ones (landing), then every daily-partitioned asset over the range of
days found in the stage as one single-run backfill, then whatever depends on those. Each phase
is a real Dagster run in the given instance, so the UI shows the same history afterwards.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, TypeVar

import dagster as dg

from evalflow.cli.instance import PID_TAG, describe_run, open_instance, pool_states, process_tags, recover_stale_runs
from evalflow.lib.common.settings import load_settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.landing import all_event_dates

T = TypeVar("T")

# The progress lines and the one-line error are ours; Dagster's event lines, tracebacks
# included, stay in the run's event log, where the UI shows them.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

DAGSTER_YAML_TEMPLATE = """storage:
  sqlite:
    base_dir: {home}/storage
concurrency:
  pools:
    default_limit: 1
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
python_logs:
  managed_python_loggers: [evalflow]
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME: as set; else the project root (its dagster.yaml); else a data-dir folder."""
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
    elif (Path.cwd() / "dagster.yaml").exists() and (Path.cwd() / "pyproject.toml").exists():
        home = Path.cwd()
    else:
        home = load_settings().data_dir / ".dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML_TEMPLATE.format(home=home))
    os.environ["DAGSTER_HOME"] = str(home.resolve())
    return home.resolve()


@dataclass
class PhaseResult:
    name: str
    assets: list[str]
    success: bool
    seconds: float
    partitions: tuple[str, str] | None = None
    failed_checks: list[str] = field(default_factory=list)
    error: str | None = None
    # The failed step's root cause, as Dagster serialised it (the traceback for --debug), and
    # whether it is a problem the user can fix (a held lock, a read-only disk) or a bug.
    error_detail: str | None = None
    user_error: bool = True


class NothingToRun(Exception):
    """Nothing to materialize: no trace in the landing folder and nothing staged, or a
    selection that names no asset."""


def _load_definitions() -> dg.Definitions:
    from evalflow.definitions import defs

    return defs()


def _reload_definitions() -> dg.Definitions:
    """The code location imported afresh: module-level objects (the daily partitions, built from
    the settings at import) are built again."""
    for module in [m for m in sys.modules if m in ("evalflow.definitions", "evalflow.defs")
                   or m.startswith("evalflow.defs.")]:
        del sys.modules[module]
    return _load_definitions()


def _unique_assets(definitions: dg.Definitions) -> list[dg.AssetsDefinition]:
    # A module that imports an asset from another defs module makes the loader see it twice.
    unique: dict[frozenset, dg.AssetsDefinition] = {}
    for asset in definitions.assets or []:
        if isinstance(asset, dg.AssetsDefinition):
            unique.setdefault(frozenset(asset.keys), asset)
    return list(unique.values())


def _is_weekly(asset: dg.AssetsDefinition) -> bool:
    return isinstance(asset.partitions_def, dg.WeeklyPartitionsDefinition)


def _phases(definitions: dg.Definitions) -> list[tuple[str, list[dg.AssetsDefinition], bool]]:
    """(name, assets, partitioned) in dependency order: upstream, daily, downstream, then the
    weekly reports (drift_report), which read what every other phase wrote."""
    assets = _unique_assets(definitions)
    weekly = [a for a in assets if _is_weekly(a)]
    daily = [a for a in assets if a.partitions_def is not None and not _is_weekly(a)]
    daily_keys = {k for a in daily for k in a.keys}
    unpartitioned = [a for a in assets if a.partitions_def is None]

    def dep_keys(asset: dg.AssetsDefinition) -> set:
        return {dep.asset_key for spec in asset.specs for dep in spec.deps}

    # Unpartitioned assets downstream of a daily one, directly or through each other.
    after_daily: set = set()
    changed = True
    while changed:
        changed = False
        for asset in unpartitioned:
            if not set(asset.keys) <= after_daily and dep_keys(asset) & (daily_keys | after_daily):
                after_daily |= set(asset.keys)
                changed = True

    def upstream_of_daily(asset: dg.AssetsDefinition) -> bool:
        return not set(asset.keys) & after_daily

    return [
        ("landing", [a for a in unpartitioned if upstream_of_daily(a)], False),
        ("daily partitions", daily, True),
        ("downstream", [a for a in unpartitioned if not upstream_of_daily(a)], False),
        ("weekly reports", weekly, True),
    ]


def _blocking_checks(definitions: dg.Definitions) -> set:
    """Keys of the blocking asset checks: only these fail a run. A non-blocking check that fails
    (a closed judge gate, a drift alert) is news for the person reading, not a failed run."""
    return {spec.key for asset in _unique_assets(definitions) for spec in asset.check_specs if spec.blocking}


def week_starts(first: date, last: date) -> list[str]:
    """The Mondays (UTC weeks run Monday to Sunday) of the weeks that hold days first..last."""
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday.isoformat())
        monday += timedelta(days=7)
    return weeks


# Exception classes (by name, as Dagster serialises them) that a user can fix without touching
# the code: the environment, the data folder, a lock, a setting, a failure an asset raised on
# purpose (dg.Failure). Anything else in a failed step is reported as a bug.
USER_ERROR_CLASSES = {
    "WarehouseLocked", "LockHeld", "SettingError", "MissingKeyError", "Failure", "UserError",
    "OSError", "IOError", "PermissionError", "FileNotFoundError", "FileExistsError",
    "NotADirectoryError", "IsADirectoryError", "IOException", "TimeoutError",
}


def root_cause(event) -> tuple[str, str, bool]:
    """(one line, full text, user-fixable?) for a STEP_FAILURE event.

    Dagster wraps the asset's exception ("Error occurred while executing op ...") and keeps the
    original as the error's cause; its first line is what the user needs (a lock held by
    PID 18437, a read-only file system), the rest goes to --debug.
    """
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        text = data.user_failure_data.description.strip()
        return text.splitlines()[0], text, True
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "step failed", "", False
    name = error.cls_name or "Error"
    if name == "DagsterAssetCheckFailedError":  # the failed checks are listed on their own
        return "a blocking asset check failed", data.error.to_string(), True
    # SerializableErrorInfo.message is "package.module.ClassName: text"; keep "ClassName: text".
    text = error.message.strip()
    text = re.sub(rf"^(?:[\w.]+\.)?{re.escape(name)}:\s*", "", text)
    first = f"{name}: {text.splitlines()[0]}" if text else name
    return first, data.error.to_string(), name in USER_ERROR_CLASSES


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # progress on stderr; results on stdout


def run_pipeline(
    instance: dg.DagsterInstance | None = None,
    progress: Callable[[str], None] = _progress,
    selection: list[str] | None = None,
    partitions: tuple[str, str] | None = None,
    command: str | None = None,
) -> list[PhaseResult]:
    """Materialize every asset (or those named in `selection`, by key, e.g. ["redacted_traces"]);
    returns one result per phase that had something to do.

    Raises NothingToRun when the landing folder holds no trace file and nothing is staged.
    """
    from evalflow.defs.pipeline_jobs import PHASE_JOBS

    definitions = _load_definitions()
    all_assets = _unique_assets(definitions)
    known = sorted(k.to_user_string() for a in all_assets for k in a.keys)
    unknown = sorted(set(selection or []) - set(known))
    if unknown:
        raise NothingToRun(f"no asset named {', '.join(unknown)}; the assets are: {', '.join(known)}")
    instance = instance or open_instance()
    settings = load_settings()
    _require_input(settings)
    results: list[PhaseResult] = []
    phases = [phase for phase in _phases(definitions) if phase[1]]
    names = [phase[0] for phase in phases]
    for index, name in enumerate(names, start=1):
        if name != names[0] and load_settings().partitions_start != settings.partitions_start:
            # The landing found days before the first partition: load the definitions again, so
            # the daily partitions start at the new first day (lib/common/settings.py).
            settings = load_settings()
            definitions = _reload_definitions()
            phases = [phase for phase in _phases(definitions) if phase[1]]
            progress(f"      the daily partitions now start at {settings.partitions_start} (the first day with data)")
        _, assets, partitioned = next(phase for phase in phases if phase[0] == name)
        keys = [k for a in assets for k in a.keys]
        if selection is not None:
            # An asset computed together with others (redacted_traces and pii_audit are one
            # multi-asset) is materialized with them.
            keys = [k for a in assets if {k.to_user_string() for k in a.keys} & set(selection)
                    for k in (a.keys if not a.can_subset else [k for k in a.keys if k.to_user_string() in selection])]
        if not keys:
            continue
        tags: dict[str, str] = {**process_tags(), "evalflow/phase": name,
                                "evalflow/command": command or "run_pipeline()"}
        span = None
        if partitioned:
            days = all_event_dates(Warehouse(settings.raw_store_path))
            if not days:
                progress(f"[{index}/{len(names)}] {name}: no traces staged (every landed line was "
                         "quarantined); stopping here")
                results.append(PhaseResult(name, [k.to_user_string() for k in keys], False, 0.0,
                                           error="no traces staged: every landed line was quarantined "
                                           "(see the quarantine table)"))
                break
            if partitions is not None:
                # Only the days asked for, and only those that hold traces.
                staged = f"{days[0].isoformat()}..{days[-1].isoformat()}"
                days = [d for d in days if partitions[0] <= d.isoformat() <= partitions[1]]
                if not days:
                    raise NothingToRun(f"no staged traces between {partitions[0]} and {partitions[1]}; "
                                       f"the staged days are {staged}")
            if name == "weekly reports":
                weeks = week_starts(days[0], days[-1])
                span = (weeks[0], weeks[-1])
            else:
                span = (days[0].isoformat(), days[-1].isoformat())
            tags |= {"dagster/asset_partition_range_start": span[0],
                     "dagster/asset_partition_range_end": span[1]}
        label = ", ".join(sorted(k.to_user_string() for k in keys))
        where = f" over {span[0]}..{span[1]}" if span else ""
        progress(f"[{index}/{len(names)}] {name}: materializing {label}{where} ...")
        started = time.perf_counter()
        job = definitions.resolve_job_def(PHASE_JOBS[name])
        with _PoolWatcher(instance, tags[PID_TAG], progress), _StepSpinner(instance, tags):
            outcome = job.execute_in_process(instance=instance, asset_selection=keys, tags=tags,
                                             raise_on_error=False, run_config=QUIET_CONSOLE)
        seconds = time.perf_counter() - started
        failed = [e.asset_check_evaluation_data for e in outcome.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed]
        # A non-blocking check that fails (a closed judge gate, a flagged annotator, a drift alert)
        # is news, not a failed run: it is printed, and the run's exit status stays 0.
        blocking = _blocking_checks(definitions)
        failed_checks = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in failed
                         if dg.AssetCheckKey(c.asset_key, c.check_name) in blocking]
        warned = [f"{c.asset_key.to_user_string()}:{c.check_name}"
                  + (" (ERROR)" if c.severity == dg.AssetCheckSeverity.ERROR else "") for c in failed
                  if dg.AssetCheckKey(c.asset_key, c.check_name) not in blocking]
        result = PhaseResult(name, [k.to_user_string() for k in keys], outcome.success, seconds, span,
                             failed_checks)
        if not outcome.success:
            failures = [e for e in outcome.all_events if e.event_type_value == "STEP_FAILURE"]
            if failures and failed_checks and root_cause(failures[0])[0] == "a blocking asset check failed":
                result.error = None  # the summary lists the failed checks
            elif failures:
                step = failures[0].step_key or "a step"
                line, detail, user = root_cause(failures[0])
                result.error, result.error_detail, result.user_error = f"{step}: {line}", detail, user
            else:
                result.error = "run failed"
        results.append(result)
        status = "ok" if outcome.success and not failed_checks else "FAILED"
        progress(f"      {status} in {seconds:.1f}s" + (f"; failed checks: {failed_checks}" if failed_checks else "")
                 + (f"; warnings: {warned}" if warned else "") + (f"; error: {result.error}" if result.error else ""))
        if not outcome.success:
            break
    return results


def command_line(argv: list[str]) -> str:
    """What started a run, for its `evalflow/command` tag: `evalflow run --select ...`."""
    return " ".join(["evalflow", *[a for a in argv if a != "--debug"]])


def _require_input(settings) -> None:
    """Refuse an empty landing folder up front, with the reason, instead of an op error."""
    from evalflow.lib.ingest.parse_file import iter_landing_files

    landing = settings.landing_dir
    if landing.exists() and not landing.is_dir():
        raise NothingToRun(f"the landing folder {landing} is a file, not a folder")
    if landing.is_dir() and any(True for _ in iter_landing_files(landing)):
        return
    if all_event_dates(Warehouse(settings.raw_store_path)) if settings.raw_store_path.exists() else []:
        return  # nothing new to land, but earlier traces are staged: downstream can still run
    raise NothingToRun(f"no trace files in {landing} (.jsonl, .ndjson or .json): put your exported "
                       "traces there, or run `evalflow simulate` for demo traffic")


class _PoolWatcher:
    """While a run waits for a slot of a concurrency pool, say on the console what holds it.

    Without this, a run blocked by another run's slot prints nothing at all; the reason was only
    in the event log ("Step blocked by limit for pool duckdb_warehouse")."""

    def __init__(self, instance: dg.DagsterInstance, pid: str, progress: Callable[[str], None],
                 interval_s: float = 2.0):
        import threading

        self.instance, self.pid, self.progress, self.interval_s = instance, pid, progress, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="evalflow-pool-watcher", daemon=True)
        self._told: set[tuple[str, str]] = set()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _report_holders(self, state, holders: list[str]) -> None:
        """Our run waits: a holder whose process died is recovered (it would keep its slot for
        ever); a live one is named, once."""
        if not holders:
            return
        for run in recover_stale_runs(self.instance).failed_runs:
            self.progress(f"      recovered: run {run.run_id[:8]} held the pool slot, but "
                          f"{run.reason}; marked failed and its slot freed")
        for holder in holders:
            run = self.instance.get_run_by_id(holder)
            if (state.pool, holder) in self._told or run is None or run.is_finished:
                continue
            self._told.add((state.pool, holder))
            self.progress(f"      waiting for pool {state.pool} (limit {state.limit}): its slot is held by "
                          f"{describe_run(self.instance, holder)}; `evalflow doctor` shows and clears runs "
                          "whose process is gone")

    def _ours(self, run_id: str) -> bool:
        run = self.instance.get_run_by_id(run_id)
        return run is not None and run.tags.get(PID_TAG) == self.pid

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                for state in pool_states(self.instance):
                    if any(self._ours(r) for r, _ in state.waiting):
                        self._report_holders(state, [r for r, _ in state.holders if not self._ours(r)])
            except Exception:  # noqa: BLE001 - a watcher must never break the run it watches
                continue


class _StepSpinner:
    """On a terminal, a live line under the phase: the step running now and how many are done.
    Elsewhere (a log file, CI) nothing: the plain progress lines say enough."""

    def __init__(self, instance: dg.DagsterInstance, tags: dict[str, str], interval_s: float = 0.5):
        import threading

        self.instance, self.tags, self.interval_s = instance, tags, interval_s
        self.enabled = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="evalflow-step-spinner", daemon=True)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=5)

    def _spin(self) -> None:
        from dagster._core.events import DagsterEventType
        from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        wanted = {PID_TAG: self.tags[PID_TAG], "evalflow/phase": self.tags["evalflow/phase"]}
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("      starting ...", total=None)
            while not self._stop.wait(self.interval_s):
                try:
                    runs = self.instance.get_runs(dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES),
                                                                tags=wanted), limit=1)
                    if not runs:
                        continue
                    events = self.instance.all_logs(runs[0].run_id, of_type={
                        DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS})
                    done = sum(1 for e in events if e.dagster_event.event_type == DagsterEventType.STEP_SUCCESS)
                    started = [e.step_key for e in events if e.dagster_event.event_type == DagsterEventType.STEP_START]
                    now = started[-1] if len(started) > done else "between steps"
                    bar.update(task, description=f"      {now} ({done} step(s) done)")
                except Exception:  # noqa: BLE001 - a display must never break the run
                    continue


def warehouse_counts(path: Path) -> dict[str, int]:
    warehouse = Warehouse(path)
    if not path.exists():
        return {}
    with warehouse.connect(read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def run_interruptibly(work: Callable[[], T], on_interrupt: Callable[[str], None]) -> T:
    """`work()` in a worker thread, so that Ctrl-C and SIGTERM are answered at once.

    Dagster's in-process execution swallows SIGINT while a step runs or waits for a pool slot
    (measured: 30+ s with no effect). The main thread only waits here; on SIGINT or SIGTERM it
    calls on_interrupt (mark this process's runs canceled, free their slots) and exits the
    process. Stopping mid-write is what a kill does: every store write is one transaction, so
    the previous state stays and the next run finishes the work.
    """
    import signal
    import threading

    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = exc

    def interrupted(signum, _frame) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=target, name="evalflow-run", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    except _Interrupted as stop:
        code = 130 if stop.args[0] == "SIGINT" else 143
        try:
            on_interrupt(stop.args[0])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


class _Interrupted(BaseException):
    """SIGINT or SIGTERM reached the main thread while a run was in progress."""


def cancel_own_runs(instance: dg.DagsterInstance, why: str) -> list[str]:
    """Mark every unfinished run this process started canceled and free its pool slots."""
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    canceled = []
    for run in instance.get_runs(dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES),
                                               tags={PID_TAG: str(os.getpid())})):
        instance.report_run_canceled(run, message=f"Canceled: evalflow received {why}.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        canceled.append(run.run_id)
    return canceled
