"""Consensus labels: one value per (item, dimension) from several annotators' ratings.

Input: long-format ratings (item_id, annotator, dimension, value), optionally with a `role`
column: 'annotator' (the default when the column is absent or empty), 'expert' (a subject-matter
expert who reviewed the item in the disagreement queue) or 'feedback' (a label derived only from
production thumbs up/down). A missing value (None or blank) is no rating.

Rules, per (item_id, dimension):
- An expert's rating overrides the annotators: value = the expert's, method 'expert', status
  'agreed'. `majority_value` keeps what the annotators' majority said (None on a tie or when no
  annotator rated), so the override stays on record. `ratings` counts the annotators' ratings and
  `agreement` is the share of them equal to the expert's value (how far the crowd agreed with the
  expert; None when no annotator rated). Several experts who disagree give status 'disputed'.
- Otherwise the annotators' ratings decide: `majority_value` = the most frequent value, None on
  a tie between the most frequent values; `agreement` = share of ratings equal to it (on a tie,
  the tied share). method 'unanimous' (2+ ratings, all equal), 'majority' (2+ ratings) or
  'single' (one rating). status 'agreed' when there is no tie and agreement >= min_agreement;
  'disputed' otherwise (these go to the expert review queue). value = majority_value, so a
  disputed item still shows the leaning of its majority; disputed items never count as labels
  downstream (calibration and the golden set use only status 'agreed').
- The threshold: majority_vote's min_agreement (default 0.5: only ties are disputed); a pipeline
  reads it from EVALFLOW_CONSENSUS_MIN_AGREEMENT (`consensus_min_agreement`). With three
  annotators on Pass/Fail the shares are 1 or 2/3, so 0.5 accepts every 2-1 split and anything
  above 2/3 (e.g. 0.7) sends every split to the experts.
- One rating is 'disputed' unless allow_single=True: one opinion has not been checked by anyone,
  and a label that enters the golden set should have been seen by two people (or an expert).
  Teams that label each item once on purpose pass allow_single=True.
- 'feedback' rows count only when no annotator or expert rated the item and dimension; the row
  then has status 'feedback_only' (never 'agreed'): a thumbs up is a user's mood, not a review,
  so such a label never enters the golden set without a human looking at it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

import polars as pl

from evalflow.lib.common.settings import float_setting

MIN_AGREEMENT_ENV = "EVALFLOW_CONSENSUS_MIN_AGREEMENT"
ROLE_ANNOTATOR = "annotator"
ROLE_EXPERT = "expert"
ROLE_FEEDBACK = "feedback"
ROLES = (ROLE_ANNOTATOR, ROLE_EXPERT, ROLE_FEEDBACK)

AGREED = "agreed"
DISPUTED = "disputed"
FEEDBACK_ONLY = "feedback_only"

RATINGS_COLUMNS = ("item_id", "annotator", "dimension", "value")
CONSENSUS_SCHEMA = {
    "item_id": pl.String,
    "dimension": pl.String,
    "value": pl.String,
    "method": pl.String,
    "ratings": pl.Int64,
    "agreement": pl.Float64,
    "status": pl.String,
    "majority_value": pl.String,
}


def consensus_min_agreement() -> float:
    """The agreement a majority needs to count (EVALFLOW_CONSENSUS_MIN_AGREEMENT, default 0.5)."""
    return float_setting(MIN_AGREEMENT_ENV, 0.5, low=0.0, high=1.0)


def _majority(values: list[str]) -> tuple[str | None, float | None]:
    """(the most frequent value or None on a tie, its share of the values)."""
    if not values:
        return None, None
    counts = Counter(values).most_common()
    top = counts[0][1]
    tied = len(counts) > 1 and counts[1][1] == top
    return (None if tied else counts[0][0]), top / len(values)


def _method(values: list[str]) -> str:
    if len(values) == 1:
        return "single"
    return "unanimous" if len(set(values)) == 1 else "majority"


def _decide(by_role: dict[str, list[str]], min_agreement: float, allow_single: bool) -> dict:
    crowd = by_role[ROLE_ANNOTATOR]
    majority, share = _majority(crowd)
    experts = by_role[ROLE_EXPERT]
    if experts:
        expert_value, _ = _majority(experts)
        agreement = sum(v == expert_value for v in crowd) / len(crowd) if crowd and expert_value else None
        return {"value": expert_value, "method": "expert", "ratings": len(crowd), "agreement": agreement,
                "status": AGREED if expert_value is not None else DISPUTED, "majority_value": majority}
    if crowd:
        agreed = majority is not None and share >= min_agreement and (len(crowd) > 1 or allow_single)
        return {"value": majority, "method": _method(crowd), "ratings": len(crowd), "agreement": share,
                "status": AGREED if agreed else DISPUTED, "majority_value": majority}
    feedback = by_role[ROLE_FEEDBACK]
    value, share = _majority(feedback)
    return {"value": value, "method": _method(feedback), "ratings": len(feedback), "agreement": share,
            "status": FEEDBACK_ONLY, "majority_value": value}


def _rows(ratings: pl.DataFrame) -> Iterable[tuple[str, str, str, str]]:
    missing = [c for c in RATINGS_COLUMNS if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings need the columns {', '.join(RATINGS_COLUMNS)}; missing {', '.join(missing)}")
    roles = (ratings["role"].cast(pl.String) if "role" in ratings.columns
             else pl.Series("role", [None] * ratings.height, dtype=pl.String))
    frame = ratings.select(
        pl.col("item_id").cast(pl.String),
        pl.col("dimension").cast(pl.String),
        pl.col("value").cast(pl.String).str.strip_chars(),
        roles.fill_null(ROLE_ANNOTATOR).str.strip_chars().replace("", ROLE_ANNOTATOR).alias("role"),
    ).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    unknown = sorted(set(frame["role"].unique().to_list()) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}: expected one of {', '.join(ROLES)}")
    return frame.iter_rows()


def majority_vote(ratings: pl.DataFrame, min_agreement: float = 0.5, *,
                  allow_single: bool = False) -> pl.DataFrame:
    """One row per (item_id, dimension) with a rating: item_id, dimension, value, method, ratings,
    agreement, status, majority_value (see the module docstring), sorted by item and dimension."""
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement}")
    groups: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {r: [] for r in ROLES})
    for item_id, dimension, value, role in _rows(ratings):
        groups[(item_id, dimension)][role].append(value)
    rows = [{"item_id": item_id, "dimension": dimension, **_decide(by_role, min_agreement, allow_single)}
            for (item_id, dimension), by_role in sorted(groups.items())]
    return pl.DataFrame(rows, schema=CONSENSUS_SCHEMA)


def feedback_ratings(feedback: pl.DataFrame, dimensions: Iterable[str]) -> pl.DataFrame:
    """Long-format ratings with role 'feedback' from production thumbs: `feedback` has item_id and
    thumbs ('up' | 'down'; anything else is skipped). A thumb rates the whole answer, so it stands
    for every dimension in `dimensions` (the caller chooses which a user's thumb can speak for):
    up -> Pass, down -> Fail. The annotator column is 'feedback' (no person behind it)."""
    dims = list(dimensions)
    verdict = {"up": "Pass", "down": "Fail"}
    rows = [{"item_id": item_id, "annotator": ROLE_FEEDBACK, "dimension": dim, "value": verdict[thumbs],
             "role": ROLE_FEEDBACK}
            for item_id, thumbs in feedback.select(pl.col("item_id").cast(pl.String),
                                                   pl.col("thumbs").cast(pl.String).str.to_lowercase()).iter_rows()
            if thumbs in verdict for dim in dims]
    return pl.DataFrame(rows, schema={"item_id": pl.String, "annotator": pl.String, "dimension": pl.String,
                                      "value": pl.String, "role": pl.String})
