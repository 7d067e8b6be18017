"""Ingest throughput: our path against polars.read_ndjson + a DuckDB insert, same file, one run.

    .venv/bin/python benchmarks/ingest.py [--traces 100000]

Both sides read the same canonical JSONL of simulated traffic and end with the rows in a DuckDB
file. The baseline does nothing else: no per-line error accounting, no validation, no dedup, no
quarantine, and it aborts on the first bad line (so the file handed to it is clean). Ours parses
line by line, validates every field, hashes content for dedup/conflicts and stages in one
transaction. The ratio says what that safety costs.

The baseline gets an explicit schema with nested fields read as JSON text: with schema
inference, polars 2.1 cannot read this data at all ("failed to determine supertype of struct[24]
and struct[24]": tool results differ in shape from line to line).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import orjson
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalflow.lib.common.warehouse import Warehouse  # noqa: E402
from evalflow.lib.ingest.canonical import CANONICAL_FIELDS  # noqa: E402
from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file  # noqa: E402
from evalflow.lib.ingest.store import RAW_SCHEMA, stage_file  # noqa: E402
from evalflow.simulator import simulate  # noqa: E402


def canonical_file(workdir: Path, traces: int) -> Path:
    """Simulated traffic in every dialect, normalised once to one clean canonical file."""
    per_day = 1000
    days = max(1, traces // per_day)
    # End yesterday: simulated days in the future would be (rightly) quarantined.
    start = date.today() - timedelta(days=days + 1)
    simulate(workdir / "landing", workdir / "truth", days=days, per_day=per_day, seed=11, start_date=start)
    out = workdir / "canonical.jsonl"
    known = KnownTraces()
    options = IngestOptions(now=datetime.now(timezone.utc))
    written = 0
    with out.open("wb") as handle:
        for path in sorted((workdir / "landing").rglob("*.jsonl")):
            for row in ingest_file(path, known, options).traces:
                handle.write(orjson.dumps({k: row[k] for k in CANONICAL_FIELDS}, default=str) + b"\n")
                written += 1
    print(f"canonical file: {written} traces, {out.stat().st_size / 1e6:.1f} MB")
    return out


def ours(path: Path, db: Path) -> int:
    warehouse = Warehouse(db, schema=RAW_SCHEMA)
    warehouse.ensure_schema()
    started = time.perf_counter()
    result = ingest_file(path, KnownTraces(), IngestOptions(now=datetime.now(timezone.utc)))
    parsed = time.perf_counter()
    stage_file(warehouse, result)
    print(f"  evalflow split: parse+validate {parsed - started:.2f}s, stage {time.perf_counter() - parsed:.2f}s")
    return warehouse.count("staged_traces")


NUMERIC = {"latency_ms": pl.Float64, "cost_usd": pl.Float64, "input_tokens": pl.Int64,
           "output_tokens": pl.Int64, "payload_kept": pl.Boolean}
BASELINE_SCHEMA = {name: NUMERIC.get(name, pl.String) for name in CANONICAL_FIELDS}


def baseline(path: Path, db: Path) -> int:
    frame = pl.read_ndjson(path, schema=BASELINE_SCHEMA)
    con = duckdb.connect(str(db))
    con.register("frame", frame)
    con.execute("BEGIN TRANSACTION")
    con.execute("CREATE TABLE traces AS SELECT * FROM frame")
    con.execute("COMMIT")
    count = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    con.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = canonical_file(workdir, args.traces)
        timings: dict[str, list[float]] = {"evalflow": [], "polars+duckdb": []}
        counts = {}
        for repeat in range(args.repeats):
            for name, fn in (("evalflow", ours), ("polars+duckdb", baseline)):
                db = workdir / f"{name}-{repeat}.duckdb"
                started = time.perf_counter()
                counts[name] = fn(path, db)
                timings[name].append(time.perf_counter() - started)
        best = {name: min(values) for name, values in timings.items()}
        for name in timings:
            print(f"{name:>14}: {counts[name]} rows, best of {args.repeats}: {best[name]:.2f}s "
                  f"= {counts[name] / best[name]:,.0f} traces/s")
        ratio = best["polars+duckdb"] / best["evalflow"]
        print(f"ratio evalflow / baseline throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
