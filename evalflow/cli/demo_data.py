"""`evalflow demo` run again over an earlier demo's data folder.

Landing files are recognised by content hash and trace ids are unique, so simulated traffic that
differs from what an earlier demo ingested (another evalflow version, other --days/--seed)
lands as tens of thousands of `conflict` quarantine rows while the warehouse keeps the old
traces. The demo therefore simulates into a staging folder first and compares:

- the landing folder holds the same files and the raw store ingested no others: the earlier
  demo's stores stay; re-running only adds what downstream assets add on every run (a new
  sample, a new annotation batch);
- otherwise, in a folder an earlier demo made (it holds ``ground_truth/``, which only the
  simulator writes): the earlier demo's stores move to ``previous-demo/`` (replacing an older
  one there) and the demo starts clean; nothing is deleted but that older copy. "The raw store
  ingested others" catches a folder where new traffic already landed over stores built from
  older traffic (`landed_files` records each ingested file's path and sha256); a raw store
  written by a newer DuckDB than the installed one (evalflow once pinned DuckDB 2.x) cannot be
  read and counts as another demo's too, so the demo rebuilds by itself;
- a folder without ``ground_truth/`` is not a demo's: the simulated files are added beside
  what is there, as `evalflow simulate` does, and nothing moves.

Exported models, the pseudonym key and the judge's prompt folder stay where they are: none
depends on the traffic. The labels drop folder, the lake and the snapshots go with the stores
(labels of another demo's batches would be quarantined as unknown items).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evalflow.lib.common.settings import Settings
from evalflow.lib.ingest.canonical import file_sha256
from evalflow.lib.ingest.parse_file import iter_landing_files

# What a demo builds from its traffic (everything else under the data folder is kept).
# The first day with data (lib/common/settings.py) goes with the stores it describes.
DEMO_STORES = ("landing", "ground_truth", "raw", "warehouse", "annotation", "labels", "lake", "snapshots", "exports",
               "partitions_start")
PREVIOUS = "previous-demo"
STAGING = ".demo-next"


@dataclass(frozen=True)
class DemoData:
    summary: object  # what the simulate callable returned
    moved_to: Path | None  # where an earlier demo's stores went, if they moved


def landing_digest(landing_dir: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file ingestion would read under ``landing_dir`` (the
    files `landed_files` records; empty if the folder is absent)."""
    return {p.relative_to(landing_dir).as_posix(): file_sha256(p)
            for p in iter_landing_files(landing_dir)}


def ingested_files(raw_store: Path) -> set[tuple[str, str]]:
    """(path relative to landing, sha256) of every file the raw store's `landed_files` records;
    empty when there is no raw store yet."""
    from evalflow.lib.common.warehouse import connect_waiting, has_table

    if not raw_store.is_file():
        return set()
    with connect_waiting(raw_store, read_only=True) as con:
        if not has_table(con, "landed_files"):
            return set()
        return {(path, sha) for path, sha in
                con.execute("SELECT path, file_sha256 FROM landed_files").fetchall()}


def _other_files_ingested(data_dir: Path, staged: dict[str, str]) -> bool:
    """Whether the raw store ingested files other than the staged ones. A store written by a
    newer DuckDB (an earlier evalflow pinned DuckDB 2.x) cannot be read at all: it counts as
    another demo's, so it moves aside and is rebuilt."""
    from evalflow.lib.common.warehouse import WrittenByNewerDuckDB

    try:
        return bool(ingested_files(Settings(data_dir).raw_store_path) - set(staged.items()))
    except WrittenByNewerDuckDB:
        return True


def _move_files(source: Path, target: Path) -> None:
    """Every file under ``source`` to the same relative path under ``target`` (replacing)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)


def prepare_demo_data(data_dir: Path,
                      simulate_into: Callable[[Path, Path], object]) -> DemoData:
    """Simulate demo traffic into ``data_dir``'s landing and ground-truth folders (see the module
    docstring for what happens to an earlier demo's data). ``simulate_into(landing_dir,
    ground_truth_dir)`` writes the traffic."""
    data_dir = Path(data_dir)
    staging = data_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    staging.mkdir(parents=True)
    try:
        summary = simulate_into(staging / "landing", staging / "ground_truth")
        staged = landing_digest(staging / "landing")
        current = landing_digest(data_dir / "landing")
        made_by_demo = (data_dir / "ground_truth").is_dir()
        other_traffic = (current and current != staged) or _other_files_ingested(data_dir, staged)
        moved_to = None
        if made_by_demo and other_traffic:
            moved_to = data_dir / PREVIOUS
            shutil.rmtree(moved_to, ignore_errors=True)
            moved_to.mkdir()
            for name in DEMO_STORES:
                if (data_dir / name).exists():
                    os.replace(data_dir / name, moved_to / name)
        for name in ("landing", "ground_truth"):
            _move_files(staging / name, data_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DemoData(summary, moved_to)
