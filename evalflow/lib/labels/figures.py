"""What the pipeline derives from the imported labels, in one place: agreement per dimension and
slice, the automation gate, annotator quality and fatigue, consensus labels, the expert review
queue and anchored gold answers. Pure functions of the labels rows and the batch manifests; the
assets (defs/labels/) read the warehouse, call these and write the results through store.py.

Which ratings count:
- agreement, the gate and consensus use role 'annotator' ratings; an expert's label (from the
  review project) overrides the consensus but is not one more vote in the agreement figures, or
  the expert would raise the agreement the gate reads;
- pass 2 gives the Pass/Fail dimensions (nominal); pass 1 gives `risk_level` (ordinal:
  low < medium < high). Free text (gold answers, critiques, expected behaviour) is not a rating.
Slices of the agreement table: the item's intent (from the batch manifest; gold items have none)
and its consensus risk level (from pass 1), and the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from evalflow.lib.annotation.labelstudio import RISK_LEVELS
from evalflow.lib.labels.agreement import PAIR_ROW_SCHEMA, agreement_report, agreement_rows, pair_rows
from evalflow.lib.labels.consensus import ROLE_ANNOTATOR, consensus_min_agreement, majority_vote
from evalflow.lib.labels.gate import automation_gate
from evalflow.lib.labels.quality import quality_tables

RISK_LEVEL = "risk_level"
SLICES = ("intent", "risk_level", "batch_id")
PAIR_SCHEMA = PAIR_ROW_SCHEMA


def load_manifests(annotation_dir: Path) -> list[dict]:
    """Every batch manifest under the annotation folder (hidden staging folders are not batches)."""
    from evalflow.lib.annotation.batch import BatchManifest

    root = Path(annotation_dir)
    if not root.is_dir():
        return []
    return [BatchManifest.load(folder).data for folder in sorted(root.iterdir())
            if not folder.name.startswith(".") and (folder / "manifest.json").is_file()]


def item_intents(manifests: Sequence[dict]) -> pl.DataFrame:
    """item_id -> intent name (or id) from the manifests; gold items have none."""
    rows = [(item["item_id"], item.get("intent_name") or item.get("intent_id"))
            for manifest in manifests for item in manifest.get("items", [])]
    return pl.DataFrame(rows, schema={"item_id": pl.String, "intent": pl.String}, orient="row")


def _annotators_only(ratings: pl.DataFrame) -> pl.DataFrame:
    if "role" not in ratings.columns:
        return ratings
    return ratings.filter(pl.col("role").fill_null(ROLE_ANNOTATOR) == ROLE_ANNOTATOR)


def consensus(pass1: pl.DataFrame, pass2: pl.DataFrame, feedback: pl.DataFrame | None = None,
              min_agreement: float | None = None) -> pl.DataFrame:
    """consensus_labels rows: majority_vote over pass-2 dimensions and the pass-1 risk level, with
    each item's batch, origin, trace and case ids. `feedback`: optional ratings with role
    'feedback' (production thumbs), counted only where no human rated the item."""
    minimum = consensus_min_agreement() if min_agreement is None else min_agreement
    risk = pass1.filter(pl.col("dimension") == RISK_LEVEL)
    columns = ["item_id", "annotator", "dimension", "value", "role"]
    frames = [frame.select(columns) for frame in (pass2, risk) if not frame.is_empty()]
    if feedback is not None and not feedback.is_empty():
        frames.append(feedback.select(columns))
    if not frames:
        return pl.DataFrame(schema=CONSENSUS_COLUMNS)
    voted = majority_vote(pl.concat(frames), minimum)
    id_columns = ["item_id", "batch_id", "origin", "trace_id", "case_id"]
    ids = (pl.concat([f.select(id_columns) for f in (pass2, pass1, feedback) if f is not None and not f.is_empty()])
           .unique("item_id", keep="first"))
    return voted.join(ids, on="item_id", how="left").select(list(CONSENSUS_COLUMNS))


CONSENSUS_COLUMNS = {"batch_id": pl.String, "item_id": pl.String, "origin": pl.String, "trace_id": pl.String,
                     "case_id": pl.String, "dimension": pl.String, "value": pl.String, "method": pl.String,
                     "ratings": pl.Int64, "agreement": pl.Float64, "status": pl.String,
                     "majority_value": pl.String}


@dataclass
class HumanFigures:
    report: dict  # agreement_report over the pass-2 dimensions (all items)
    agreement: pl.DataFrame  # one row per dimension and slice (agreement_rows)
    pairs: pl.DataFrame  # one row per dimension, slice and pair of annotators (pair_rows)
    gate: pl.DataFrame  # one row per pass-2 dimension (automation_gate)
    quality: pl.DataFrame  # annotator_quality
    fatigue: pl.DataFrame  # annotator_fatigue


def _with_slices(ratings: pl.DataFrame, intents: pl.DataFrame, risk: pl.DataFrame) -> pl.DataFrame:
    return (ratings.join(intents, on="item_id", how="left")
            .join(risk, on="item_id", how="left"))


def human_figures(pass1: pl.DataFrame, pass2: pl.DataFrame, manifests: Sequence[dict],
                  agreed: pl.DataFrame, n_boot: int = 1000, seed: int = 0) -> HumanFigures:
    """Agreement, gate, quality and fatigue from the labels. `agreed`: consensus rows (for the
    risk-level slice)."""
    p2 = _annotators_only(pass2)
    p1 = _annotators_only(pass1).filter(pl.col("dimension") == RISK_LEVEL)
    dimensions = sorted(set(p2["dimension"].to_list()))
    risk = (agreed.filter((pl.col("dimension") == RISK_LEVEL) & (pl.col("status") == "agreed"))
            .select("item_id", pl.col("value").alias("risk_level")))
    rated = _with_slices(pl.concat([p2.select(_RATING), p1.select(_RATING)]), item_intents(manifests), risk)
    levels = {**{d: "nominal" for d in dimensions}, RISK_LEVEL: "ordinal"}
    agreement = agreement_rows(rated, levels, slices=SLICES, value_orders={RISK_LEVEL: RISK_LEVELS},
                               n_boot=n_boot, seed=seed)
    report = agreement_report(p2.select("item_id", "annotator", "dimension", "value"), "nominal",
                              n_boot=n_boot, seed=seed)
    # Pair kappas per dimension and slice, over the same ratings and slices as the agreement rows.
    pairs = pair_rows(rated, list(levels), slices=SLICES, value_orders={RISK_LEVEL: RISK_LEVELS})
    labels = pl.concat([_as_label_rows(pass1, 1), _as_label_rows(pass2, 2)])
    quality, fatigue = quality_tables(labels, manifests)
    return HumanFigures(report, agreement, pairs, automation_gate(report),
                        quality, fatigue)


_RATING = ("item_id", "annotator", "dimension", "value", "batch_id")


def _as_label_rows(ratings: pl.DataFrame, pass_no: int) -> pl.DataFrame:
    """The ratings read back in the labels-table shape quality.py scores (field, pass)."""
    return ratings.select("batch_id", "item_id", "annotator", pl.lit(pass_no, pl.Int16).alias("pass"),
                          pl.col("dimension").alias("field"), "value", "role", "annotated_at")


def expected_behaviour_by_item(pass1_text: pl.DataFrame, quality: pl.DataFrame) -> dict[str, Any]:
    """item_id -> the expected behaviour written in pass 1 by the annotator with the best gold
    accuracy among those who wrote one (ties: the pseudonym order), as a list of rules (one per
    line). Free text is not voted on: the most reliable annotator's wording is kept whole."""
    rows = pass1_text.filter((pl.col("dimension") == "expected_behavior") & pl.col("value").is_not_null())
    if rows.is_empty():
        return {}
    overall = (quality.filter(pl.col("dimension") == "all").select("annotator", "accuracy")
               if not quality.is_empty() else pl.DataFrame(schema={"annotator": pl.String, "accuracy": pl.Float64}))
    ranked = (rows.join(overall, on="annotator", how="left")
              .sort([pl.col("accuracy").fill_null(-1.0), "annotator"], descending=[True, False])
              .unique("item_id", keep="first"))
    return {item_id: [line.strip() for line in value.splitlines() if line.strip()]
            for item_id, value in ranked.select("item_id", "value").iter_rows()}
