"""The sampler's knobs and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class SamplingConfig:
    # Share of the budget that outliers and top failure clusters may take before stratification.
    priority_share: float = 0.25
    # How many failure clusters (by rank) count as "top"; None: every cluster, the cap decides.
    top_failure_clusters: int | None = None
    # Traces per stratum guaranteed before the proportional rest (where the stratum holds them).
    stratum_floor: int = 1
    # An intent with at least this many eligible traces must be covered before any intent gets
    # a second trace from the coverage pass.
    min_intent_traces: int = 3
    # Cosine similarity (unit vectors) at or above which a candidate duplicates a chosen trace.
    near_duplicate_cosine: float = 0.97
    # Traces one session may contribute: 1 keeps turns of one conversation from filling the
    # sample, and makes any later dev/holdout split by trace a split by session.
    max_per_session: int = 1
    # Candidates of a pool compared for novelty (lowest highest-cosine to the chosen traces) at
    # each offer; None: the whole time bucket (farthest-first), 1: shuffled order only.
    novelty_window: int | None = None
    # Width of the time buckets the window is cut into (7: weekly).
    time_bucket_days: int = 7

    def __post_init__(self):
        if not 0.0 <= self.priority_share <= 1.0:
            raise ValueError(f"priority_share must be within [0, 1], got {self.priority_share}")
        if self.top_failure_clusters is not None and self.top_failure_clusters < 0:
            raise ValueError(f"top_failure_clusters must be >= 0 or None, got {self.top_failure_clusters}")
        if self.stratum_floor < 0:
            raise ValueError(f"stratum_floor must be >= 0, got {self.stratum_floor}")
        if self.min_intent_traces < 1:
            raise ValueError(f"min_intent_traces must be >= 1, got {self.min_intent_traces}")
        if not 0.0 < self.near_duplicate_cosine <= 1.0:
            raise ValueError(f"near_duplicate_cosine must be within (0, 1], got {self.near_duplicate_cosine}")
        if self.max_per_session < 1:
            raise ValueError(f"max_per_session must be >= 1, got {self.max_per_session}")
        if self.novelty_window is not None and self.novelty_window < 1:
            raise ValueError(f"novelty_window must be >= 1 or None, got {self.novelty_window}")
        if self.time_bucket_days < 1:
            raise ValueError(f"time_bucket_days must be >= 1, got {self.time_bucket_days}")


@dataclass
class SampleResult:
    """``chosen``: the picked signal rows plus stratum, time_bucket, reason, pick_order (1 = first).
    ``coverage``: JSON-able figures for the asset metadata and the README.
    ``excluded``: rows left out before sampling: by_trace_id, by_session, sessions."""

    chosen: pl.DataFrame
    coverage: dict
    excluded: dict = field(default_factory=dict)
