"""The lake (DuckLake on a SQLite catalog, lib/common/lake.py) and the move to DuckDB 1.5.5.

Extensions load offline from their packages; a reader in another process queries while a writer
holds its connection and commits; snapshots carry author and message and old versions stay
readable; a process killed at any moment leaves the previous snapshot whole; a DuckDB file
written by DuckDB 2.x is refused with one line that says how to rebuild.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from evalflow.lib.common import lake
from evalflow.lib.common.warehouse import Warehouse, WrittenByNewerDuckDB, newer_duckdb_writer

FIXTURE_2_0_1 = Path(__file__).parent / "fixtures" / "duckdb" / "written_by_2_0_1.duckdb"


def child(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


# ---- extensions: from the packages, nothing autoloaded or downloaded -------------------------

def test_the_extensions_come_from_their_packages_for_this_duckdb_version():
    paths = lake.extension_paths()
    assert set(paths) == {"ducklake", "sqlite_scanner"}
    for name, path in paths.items():
        assert path.name == f"{name}.duckdb_extension" and path.is_file()
        assert path.parent.name == f"v{duckdb.__version__}"
        assert path.parents[2].name == lake.EXTENSION_PACKAGES[name]  # <site-packages>/<package>/extensions/...


OFFLINE_CHILD = """
    import json, sys
    from pathlib import Path
    import duckdb
    from evalflow.lib.common import lake

    con = lake.connect_lake(Path(sys.argv[1]))
    con.execute("CREATE TABLE lake.t AS SELECT 1 AS x")
    loaded = con.execute("SELECT extension_name, installed, install_mode FROM duckdb_extensions() "
                         "WHERE loaded ORDER BY 1").fetchall()
    settings = con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                           "current_setting('autoload_known_extensions')").fetchall()[0]
    # The same settings without our load_extension: ATTACH refuses instead of fetching anything.
    bare = duckdb.connect(config=dict(lake.OFFLINE_CONFIG))
    try:
        bare.execute(f"ATTACH 'ducklake:sqlite:{sys.argv[1]}/other.sqlite' AS other")
        refused = ""
    except duckdb.Error as exc:
        refused = str(exc)
    print(json.dumps({"loaded": loaded, "settings": settings, "refused": refused}))
"""


def test_extensions_load_by_path_with_autoload_and_autoinstall_off_and_nothing_is_installed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = child(OFFLINE_CHILD, str(tmp_path / "data"), env={"HOME": str(home)})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    found = json.loads(out)
    loaded = {name: (installed, mode) for name, installed, mode in found["loaded"]}
    # Loaded from the package file, never installed into an extension directory.
    assert loaded["ducklake"] == (False, "NOT_INSTALLED")
    assert loaded["sqlite_scanner"] == (False, "NOT_INSTALLED")
    assert {loaded[n][1] for n in ("parquet", "json")} == {"STATICALLY_LINKED"}  # built into duckdb
    assert found["settings"] == [False, False]
    assert "not found" in found["refused"] and "INSTALL ducklake" in found["refused"]
    # Nothing was written where DuckDB keeps installed or downloaded extensions.
    assert not (home / ".duckdb").exists()


# ---- readers beside a writer ---------------------------------------------------------------

READER_CHILD = """
    import json, sys
    from pathlib import Path
    from evalflow.lib.common import lake

    con = lake.connect_lake(Path(sys.argv[1]), read_only=True)   # held open for every read below
    print("ready", flush=True)
    for line in sys.stdin:
        got = con.execute("SELECT version, count(*) FROM lake.versions GROUP BY version").fetchall()
        print(json.dumps(got), flush=True)
"""


def test_a_reader_in_another_process_reads_while_the_writer_holds_its_connection_and_writes(tmp_path):
    data = tmp_path / "data"
    writer = lake.connect_lake(data)
    try:
        writer.execute("CREATE TABLE lake.versions AS SELECT 1 AS version, range AS i FROM range(1000)")
        reader = child(READER_CHILD, str(data))
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()

        def read() -> list:
            reader.stdin.write("read\n")
            reader.stdin.flush()
            line = reader.stdout.readline()
            assert line, reader.stderr.read()
            return json.loads(line)

        assert read() == [[1, 1000]]
        writer.execute("BEGIN TRANSACTION")
        writer.execute("CREATE OR REPLACE TABLE lake.versions AS SELECT 2 AS version, range AS i FROM range(50000)")
        assert read() == [[1, 1000]]  # mid-transaction: the last committed snapshot
        writer.execute("COMMIT")
        assert read() == [[2, 50000]]  # the same reader connection sees the new snapshot
        writer.execute("INSERT INTO lake.versions VALUES (3, 0)")
        assert sorted(read()) == [[2, 50000], [3, 1]]
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0, reader.stderr.read()
    finally:
        writer.close()


def test_a_read_only_attach_cannot_write_and_a_missing_lake_says_so(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(lake.LakeError, match="no lake at .*catalog.sqlite yet"):
        lake.connect_lake(data, read_only=True)
    with lake.lake_transaction(data) as con:
        con.execute("CREATE TABLE lake.t AS SELECT 1 AS x")
    reader = lake.connect_lake(data, read_only=True)
    with pytest.raises(duckdb.Error, match="read-only"):
        reader.execute("INSERT INTO lake.t VALUES (2)")
    assert rows(reader, "FROM lake.t") == [(1,)]


def test_the_attach_sql_works_in_a_plain_duckdb_connection(tmp_path):
    data = tmp_path / "data"
    with lake.lake_transaction(data) as con:
        con.execute("CREATE TABLE lake.t AS SELECT 42 AS answer")
    sql = lake.attach_sql(data)
    assert f"ducklake:sqlite:{lake.lake_paths(data).catalog}" in sql and "READ_ONLY" in sql
    shell = duckdb.connect()  # what an analyst's duckdb shell has: no evalflow code
    for statement in sql.split(";\n"):
        shell.execute(statement.rstrip(";"))
    assert rows(shell, "FROM lake.t") == [(42,)]


def test_the_lake_still_reads_after_its_data_folder_moved(tmp_path):
    first = tmp_path / "first"
    with lake.lake_transaction(first) as con:
        con.execute("CREATE TABLE lake.t AS SELECT range AS x FROM range(10)")
    (tmp_path / "first").rename(tmp_path / "moved")
    con = lake.connect_lake(tmp_path / "moved", read_only=True)
    assert rows(con, "SELECT sum(x) FROM lake.t") == [(45,)]  # read from the Parquet files


# ---- snapshots and time travel ---------------------------------------------------------------

def test_snapshots_carry_author_and_message_and_old_versions_stay_readable(tmp_path):
    data = tmp_path / "data"
    with lake.lake_transaction(data, author="alice", message="first: three rows") as con:
        con.execute("CREATE TABLE lake.cases AS SELECT range AS n FROM range(3)")
    first = lake.snapshot_id(lake.connect_lake(data, read_only=True))
    with lake.lake_transaction(data) as con:
        con.execute("CREATE OR REPLACE TABLE lake.cases AS SELECT range AS n FROM range(5)")
        lake.set_commit_message(con, "bob", "second: five rows", extra_info='{"reason": "relabel"}')
    with pytest.raises(RuntimeError, match="abandoned"):
        with lake.lake_transaction(data, author="carol", message="never") as con:
            con.execute("DROP TABLE lake.cases")
            raise RuntimeError("abandoned")

    con = lake.connect_lake(data, read_only=True)
    listed = rows(con, "SELECT snapshot_id, author, commit_message, commit_extra_info FROM lake.snapshots() "
                       "WHERE author IS NOT NULL ORDER BY snapshot_id")
    assert [r[1:] for r in listed] == [("alice", "first: three rows", None),
                                       ("bob", "second: five rows", '{"reason": "relabel"}')]
    assert listed[0][0] == first and lake.snapshot_id(con) == listed[1][0]
    assert rows(con, "SELECT count(*) FROM lake.cases") == [(5,)]
    assert rows(con, f"SELECT count(*) FROM lake.cases AT (VERSION => {first})") == [(3,)]


# ---- publishing warehouse tables ----------------------------------------------------------

def test_publish_copies_tables_in_one_snapshot_and_skips_unchanged_ones(tmp_path):
    data = tmp_path / "data"
    warehouse = Warehouse(data / "warehouse" / "evalflow.duckdb")
    with warehouse.transaction() as con:
        con.execute("""CREATE TABLE traces AS SELECT 't' || range AS trace_id, '{"k": 1}'::JSON AS meta,
                       [range, range + 1] AS pair FROM range(2000)""")
        con.execute("CREATE TABLE labels (trace_id VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO labels VALUES ('t1', 'Pass')")

    assert lake.publish_tables(data, warehouse, ["traces", "labels", "not_built_yet"]) == {"traces": 2000,
                                                                                         "labels": 1}
    con = lake.connect_lake(data, read_only=True)
    published = lake.snapshot_id(con)
    assert rows(con, "SELECT count(*), count(DISTINCT trace_id) FROM lake.traces") == [(2000, 2000)]
    assert dict((r[0], r[1]) for r in rows(con, "DESCRIBE lake.traces"))["meta"] == "JSON"
    assert rows(con, "FROM lake.labels") == [("t1", "Pass")]
    changes = rows(con, f"SELECT changes, author FROM lake.snapshots() WHERE snapshot_id = {published}")[0]
    assert {"main.traces", "main.labels"} <= set(changes[0]["tables_created"]) and changes[1] == "evalflow"

    assert lake.publish_tables(data, warehouse, ["traces", "labels"]) == {}  # nothing changed: no snapshot
    assert lake.snapshot_id(lake.connect_lake(data, read_only=True)) == published

    with warehouse.transaction() as con:
        con.execute("UPDATE labels SET value = 'Fail'")  # same row count, other content
    assert lake.publish_tables(data, warehouse, ["traces", "labels"], message="run 2") == {"labels": 1}
    con = lake.connect_lake(data, read_only=True)
    assert rows(con, "FROM lake.labels") == [("t1", "Fail")]
    assert rows(con, f"FROM lake.labels AT (VERSION => {published})") == [("t1", "Pass")]
    assert rows(con, "SELECT commit_message FROM lake.snapshots() ORDER BY snapshot_id DESC LIMIT 1") == [("run 2",)]


HOLDER_CHILD = """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_publish_opens_the_warehouse_read_only(tmp_path, monkeypatch):
    data = tmp_path / "data"
    warehouse = Warehouse(data / "warehouse" / "evalflow.duckdb")
    with warehouse.transaction() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    holder = child(HOLDER_CHILD, str(warehouse.path))  # another reader: a writer could not open the file now
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        monkeypatch.setenv("EVALFLOW_LOCK_WAIT_S", "0")
        assert lake.publish_tables(data, warehouse, ["t"]) == {"t": 1}
    finally:
        holder.communicate("\n", timeout=60)


# ---- kill drill ----------------------------------------------------------------------------

WRITER_CHILD = """
    import sys
    from pathlib import Path
    from evalflow.lib.common import lake

    data, start, pause = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "pause"
    for version in range(start, start + 1000):
        with lake.lake_transaction(data, author="drill", message=f"v{version}") as con:
            con.execute(f"CREATE OR REPLACE TABLE lake.a AS SELECT {version} AS v, range AS i FROM range(200000)")
            con.execute(f"CREATE OR REPLACE TABLE lake.b AS SELECT {version} AS v, range AS i FROM range(100000)")
            if pause:  # Parquet files written, nothing committed: wait here to be killed
                print("written", flush=True)
                sys.stdin.readline()
        print(f"committed {version}", flush=True)
"""


def _check_whole(data: Path) -> tuple[int, int]:
    """The lake reads (read-only, first after the kill) and its newest snapshot is one whole
    version: a and b agree, all rows there, the commit message names it. (version, snapshot)."""
    con = lake.connect_lake(data, read_only=True)
    try:
        (a_version, a_rows), = rows(con, "SELECT min(v), count(*) FROM lake.a GROUP BY v")
        assert rows(con, "SELECT min(v), count(*) FROM lake.b GROUP BY v") == [(a_version, 100000)]
        assert a_rows == 200000
        snapshot = lake.snapshot_id(con)
        assert rows(con, f"SELECT commit_message FROM lake.snapshots() WHERE snapshot_id = {snapshot}") == [
            (f"v{a_version}",)]
        return a_version, snapshot
    finally:
        con.close()


def test_a_writer_killed_at_any_moment_leaves_the_previous_snapshot_whole(tmp_path):
    data = tmp_path / "data"
    with lake.lake_transaction(data, author="drill", message="v0") as con:
        con.execute("CREATE TABLE lake.a AS SELECT 0 AS v, range AS i FROM range(200000)")
        con.execute("CREATE TABLE lake.b AS SELECT 0 AS v, range AS i FROM range(100000)")
    version, snapshot = _check_whole(data)

    # Killed inside the transaction, its Parquet files written: the previous version stays the newest.
    proc = child(WRITER_CHILD, str(data), "1", "pause")
    assert proc.stdout.readline().strip() == "written", proc.stderr.read()
    assert list((lake.lake_paths(data).files / "main" / "a").glob("*.parquet"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _check_whole(data) == (version, snapshot)

    # Killed at random moments of a writer committing version after version (some kills land
    # inside a commit): each time the newest snapshot is whole, and every earlier one still reads.
    chance = random.Random(15)
    seen: list[tuple[int, int]] = [(version, snapshot)]
    for _ in range(4):
        proc = child(WRITER_CHILD, str(data), str(seen[-1][0] + 1), "run")
        assert proc.stdout.readline().startswith("committed"), proc.stderr.read()
        try:
            proc.wait(timeout=chance.uniform(0.0, 0.6))
        except subprocess.TimeoutExpired:
            pass
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        now = _check_whole(data)
        assert now[0] > seen[-1][0] and now[1] > seen[-1][1]
        seen.append(now)
    con = lake.connect_lake(data, read_only=True)
    for old_version, old_snapshot in seen:
        assert rows(con, f"SELECT DISTINCT v FROM lake.a AT (VERSION => {old_snapshot})") == [(old_version,)]
    con.close()
    # And the next writer commits as usual.
    with lake.lake_transaction(data, author="drill", message="after") as con:
        con.execute("INSERT INTO lake.b VALUES (-1, -1)")
    assert rows(lake.connect_lake(data, read_only=True), "SELECT count(*) FROM lake.b") == [(100001,)]


SQLITE_KILLED_MID_COMMIT = """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA cache_size = 1")  # changed pages spill into the file before the commit
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO ducklake_metadata (key, value) SELECT 'drill' || x, hex(randomblob(2000)) "
               "FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) SELECT x FROM c)")
    print("dirty", flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("found_before_attach", [True, False])
def test_a_reader_first_after_a_kill_inside_the_catalog_commit_rolls_it_back(tmp_path, monkeypatch,
                                                                             found_before_attach):
    """A kill inside SQLite's commit leaves a hot journal that only a connection allowed to write
    can roll back: DuckLake's read-only ATTACH fails on it; connect_lake rolls it back first."""
    data = tmp_path / "data"
    with lake.lake_transaction(data) as con:
        con.execute("CREATE TABLE lake.t AS SELECT 1 AS x")
    paths = lake.lake_paths(data)
    proc = child(SQLITE_KILLED_MID_COMMIT, str(paths.catalog))
    assert proc.stdout.readline().strip() == "dirty", proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    journal = paths.catalog.with_name("catalog.sqlite-journal")
    assert journal.stat().st_size > 0

    bare = duckdb.connect(config=dict(lake.OFFLINE_CONFIG))
    for path in lake.extension_paths().values():
        bare.load_extension(str(path))
    with pytest.raises(duckdb.Error, match="readonly database"):
        bare.execute(lake.attach_sql(data).splitlines()[-1].rstrip(";"))

    if not found_before_attach:  # the kill lands between connect_lake's look and its ATTACH
        monkeypatch.setattr(lake, "_journal", lambda paths: tmp_path / "no-journal")
    con = lake.connect_lake(data, read_only=True)
    assert rows(con, "FROM lake.t") == [(1,)]
    assert not journal.exists()
    with closing(sqlite3.connect(paths.catalog)) as db:  # the killed transaction's rows are gone
        assert db.execute("SELECT count(*) FROM ducklake_metadata WHERE key LIKE 'drill%'").fetchone() == (0,)


# ---- DuckDB files written by 2.x ------------------------------------------------------------

def test_the_fixture_was_written_by_duckdb_2_0_1():
    header = FIXTURE_2_0_1.read_bytes()[:84]
    assert header[8:12] == b"DUCK" and header[52:58] == b"v2.0.1"


@pytest.mark.parametrize("read_only", [True, False])
def test_a_store_written_by_duckdb_2_is_refused_with_one_line_on_rebuilding(tmp_path, read_only):
    path = tmp_path / "data" / "warehouse" / "evalflow.duckdb"
    path.parent.mkdir(parents=True)
    path.write_bytes(FIXTURE_2_0_1.read_bytes())
    with pytest.raises(WrittenByNewerDuckDB) as caught:
        with Warehouse(path).connect(read_only=read_only, wait_s=0):
            pass
    message = str(caught.value)
    assert caught.value.path == path and caught.value.written_by == "v2.0.1"
    assert "\n" not in message and str(path) in message and "v2.0.1" in message
    assert str(tmp_path / "data" / "raw") in message and "evalflow run" in message
    assert isinstance(caught.value, OSError)  # the CLI prints OSErrors as one line, exit 2
    assert path.read_bytes() == FIXTURE_2_0_1.read_bytes()  # left as it was


def test_files_written_by_this_duckdb_are_not_taken_for_newer_ones(tmp_path):
    path = tmp_path / "mine.duckdb"
    duckdb.connect(str(path)).close()
    assert newer_duckdb_writer(path) is None
    assert newer_duckdb_writer(tmp_path / "absent.duckdb") is None
    (tmp_path / "text.duckdb").write_text("not a database")
    assert newer_duckdb_writer(tmp_path / "text.duckdb") is None
    assert newer_duckdb_writer(FIXTURE_2_0_1) == "v2.0.1"
