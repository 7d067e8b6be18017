"""The judge stage's tables (warehouse, DuckDB), their DDL and writes; each write is one transaction.

- judge_verdict_cache: every reply the judge endpoint gave, keyed by (model, prompt sha256, case
  sha256); the client never sends a cached key again. The CLI keeps its own file
  (<data>/judge/cache.duckdb or --cache); the pipeline keeps it in the warehouse.
- judge_calibrations: one row per calibration of a (dimension, model, prompt): its figures on
  the test part and whether it is `calibrated`. The id is a hash of what was calibrated and on
  which labels, so running the same calibration again replaces its row.
- judge_calibration_cases: each case of a calibration: its split (tune/test/holdout), the human
  consensus verdict and the judge's (NULL for holdout cases, never sent, and unparseable replies).
- judge_labels: labels a calibrated judge wrote for unlabelled cases, one per (case, dimension):
  the latest calibrated judge's; each names its model, prompt sha256 and calibration id.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.warehouse import Warehouse, has_table

if TYPE_CHECKING:  # the client (httpx) loads when a judge runs, not when defs/ reads this DDL
    from evalflow.lib.judge.calibrate import Calibration
    from evalflow.lib.judge.client import CachedReply, JudgeResult

CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_verdict_cache (
    model VARCHAR NOT NULL,
    prompt_sha256 VARCHAR NOT NULL,
    case_sha256 VARCHAR NOT NULL,
    case_id VARCHAR,
    dimension VARCHAR,
    verdict VARCHAR,
    critique VARCHAR,
    raw_reply VARCHAR NOT NULL,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, prompt_sha256, case_sha256)
);
"""

CALIBRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_calibrations (
    calibration_id VARCHAR PRIMARY KEY,
    dimension VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    prompt_sha256 VARCHAR NOT NULL,
    variant VARCHAR,
    n_tune BIGINT,
    n_test BIGINT,
    agreement DOUBLE,
    kappa DOUBLE,
    tpr DOUBLE,
    tnr DOUBLE,
    calibrated BOOLEAN NOT NULL,
    gate_open BOOLEAN NOT NULL,
    "at" TIMESTAMPTZ NOT NULL  -- quoted: AT is a keyword in DuckDB
);
CREATE TABLE IF NOT EXISTS judge_calibration_cases (
    calibration_id VARCHAR NOT NULL,
    case_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    human VARCHAR,
    judge VARCHAR,
    PRIMARY KEY (calibration_id, case_id)
);
"""

LABELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_labels (
    case_id VARCHAR NOT NULL,
    trace_id VARCHAR,
    dimension VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL,
    critique VARCHAR,
    model VARCHAR NOT NULL,
    prompt_sha256 VARCHAR NOT NULL,
    calibration_id VARCHAR NOT NULL,
    labelled_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (case_id, dimension)
);
"""

JUDGE_TABLES = ("judge_verdict_cache", "judge_calibrations", "judge_calibration_cases", "judge_labels")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _describe(con, tables: Sequence[str]) -> None:
    # The catalog (lib/common/catalog.py) describes every judge table; the comments and the views
    # commit with the write.
    apply_catalog(con, tables)


class VerdictCacheStore:
    """The verdict cache in a DuckDB file (the warehouse, or the CLI's own cache file)."""

    def __init__(self, warehouse: Warehouse, describe: bool = True):
        self.warehouse = warehouse
        self.describe = describe  # False for a file that is not the warehouse (no catalog, no views)

    def get_many(self, model: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CachedReply]:
        if not keys or not self.warehouse.path.exists():
            return {}
        wanted = pl.DataFrame({"prompt_sha256": [k[0] for k in keys], "case_sha256": [k[1] for k in keys]},
                              schema={"prompt_sha256": pl.String, "case_sha256": pl.String})
        with self.warehouse.connect() as con:
            if not has_table(con, "judge_verdict_cache"):
                return {}
            con.register("wanted_keys", wanted.to_arrow())
            rows = con.execute(
                "SELECT c.prompt_sha256, c.case_sha256, c.raw_reply, c.prompt_tokens, c.completion_tokens "
                "FROM judge_verdict_cache c JOIN wanted_keys w USING (prompt_sha256, case_sha256) "
                "WHERE c.model = ?", [model]).fetchall()
        from evalflow.lib.judge.client import CachedReply

        return {(p, c): CachedReply(raw, pt, ct) for p, c, raw, pt, ct in rows}

    def put_many(self, results: Sequence[JudgeResult]) -> None:
        if not results:
            return
        now = _now()
        rows = [[r.model, r.prompt_sha256, r.case_sha256, r.case_id, r.dimension, r.verdict, r.critique,
                 r.raw_reply, r.prompt_tokens, r.completion_tokens, now] for r in results]
        with self.warehouse.transaction() as con:
            con.execute(CACHE_SCHEMA)
            con.executemany("INSERT OR REPLACE INTO judge_verdict_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            rows)
            if self.describe:
                _describe(con, ("judge_verdict_cache",))

    def count(self) -> int:
        if not self.warehouse.path.exists():
            return 0
        with self.warehouse.connect() as con:
            if not has_table(con, "judge_verdict_cache"):
                return 0
            return con.execute("SELECT count(*) FROM judge_verdict_cache").fetchone()[0]


def record_calibration(warehouse: Warehouse, calibration: Calibration, at: datetime | None = None) -> None:
    """The calibration's row and its cases, replacing an earlier record of the same calibration id."""
    report = calibration.to_report()
    test = report["test"]
    at = at or _now()
    with warehouse.transaction() as con:
        con.execute(CALIBRATION_SCHEMA)
        con.execute("DELETE FROM judge_calibration_cases WHERE calibration_id = ?", [calibration.calibration_id])
        con.execute("INSERT OR REPLACE INTO judge_calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [calibration.calibration_id, calibration.dimension, calibration.model,
                     calibration.template.sha256, calibration.template.variant, report["tune"]["n"], test["n"],
                     test["agreement"], test["kappa"], test["tpr"], test["tnr"], calibration.calibrated,
                     calibration.gate_open, at])
        cases = [[calibration.calibration_id, c["case_id"], c["split"], c["human"], c["judge"]]
                 for c in report["cases"]]
        if cases:
            con.executemany("INSERT INTO judge_calibration_cases VALUES (?, ?, ?, ?, ?)", cases)
        _describe(con, ("judge_calibrations", "judge_calibration_cases"))


def record_judge_labels(warehouse: Warehouse, rows: Sequence[dict[str, Any]], at: datetime | None = None) -> int:
    """Judge labels (from calibrate.judge_unlabelled), replacing earlier ones of the same case and
    dimension. Returns the rows written."""
    at = at or _now()
    values = [[r["case_id"], r.get("trace_id"), r["dimension"], r["verdict"], r.get("critique"), r["model"],
               r["prompt_sha256"], r["calibration_id"], at] for r in rows]
    with warehouse.transaction() as con:
        con.execute(LABELS_SCHEMA)
        if values:
            con.executemany("INSERT OR REPLACE INTO judge_labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        _describe(con, ("judge_labels",))
    return len(values)


def latest_calibrations(warehouse: Warehouse) -> pl.DataFrame:
    """The latest calibration of each dimension (the judge_calibrations columns)."""
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "judge_calibrations"):
            return pl.DataFrame()
        return pl.from_arrow(con.sql(
            "SELECT * FROM judge_calibrations QUALIFY row_number() OVER (PARTITION BY dimension "
            "ORDER BY \"at\" DESC, calibration_id) = 1 ORDER BY dimension").to_arrow_table())
