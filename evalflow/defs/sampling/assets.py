"""trace_signals -> failure_taxonomy -> eval_candidates -> annotation_queue, over the intent window."""

import dagster as dg

from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource
from evalflow.lib.common.report import markdown_table

SESSION_CHECK = "no_session_in_two_batches"
IMPORT_CHECK = "tasks_match_labeling_config"


class SignalsConfig(dg.Config):
    window_days: int = 28  # same window as intent_clusters: signals compare a trace with its intent


class SamplingRunConfig(dg.Config):
    budget: int = 200
    seed: int = 0
    max_age_days: int = 90  # candidates older than this are retired as stale (lib/refresh.py)


class AnnotationConfig(dg.Config):
    gold_rate: float = 0.10  # share of known-answer gold tasks mixed into each batch
    known_answers_path: str = ""  # empty: EVALFLOW_KNOWN_ANSWERS, else the bundled demo cases


def _reason_kinds(reasons: dict) -> list[tuple[str, int]]:
    """Reasons by kind ("top failure cluster F-error-intent-0001 (rank 1)" counts as "top failure
    cluster"): one line per cluster would bury the table; eval_candidates keeps the full reason."""
    kinds: dict[str, int] = {}
    for reason, n in reasons.items():
        kind = reason.split(" F-")[0] if reason.startswith("top failure cluster") else \
            "failure mode not yet sampled" if reason.startswith("failure mode ") else reason
        kinds[kind] = kinds.get(kind, 0) + n
    return sorted(kinds.items(), key=lambda item: -item[1])


def _window_start(store, window_days: int):
    from evalflow.lib.intents.stage import window_start

    since = window_start(store, window_days)
    if since is None:
        raise dg.Failure("no trace embeddings yet: materialize trace_embeddings and intent_clusters first")
    return since


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=["intent_clusters"], pool=WAREHOUSE_POOL,
          description="Per trace: failure modes (error, tool error, refusal, feedback, empty/verbose output, "
          "unsupported answer, weak retrieval, injection, policy), latency and cost outliers against the "
          "trace's intent (robust z), and a difficulty estimate.")
def trace_signals(context: dg.AssetExecutionContext, config: SignalsConfig,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    from evalflow.lib.intents.stage import utcnow
    from evalflow.lib.sampling.store import write_signals
    from evalflow.lib.signals import compute_signals, read_signal_inputs

    store = warehouse.warehouse()
    since = _window_start(store, config.window_days)
    traces, intents, low = read_signal_inputs(store.path, since)
    signals = compute_signals(traces, intents, intent_low_confidence=low)
    write_signals(store, signals, since, utcnow())
    modes = signals.select("failure_modes").explode("failure_modes").drop_nulls()["failure_modes"].value_counts(sort=True)
    return dg.MaterializeResult(metadata={
        "traces": signals.height, "window_start": since.isoformat(),
        "failure_share": round(float(signals["is_failure"].mean() or 0), 4),
        "outliers": int(signals["is_outlier"].sum()),
        "failure_modes": dg.MetadataValue.md(markdown_table(["mode", "traces"], modes.rows())),
        "difficulty": dg.MetadataValue.md(markdown_table(
            ["bucket", "traces"], signals["difficulty_bucket"].value_counts(sort=True).rows())),
    })


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=[trace_signals], pool=WAREHOUSE_POOL,
          description="Failed traces grouped into failure clusters (category x intent), ranked by frequency x "
          "severity; the top clusters feed the sample first.")
def failure_taxonomy(context: dg.AssetExecutionContext, config: SignalsConfig,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    from evalflow.lib.intents.stage import utcnow
    from evalflow.lib.sampling.store import intent_names, read_signals, write_taxonomy
    from evalflow.lib.signals import build_failure_taxonomy, taxonomy_markdown

    store = warehouse.warehouse()
    signals = read_signals(store, _window_start(store, config.window_days))
    taxonomy = build_failure_taxonomy(signals, intent_names(store))
    write_taxonomy(store, taxonomy.clusters, taxonomy.members, utcnow())
    top = taxonomy.clusters.sort("rank").head(10)
    return dg.MaterializeResult(metadata={
        "failure_clusters": taxonomy.clusters.height, "failed_traces": taxonomy.members.height,
        "matrix": dg.MetadataValue.md(taxonomy_markdown(taxonomy)),
        "top_clusters": dg.MetadataValue.md(markdown_table(
            ["rank", "cluster", "intent", "traces", "severity", "score"],
            [(r["rank"], r["failure_cluster_id"], r["intent_name"] or "", r["traces"], f"{r['severity']:.2f}",
              f"{r['score']:.4f}") for r in top.iter_rows(named=True)])),
    })


@dg.asset(group_name="sampling", kinds={"duckdb"}, deps=[failure_taxonomy], pool=WAREHOUSE_POOL,
          check_specs=[dg.AssetCheckSpec(SESSION_CHECK, asset="eval_candidates", blocking=True,
                                         description="No session has traces in two sampling runs.")],
          description="A stratified sample worth labelling (intent x failure mode x difficulty, spread over "
          "time, outliers and top failure clusters first, near-duplicates and used sessions out); stale "
          "candidates retired.")
def eval_candidates(context: dg.AssetExecutionContext, config: SamplingRunConfig, warehouse: WarehouseResource):
    from evalflow.lib.intents.stage import utcnow
    from evalflow.lib.sampling.refresh import stale_candidates
    from evalflow.lib.sampling import stratified_sample
    from evalflow.lib.sampling.store import (
        current_intents, new_intents, open_candidates, read_signals, read_taxonomy, roll_back_unexported,
        sessions_in_two_runs, used_before, window_vectors, write_sample,
    )

    store = warehouse.warehouse()
    annotation_dir = warehouse.settings().data_dir / "annotation"
    rolled_back = roll_back_unexported(store, lambda batch_id: (annotation_dir / batch_id).is_dir())
    if rolled_back:
        context.log.warning(f"rolled back {len(rolled_back)} sample(s) drawn but never exported "
                            f"(an earlier run stopped before annotation_queue): {', '.join(rolled_back)}")
    since = _window_start(store, SignalsConfig().window_days)
    signals = read_signals(store, since)
    traces_now, live, newest = current_intents(store)
    stale = stale_candidates(open_candidates(store), live_intents=live, current_intent=traces_now,
                             newest_day=newest, max_age_days=config.max_age_days)
    used = used_before(store)
    born = new_intents(store)
    taxonomy = read_taxonomy(store)
    result = stratified_sample(
        signals, budget=config.budget, seed=config.seed, vectors=window_vectors(store, signals["trace_id"].to_list()),
        failure_clusters=taxonomy[0] if taxonomy else None, failure_members=taxonomy[1] if taxonomy else None,
        exclude_trace_ids=used.trace_ids, exclude_session_ids=used.session_ids)
    written = write_sample(store, result.chosen, result.coverage, stale, since=since, budget=config.budget,
                           seed=config.seed, now=utcnow())
    cov = result.coverage
    yield dg.MaterializeResult(metadata={
        "sample_run_id": written.sample_run_id, "chosen": written.chosen, "budget": config.budget,
        "rolled_back_unexported_samples": len(rolled_back),
        "retired_stale": written.retired, "stale_but_exported": written.stale_exported,
        "intents_covered": f"{cov['intents_covered']} of {cov['intents_in_population']}",
        "intents_with_3plus_covered": f"{cov['intents_with_3plus_covered']} of {cov['intents_with_3plus']}",
        "failure_share_population": cov["failure_share_population"],
        "failure_share_sample": cov["failure_share_sample"],
        "near_duplicates_removed": cov["near_duplicates_removed"],
        "excluded_traces": cov["excluded_traces"],
        "time_spread": dg.MetadataValue.md(markdown_table(
            ["time bucket", "population", "sample"],
            [(b, v["population"], v["sample"]) for b, v in sorted(cov["time_buckets"].items())])),
        "reasons": dg.MetadataValue.md(markdown_table(["reason", "traces"], _reason_kinds(cov["reasons"]))),
        "new_intents_since_last_sample": dg.MetadataValue.md(markdown_table(["intent", "name"], born[:50])),
    })
    overlap = sessions_in_two_runs(store)
    yield dg.AssetCheckResult(check_name=SESSION_CHECK, passed=overlap == 0,
                              metadata={"sessions_in_two_runs": overlap})


@dg.asset(group_name="sampling", kinds={"labelstudio", "csv"}, deps=[eval_candidates], pool=WAREHOUSE_POOL,
          check_specs=[dg.AssetCheckSpec(IMPORT_CHECK, asset="annotation_queue", blocking=True,
                                         description="Every task of both passes validates against its "
                                         "Label Studio labeling configuration; pass 1 never shows the output.")],
          description="Annotation batch files under <data>/annotation/<batch>/: Label Studio tasks + labeling "
          "configs and CSV, pass 1 (gold answer, no model output) and pass 2 (verdicts), with known-answer "
          "gold cases mixed in.")
def annotation_queue(context: dg.AssetExecutionContext, config: AnnotationConfig, warehouse: WarehouseResource):
    from evalflow.lib.annotation import load_known_answers, write_annotation_batch
    from evalflow.lib.annotation.checks import check_batch, known_answers_path
    from evalflow.lib.intents.stage import utcnow
    from evalflow.lib.sampling.store import batch_id_for, candidates_to_export, record_batch

    store = warehouse.warehouse()
    out_dir = warehouse.settings().data_dir / "annotation"
    known = load_known_answers(known_answers_path(config.known_answers_path))
    manifests, problems = [], []
    # Every sample not exported yet, oldest first: one left by a run that stopped after writing
    # its batch folder is recorded here (the folder is reused when its inputs match).
    while True:
        run_id, candidates = candidates_to_export(store)
        if not candidates:
            break
        manifest = write_annotation_batch(candidates, out_dir, batch_id=batch_id_for(run_id),
                                          known_answers=known, gold_rate=config.gold_rate)
        record_batch(store, manifest, run_id, [c["trace_id"] for c in candidates], utcnow())
        problems += check_batch(manifest.path, candidates)
        manifests.append(manifest)
    if not manifests:
        yield dg.MaterializeResult(metadata={"batch": "none: no unexported candidates"})
        yield dg.AssetCheckResult(check_name=IMPORT_CHECK, passed=True, metadata={"tasks_checked": 0})
        return
    manifest = manifests[-1]
    yield dg.MaterializeResult(metadata={
        "batch_id": manifest.data["batch_id"], "path": dg.MetadataValue.path(str(manifest.path)),
        "batches_written": len(manifests),
        "candidates": sum(m.counts["candidates"] for m in manifests),
        "gold_tasks": sum(m.counts["gold"] for m in manifests),
        "tasks": sum(m.counts["tasks"] for m in manifests), "workflow": dg.MetadataValue.md(manifest.data["workflow"]),
    })
    yield dg.AssetCheckResult(check_name=IMPORT_CHECK, passed=not problems,
                              metadata={"problems": len(problems), "first": problems[0][:200] if problems else ""})
