"""trace_signals -> failure_taxonomy, over the intent window."""

import dagster as dg
import polars as pl

from evalflow.defs.metadata import OWNERS, ROW_COUNT, row_count, table_metadata, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.dagster_metadata import table_rows
from evalflow.lib.common.report import markdown_table
from evalflow.lib.signals.compute import SIGNAL_SCHEMA
from evalflow.lib.signals.taxonomy import CLUSTER_SCHEMA

# These tables are created from frames (lib/signals/store.py): the frame's columns plus the run's
# timestamp. evalflow_tests/test_defs_metadata.py ties these columns to lib/common/catalog.py.
TRACE_SIGNALS_COLUMNS = {**SIGNAL_SCHEMA, "computed_at": pl.Datetime("us", "UTC")}
FAILURE_CLUSTERS_COLUMNS = {**CLUSTER_SCHEMA, "built_at": pl.Datetime("us", "UTC")}


class SignalsConfig(dg.Config):
    window_days: int = 28  # same window as intent_clusters: signals compare a trace with its intent


def require_window_start(store, window_days: int):
    from evalflow.lib.intents.store import window_start

    since = window_start(store, window_days)
    if since is None:
        raise dg.Failure("no trace embeddings yet: materialize trace_embeddings and intent_clusters first")
    return since


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=["intent_clusters"], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("trace_signals", frame_schema=TRACE_SIGNALS_COLUMNS),
          description="Per trace: failure modes (error, tool error, refusal, feedback, empty/verbose output, "
          "unsupported answer, weak retrieval, injection, policy), latency and cost outliers against the "
          "trace's intent (robust z), and a difficulty estimate.")
def trace_signals(context: dg.AssetExecutionContext, config: SignalsConfig,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.signals import compute_signals, read_signal_inputs
    from evalflow.lib.signals.store import write_signals

    store = warehouse.warehouse()
    since = require_window_start(store, config.window_days)
    traces, intents, low = read_signal_inputs(store.path, since)
    signals = compute_signals(traces, intents, intent_low_confidence=low)
    write_signals(store, signals, since, utcnow())
    modes = (signals.select("failure_modes").explode("failure_modes").drop_nulls()["failure_modes"]
             .value_counts(sort=True))
    return dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "trace_signals")),
        "traces": signals.height, "window_start": since.isoformat(),
        "failure_share": round(float(signals["is_failure"].mean() or 0), 4),
        "outliers": int(signals["is_outlier"].sum()),
        "failure_modes": dg.MetadataValue.md(markdown_table(["mode", "traces"], modes.rows())),
        "difficulty": dg.MetadataValue.md(markdown_table(
            ["bucket", "traces"], signals["difficulty_bucket"].value_counts(sort=True).rows())),
    })


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=[trace_signals], pool=WAREHOUSE_POOL,
          owners=OWNERS, metadata=table_metadata("failure_clusters", frame_schema=FAILURE_CLUSTERS_COLUMNS),
          description="Failed traces grouped into failure clusters (category x intent), ranked by frequency x "
          "severity; the top clusters feed the sample first.")
def failure_taxonomy(context: dg.AssetExecutionContext, config: SignalsConfig,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.signals import build_failure_taxonomy, taxonomy_markdown
    from evalflow.lib.signals.store import intent_names, read_signals, write_taxonomy

    store = warehouse.warehouse()
    signals = read_signals(store, require_window_start(store, config.window_days))
    taxonomy = build_failure_taxonomy(signals, intent_names(store))
    write_taxonomy(store, taxonomy.clusters, taxonomy.members, utcnow())
    top = taxonomy.clusters.sort("rank").head(10)
    return dg.MaterializeResult(metadata={
        ROW_COUNT: row_count(table_rows(store, "failure_clusters")),
        "failure_clusters": taxonomy.clusters.height, "failed_traces": taxonomy.members.height,
        "matrix": dg.MetadataValue.md(taxonomy_markdown(taxonomy)),
        "top_clusters": dg.MetadataValue.md(markdown_table(
            ["rank", "cluster", "intent", "traces", "severity", "score"],
            [(r["rank"], r["failure_cluster_id"], r["intent_name"] or "", r["traces"], f"{r['severity']:.2f}",
              f"{r['score']:.4f}") for r in top.iter_rows(named=True)])),
    })


trace_signals, failure_taxonomy = with_code_references(trace_signals, failure_taxonomy)
