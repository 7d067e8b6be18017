"""Materialize the whole asset graph in-process, the way `evalflow run` and the demo do.

Dagster runs one partitions definition per run, so the graph goes in phases: unpartitioned
assets that feed the daily ones (landing), then every daily-partitioned asset over the range of
days found in the stage as one single-run backfill, then whatever depends on those. Each phase
is a real Dagster run in the given instance, so the UI shows the same history afterwards.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import dagster as dg

from evalflow.lib.landing import all_event_dates
from evalflow.lib.settings import load_settings
from evalflow.lib.warehouse import Warehouse

# The progress lines and the one-line error are ours; Dagster's event lines, tracebacks
# included, stay in the run's event log, where the UI shows them.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

DAGSTER_YAML_TEMPLATE = """storage:
  sqlite:
    base_dir: {home}/storage
concurrency:
  pools:
    default_limit: 1
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


def _load_definitions() -> dg.Definitions:
    from evalflow.definitions import defs

    return defs()


def _unique_assets(definitions: dg.Definitions) -> list[dg.AssetsDefinition]:
    # A module that imports an asset from another defs module makes the loader see it twice.
    unique: dict[frozenset, dg.AssetsDefinition] = {}
    for asset in definitions.assets or []:
        if isinstance(asset, dg.AssetsDefinition):
            unique.setdefault(frozenset(asset.keys), asset)
    return list(unique.values())


def _phases(definitions: dg.Definitions) -> list[tuple[str, list[dg.AssetsDefinition], bool]]:
    """(name, assets, partitioned) in dependency order: upstream, daily, downstream."""
    assets = _unique_assets(definitions)
    daily = [a for a in assets if a.partitions_def is not None]
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
    ]


def run_pipeline(
    instance: dg.DagsterInstance | None = None,
    progress: Callable[[str], None] = print,
) -> list[PhaseResult]:
    """Materialize every asset; returns one result per phase that had something to do."""
    definitions = _load_definitions()
    resources = dict(definitions.resources or {})
    all_assets = _unique_assets(definitions)
    instance = instance or dg.DagsterInstance.get()
    settings = load_settings()
    results: list[PhaseResult] = []
    phases = [phase for phase in _phases(definitions) if phase[1]]
    for index, (name, assets, partitioned) in enumerate(phases, start=1):
        if not assets:
            continue
        keys = [k for a in assets for k in a.keys]
        tags: dict[str, str] = {}
        span = None
        if partitioned:
            days = all_event_dates(Warehouse(settings.raw_store_path))
            if not days:
                progress(f"[{index}/{len(phases)}] {name}: no traces staged, nothing to partition")
                continue
            span = (days[0].isoformat(), days[-1].isoformat())
            tags = {"dagster/asset_partition_range_start": span[0],
                    "dagster/asset_partition_range_end": span[1]}
        label = ", ".join(k.to_user_string() for k in keys)
        where = f" over {span[0]}..{span[1]}" if span else ""
        progress(f"[{index}/{len(phases)}] {name}: materializing {label}{where} ...")
        started = time.perf_counter()
        outcome = dg.materialize(all_assets, selection=keys, instance=instance, resources=resources,
                                 tags=tags, raise_on_error=False, run_config=QUIET_CONSOLE)
        seconds = time.perf_counter() - started
        failed_checks = [
            f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
            for e in outcome.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
        ]
        error = None
        if not outcome.success:
            failures = [e for e in outcome.all_events if e.event_type_value == "STEP_FAILURE"]
            error = failures[0].step_failure_data.error.message.strip().splitlines()[0] if failures else "run failed"
        results.append(PhaseResult(name, [k.to_user_string() for k in keys], outcome.success,
                                   seconds, span, failed_checks, error))
        status = "ok" if outcome.success and not failed_checks else "FAILED"
        progress(f"      {status} in {seconds:.1f}s" + (f"; failed checks: {failed_checks}" if failed_checks else "")
                 + (f"; error: {error}" if error else ""))
        if not outcome.success:
            break
    return results


def warehouse_counts(path: Path) -> dict[str, int]:
    warehouse = Warehouse(path)
    if not path.exists():
        return {}
    with warehouse.connect(read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
