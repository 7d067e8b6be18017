"""Configuration from the environment, read once per call so tests can point it elsewhere.

One setting decides where everything lives: EVALFLOW_DATA_DIR (default ./data) holds
landing/ (incoming trace files), raw/raw.duckdb (the raw store: traces as they arrived, PII
included, opened only by ingestion and redaction), warehouse/evalflow.duckdb (the warehouse
analysts, annotators, reports and the Dagster UI read: no raw text), exports/ (published
copies for readers) and ground_truth/ (the simulator's answers, never read by the pipeline).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path


def text_setting(name: str, default: str | None = None, strip: bool = True) -> str | None:
    """The text of a setting (stripped unless strip=False, e.g. for a secret taken as it is),
    or `default` when unset or empty. Every EVALFLOW_* variable is read through this module, so
    docs/configuration.md has one place to check."""
    raw = os.environ.get(name)
    if raw is None or raw == "" or (strip and raw.strip() == ""):
        return default
    return raw.strip() if strip else raw


class SettingError(ValueError):
    """A setting (environment variable) with a value outside what it allows; the message names
    the variable, so the command line can print it as one line."""


def float_setting(name: str, default: float, low: float | None = None, high: float | None = None,
           high_open: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name} must be a number, got {raw!r}") from None
    _check_range(name, value, low, high, high_open, raw)
    return value


def int_setting(name: str, default: int, low: int | None = None, high: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise SettingError(f"{name} must be a whole number, got {raw!r}") from None
    _check_range(name, value, low, high, False, raw)
    return value


def _check_range(name: str, value: float, low, high, high_open: bool, raw: str) -> None:
    if value != value:  # NaN compares false with everything and would pass every check below
        raise SettingError(f"{name} must be a number, got {raw!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if (low is not None and value < low) or too_high:
        bounds = [f"at least {low:g}"] if low is not None else []
        if high is not None:
            bounds.append(f"{'below' if high_open else 'at most'} {high:g}")
        raise SettingError(f"{name} must be {' and '.join(bounds)}, got {raw!r}")


# Where the first day with data is recorded, so the daily partitions start there (see
# `_partitions_start`); written by the landing stage and by the simulator.
PARTITIONS_START_FILE = "partitions_start"
FALLBACK_PARTITIONS_START = "2024-01-01"


def _partitions_start(data_dir: Path) -> str:
    """The first daily partition: EVALFLOW_PARTITIONS_START if set; else the first day with data,
    as recorded in <data>/partitions_start; else 2024-01-01 (a fresh install before any data).

    Why a recorded day and not dynamic partitions: time-window partitions keep ranges, schedules
    and single-run backfills working by date order, and the UI then shows the days from the first
    trace on, not two years of empty days before it.
    """
    raw = text_setting("EVALFLOW_PARTITIONS_START")
    name = "EVALFLOW_PARTITIONS_START"
    if raw is None:
        recorded = data_dir / PARTITIONS_START_FILE
        try:
            raw, name = recorded.read_text().strip(), str(recorded)
        except OSError:
            raw = FALLBACK_PARTITIONS_START
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise SettingError(f"{name} must be a date (YYYY-MM-DD), got {raw!r}") from None
    if day < date(2000, 1, 1):
        raise SettingError(f"{name} must be 2000-01-01 or later, got {raw!r}")
    return day.isoformat()


def record_first_day(data_dir: Path, first_day: date) -> bool:
    """Record the first day with data if it is earlier than the one recorded (or none is).
    Returns whether the record changed. Written to a temporary file and renamed: a kill leaves
    the old record or the new one."""
    recorded = data_dir / PARTITIONS_START_FILE
    try:
        current = date.fromisoformat(recorded.read_text().strip())
    except (OSError, ValueError):
        current = None
    if current is not None and current <= first_day:
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = recorded.with_name(recorded.name + ".tmp")
    tmp.write_text(first_day.isoformat() + "\n")
    tmp.replace(recorded)
    return True


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # Fraction of traces whose full payload is kept (by trace_id hash). 1.0 for the demo;
    # 0.05-0.10 for high-traffic production, where metadata still covers every trace.
    payload_keep_fraction: float = 1.0
    # Quarantined lines / lines read above which the blocking reject-rate check fails.
    reject_rate_threshold: float = 0.01
    # Lines longer than this are parsed, but their long string fields are truncated.
    line_soft_cap_bytes: int = 1_000_000
    # Lines longer than this are not parsed at all (quarantined as oversize_line).
    line_hard_cap_bytes: int = 32_000_000
    # A string field longer than this (in a line over the soft cap) is cut at a UTF-8 boundary.
    field_cap_bytes: int = 32_000
    max_json_depth: int = 64
    # A timestamp up to this far in the future is clock skew (kept, flagged); beyond, rejected.
    clock_skew_tolerance_s: float = 3600.0
    partitions_start: str = FALLBACK_PARTITIONS_START
    # Raw partitions older than this (by event day) are deleted from the raw store once they
    # have been redacted: raw text is kept only as long as re-redaction may need it.
    raw_retention_days: int = 90

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def raw_store_path(self) -> Path:
        return self.data_dir / "raw" / "raw.duckdb"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "evalflow.duckdb"

    @property
    def model_dir(self) -> Path:
        """Exported/quantized models (built once from packaged weights); EVALFLOW_MODEL_DIR moves it."""
        override = text_setting("EVALFLOW_MODEL_DIR")
        return Path(override).expanduser().resolve() if override else self.data_dir / "models"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"


def load_settings() -> Settings:
    """The settings, each checked against its allowed range (SettingError names the variable)."""
    data_dir = Path(text_setting("EVALFLOW_DATA_DIR", "./data")).expanduser().resolve()
    soft_cap = int_setting("EVALFLOW_LINE_SOFT_CAP_BYTES", 1_000_000, low=1024)
    hard_cap = int_setting("EVALFLOW_LINE_HARD_CAP_BYTES", 32_000_000, low=1024, high=2**31 - 1)
    if hard_cap < soft_cap:
        raise SettingError(f"EVALFLOW_LINE_HARD_CAP_BYTES ({hard_cap}) must not be below "
                           f"EVALFLOW_LINE_SOFT_CAP_BYTES ({soft_cap})")
    return Settings(
        data_dir=data_dir,
        payload_keep_fraction=float_setting("EVALFLOW_PAYLOAD_KEEP_FRACTION", 1.0, low=0.0, high=1.0),
        # 1 or more would make a check that can never fail; 0 fails on any bad line at all.
        reject_rate_threshold=float_setting("EVALFLOW_REJECT_RATE_THRESHOLD", 0.01, low=0.0, high=1.0, high_open=True),
        line_soft_cap_bytes=soft_cap,
        line_hard_cap_bytes=hard_cap,
        field_cap_bytes=int_setting("EVALFLOW_FIELD_CAP_BYTES", 32_000, low=64, high=soft_cap),
        # orjson refuses nesting deeper than 1024 on its own.
        max_json_depth=int_setting("EVALFLOW_MAX_JSON_DEPTH", 64, low=2, high=1000),
        clock_skew_tolerance_s=float_setting("EVALFLOW_CLOCK_SKEW_TOLERANCE_S", 3600.0, low=0.0, high=7 * 86400.0),
        partitions_start=_partitions_start(data_dir),
        raw_retention_days=int_setting("EVALFLOW_RAW_RETENTION_DAYS", 90, low=1),
    )


def validate_environment() -> Settings:
    """Every EVALFLOW_* setting, checked at start-up (the CLI, the code location) rather than
    at the step that first reads it, minutes into a run. Raises SettingError naming the
    variable. Cheap: nothing heavy is imported or loaded."""
    settings = load_settings()
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise SettingError(f"EVALFLOW_DATA_DIR points at a file, not a folder: {settings.data_dir}")
    from evalflow.lib.intents.store import text_mode
    from evalflow.lib.redact.config import detector_config_from_env
    from evalflow.lib.redact.pseudonym import OPERATORS_ENV, parse_operators

    for check in (text_mode, detector_config_from_env, lambda: parse_operators(text_setting(OPERATORS_ENV))):
        try:
            check()
        except SettingError:
            raise
        except ValueError as exc:  # their messages name the variable already
            raise SettingError(str(exc)) from None
    lock_wait_seconds()
    _validate_label_settings()
    from evalflow.lib.drift.webhook import webhook_url

    webhook_url()
    _validate_stage_files(settings.data_dir)
    return settings


def _validate_stage_files(data_dir: Path) -> None:
    """The files a user edits in the data folder (or names with EVALFLOW_DRIFT_CONFIG,
    EVALFLOW_CONTAMINATION_CONFIG, EVALFLOW_INTENT_OVERRIDES): drift.toml with EVALFLOW_DRIFT_SEED
    and EVALFLOW_DRIFT_MIN_TRACES, contamination.toml's thresholds and intent_overrides.toml.
    Registered corpora are checked when the contamination check runs (a corpus file may be
    written after start-up)."""
    from evalflow.lib.contamination.config import load_contamination_config
    from evalflow.lib.drift.config import load_drift_config
    from evalflow.lib.intents.overrides import load_overrides

    load_drift_config(data_dir)  # raises DriftConfigError, a SettingError
    for check in (load_contamination_config, load_overrides):
        try:
            check(data_dir)
        except ValueError as exc:  # their messages name the file or the variable
            raise SettingError(str(exc)) from None


def _validate_label_settings() -> None:
    """The labels and judge stages' thresholds (each raises SettingError naming its variable)."""
    from evalflow.lib.judge.config import validate_judge_settings
    from evalflow.lib.labels.consensus import consensus_min_agreement
    from evalflow.lib.labels.gate import agreement_min, gate_min_items
    from evalflow.lib.labels.leakage import anchored_threshold
    from evalflow.lib.labels.quality import QualityThresholds

    validate_judge_settings()
    for check in (consensus_min_agreement, agreement_min, gate_min_items, anchored_threshold,
                  QualityThresholds.from_settings):
        check()


def lock_wait_seconds() -> float:
    """How long a writer waits for a DuckDB file another process holds (EVALFLOW_LOCK_WAIT_S)."""
    return float_setting("EVALFLOW_LOCK_WAIT_S", 300.0, low=0.0, high=86400.0)
