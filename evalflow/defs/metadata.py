"""The Dagster metadata every asset carries (docs/ui.md): owners, table name, column schema,
code references, and the per-partition figures of a run over many days.

Definition metadata (on the asset, before any run):
- `owners=OWNERS`: the team that answers for the pipeline.
- `table_metadata(...)`: `dagster/table_name` (`warehouse.<table>` or `raw.<table>`: the DuckDB
  file, then the table) and `dagster/column_schema`, whose columns and types are read from the
  store's DDL and whose descriptions come from lib/common/catalog.py.
- `with_code_references(...)`: `dagster/code_references`, a link to the asset's function.

Materialization metadata:
- `dagster/row_count` on every materialization: the rows the asset's table holds for that
  partition (daily assets) or in all (the others).
- A run over many days (`evalflow run`, the sensors' ranges) reports each day's own figures on
  that day's materialization (`add_partition_metadata`); what is true of the run as a whole and
  not of each day (cache hits, raw days purged) is one observation of the asset
  (`log_run_figures`), never copied onto every day.
"""

from __future__ import annotations

import warnings
from datetime import date
from typing import Any, Mapping, Sequence

import dagster as dg

from evalflow.lib.common.dagster_metadata import Column, column_descriptions, ddl_columns, frame_columns

# Who answers for these assets; shown on every asset in the UI (a team, not a person).
OWNERS = ["team:data-eng"]

ROW_COUNT = "dagster/row_count"
STORES = ("warehouse", "raw")  # data/warehouse/evalflow.duckdb, data/raw/raw.duckdb


def _schema(table: str, columns: Sequence[Column]) -> dg.TableSchema:
    descriptions = column_descriptions(table)
    return dg.TableSchema(columns=[
        dg.TableColumn(column.name, column.type, description=descriptions.get(column.name),
                       constraints=dg.TableColumnConstraints(nullable=column.nullable, unique=column.unique))
        for column in columns])


def table_metadata(table: str, *, ddl: str | None = None, frame_schema: Mapping[str, Any] | None = None,
                   store: str = "warehouse") -> dict[str, Any]:
    """`dagster/table_name` and `dagster/column_schema` of the table an asset writes: its columns
    from the store's DDL (`ddl`), or from the polars schema the store creates it from."""
    assert store in STORES, store
    if ddl is not None:
        columns = ddl_columns(ddl)[table]
    elif frame_schema is not None:
        columns = frame_columns(frame_schema)
    else:
        raise ValueError(f"{table}: give the DDL or the frame schema it is created from")
    return {"dagster/table_name": f"{store}.{table}", "dagster/column_schema": _schema(table, columns)}


def with_code_references(*assets: dg.AssetsDefinition) -> tuple[dg.AssetsDefinition, ...]:
    """The assets with `dagster/code_references` (their function's file and line) attached."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # with_source_code_references is beta in 1.13
        return tuple(dg.with_source_code_references(list(assets)))  # type: ignore[arg-type]


def row_count(rows: int) -> dg.IntMetadataValue:
    return dg.MetadataValue.int(int(rows))


def present(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The entries that have a value: a None (a rate of nothing) is left out, not shown as 0."""
    return {k: v for k, v in metadata.items() if v is not None}


def add_partition_metadata(context: dg.AssetExecutionContext, by_day: Mapping[date, Mapping[str, Any]],
                           asset_key: str | None = None) -> None:
    """Each day's own figures on that day's materialization of a run over many days.

    Dagster emits one materialization per partition of the run; metadata returned in
    `MaterializeResult` goes on every one of them, so only what is true of each day may go there.
    A None value is left out (no point on a plot rather than a made-up 0).
    """
    for day, figures in by_day.items():
        context.add_asset_metadata(present(figures), asset_key=asset_key, partition_key=day.isoformat())


def log_run_figures(context: dg.AssetExecutionContext, asset_key: str, figures: Mapping[str, Any]) -> None:
    """What is true of the run as a whole (not of each of its days): one observation of the asset,
    without a partition, and a log line."""
    context.log_event(dg.AssetObservation(asset_key=asset_key, metadata=dict(figures)))
    context.log.info(f"{asset_key} (whole run over {len(context.partition_keys)} day(s)): "
                     + ", ".join(f"{k}={v}" for k, v in figures.items()))
