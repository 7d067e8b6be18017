"""The signal stage's tables, in the analyst warehouse (every write is one transaction).

- trace_signals: compute_signals' columns (signals.SIGNAL_SCHEMA) + computed_at, for the traces
  of the current window (a re-run replaces the window's rows; older rows stay; a newer evalflow
  that computes more signals adds columns).
- failure_clusters / failure_cluster_members: the current window's taxonomy (replaced).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.warehouse import Warehouse, has_table


def write_signals(warehouse: Warehouse, signals: pl.DataFrame, since: date, now: datetime) -> None:
    """Replace the window's rows of trace_signals (the table takes the frame's columns)."""
    frame = signals.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("computed_at"))
    with warehouse.transaction() as con:
        con.register("incoming_signals", frame.to_arrow())
        if not has_table(con, "trace_signals"):
            con.execute("CREATE TABLE trace_signals AS SELECT * FROM incoming_signals LIMIT 0")
        # A newer evalflow may compute more signals: add their columns instead of failing
        # (rows of older runs read NULL there).
        have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'trace_signals'").fetchall()}
        for name, kind in con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = 'incoming_signals'").fetchall():
            if name not in have:
                con.execute(f'ALTER TABLE trace_signals ADD COLUMN "{name}" {kind}')
        con.execute("DELETE FROM trace_signals WHERE event_date >= ? OR trace_id IN "
                    "(SELECT trace_id FROM incoming_signals)", [since])
        con.execute("INSERT INTO trace_signals BY NAME SELECT * FROM incoming_signals")
        con.unregister("incoming_signals")
        apply_catalog(con, ("trace_signals",))


def read_signals(warehouse: Warehouse, since: date) -> pl.DataFrame:
    with warehouse.connect(read_only=True) as con:
        table = con.sql("SELECT * EXCLUDE (computed_at) FROM trace_signals WHERE event_date >= ? "
                        "ORDER BY timestamp, trace_id", params=[since]).to_arrow_table()
    return pl.from_arrow(table)


def write_taxonomy(warehouse: Warehouse, clusters: pl.DataFrame, members: pl.DataFrame, now: datetime) -> None:
    """The current window's failure clusters replace the previous ones."""
    stamped = clusters.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("built_at"))
    with warehouse.transaction() as con:
        for name, frame in (("failure_clusters", stamped), ("failure_cluster_members", members)):
            con.register("incoming", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM incoming")
            con.unregister("incoming")
        # CREATE OR REPLACE dropped the tables' comments: put them back in the same commit.
        apply_catalog(con, ("failure_clusters", "failure_cluster_members"))


def read_taxonomy(warehouse: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "failure_clusters"):
            return None
        clusters = pl.from_arrow(con.sql("SELECT * EXCLUDE (built_at) FROM failure_clusters").to_arrow_table())
        members = pl.from_arrow(con.sql("SELECT * FROM failure_cluster_members").to_arrow_table())
    return clusters, members


def intent_names(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "intent_catalog"):
            return {}
        return dict(con.execute("SELECT intent_id, name FROM intent_catalog").fetchall())
