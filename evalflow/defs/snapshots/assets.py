"""golden_set (changed only by an explicit promotion) and rolling_set (the last 7 days), versioned
in the lake (docs/snapshots.md)."""

import dagster as dg

from evalflow.defs.metadata import OWNERS, with_code_references
from evalflow.defs.resources import WAREHOUSE_POOL, WarehouseResource


class PromotionConfig(dg.Config):
    """A promotion given in the launchpad; left empty, the asset applies the pending files in
    <data>/promotions/ (oldest name first). Case ids are eval_cases.case_id."""
    message: str = ""
    author: str = ""
    add: list[str] = []
    relabel: list[dict] = []  # {case_id, dimension, verdict: Pass|Fail, reason}
    retire: list[str] = []
    rubric_changes: list[dict] = []  # {dimension, text}
    checks: list[dict] = []  # {case_id, name, kind, ...}: a deterministic check set on a case (docs/eval-cases.md)


def _version_metadata(published, result) -> dict:
    split = published.manifest["counts"]["split"]
    return {
        "version": str(published.ref), "created": published.created, "lake_snapshot": published.snapshot_id,
        "cases": split["total"], "holdout": split["holdout"],
        "manifest": dg.MetadataValue.path(str(published.manifest_path)),
        "changelog": dg.MetadataValue.md(f"```\n{result.changelog_text}\n```"),
    }


@dg.asset(group_name="eval_sets", kinds={"ducklake"}, deps=["eval_cases"], pool=WAREHOUSE_POOL, owners=OWNERS,
          metadata={"dagster/table_name": "lake.main.dataset_cases"},
          description="The golden set: a new immutable version `golden@vN` per promotion (the launchpad config, or "
          "each pending file in `<data>/promotions/`), with a changelog that keeps new coverage, relabels (old "
          "and new side by side), retirements and rubric changes apart. 20% of cases are the holdout, by case-id "
          "hash: a case never changes side. Published as one DuckLake snapshot with a manifest (content sha256).")
def golden_set(context: dg.AssetExecutionContext, config: PromotionConfig, warehouse: WarehouseResource):
    from evalflow.lib.eval_cases.store import read_eval_cases
    from evalflow.lib.snapshots import load_promotion, promotion_from_dict
    from evalflow.lib.snapshots.manifest import collect_provenance
    from evalflow.lib.snapshots.versions import pending_promotions, promote

    data_dir = warehouse.settings().data_dir
    given = config.model_dump()
    if any(given.values()):
        promotions = [promotion_from_dict(given, source="launchpad config")]
    else:  # the store reads "no lake yet" as no version: every file is then pending
        promotions = [load_promotion(path) for path in pending_promotions(data_dir)]
    if not promotions:
        return dg.MaterializeResult(metadata={"version": "unchanged: no promotion given or pending"})
    available = read_eval_cases(warehouse.warehouse())

    def baseline(cases: list[dict]) -> dict:
        """The production traffic the version is drawn from, for the drift report (docs/drift.md)."""
        from evalflow.lib.drift.baseline import production_baseline
        from evalflow.lib.drift.config import load_drift_config

        with warehouse.warehouse().connect(read_only=True) as con:
            return production_baseline(con, cases, top_k=load_drift_config(data_dir).retrieval_k)

    metadata = {}
    for promotion in promotions:
        result, published = promote(data_dir, promotion, available, provenance=collect_provenance(data_dir=data_dir),
                                    baseline=baseline)
        context.log.info(f"published {published.ref} ({len(result.cases)} cases) from {promotion.source}")
        metadata = _version_metadata(published, result)
    metadata["promotions_applied"] = len(promotions)
    return dg.MaterializeResult(metadata=metadata)


class RollingConfig(dg.Config):
    size: int = 200  # cases in the rolling set (stratified by intent and slice)
    seed: int = 0
    day: str = ""  # YYYY-MM-DD the 7-day window ends on; empty: the newest case's source date


@dg.asset(group_name="eval_sets", kinds={"ducklake"}, deps=["eval_cases"], pool=WAREHOUSE_POOL, owners=OWNERS,
          metadata={"dagster/table_name": "lake.main.dataset_cases"},
          description="The rolling drift set `rolling@YYYY-MM-DD`: a stratified sample (by intent and slice) of the "
          "eval cases whose traces are from the 7 days ending that day, the golden set's traces left out; versioned "
          "and verified like the golden set. Refreshed by rolling_set_schedule.")
def rolling_set(context: dg.AssetExecutionContext, config: RollingConfig, warehouse: WarehouseResource):
    from datetime import date, timedelta

    from evalflow.lib.eval_cases.store import read_eval_cases
    from evalflow.lib.snapshots import GOLDEN, RollingPlan
    from evalflow.lib.snapshots.manifest import collect_provenance
    from evalflow.lib.snapshots.store import trace_ids
    from evalflow.lib.snapshots.versions import publish_rolling

    data_dir = warehouse.settings().data_dir
    cases = read_eval_cases(warehouse.warehouse())
    dated = [c["source_date"] for c in cases if c.get("source_date")]
    if not dated:
        return dg.MaterializeResult(metadata={"version": "none: no dated eval case yet"})
    day = date.fromisoformat(config.day or max(dated))
    from evalflow.lib.snapshots.refs import rolling_version_name
    from evalflow.lib.snapshots.store import list_versions

    if rolling_version_name(day) in {v.version for v in list_versions(data_dir, "rolling")}:
        # A version never changes: the day's rolling set stays as first published.
        return dg.MaterializeResult(metadata={"version": f"unchanged: rolling@{rolling_version_name(day)} exists"})
    plan = RollingPlan(size=config.size, seed=config.seed, exclude_trace_ids=frozenset(trace_ids(data_dir, GOLDEN)))
    first = (day - timedelta(days=plan.window_days - 1)).isoformat()
    eligible = [c for c in cases if first <= (c.get("source_date") or "") <= day.isoformat()
                and c["source"]["trace_id"] not in plan.exclude_trace_ids]
    if not eligible:  # an empty version says nothing; the next refresh tries again
        return dg.MaterializeResult(metadata={"version": f"none: no case from {first}..{day} outside the golden set"})
    result, published = publish_rolling(data_dir, day, cases, plan, provenance=collect_provenance(data_dir=data_dir))
    return dg.MaterializeResult(metadata={
        "version": str(published.ref), "created": published.created, "lake_snapshot": published.snapshot_id,
        "cases": len(result.cases), "eligible": result.sampling_plan.get("eligible"),
        "manifest": dg.MetadataValue.path(str(published.manifest_path)),
    })


golden_set, rolling_set = with_code_references(golden_set, rolling_set)
