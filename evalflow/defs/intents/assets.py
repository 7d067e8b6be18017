"""trace_embeddings (daily, cached by text hash) and the intent catalog over a rolling window."""

from datetime import date

import dagster as dg

from evalflow.defs.metadata import (
    OWNERS,
    ROW_COUNT,
    add_partition_metadata,
    log_run_figures,
    row_count,
    table_metadata,
    with_code_references,
)
from evalflow.defs.partitions import daily_partitions
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.dagster_metadata import rows_by_day, table_rows
from evalflow.lib.common.report import markdown_table
from evalflow.lib.intents.store import (
    INTENT_SCHEMA,
    catalog_markdown,
    last_clustering,
    load_window_vectors,
    read_catalog,
    read_redacted,
    text_mode,
    trace_text,
    weekly_trends,
    window_fingerprint,
    window_start,
    write_clustering,
    write_trace_embeddings,
)


class IntentConfig(dg.Config):
    window_days: int = 28  # the window ends at the newest embedded day


@dg.asset(
    group_name="intents", kinds={"duckdb", "onnx"}, deps=["redacted_traces"],
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool=WAREHOUSE_POOL,
    owners=OWNERS, metadata=table_metadata("trace_embeddings", ddl=INTENT_SCHEMA),
    description="all-MiniLM-L6-v2 vectors of each redacted trace's text (default: the query with the "
    "session's first user turn); each distinct text embedded once, ever (cache keyed by content hash).",
)
def trace_embeddings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from evalflow.lib.intents import model_text
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig, embed_with_cache, text_sha256

    days = [date.fromisoformat(key) for key in context.partition_keys]
    store = warehouse.warehouse()
    traces = read_redacted(store, days=days)
    mode = text_mode()
    texts = [model_text(trace_text(t, mode)) for t in traces]
    embedder = Embedder(EmbedderConfig(model_dir=warehouse.settings().model_dir))
    _, stats = embed_with_cache(texts, embedder, store.path)
    write_trace_embeddings(store, days, [
        {"trace_id": t["trace_id"], "event_date": t["event_date"], "text_sha256": text_sha256(x),
         "model_version": embedder.model_version, "backend": embedder.backend} for t, x in zip(traces, texts)])
    # Each day's own figures; the cache figures are the run's (a text embedded for one day is a
    # cache hit for the next), so they are one observation, not copied onto every day.
    rows = rows_by_day(store, "trace_embeddings", days)
    texts_by_day = rows_by_day(store, "trace_embeddings", days, "count(DISTINCT text_sha256)")
    add_partition_metadata(context, {day: {ROW_COUNT: row_count(rows[day]), "distinct_texts": texts_by_day[day]}
                                     for day in days})
    log_run_figures(context, "trace_embeddings", {
        "traces": len(traces), "distinct_texts": stats.distinct, "cache_hits": stats.hits,
        "embedded_now": stats.misses, "seconds": round(stats.seconds, 2)})
    # What embedded every day of the run.
    return dg.MaterializeResult(metadata={
        "text": mode, "model": embedder.model_name, "model_version": embedder.model_version,
        "backend": embedder.backend, "device": embedder.device,
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec("intent_clusters", deps=[trace_embeddings], group_name="intents", kinds={"hdbscan"},
                     owners=OWNERS, metadata=table_metadata("intent_assignments", ddl=INTENT_SCHEMA),
                     description="Every trace of the window assigned to an intent (HDBSCAN over reduced "
                     "embeddings, parameters chosen from the data), with ids kept stable across runs."),
        dg.AssetSpec("intent_catalog", deps=["intent_clusters"], group_name="intents", kinds={"duckdb"},
                     owners=OWNERS, metadata=table_metadata("intent_catalog", ddl=INTENT_SCHEMA),
                     description="Intents a person recognises: id, c-TF-IDF name and keywords, examples, "
                     "size and share, first and last seen, centroid. Births, merges, splits and deaths "
                     "go to intent_events."),
    ],
    pool=WAREHOUSE_POOL,
)
def intent_discovery(context: dg.AssetExecutionContext, config: IntentConfig, warehouse: WarehouseResource):
    from evalflow.lib.intents import discover_intents
    from evalflow.lib.intents.overrides import IntentOverridesError, load_overrides, overrides_path

    store = warehouse.warehouse()
    since = window_start(store, config.window_days)
    if since is None:
        raise dg.Failure("no trace embeddings yet: materialize trace_embeddings first")
    data_dir = warehouse.settings().data_dir
    try:
        overrides = load_overrides(data_dir)
    except IntentOverridesError as error:
        raise dg.Failure(f"intent overrides: {error}") from None
    traces, vectors = load_window_vectors(store, since)
    mode = text_mode()
    fingerprint = window_fingerprint(traces, vectors, mode, "" if overrides.empty else overrides.digest())
    last = last_clustering(store)
    if last and last[0] == fingerprint:
        # Same traces, same vectors: a re-fit could only redraw boundaries, never add knowledge.
        note = {"unchanged_since": last[1].isoformat(), "traces": len(traces), "window_start": since.isoformat()}
        yield dg.MaterializeResult(asset_key="intent_clusters", metadata={
            ROW_COUNT: row_count(table_rows(store, "intent_assignments")), **note})
        yield dg.MaterializeResult(asset_key="intent_catalog", metadata={
            ROW_COUNT: row_count(table_rows(store, "intent_catalog")), **note})
        return
    previous = read_catalog(store)
    result = discover_intents(vectors, [trace_text(t, mode) for t in traces],
                              previous=previous, now=utcnow(), overrides=overrides)
    written = write_clustering(store, traces, result, utcnow(), input_sha256=fingerprint, since=since)
    events = [(kind, ", ".join(f) or "—", ", ".join(t) or "—", detail) for kind, f, t, detail in written.events
              if kind != "continue"]
    yield dg.MaterializeResult(asset_key="intent_clusters", metadata={
        ROW_COUNT: row_count(table_rows(store, "intent_assignments")),
        "traces": written.assigned, "window_start": since.isoformat(), "intents": written.intents,
        "noise_share": round(written.noise_share, 4),
        "params": dg.MetadataValue.json({k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                                         for k, v in result.params.items()}),
        "events": dg.MetadataValue.md(markdown_table(["event", "from", "to", "detail"], events)),
    })
    trends = weekly_trends([t["event_date"] for t in traces], result.intent_ids)
    candidates = result.params.get("merge_candidates") or []
    review = result.params.get("overrides") or {}
    yield dg.MaterializeResult(asset_key="intent_catalog", metadata={
        ROW_COUNT: row_count(table_rows(store, "intent_catalog")),
        "intents": written.intents,
        "catalog": dg.MetadataValue.md(catalog_markdown(result.catalog, trends, previous)),
        "merge_candidates": dg.MetadataValue.md(markdown_table(
            ["intents", "names", "centroid similarity"],
            [(" + ".join(c["intents"]), " / ".join(c["names"]), f"{c['similarity']:.3f}") for c in candidates])
            if candidates else "none at centroid similarity >= 0.8"),
        "overrides_file": str(overrides_path(data_dir)),
        "overrides_applied": ", ".join(review.get("applied", [])) or "none",
        "overrides_not_found": ", ".join(review.get("not_found", [])) or "none",
        "value_tokens": dg.MetadataValue.json(result.params.get("values") or {}),
    })


trace_embeddings, intent_discovery = with_code_references(trace_embeddings, intent_discovery)
