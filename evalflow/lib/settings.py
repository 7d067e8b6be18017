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
from pathlib import Path


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _int(name: str, default: int) -> int:
    return int(_float(name, default))


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
    partitions_start: str = "2024-01-01"
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
        override = os.environ.get("EVALFLOW_MODEL_DIR")
        return Path(override).expanduser().resolve() if override else self.data_dir / "models"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("EVALFLOW_DATA_DIR", "./data")).expanduser().resolve()
    fraction = _float("EVALFLOW_PAYLOAD_KEEP_FRACTION", 1.0)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"EVALFLOW_PAYLOAD_KEEP_FRACTION must be in [0, 1], got {fraction}")
    return Settings(
        data_dir=data_dir,
        payload_keep_fraction=fraction,
        reject_rate_threshold=_float("EVALFLOW_REJECT_RATE_THRESHOLD", 0.01),
        line_soft_cap_bytes=_int("EVALFLOW_LINE_SOFT_CAP_BYTES", 1_000_000),
        line_hard_cap_bytes=_int("EVALFLOW_LINE_HARD_CAP_BYTES", 32_000_000),
        field_cap_bytes=_int("EVALFLOW_FIELD_CAP_BYTES", 32_000),
        max_json_depth=_int("EVALFLOW_MAX_JSON_DEPTH", 64),
        clock_skew_tolerance_s=_float("EVALFLOW_CLOCK_SKEW_TOLERANCE_S", 3600.0),
        partitions_start=os.environ.get("EVALFLOW_PARTITIONS_START", "2024-01-01"),
        raw_retention_days=_int("EVALFLOW_RAW_RETENTION_DAYS", 90),
    )
