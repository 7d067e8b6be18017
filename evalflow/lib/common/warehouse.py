"""A DuckDB file: connections that wait for other processes' locks, and transactions.

DuckDB allows one writer process per file, so all writes go through `Warehouse.transaction` and
Dagster serialises the runs that write (a concurrency pool of size 1, see dagster.yaml). Each
stage's `store.py` owns its tables' DDL and writes; every write is one transaction (replacing a
partition is DELETE + INSERT inside one: dagster-duckdb's IO manager does them in autocommit,
and a kill between the two was measured to lose every row; see docs/architecture.md).
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import polars as pl


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connected database has a table or view of this name (fetched to the end:
    duckdb 2.x refuses new work on a connection with an unfinished result)."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]).fetchall()[0][0])


class WarehouseLocked(OSError):
    """Another process held the DuckDB file for longer than EVALFLOW_LOCK_WAIT_S."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder  # "PID 18437 (/usr/bin/python3)" or "another process"


class WrittenByNewerDuckDB(OSError):
    """The DuckDB file was written by a newer DuckDB (e.g. 2.x) than the one installed, which
    cannot open it. The message says in one line how to rebuild; `evalflow demo` catches this
    to move an earlier demo's stores aside."""

    def __init__(self, path: Path, written_by: str):
        self.path = Path(path)
        self.written_by = written_by  # "v2.0.1", or "a newer DuckDB" when the header does not say
        super().__init__(f"{self.path} was written by DuckDB {written_by}, newer than this evalflow's DuckDB "
                         f"{duckdb.__version__}, which cannot open it: {_rebuild_hint(self.path)}")


def _rebuild_hint(path: Path) -> str:
    if path.parent.name in ("raw", "warehouse"):  # <data>/raw/raw.duckdb, <data>/warehouse/evalflow.duckdb
        data = path.parent.parent
        return (f"delete {data / 'warehouse'} and {data / 'raw'} and run `evalflow run` again to rebuild them "
                "from the landing files (`evalflow demo` does this by itself)")
    return "delete it (evalflow rebuilds it) and run the command again"


def _version_tuple(text: str) -> tuple[int, ...] | None:
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in found.groups()) if found else None


def newer_duckdb_writer(path: Path) -> str | None:
    """The DuckDB version ("v2.0.1") named in a database file's header when it is newer than the
    installed duckdb; None for an older or equal one, a file that is not DuckDB's, or no file.

    The main header: an 8-byte checksum, b"DUCK", the storage version (uint64), four flag words,
    then the writing library's version (32 bytes, NUL-padded) and its git hash."""
    try:
        with open(path, "rb") as f:
            header = f.read(116)
    except OSError:
        return None
    if len(header) < 84 or header[8:12] != b"DUCK":
        return None
    written_by = header[52:84].split(b"\0", 1)[0].decode("ascii", "replace")
    theirs, ours = _version_tuple(written_by), _version_tuple(duckdb.__version__)
    return written_by if theirs and ours and theirs > ours else None


# Nothing is looked up or fetched at run time (DuckDB 1.5 autoinstalls and autoloads known
# extensions by default): every connection this package opens turns both off, and the lake
# loads the extensions it needs by path from their packages (lake.py).
OFFLINE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_LOCK_HOLDER = re.compile(r"held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_log = logging.getLogger("evalflow.warehouse")


def lock_holder(message: str) -> str:
    """'PID 18437 (/usr/bin/python3)' from DuckDB's lock error, or 'another process'."""
    found = _LOCK_HOLDER.search(message)
    return f"PID {found['pid']} ({found['exe']})" if found else "another process"


def offline(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` with extension autoinstall and autoload off (OFFLINE_CONFIG), for a file's
    connection. Set right after connecting rather than as connect(config=...), so that another
    connection to the same file in this process, opened without that config, is not refused for
    a different configuration; the settings are the database instance's, so they hold for it too."""
    try:
        for name, value in OFFLINE_CONFIG.items():
            con.execute(f"SET {name} = {'true' if value else 'false'}")
    except BaseException:
        con.close()
        raise
    return con


def memory_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection with extension autoinstall and autoload off."""
    return duckdb.connect(":memory:", config=dict(OFFLINE_CONFIG))


def connect_waiting(path: Path, read_only: bool = False, wait_s: float | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting with backoff while another process holds the file; extension
    autoinstall and autoload are off on the connection (`offline`).

    DuckDB lets one process open a file for writing, and no other process can open it at all
    meanwhile, not even read-only: an analyst's open connection would otherwise fail the run
    that wants to write. We wait (0.1 s doubling to 5 s) up to EVALFLOW_LOCK_WAIT_S (300 s),
    log the holder's PID, and then fail with one line that names it.
    """
    from evalflow.lib.common.settings import lock_wait_seconds

    limit = lock_wait_seconds() if wait_s is None else wait_s
    started = time.monotonic()
    delay, next_report = 0.1, 0.0
    while True:
        try:
            return offline(duckdb.connect(str(path), read_only=read_only))
        except duckdb.IOException as exc:
            # Before the lock check, so that no word of DuckDB's message is mistaken for a lock.
            written_by = newer_duckdb_writer(path)
            if written_by is None and "newer version of DuckDB" in str(exc):
                written_by = "a newer DuckDB"
            if written_by is not None:
                raise WrittenByNewerDuckDB(path, written_by) from None
            if "lock" not in str(exc).lower():
                raise
            waited = time.monotonic() - started
            holder = lock_holder(str(exc))
            if waited >= limit:
                raise WarehouseLocked(
                    f"{path} is locked by {holder}: waited {waited:.0f} s (EVALFLOW_LOCK_WAIT_S={limit:g}); "
                    "close that connection, or read a published copy instead", holder) from None
            if waited >= next_report:
                _log.warning("waiting for %s: locked by %s (waited %.0f s of %g s)", path, holder, waited, limit)
                next_report = waited + 30.0
            sleep(min(delay, max(limit - waited, 0.0)))
            delay = min(delay * 2, 5.0)


class Warehouse:
    """One DuckDB file and its schema: the raw store (RAW_SCHEMA) or the warehouse."""

    def __init__(self, path: Path, schema: str = ""):
        self.path = Path(path)
        self.schema = schema

    @contextmanager
    def connect(self, read_only: bool = False, wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; `wait_s` bounds the wait for another process's lock (default:
        EVALFLOW_LOCK_WAIT_S)."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_waiting(self.path, read_only=read_only, wait_s=wait_s)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: everything inside commits together or not at all."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def ensure_schema(self) -> None:
        """Create the tables of `schema` (each stage's store.py owns its DDL)."""
        if not self.schema.strip():
            return
        with self.transaction() as con:
            con.execute(self.schema)

    # ---- reads --------------------------------------------------------------------------
    def count(self, table: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
        with self.connect() as con:
            return con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or []).fetchone()[0]

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        with self.connect() as con:
            # duckdb 2.x: the connection has no .pl(); go through Arrow.
            return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())

    # ---- writes -------------------------------------------------------------------------
