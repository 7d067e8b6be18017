"""The lake: DuckLake tables under <data>/lake/ that analysts query while runs write.

DuckLake keeps table data as Parquet files (``<data>/lake/files/``) and its metadata (tables,
snapshots, statistics) in a catalog database, here SQLite (``<data>/lake/catalog.sqlite``), so
that several processes can use it at once: a reader ATTACHes read-only and queries while a run
holds its own writing connection and commits (the working warehouse allows one process at a
time, not even a reader beside a writer). Every commit is one snapshot; ``lake.snapshots()``
lists them with their author and commit message and ``FROM lake.t AT (VERSION => n)`` reads an
old one. A process killed inside a transaction leaves the previous snapshot as it was: the new
Parquet files are orphans that no snapshot names.

Extensions come from the ``duckdb-extension-ducklake`` and ``duckdb-extension-sqlite-scanner``
packages (pinned beside ``duckdb`` in pyproject.toml, same version): each ships
``extensions/v<duckdb version>/<name>.duckdb_extension``, loaded by path. Connections are made
with autoinstall and autoload off, so nothing is ever looked up in ~/.duckdb or downloaded.
Parquet support is built into the duckdb package.

The data path is given on every ATTACH (with OVERRIDE_DATA_PATH), so a data folder that moved
(a copied folder, the demo's ``previous-demo/``) still finds its files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import duckdb

# Nothing is looked up or fetched at run time: every extension is loaded by path.
from evalflow.lib.common.warehouse import OFFLINE_CONFIG

if TYPE_CHECKING:
    from evalflow.lib.common.warehouse import Warehouse

LAKE_ALIAS = "lake"
# The packages that carry the extensions DuckLake needs here (parquet and json are built in).
EXTENSION_PACKAGES = {"ducklake": "duckdb_extension_ducklake", "sqlite_scanner": "duckdb_extension_sqlite_scanner"}
# The lake table that records what publish_tables last copied (row count and content fingerprint).
PUBLISHED_TABLE = "published_tables"


class LakeError(RuntimeError):
    """The lake cannot be used: an extension package is missing, or there is no lake yet."""


@dataclass(frozen=True)
class LakePaths:
    root: Path  # <data>/lake
    catalog: Path  # <data>/lake/catalog.sqlite (DuckLake's metadata, a SQLite database)
    files: Path  # <data>/lake/files/ (the Parquet data files)


def lake_paths(data_dir: Path) -> LakePaths:
    root = Path(data_dir).resolve() / "lake"
    return LakePaths(root=root, catalog=root / "catalog.sqlite", files=root / "files")


def extension_paths() -> dict[str, Path]:
    """Extension name -> its ``.duckdb_extension`` file in the installed package, for the running
    duckdb version; LakeError names the package to install when one is missing."""
    version = duckdb.__version__
    found: dict[str, Path] = {}
    for name, package in EXTENSION_PACKAGES.items():
        spec = importlib.util.find_spec(package)
        dirs = list(spec.submodule_search_locations or []) if spec else []
        candidates = [Path(d) / "extensions" / f"v{version}" / f"{name}.duckdb_extension" for d in dirs]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            pip_name = package.replace("_", "-")
            raise LakeError(f"the DuckDB extension {name} for duckdb {version} is not installed: "
                            f"pip install {pip_name}=={version} (pyproject.toml pins it)")
        found[name] = path
    return found


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _attach_statement(paths: LakePaths, read_only: bool) -> str:
    options = [f"DATA_PATH {_quote(str(paths.files) + '/')}", "OVERRIDE_DATA_PATH TRUE"]
    if read_only:
        options.insert(0, "READ_ONLY")
    else:
        # Every table's rows go to Parquet files (no inlining of small tables into the catalog).
        options.append("DATA_INLINING_ROW_LIMIT 0")
    return f"ATTACH {_quote('ducklake:sqlite:' + str(paths.catalog))} AS {LAKE_ALIAS} ({', '.join(options)})"


def _statements(data_dir: Path, read_only: bool) -> list[str]:
    paths = lake_paths(data_dir)
    return (["SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false"]
            + [f"LOAD {_quote(str(p))}" for p in extension_paths().values()]
            + [_attach_statement(paths, read_only)])


def attach_sql(data_dir: Path, read_only: bool = True) -> str:
    """The statements that attach the lake as ``lake`` in a duckdb shell of the same version
    (duckdb 1.5.5: the extension files are built for it), one per line."""
    return "\n".join(s + ";" for s in _statements(data_dir, read_only))


def connect_lake(data_dir: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake attached as ``lake`` (created when writing
    and absent). Readers never block a writer, nor the other way round; two writers may conflict
    at commit (DuckLake's conflict check), so the pipeline's writes are serialised."""
    paths = lake_paths(data_dir)
    if read_only and not paths.catalog.is_file():
        raise LakeError(f"no lake at {paths.catalog} yet: `evalflow run` publishes it at the end of a run")
    if not read_only:
        paths.files.mkdir(parents=True, exist_ok=True)
    if read_only and _journal(paths).exists():
        recover_catalog(paths)
    con = duckdb.connect(config=dict(OFFLINE_CONFIG))
    try:
        for path in extension_paths().values():
            con.load_extension(str(path))
        try:
            con.execute(_attach_statement(paths, read_only))
        except duckdb.Error as exc:
            if not (read_only and "readonly database" in str(exc)):
                raise
            recover_catalog(paths)  # a writer was killed mid-commit since the check above
            con.execute(_attach_statement(paths, read_only))
    except BaseException:
        con.close()
        raise
    return con


def _journal(paths: LakePaths) -> Path:
    return paths.catalog.with_name(paths.catalog.name + "-journal")


def recover_catalog(paths: LakePaths) -> None:
    """Roll back what a writer killed inside its commit left in the SQLite catalog.

    SQLite keeps a commit atomic with a rollback journal: after a kill mid-commit the journal
    stays ("hot") and the next connection that may write rolls it back, so the catalog is the
    previous snapshot's. A read-only connection cannot, and DuckLake's read-only ATTACH then
    fails ("attempt to write a readonly database", measured: 1 kill in 30 at random moments).
    Opening the catalog once with Python's sqlite3 does that rollback under SQLite's own locks
    (a journal a live writer still holds is not hot and is left alone)."""
    with closing(sqlite3.connect(paths.catalog, timeout=30)) as db:
        db.execute("SELECT count(*) FROM sqlite_master").fetchall()


def set_commit_message(con: duckdb.DuckDBPyConnection, author: str, message: str,
                       extra_info: str | None = None) -> None:
    """The author and message (and optional extra info, e.g. JSON) of the snapshot that the open
    transaction commits; ``lake.snapshots()`` shows them."""
    if extra_info is None:
        con.execute(f"CALL {LAKE_ALIAS}.set_commit_message(?, ?)", [author, message])
    else:
        con.execute(f"CALL {LAKE_ALIAS}.set_commit_message(?, ?, extra_info => ?)", [author, message, extra_info])


@contextmanager
def lake_transaction(data_dir: Path, author: str | None = None,
                     message: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection inside BEGIN .. COMMIT: everything done with it becomes one snapshot,
    or nothing (an exception rolls back; a killed process leaves the previous snapshot)."""
    con = connect_lake(data_dir)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            if author is not None or message is not None:
                set_commit_message(con, author or "evalflow", message or "")
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


def snapshot_id(con: duckdb.DuckDBPyConnection) -> int:
    """The lake's newest snapshot id as this connection sees it."""
    return int(con.execute(f"SELECT id FROM {LAKE_ALIAS}.current_snapshot()").fetchall()[0][0])


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """(rows, fingerprint of the column names and types and every row's content)."""
    columns = con.execute(f'DESCRIBE "{table}"').fetchall()
    rows, content = con.execute(f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM "{table}" t'
                                ).fetchall()[0]
    layout = ";".join(f"{c[0]}:{c[1]}" for c in columns)
    return int(rows), hashlib.sha256(f"{layout}|{rows}|{content}".encode()).hexdigest()


def published_state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Table -> fingerprint of what publish_tables last copied into the lake."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
                         "AND table_name = ?", [LAKE_ALIAS, PUBLISHED_TABLE]).fetchall()[0][0]
    if not exists:
        return {}
    return dict(con.execute(f"SELECT table_name, fingerprint FROM {LAKE_ALIAS}.main.{PUBLISHED_TABLE}").fetchall())


def publish_tables(data_dir: Path, warehouse: Warehouse, tables: Sequence[str], author: str = "evalflow",
                   message: str | None = None, only_changed: bool = True) -> dict[str, int]:
    """Copy warehouse tables to ``lake.main.<table>`` (replacing them) in one lake transaction.

    The warehouse is opened read-only (waiting for a writer's lock as every reader does) and
    rows stream through Arrow. A table the warehouse does not have yet is left out. With
    ``only_changed`` a table whose columns and rows are those published last time is not copied
    again (its files stay as they are), and when nothing changed no snapshot is made. Returns
    table -> rows for the tables copied. ``lake.main.published_tables`` records, per table, the
    rows, the fingerprint and the time of the last copy.
    """
    from evalflow.lib.common.warehouse import has_table

    copied: dict[str, int] = {}
    with warehouse.connect(read_only=True) as source:
        source.execute("SET arrow_lossless_conversion = true")  # JSON and UUID columns keep their types
        present = [t for t in tables if has_table(source, t)]
        prints = {t: _fingerprint(source, t) for t in present}
        with lake_transaction(data_dir) as con:
            before = published_state(con) if only_changed else {}
            changed = [t for t in present if before.get(t) != prints[t][1]]
            if not changed:
                return {}
            for table in changed:
                reader = source.execute(f'SELECT * FROM "{table}"').to_arrow_reader()
                con.register("_publish_source", reader)
                con.execute(f'CREATE OR REPLACE TABLE {LAKE_ALIAS}.main."{table}" AS FROM _publish_source')
                con.unregister("_publish_source")
                copied[table] = prints[table][0]
            con.execute(f"CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.main.{PUBLISHED_TABLE} (table_name VARCHAR, "
                        "row_count BIGINT, fingerprint VARCHAR, published_at TIMESTAMPTZ)")
            con.execute(f"DELETE FROM {LAKE_ALIAS}.main.{PUBLISHED_TABLE} WHERE table_name IN "
                        f"({', '.join('?' for _ in changed)})", changed)
            con.executemany(f"INSERT INTO {LAKE_ALIAS}.main.{PUBLISHED_TABLE} VALUES (?, ?, ?, now())",
                            [[t, prints[t][0], prints[t][1]] for t in changed])
            set_commit_message(con, author, message or "publish " + ", ".join(changed))
    return copied
