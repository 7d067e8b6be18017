"""No extension is autoloaded or downloaded at run time by any connection evalflow opens: the
warehouse's (read-write and read-only), the in-memory ones (dagster metadata), and the lake's
(test_common_lake.py). DuckDB 1.5 turns autoinstall and autoload on by default."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from evalflow.lib.common.warehouse import OFFLINE_CONFIG, Warehouse, memory_connection

PACKAGE = Path(__file__).resolve().parents[1] / "evalflow"
SETTINGS = ("SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')")


def refuses_to_autoload(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute(SETTINGS).fetchone() == (False, False)
    # excel and spatial are known extensions that are not built in: a function of theirs fails
    # with the catalog error instead of being installed and loaded behind our back
    for sql in ("SELECT * FROM read_xlsx('nothing.xlsx')", "SELECT ST_Point(1, 2)"):
        with pytest.raises(duckdb.CatalogException, match="extension"):
            con.execute(sql)
    loaded = {name for (name,) in con.execute("SELECT extension_name FROM duckdb_extensions() "
                                              "WHERE loaded OR installed").fetchall()}
    assert not loaded & {"excel", "spatial"}


def test_a_warehouse_connection_refuses_to_autoload_read_write_and_read_only(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.transaction() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    with warehouse.connect() as con:
        refuses_to_autoload(con)
    with warehouse.connect(read_only=True) as con:
        refuses_to_autoload(con)
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_an_in_memory_connection_refuses_to_autoload():
    with memory_connection() as con:
        refuses_to_autoload(con)
    assert OFFLINE_CONFIG == {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def test_a_plain_connection_to_the_same_file_is_not_refused_and_is_offline_too(tmp_path):
    # the settings are SET after connecting, not passed as config: a second connection in this
    # process opened without that config shares the database instance instead of being refused
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.connect() as con:
        with duckdb.connect(str(warehouse.path)) as plain:
            assert plain.execute(SETTINGS).fetchone() == (False, False)
        refuses_to_autoload(con)


def test_every_duckdb_connect_in_the_package_is_one_of_the_offline_ones():
    allowed = {"lib/common/warehouse.py", "lib/common/lake.py"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "duckdb"):
                found.append(f"{path.relative_to(PACKAGE).as_posix()}:{node.lineno}")
    assert found and all(place.split(":")[0] in allowed for place in found), found
