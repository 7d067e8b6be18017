"""`evalflow query`: SQL over the lake attached read-only, through the real command line
(cli.main), including while another process holds a writing lake connection and commits."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from evalflow.cli import main
from evalflow.lib.common.lake import OFFLINE_CONFIG, lake_transaction

WAIT_S = 120  # the most a step may take before the test gives up (never asserted as a duration)


@pytest.fixture
def data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data))
    return data


@pytest.fixture
def lake(data):
    with lake_transaction(data, author="test", message="fixture tables") as con:
        con.execute("CREATE TABLE lake.main.eval_cases AS SELECT 'case-' || range AS case_id, range % 2 = 0 AS safety, "
                    "CASE WHEN range = 1 THEN 'two\nlines' ELSE 'x' || repeat('y', range * 30) END AS note, "
                    "[range, range + 1] AS pair FROM range(5)")
    return data


def query(capsys, *argv) -> tuple[int, str, str]:
    code = main(["query", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_query_prints_a_table_and_the_lake_is_the_default_catalog(lake, capsys):
    code, out, err = query(capsys, "SELECT case_id, safety, note, pair FROM eval_cases ORDER BY case_id")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["case_id", "safety", "note", "pair"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["case-0", "True", "x", "[0,", "1]"]
    assert "two\\nlines" in lines[3]  # a line break never breaks the table
    assert "x" + "y" * 56 + "... " in lines[4] and "y" * 57 not in out  # long cells are cut at 60 characters
    assert lines[-1] == "(5 rows)"
    code, out, _ = query(capsys, "SELECT count(*) AS n FROM lake.eval_cases WHERE safety")
    assert code == 0 and out.splitlines()[2].strip() == "3"
    code, out, _ = query(capsys, "FROM eval_cases ORDER BY case_id", "--max-rows", "2")
    assert code == 0 and out.splitlines()[-1].startswith("(2 rows (more rows not shown")


def test_writes_csv_and_parquet_with_every_row(lake, tmp_path, capsys):
    code, out, _ = query(capsys, "SELECT case_id, note FROM eval_cases ORDER BY case_id", "-o",
                         str(tmp_path / "out" / "cases.csv"), "--max-rows", "1")
    assert code == 0 and out == f"wrote 5 row(s) to {tmp_path / 'out' / 'cases.csv'}\n"
    with (tmp_path / "out" / "cases.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case_id"] for r in rows] == [f"case-{n}" for n in range(5)] and rows[1]["note"] == "two\nlines"
    code, out, _ = query(capsys, "FROM eval_cases WHERE safety", "-o", str(tmp_path / "safety.parquet"))
    assert code == 0
    table = pq.read_table(tmp_path / "safety.parquet")
    assert table.num_rows == 3 and table.column_names == ["case_id", "safety", "note", "pair"]
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_user_mistakes_exit_1_with_one_line(data, tmp_path, capsys):
    code, _, err = query(capsys, "SELECT 1")
    assert code == 1 and err.startswith("evalflow: error: no lake at") and err.count("\n") == 1
    with lake_transaction(data) as con:
        con.execute("CREATE TABLE lake.main.t AS SELECT 1 AS n")
    read_only = 'SQL: Invalid Input Error: Cannot execute statement of type "INSERT" on database "lake" which is'
    json_file = tmp_path / "x.json"
    for argv, message in [(["SELEC 1"], "SQL: Parser Error"),
                          (["FROM no_such_table"], "SQL: Catalog Error"),
                          (["INSERT INTO t VALUES (2)"], read_only),
                          (["DROP TABLE lake.t"], "SQL: "),
                          (["SELECT 1", "-o", str(json_file)], f"-o {json_file}: the file name must end in .csv"),
                          ([], "give the SQL to run"),
                          (["SELECT 1", "--attach-sql"], "--attach-sql prints the ATTACH statements only")]:
        code, out, err = query(capsys, *argv)
        assert code == 1 and out == "", argv
        assert err.startswith(f"evalflow: error: {message}") and err.count("\n") == 1, (argv, err)
    code, out, _ = query(capsys, "FROM t")
    assert code == 0 and out.splitlines()[2].strip() == "1"  # nothing was written


def test_attach_sql_attaches_the_lake_read_only_in_a_plain_duckdb_connection(lake, capsys):
    code, out, _ = query(capsys, "--attach-sql")
    assert code == 0
    statements = [s.strip() for s in out.split(";\n") if s.strip()]
    assert any(s.startswith("ATTACH 'ducklake:sqlite:") and "READ_ONLY" in s for s in statements)
    assert statements[-1].rstrip(";") == "USE lake"
    con = duckdb.connect(config=dict(OFFLINE_CONFIG))  # what a duckdb shell would run, statement by statement
    try:
        for statement in statements:
            con.execute(statement)
        assert con.execute("SELECT count(*) FROM eval_cases").fetchall() == [(5,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM eval_cases")
    finally:
        con.close()


WRITER = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path
    from evalflow.lib.common.lake import connect_lake

    data = Path(sys.argv[1])
    con = connect_lake(data)  # one writing connection, held for the whole run
    con.execute("CREATE TABLE lake.main.ticks (n BIGINT)")
    n = 0
    while not (data / "stop").exists():
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO lake.main.ticks VALUES (?)", [n])
        con.execute("COMMIT")
        n += 1
        tmp = data / "written.tmp"
        tmp.write_text(str(n))
        tmp.replace(data / "written")
        time.sleep(0.05)  # a steady trickle of commits, not a flood of tiny files
    con.close()
    print(n)
""")


def _written(data: Path) -> int:
    path = data / "written"
    return int(path.read_text()) if path.exists() else 0


def _wait_for(data: Path, writer: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if writer.poll() is not None:
            raise AssertionError(f"the writer exited early: {writer.communicate()}")
        if (done := _written(data)) >= at_least:
            return done
        time.sleep(0.02)
    raise AssertionError(f"the writer did not reach {at_least} commits")


def test_a_query_works_while_another_process_holds_a_writing_connection_and_commits(data, capsys):
    data.mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(data, writer, 1)
        seen = []
        for _ in range(3):
            code, out, err = query(capsys, "SELECT count(*) AS n, max(n) AS last FROM lake.ticks")
            assert code == 0, err
            count, last = (int(v) for v in out.splitlines()[2].split())
            assert last == count - 1  # a committed snapshot: every row up to the last, none half-written
            seen.append(count)
            _wait_for(data, writer, count + 2)  # the writer keeps committing after (and while) we read
        assert seen == sorted(seen) and seen[-1] > seen[0]
        assert writer.poll() is None  # it still holds its connection
    finally:
        (data / "stop").write_text("")
        out, err = writer.communicate(timeout=WAIT_S)
    assert writer.returncode == 0, err
    total = int(out.strip())
    code, out, _ = query(capsys, "SELECT count(*) FROM ticks")
    assert code == 0 and int(out.splitlines()[2]) == total
