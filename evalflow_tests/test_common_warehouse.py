"""Warehouse writes: staging once, partitions replaced atomically, and a real kill mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib.common.settings import Settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.landing import land_new_files, landing_totals
from evalflow.lib.ingest.store import RAW_SCHEMA, replace_partitions

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def write_traces(path: Path, count: int, day: str = "2026-10-05", prefix: str = "t") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({
                "trace_id": f"{prefix}{i}", "timestamp": f"{day}T{i % 24:02d}:00:00Z",
                "messages": [{"role": "user", "content": f"q{i}"}], "output": f"a{i}",
            }) + "\n")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_relanding_the_same_files_adds_no_row(settings):
    write_traces(settings.landing_dir / "a.jsonl", 50)
    first = land_new_files(settings, now=NOW)
    # The same content under another name is recognised by its hash.
    (settings.landing_dir / "copy.jsonl").write_bytes((settings.landing_dir / "a.jsonl").read_bytes())
    second = land_new_files(settings, now=NOW)

    warehouse = Warehouse(settings.raw_store_path)
    assert (first.files_new, first.traces_staged) == (1, 50)
    assert (second.files_new, second.files_already_landed, second.traces_staged) == (0, 2, 0)
    assert warehouse.count("staged_traces") == 50
    assert warehouse.count("landed_files") == 1


def test_replacing_a_partition_twice_gives_the_same_rows(settings):
    write_traces(settings.landing_dir / "a.jsonl", 30, day="2026-10-05")
    write_traces(settings.landing_dir / "b.jsonl", 20, day="2026-10-06", prefix="u")
    land_new_files(settings, now=NOW)
    warehouse = Warehouse(settings.raw_store_path)

    first = replace_partitions(warehouse, [date(2026, 10, 5)])
    again = replace_partitions(warehouse, [date(2026, 10, 5)])
    both = replace_partitions(warehouse, [date(2026, 10, 5), date(2026, 10, 6)])

    assert first == again == {date(2026, 10, 5): 30}
    assert both == {date(2026, 10, 5): 30, date(2026, 10, 6): 20}
    assert warehouse.count("raw_traces") == 50


def test_landing_totals_add_up(settings):
    path = settings.landing_dir / "mixed.jsonl"
    write_traces(path, 10)
    with path.open("a") as handle:
        handle.write("not json\n")
        handle.write(path.read_text().splitlines()[0] + "\n")  # exact duplicate
    land_new_files(settings, now=NOW)
    totals = landing_totals(Warehouse(settings.raw_store_path))
    assert totals["lines_read"] == 12
    assert (totals["ingested"], totals["quarantined"], totals["deduplicated"]) == (10, 1, 1)


def test_a_failed_write_rolls_back_everything_in_it(settings):
    warehouse = Warehouse(settings.raw_store_path, schema=RAW_SCHEMA)
    warehouse.ensure_schema()
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.transaction() as con:
            con.execute("INSERT INTO quarantine (file_sha256, reason) VALUES ('f', 'r')")
            raise RuntimeError("boom")
    assert warehouse.count("quarantine") == 0


KILL_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.ingest.store import replace_partitions
    warehouse = Warehouse(sys.argv[1])
    print("ready", flush=True)
    while True:  # replace the same partition over and over until killed
        replace_partitions(warehouse, [date(2026, 10, 5)])
    """
)


def test_killing_a_writer_mid_write_leaves_the_previous_state(settings):
    write_traces(settings.landing_dir / "a.jsonl", 20_000)
    land_new_files(settings, now=NOW)
    warehouse = Warehouse(settings.raw_store_path)
    replace_partitions(warehouse, [date(2026, 10, 5)])
    assert warehouse.count("raw_traces") == 20_000

    # Kill at several moments so that some land between the DELETE and the INSERT.
    for delay_s in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.1):
        child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(settings.raw_store_path)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a real crash
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL

        # Every write replaces the partition with the same 20,000 rows, so any other count
        # means a torn write (for example a DELETE that committed without its INSERT).
        assert warehouse.count("raw_traces") == 20_000, f"torn write after a kill at {delay_s}s"


def test_accounting_reaches_the_warehouse_but_traces_stay_in_the_raw_store(settings):
    write_traces(settings.landing_dir / "a.jsonl", 5)
    with (settings.landing_dir / "a.jsonl").open("a") as handle:
        handle.write("{broken\n")
    land_new_files(settings, now=NOW)
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect(read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"landed_files", "quarantine"} <= tables and not tables & {"staged_traces", "raw_traces"}
    assert warehouse.count("quarantine") == 1
    assert warehouse.count("landed_files", "lines_read = 6") == 1
    assert Warehouse(settings.raw_store_path).count("staged_traces") == 5


def test_markdown_cells_are_escaped_folded_and_shortened():
    from evalflow.lib.common.report import markdown_cell, markdown_table

    table = markdown_table(["intent", "example"], [
        ("I-1", "my name is <PERSON> and\nI want a | refund & more"),
        ("I-2", "x" * 500),
    ])
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two rows: the line break did not split a row
    assert "my name is &lt;PERSON&gt; and I want a \\| refund &amp; more" in lines[2]
    assert lines[2].count(" | ") == 1  # the escaped pipe adds no column
    assert len(markdown_cell("x" * 500)) == 160 and markdown_cell("x" * 500).endswith("…")
