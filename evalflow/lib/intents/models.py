"""The records intent discovery hands back: catalog entries, events and the per-row result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

EVENT_KINDS = ("birth", "death", "merge", "split", "continue")


@dataclass
class CatalogEntry:
    """One intent as a person reads it, plus what the next run needs to keep its id.

    ``centroid`` is the mean of the member rows' embeddings in the original (model) space, scaled
    to unit length, so the next run can match against it whatever reduction it fits.
    ``size`` counts rows (duplicates included) and ``share`` is size over all assigned rows, so the
    shares of one catalog sum to 1. What reviewers decided (`evalflow.lib.intents.overrides`):
    ``reviewed_name`` (then also ``name``), ``pinned``, ``anchors`` (centroids of the intents a
    reviewer merged into this one) and ``decision`` in words; carried from run to run.
    """

    intent_id: str
    name: str
    keywords: list[str]
    examples: list[str]
    size: int
    share: float
    first_seen: datetime
    last_seen: datetime
    centroid: list[float]
    reviewed_name: str | None = None
    pinned: bool = False
    anchors: list[list[float]] = field(default_factory=list)
    decision: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> CatalogEntry:
        values = dict(row)
        values["anchors"] = [[float(v) for v in a] for a in (values.get("anchors") or [])]
        values["pinned"] = bool(values.get("pinned") or False)
        for key in ("first_seen", "last_seen"):
            if isinstance(values.get(key), str):
                values[key] = datetime.fromisoformat(values[key])
        values["keywords"] = list(values.get("keywords") or [])
        values["examples"] = list(values.get("examples") or [])
        values["centroid"] = [float(v) for v in values["centroid"]]
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


@dataclass
class IntentEvent:
    """What happened to intents between the previous catalog and this run.

    continue: from_ids == to_ids == [the kept id]. birth: to_ids = [new id]. death: from_ids =
    [old id]. split: from_ids = [old id], to_ids = [old id (kept by the largest part), new ids...].
    merge: from_ids = [old ids...], to_ids = [the kept id (the best-matching old one)].
    ``similarity`` is the centroid cosine similarity behind the decision (the best one for a birth
    or death, to show how far the nearest candidate was).
    """

    kind: str
    from_ids: list[str]
    to_ids: list[str]
    detail: str
    similarity: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class IntentResult:
    """Per-row assignment plus the catalog and events.

    intent_ids: one id per input row (never None when at least one intent exists; see the noise
    policy in `evalflow.lib.intents`). confidence: 0..1 per row; rows HDBSCAN left as noise have
    confidence < 0.5 and ``low_confidence`` True. noise_share: the share of rows HDBSCAN left as
    noise (before they were given their nearest intent).
    """

    intent_ids: list[str | None]
    confidence: np.ndarray
    low_confidence: np.ndarray
    catalog: list[CatalogEntry]
    events: list[IntentEvent]
    params: dict
    noise_share: float

    def entry(self, intent_id: str) -> CatalogEntry:
        for entry in self.catalog:
            if entry.intent_id == intent_id:
                return entry
        raise KeyError(intent_id)
