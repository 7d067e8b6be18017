"""Annotator quality from the known-answer gold cases mixed into every batch.

Scoring (the rules of evalflow.lib.annotation.scoring, applied to `labels` rows):
- pass 2: each dimension with a known verdict counts once per annotator and gold item; correct
  when the annotator's value equals the known verdict (a dimension left empty counts as wrong).
- pass 1: the gold answer is correct when it contains every key fact (`contains_key_facts`);
  it is scored as dimension 'gold_answer'.
Only role 'annotator' rows are scored (an expert reviewing the disagreement queue is the
reference, not the one being checked). Gold items and their answers come from the batch
manifests, never from the labels (annotators cannot tell gold from real).

Fatigue, two views of the same ratings (pooled over dimensions, table `annotator_fatigue`):
- by position in the batch: quartiles of position / n_tasks (segments position_q1..q4). Gold is
  spread evenly over the batch, so each quartile holds about a quarter of the gold;
- over time: the annotator's own order of work, by annotated_at within one batch and pass (the
  rank among all the items they labelled there, gold or not; segments time_1of3..3of3). This is
  the real fatigue measure when an annotator does not work in task order; position is the
  fallback when a file carries no timestamps (the batch CSV).
The fatigue flag compares the first and the last segment: time thirds when every scored rating
of the annotator has a timestamp, else position quartiles.

Flags (table `annotator_quality`, one row per annotator and dimension plus an 'all' row):
- accuracy below EVALFLOW_ANNOTATOR_MIN_ACCURACY (default 0.80) on at least
  EVALFLOW_ANNOTATOR_MIN_GOLD gold ratings (default 10: an annotator who is right 95% of the
  time scores 7/10 or worse about 1% of the time, while with fewer ratings a single slip moves
  accuracy by more than ten points);
- on the 'all' row, fatigue: accuracy fell by more than EVALFLOW_ANNOTATOR_FATIGUE_DROP (default
  0.15) from the first to the last segment, each with at least the minimum number of gold
  ratings (for an annotator steady at 0.90, with 40 ratings a segment, a 0.15 drop is over two
  standard errors of the difference: about 1 false flag in 75).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import polars as pl

from evalflow.lib.annotation.scoring import contains_key_facts
from evalflow.lib.common.settings import float_setting, int_setting

MIN_ACCURACY_ENV = "EVALFLOW_ANNOTATOR_MIN_ACCURACY"
MIN_GOLD_ENV = "EVALFLOW_ANNOTATOR_MIN_GOLD"
FATIGUE_DROP_ENV = "EVALFLOW_ANNOTATOR_FATIGUE_DROP"
GOLD_ANSWER = "gold_answer"
ALL = "all"

SCORED_SCHEMA = {
    "batch_id": pl.String, "item_id": pl.String, "case_id": pl.String, "annotator": pl.String,
    "pass": pl.Int64, "dimension": pl.String, "position": pl.Int64, "n_tasks": pl.Int64,
    "position_segment": pl.String, "time_segment": pl.String, "correct": pl.Boolean,
}
QUALITY_SCHEMA = {
    "annotator": pl.String, "dimension": pl.String, "gold_ratings": pl.Int64, "correct": pl.Int64,
    "accuracy": pl.Float64, "flagged": pl.Boolean, "reason": pl.String,
}
FATIGUE_SCHEMA = {"annotator": pl.String, "segment": pl.String, "gold_ratings": pl.Int64, "accuracy": pl.Float64}
POSITION_SEGMENTS = ("position_q1", "position_q2", "position_q3", "position_q4")
TIME_SEGMENTS = ("time_1of3", "time_2of3", "time_3of3")


@dataclass(frozen=True)
class QualityThresholds:
    min_accuracy: float
    min_gold: int
    fatigue_drop: float

    @classmethod
    def from_settings(cls) -> "QualityThresholds":
        return cls(min_accuracy=float_setting(MIN_ACCURACY_ENV, 0.80, low=0.0, high=1.0),
                   min_gold=int_setting(MIN_GOLD_ENV, 10, low=1),
                   fatigue_drop=float_setting(FATIGUE_DROP_ENV, 0.15, low=0.0, high=1.0))


def _manifest_dict(manifest: Any) -> dict:
    return manifest.to_dict() if hasattr(manifest, "to_dict") else manifest


def _time_segments(labels: pl.DataFrame) -> dict[tuple, str | None]:
    """(batch_id, pass, annotator, item_id) -> time third, from the annotator's order of work."""
    if "annotated_at" not in labels.columns:
        return {}
    per_item = (labels.group_by("batch_id", "pass", "annotator", "item_id", "position")
                .agg(pl.col("annotated_at").min()).sort("batch_id", "pass", "annotator", "annotated_at", "position"))
    segments: dict[tuple, str | None] = {}
    for (batch_id, pass_no, annotator), group in per_item.group_by("batch_id", "pass", "annotator",
                                                                    maintain_order=True):
        times = group["annotated_at"]
        timed = times.null_count() == 0
        for rank, item_id in enumerate(group["item_id"]):
            segment = TIME_SEGMENTS[3 * rank // group.height] if timed else None
            segments[(batch_id, pass_no, annotator, item_id)] = segment
    return segments


def score_gold_labels(labels: pl.DataFrame, manifests: Iterable[Any]) -> pl.DataFrame:
    """One row per scored gold rating: batch_id, item_id, case_id, annotator, pass, dimension,
    position, n_tasks, position_segment, time_segment (None without timestamps), correct.
    `labels`: rows of the labels table (batch_id, item_id, annotator, pass, field, value; role and
    annotated_at used when present); `manifests`: the batches' manifests (dicts or BatchManifest)."""
    books = {m["batch_id"]: m for m in map(_manifest_dict, manifests)}
    frame = labels.filter(pl.col("batch_id").is_in(list(books)))
    if "role" in frame.columns:
        frame = frame.filter(pl.col("role").fill_null("annotator") == "annotator")
    positions = pl.DataFrame(
        [(b, item["item_id"], item["position"]) for b, m in books.items() for item in m["items"]],
        schema={"batch_id": pl.String, "item_id": pl.String, "position": pl.Int64}, orient="row")
    frame = frame.drop("position", strict=False).join(positions, on=["batch_id", "item_id"], how="inner")
    time_segment = _time_segments(frame)
    values: dict[tuple, dict[str, str | None]] = defaultdict(dict)
    for batch_id, item_id, annotator, pass_no, field, value in frame.select(
            "batch_id", "item_id", "annotator", "pass", "field", "value").iter_rows():
        values[(batch_id, int(pass_no), annotator, item_id)][field] = value
    gold = {(b, g["item_id"]): g for b, m in books.items() for g in m["gold"]}
    rows = []
    for (batch_id, pass_no, annotator, item_id), fields in sorted(values.items()):
        key = gold.get((batch_id, item_id))
        if key is None:
            continue
        n_tasks = books[batch_id]["counts"]["tasks"]
        base = {"batch_id": batch_id, "item_id": item_id, "case_id": key["case_id"], "annotator": annotator,
                "pass": pass_no, "position": key["position"], "n_tasks": n_tasks,
                "position_segment": POSITION_SEGMENTS[min(3, 4 * key["position"] // n_tasks)],
                "time_segment": time_segment.get((batch_id, pass_no, annotator, item_id))}
        if pass_no == 1:
            hit = contains_key_facts(fields.get(GOLD_ANSWER) or "", key["key_facts"])
            rows.append({**base, "dimension": GOLD_ANSWER, "correct": hit})
        else:
            for dimension, verdict in sorted(key["known_verdicts"].items()):
                rows.append({**base, "dimension": dimension, "correct": fields.get(dimension) == verdict})
    return pl.DataFrame(rows, schema=SCORED_SCHEMA)


def _tally(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    return (frame.group_by(by).agg(pl.len().alias("gold_ratings"), pl.col("correct").sum().alias("correct"))
            .with_columns((pl.col("correct") / pl.col("gold_ratings")).alias("accuracy")))


def annotator_fatigue(scored: pl.DataFrame) -> pl.DataFrame:
    """Accuracy per annotator and segment (position quartiles, time thirds), all dimensions pooled."""
    parts = []
    for column in ("position_segment", "time_segment"):
        part = scored.filter(pl.col(column).is_not_null()).rename({column: "segment"})
        parts.append(_tally(part, ["annotator", "segment"]).select(list(FATIGUE_SCHEMA)))
    frame = pl.concat(parts).cast(FATIGUE_SCHEMA)
    order = {s: i for i, s in enumerate(POSITION_SEGMENTS + TIME_SEGMENTS)}
    return frame.sort("annotator", pl.col("segment").replace_strict(order, return_dtype=pl.Int64))


def _fatigue_reason(segments: dict[str, tuple[int, float]], thresholds: QualityThresholds,
                    timed: bool) -> str | None:
    first, last, view = (("time_1of3", "time_3of3", "time thirds") if timed
                         else ("position_q1", "position_q4", "position quartiles"))
    if first not in segments or last not in segments:
        return None
    (n_first, acc_first), (n_last, acc_last) = segments[first], segments[last]
    if min(n_first, n_last) < thresholds.min_gold or acc_first - acc_last <= thresholds.fatigue_drop:
        return None
    return (f"fatigue: accuracy fell from {acc_first:.2f} to {acc_last:.2f} between the first and last "
            f"{view} (drop over {thresholds.fatigue_drop:.2f})")


def annotator_quality(scored: pl.DataFrame, thresholds: QualityThresholds | None = None) -> pl.DataFrame:
    """annotator, dimension ('all' = every gold rating of the annotator), gold_ratings, correct,
    accuracy, flagged, reason; from score_gold_labels' output."""
    thresholds = thresholds or QualityThresholds.from_settings()
    per_dimension = _tally(scored, ["annotator", "dimension"])
    overall = _tally(scored, ["annotator"]).with_columns(pl.lit(ALL).alias("dimension"))
    fatigue = annotator_fatigue(scored)
    timed = {a: n == 0 for a, n in scored.group_by("annotator").agg(
        pl.col("time_segment").null_count()).iter_rows()}
    segments: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
    for annotator, segment, n, accuracy in fatigue.iter_rows():
        segments[annotator][segment] = (n, accuracy)
    rows = []
    for row in pl.concat([per_dimension, overall.select(per_dimension.columns)]).iter_rows(named=True):
        reasons = []
        if row["gold_ratings"] >= thresholds.min_gold and row["accuracy"] < thresholds.min_accuracy:
            reasons.append(f"accuracy {row['accuracy']:.2f} below {thresholds.min_accuracy:.2f} "
                           f"on {row['gold_ratings']} gold ratings")
        if row["dimension"] == ALL:
            tired = _fatigue_reason(segments[row["annotator"]], thresholds, timed[row["annotator"]])
            reasons += [tired] if tired else []
        rows.append({**row, "flagged": bool(reasons), "reason": "; ".join(reasons)})
    frame = pl.DataFrame(rows, schema=QUALITY_SCHEMA)
    return frame.sort("annotator", pl.col("dimension") == ALL, "dimension")


def quality_tables(labels: pl.DataFrame, manifests: Iterable[Any],
                   thresholds: QualityThresholds | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(annotator_quality, annotator_fatigue) for the labels of the given batches."""
    scored = score_gold_labels(labels, manifests)
    return annotator_quality(scored, thresholds), annotator_fatigue(scored)


def flagged_annotators(quality: pl.DataFrame) -> list[str]:
    return sorted(set(quality.filter(pl.col("flagged"))["annotator"].to_list()))
