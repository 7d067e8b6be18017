"""The snapshot tables in the lake (DuckLake, evalflow/lib/common/lake.py) and the manifest files.

Tables (in `lake.main`, created here; append-only: a published version's rows are never updated
or deleted):

- `dataset_versions`: one row per published version: name, version, snapshot_id (the DuckLake
  snapshot its commit made; `FROM lake.main.dataset_cases AT (VERSION => snapshot_id)`),
  created_at, author, message, manifest_sha256, content_sha256, cases, holdout_cases,
  manifest_json (the manifest's canonical JSON).
- `dataset_cases`: one row per case of a version: name, version, case_id, split, case_sha256,
  case_json (the case's canonical JSON, content.py).

Publishing one version is one lake transaction: its case rows, its version row and the commit
message (author = the version's author, message = the changelog text, extra info = JSON naming
the version) commit together, so a process killed at any moment leaves the whole version or
none of it, and the earlier versions as they were. Publishers take the lake's writer lock
(`<data>/lake/writer.lock`) so the snapshot id recorded in the row is the one the commit makes
(checked after the commit against the snapshot's extra info).

After the commit the manifest is also written to `<data>/snapshots/<name>/<version>/manifest.json`
(temporary file + rename); a missing file (a kill between the commit and the rename) is
rewritten from the lake on the next read. The lake is the source of truth: `verify` compares
the file with it.

A version that exists is never overwritten: publishing it again with the same content is a
no-op, with other content an error (VersionExists).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa

from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.lake import LAKE_ALIAS, connect_lake, lake_paths, set_commit_message, snapshot_id
from evalflow.lib.common.processes import exclusive_lock
from evalflow.lib.snapshots.content import (
    SplitChanged,
    canonical_case,
    case_sha256,
    check_cases,
    check_splits_unchanged,
    content_sha256,
    split_for,
)
from evalflow.lib.snapshots.manifest import Provenance, build_manifest, canonical_json, manifest_sha256
from evalflow.lib.snapshots.refs import DatasetRef, check_version, parse_ref

VERSIONS = "dataset_versions"
CASES = "dataset_cases"
DDL = (
    f"""CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.main.{VERSIONS} (
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    snapshot_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    author VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,
    content_sha256 VARCHAR NOT NULL,
    cases BIGINT NOT NULL,
    holdout_cases BIGINT NOT NULL,
    manifest_json VARCHAR NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.main.{CASES} (
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    case_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    case_sha256 VARCHAR NOT NULL,
    case_json VARCHAR NOT NULL
)""",
)
EXTRA_INFO_KEY = "evalflow_dataset"


class SnapshotError(RuntimeError):
    """A version that cannot be published or read as asked."""


class VersionExists(SnapshotError):
    """The version is published already, with other content: versions are never overwritten."""


class VersionNotFound(SnapshotError):
    """No such version (a pin never falls back to another one)."""


class VersionNotVerified(SnapshotError):
    """The version's stored rows do not match its manifest; `.problems` says how."""

    def __init__(self, ref: str, problems: Sequence[str]):
        self.ref = ref
        self.problems = list(problems)
        super().__init__(f"{ref} does not verify: " + "; ".join(self.problems[:5])
                         + (f"; and {len(self.problems) - 5} more" if len(self.problems) > 5 else ""))


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    snapshot_id: int
    created_at: datetime
    author: str
    message: str
    manifest_sha256: str
    content_sha256: str
    cases: int
    holdout_cases: int

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Published:
    ref: DatasetRef
    snapshot_id: int
    manifest: dict[str, Any]
    manifest_sha256: str
    created: bool  # False: the same content was published already (a no-op)
    manifest_path: Path


def writer_lock_path(data_dir: Path) -> Path:
    return lake_paths(data_dir).root / "writer.lock"


def manifest_path(data_dir: Path, ref: DatasetRef) -> Path:
    return Path(data_dir) / "snapshots" / ref.name / ref.version / "manifest.json"


def _as_ref(ref: DatasetRef | str) -> DatasetRef:
    if isinstance(ref, DatasetRef):
        check_version(ref.name, ref.version)
        return ref
    return parse_ref(ref)


def _has_tables(con) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
                        "AND table_name IN (?, ?)", [LAKE_ALIAS, VERSIONS, CASES]).fetchall()[0][0]
    return found == 2


def _ensure_tables(con) -> None:
    """Create the two tables (one lake snapshot of their own) when the lake lacks them."""
    if _has_tables(con):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in DDL:
            con.execute(statement)
        set_commit_message(con, "evalflow", f"create {VERSIONS} and {CASES}")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _write_manifest_file(path: Path, manifest: Mapping[str, Any]) -> None:
    """Temporary file + fsync + rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if int(stale.name.split(".")[-2]) != os.getpid():
                stale.unlink()
        except (ValueError, OSError):
            pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _ensure_manifest_file(data_dir: Path, ref: DatasetRef, manifest: Mapping[str, Any]) -> None:
    path = manifest_path(data_dir, ref)
    if not path.is_file():
        _write_manifest_file(path, manifest)


def _version_row(con, ref: DatasetRef) -> tuple | None:
    rows = con.execute(f"SELECT snapshot_id, content_sha256, manifest_sha256, manifest_json FROM "
                       f"{LAKE_ALIAS}.main.{VERSIONS} WHERE name = ? AND version = ?",
                       [ref.name, ref.version]).fetchall()
    if len(rows) > 1:
        raise SnapshotError(f"{ref} has {len(rows)} version rows; the table is append-only and holds one per version")
    return rows[0] if rows else None


def _splits_before(con, name: str) -> dict[str, str]:
    rows = con.execute(f"SELECT DISTINCT case_id, split FROM {LAKE_ALIAS}.main.{CASES} WHERE name = ?",
                       [name]).fetchall()
    out: dict[str, str] = {}
    for case_id, split in rows:
        if out.get(case_id, split) != split:
            raise SplitChanged(f"{name}: case {case_id} is stored with two splits")
        out[case_id] = split
    return out


def _snapshot_extra(con, snapshot: int) -> dict[str, Any] | None:
    rows = con.execute(f"SELECT commit_extra_info FROM {LAKE_ALIAS}.snapshots() WHERE snapshot_id = ?",
                       [snapshot]).fetchall()
    if not rows or rows[0][0] is None:
        return None
    try:
        return json.loads(rows[0][0])
    except ValueError:
        return None


def _stored_rows(con, ref: DatasetRef, at: int | None = None) -> list[tuple]:
    at_clause = f" AT (VERSION => {int(at)})" if at is not None else ""
    return con.execute(f"SELECT case_id, split, case_sha256, case_json FROM {LAKE_ALIAS}.main.{CASES}{at_clause} "
                       "WHERE name = ? AND version = ? ORDER BY case_id", [ref.name, ref.version]).fetchall()


# A commit that fails because another process writes the lake (SQLite "database is locked", or a
# snapshot that moved under the transaction) is retried whole, this many times, with backoff.
COMMIT_ATTEMPTS = 6


class _Retry(Exception):
    pass


def _retryable(error: Exception) -> bool:
    import duckdb

    text = str(error)
    return isinstance(error, duckdb.TransactionException) or "database is locked" in text


def publish(data_dir: Path, ref: DatasetRef | str, cases: Sequence[Mapping[str, Any]], *, author: str,
            message: str, commit_message: str | None = None, provenance: Provenance | None = None,
            sampling_plan: Mapping[str, Any] | None = None, parent: str | None = None,
            changelog: Mapping[str, Any] | None = None, rubrics: Mapping[str, Any] | None = None,
            created_at: datetime | None = None,
            production_baseline: Mapping[str, Any] | None = None) -> Published:
    """Publish `cases` as version `ref`: one lake transaction (rows, version row, commit message =
    `commit_message`, default `message`), then manifest.json. Raises VersionExists when the
    version holds other content, SplitChanged when a case's split differs from is_holdout(case_id)
    or from an earlier version of the set, InvalidCase for a case that cannot be versioned.

    A commit another lake writer got in the way of (one that does not take the writer lock, e.g.
    the published current tables) fails whole and is retried whole (COMMIT_ATTEMPTS, backoff up
    to 4 s); DuckLake's own retry is off on this connection, so a commit never lands on another
    snapshot id than the one its rows record."""
    import time

    ref = _as_ref(ref)
    if not author.strip():
        raise SnapshotError("a version needs an author")
    check_cases(cases)
    ordered = sorted((dict(c) for c in cases), key=lambda c: c["case_id"])
    provenance = provenance or Provenance()
    data_dir = Path(data_dir)
    with exclusive_lock(writer_lock_path(data_dir)):
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                published = _publish_once(data_dir, ref, ordered, author=author, message=message,
                                          commit_message=commit_message, provenance=provenance,
                                          sampling_plan=sampling_plan, parent=parent, changelog=changelog,
                                          rubrics=rubrics, created_at=created_at,
                                          production_baseline=production_baseline)
                break
            except _Retry as error:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise SnapshotError(f"{ref} was not published: the lake stayed busy with another writer "
                                        f"({error}); nothing was written, run it again") from None
                time.sleep(min(4.0, 0.25 * 2 ** attempt))
        if published.created:
            _write_manifest_file(published.manifest_path, published.manifest)
        else:
            _ensure_manifest_file(data_dir, ref, published.manifest)
    return published


def _publish_once(data_dir: Path, ref: DatasetRef, ordered: list[dict[str, Any]], *, author: str, message: str,
                  commit_message: str | None, provenance: Provenance, sampling_plan: Mapping[str, Any] | None,
                  parent: str | None, changelog: Mapping[str, Any] | None, rubrics: Mapping[str, Any] | None,
                  created_at: datetime | None, production_baseline: Mapping[str, Any] | None = None) -> Published:
    """One attempt on a fresh connection; _Retry when another writer got in the way."""
    import duckdb

    content = content_sha256(ordered)
    con = connect_lake(data_dir)
    try:
        con.execute("SET ducklake_max_retry_count = 0")
        try:
            _ensure_tables(con)
        except duckdb.Error as error:
            if _retryable(error):
                raise _Retry(str(error).splitlines()[0]) from None
            raise
        existing = _version_row(con, ref)  # under the writer lock: no other publish meanwhile
        if existing is not None:
            if existing[1] != content:
                raise VersionExists(f"{ref} is published already with other content (sha256 "
                                    f"{existing[1][:12]}, this is {content[:12]}); a version never changes: "
                                    "publish a new one")
            return Published(ref, int(existing[0]), json.loads(existing[3]), existing[2], False,
                             manifest_path(data_dir, ref))
        con.execute("BEGIN TRANSACTION")
        try:
            check_splits_unchanged(_splits_before(con, ref.name), ordered, f"an earlier {ref.name} version")
            snapshot = snapshot_id(con) + 1
            when = created_at or utcnow()
            manifest = build_manifest(ref, ordered, created_at=when, author=author, message=message,
                                      provenance=provenance, sampling_plan=sampling_plan, parent=parent,
                                      changelog=changelog, rubrics=rubrics,
                                      production_baseline=production_baseline)
            manifest["snapshot_id"] = snapshot
            manifest_hash = manifest_sha256(manifest)
            rows = pa.table({
                "name": [ref.name] * len(ordered), "version": [ref.version] * len(ordered),
                "case_id": [c["case_id"] for c in ordered], "split": [c["split"] for c in ordered],
                "case_sha256": [case_sha256(c) for c in ordered],
                "case_json": [canonical_case(c) for c in ordered],
            })
            con.register("_snapshot_cases", rows)
            con.execute(f"INSERT INTO {LAKE_ALIAS}.main.{CASES} SELECT name, version, case_id, split, "
                        "case_sha256, case_json FROM _snapshot_cases")
            con.unregister("_snapshot_cases")
            holdout = sum(1 for c in ordered if c["split"] == "holdout")
            con.execute(f"INSERT INTO {LAKE_ALIAS}.main.{VERSIONS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [ref.name, ref.version, snapshot, when, author, message, manifest_hash, content,
                         len(ordered), holdout, canonical_json(manifest)])
            extra = json.dumps({EXTRA_INFO_KEY: str(ref), "content_sha256": content,
                                "manifest_sha256": manifest_hash}, sort_keys=True)
            set_commit_message(con, author, commit_message or message, extra)
        except BaseException as error:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed statement may have ended the transaction already
            if isinstance(error, duckdb.Error) and _retryable(error):
                raise _Retry(str(error).splitlines()[0]) from None
            raise
        try:
            con.execute("COMMIT")
        except duckdb.Error as error:
            if _retryable(error):
                raise _Retry(str(error).splitlines()[0]) from None
            raise
        extra_info = _snapshot_extra(con, snapshot)
    finally:
        con.close()
    if not extra_info or extra_info.get(EXTRA_INFO_KEY) != str(ref):
        raise SnapshotError(f"{ref} committed, but snapshot {snapshot} is not its commit (another writer "
                            "committed in between); `verify` reports it")
    return Published(ref, snapshot, manifest, manifest_hash, True, manifest_path(data_dir, ref))


class Reader:
    """Reads versions over one read-only lake connection (`reading(data_dir)`)."""

    def __init__(self, data_dir: Path, con):
        self.data_dir = Path(data_dir)
        self.con = con

    def versions(self, name: str | None = None) -> list[VersionInfo]:
        """Every published version (of `name`, when given), in publication order per name."""
        if self.con is None:
            return []
        sql = (f"SELECT name, version, snapshot_id, created_at, author, message, manifest_sha256, content_sha256, "
               f"cases, holdout_cases FROM {LAKE_ALIAS}.main.{VERSIONS}")
        rows = self.con.execute(sql + (" WHERE name = ?" if name else ""), [name] if name else []).fetchall()
        return sorted((VersionInfo(*r) for r in rows), key=lambda v: DatasetRef(v.name, v.version).sort_key)

    def latest(self, name: str) -> str | None:
        versions = self.versions(name)
        return versions[-1].version if versions else None

    def manifest(self, ref: DatasetRef | str) -> dict[str, Any]:
        """The version's manifest from the lake (rewriting a missing manifest.json from it)."""
        ref = _as_ref(ref)
        row = _version_row(self.con, ref) if self.con is not None else None
        if row is None:
            published = ", ".join(v.ref for v in self.versions()) or "none"
            raise VersionNotFound(f"{ref} does not exist (published: {published})")
        manifest = json.loads(row[3])
        _ensure_manifest_file(self.data_dir, ref, manifest)
        return manifest

    def verify(self, ref: DatasetRef | str) -> list[str]:
        """See the module function `verify`."""
        ref = _as_ref(ref)
        row = _version_row(self.con, ref) if self.con is not None else None
        if row is None:
            return [f"{ref} does not exist"]
        snapshot, content_hash, manifest_hash, manifest_json = row
        try:
            manifest = json.loads(manifest_json)
        except ValueError:
            return [f"{ref}: its manifest is not JSON"]
        problems = []
        if manifest_sha256(manifest) != manifest_hash:
            problems.append("the manifest does not hash to the recorded manifest_sha256")
        if manifest.get("content_sha256") != content_hash:
            problems.append("the manifest's content_sha256 differs from the version row's")
        if manifest.get("ref") != str(ref):
            problems.append(f"the manifest names {manifest.get('ref')!r}")
        rows = _stored_rows(self.con, ref)
        cases, seen = [], set()
        for case_id, split, sha, text in rows:
            try:
                case = json.loads(text)
            except ValueError:
                problems.append(f"{case_id}: case_json is not JSON")
                continue
            if case_sha256(case) != sha:
                problems.append(f"{case_id}: case_json does not hash to its case_sha256")
            if not isinstance(case, dict) or case.get("case_id") != case_id or case.get("split") != split:
                problems.append(f"{case_id}: the row's case_id/split differ from its case_json's")
            if split != split_for(case_id):
                problems.append(f"{case_id}: split {split!r} but is_holdout says {split_for(case_id)!r}")
            if case_id in seen:
                problems.append(f"{case_id}: stored twice")
            seen.add(case_id)
            cases.append(case)
        try:
            recomputed = content_sha256(cases)
        except (KeyError, TypeError, ValueError) as error:
            recomputed = f"unreadable ({error})"
        if recomputed != manifest.get("content_sha256"):
            problems.append(f"content sha256 {recomputed[:12]} differs from the manifest's "
                            f"{str(manifest.get('content_sha256'))[:12]}")
        holdout = sum(1 for _, split, _, _ in rows if split == "holdout")
        counted = (manifest.get("counts") or {}).get("split") or {}
        if len(rows) != manifest.get("cases") or holdout != counted.get("holdout"):
            problems.append(f"{len(rows)} rows ({holdout} holdout) but the manifest says {manifest.get('cases')} "
                            f"({counted.get('holdout')} holdout)")
        extra = _snapshot_extra(self.con, int(snapshot))
        if not extra or extra.get(EXTRA_INFO_KEY) != str(ref):
            problems.append(f"snapshot {snapshot} is not this version's commit")
        else:
            try:
                at_snapshot = len(_stored_rows(self.con, ref, at=int(snapshot)))
            except Exception as error:  # an expired snapshot: time travel fails
                problems.append(f"snapshot {snapshot} cannot be read: {str(error).splitlines()[0]}")
            else:
                if at_snapshot != len(rows):
                    problems.append(f"snapshot {snapshot} holds {at_snapshot} rows of the version, now {len(rows)}")
        path = manifest_path(self.data_dir, ref)
        if path.is_file():
            try:
                on_disk = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                on_disk = None
            if on_disk != manifest:
                problems.append(f"{path} differs from the lake's manifest")
        return problems

    def cases(self, ref: DatasetRef | str, check: bool = True) -> list[dict[str, Any]]:
        """See the module function `read_cases`."""
        ref = _as_ref(ref)
        self.manifest(ref)
        if check:
            problems = self.verify(ref)
            if problems:
                raise VersionNotVerified(str(ref), problems)
        return [json.loads(r[3]) for r in _stored_rows(self.con, ref)]

    def history(self, name: str) -> dict[str, tuple[str, str]]:
        """See the module function `case_history`."""
        if self.con is None:
            return {}
        rows = self.con.execute(f"SELECT case_id, version, split FROM {LAKE_ALIAS}.main.{CASES} WHERE name = ?",
                                [name]).fetchall()
        out: dict[str, tuple[str, str]] = {}
        for case_id, version, split in sorted(rows, key=lambda r: (DatasetRef(name, r[1]).sort_key, r[0])):
            out.setdefault(case_id, (f"{name}@{version}", split))
        return out


    def trace_ids(self, name: str) -> set[str]:
        """Source trace ids of every case in any version of `name` (the golden set's are left out
        of later sampling)."""
        if self.con is None:
            return set()
        rows = self.con.execute(f"SELECT DISTINCT json_extract_string(case_json, '$.source.trace_id') FROM "
                                f"{LAKE_ALIAS}.main.{CASES} WHERE name = ?", [name]).fetchall()
        return {r[0] for r in rows if r[0]}


@contextmanager
def reading(data_dir: Path) -> Iterator[Reader]:
    """A Reader over one read-only connection (no lake or no tables yet: a Reader that finds no
    version)."""
    data_dir = Path(data_dir)
    if not lake_paths(data_dir).catalog.is_file():
        yield Reader(data_dir, None)
        return
    con = connect_lake(data_dir, read_only=True)
    try:
        yield Reader(data_dir, con if _has_tables(con) else None)
    finally:
        con.close()


def list_versions(data_dir: Path, name: str | None = None) -> list[VersionInfo]:
    """Every published version (of `name`, when given), in publication order per name."""
    with reading(data_dir) as reader:
        return reader.versions(name)


def latest_version(data_dir: Path, name: str) -> str | None:
    """The newest version of `name` (None before the first). Only promotions and listings use it:
    a pin never resolves to it."""
    with reading(data_dir) as reader:
        return reader.latest(name)


def read_manifest(data_dir: Path, ref: DatasetRef | str) -> dict[str, Any]:
    """The version's manifest from the lake (rewriting a missing manifest.json from it);
    VersionNotFound when there is no such version."""
    with reading(data_dir) as reader:
        return reader.manifest(ref)


def verify(data_dir: Path, ref: DatasetRef | str) -> list[str]:
    """Re-read the version from the lake and check it against its manifest; the problems found
    (empty: verified). Checks: the manifest hashes to manifest_sha256; every row's case_json
    hashes to its case_sha256 and matches its case_id and split; the split is is_holdout's; no
    case twice; the content hash recomputed from the rows and the row counts equal the
    manifest's; the rows were committed in the version's snapshot, whose extra info names the
    version; manifest.json (when present) equals the lake's manifest (a missing one is not a
    problem: it is rewritten on read)."""
    with reading(data_dir) as reader:
        return reader.verify(ref)


def read_cases(data_dir: Path, ref: DatasetRef | str, check: bool = True) -> list[dict[str, Any]]:
    """The version's cases (sorted by case_id). With `check` (the default) the version is
    verified first and VersionNotVerified raised when it does not; VersionNotFound when it
    does not exist. Never another version than the one named."""
    with reading(data_dir) as reader:
        return reader.cases(ref, check)


def case_history(data_dir: Path, name: str) -> dict[str, tuple[str, str]]:
    """{case_id: (first version of `name` that held it, its split)} over every published version."""
    with reading(data_dir) as reader:
        return reader.history(name)


def trace_ids(data_dir: Path, name: str) -> set[str]:
    """Source trace ids of every case in any version of `name`."""
    with reading(data_dir) as reader:
        return reader.trace_ids(name)


def staleness_of(data_dir: Path, ref: DatasetRef | str, today: date):
    """staleness.staleness of a stored (verified) version."""
    from evalflow.lib.snapshots.staleness import staleness

    with reading(data_dir) as reader:
        return staleness(reader.manifest(ref), reader.cases(ref), today)
