"""The rolling drift set: what production does now, as a stratified sample of the last 7 days.

`rolling_version(day, cases, plan)` selects from the cases whose `source_date` lies in the 7
days ending on `day` (day-6 .. day, inclusive; others are left out and counted) and versions the
selection `rolling@YYYY-MM-DD`. The rule, deterministic for a seed and independent of the order
the cases come in:

1. Cases whose trace or case id is in `plan.exclude_trace_ids` / `plan.exclude_case_ids` (the
   golden set's, so the two sets do not overlap) are left out.
2. Stratum = (intent id, the sorted slice tags joined by "+"; "-" for none). A case with no
   intent is in the intent "none".
3. Allocation of `plan.size` places: every non-empty stratum first gets one (coverage: a rare
   intent or slice is never sampled away), in order of the strata's rank key (sha256 of seed +
   stratum) when there are more strata than places; the rest are shared in proportion to the
   strata's sizes by largest remainder (ties broken by the rank key), never more than a stratum
   holds. When `size` is at least the number of cases, every case is taken.
4. Within a stratum, cases are taken in order of sha256(seed + case_id).

The manifest's sampling plan records the plan, the window, what was left out and, per stratum,
how many cases were available and how many were taken.
"""

from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Mapping, Sequence

from evalflow.lib.snapshots.content import check_case
from evalflow.lib.snapshots.refs import ROLLING, DatasetRef, rolling_version_name

WINDOW_DAYS = 7


@dataclass(frozen=True)
class RollingPlan:
    size: int = 200
    seed: int = 0
    window_days: int = WINDOW_DAYS
    exclude_trace_ids: frozenset[str] = frozenset()
    exclude_case_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"a rolling set needs a size of at least 1, got {self.size}")
        if self.window_days < 1:
            raise ValueError(f"the window is at least one day, got {self.window_days}")

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "seed": self.seed, "window_days": self.window_days,
                "exclude_trace_ids": len(self.exclude_trace_ids), "exclude_case_ids": len(self.exclude_case_ids),
                "stratify_by": ["intent_id", "slice_tags"]}


@dataclass(frozen=True)
class RollingResult:
    ref: DatasetRef
    cases: list[dict[str, Any]]
    sampling_plan: dict[str, Any]


def _rank(seed: int, value: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{value}".encode("utf-8")).hexdigest()


def stratum_of(case: Mapping[str, Any]) -> str:
    intent = case.get("intent_id") or "none"
    tags = "+".join(sorted({str(t) for t in case.get("slice_tags") or []})) or "-"
    return f"{intent}|{tags}"


def allocate(sizes: Mapping[str, int], total: int, seed: int) -> dict[str, int]:
    """Places per stratum (rule 3 of the module docstring)."""
    order = sorted(sizes, key=lambda s: _rank(seed, s))
    if total >= sum(sizes.values()):
        return dict(sizes)
    out = {s: 0 for s in sizes}
    for stratum in order[:total]:
        out[stratum] = 1
    left = total - sum(out.values())
    if left <= 0:
        return out
    room = {s: sizes[s] - out[s] for s in sizes}
    pool = sum(room.values())
    quotas = {s: left * room[s] / pool for s in sizes}
    for s in sizes:
        out[s] += int(quotas[s])
    remaining = total - sum(out.values())
    by_remainder = sorted(sizes, key=lambda s: (-(quotas[s] - int(quotas[s])), _rank(seed, s)))
    while remaining > 0:
        for s in by_remainder:
            if remaining and out[s] < sizes[s]:
                out[s] += 1
                remaining -= 1
    return out


def rolling_version(day: date, cases: Sequence[Mapping[str, Any]], plan: RollingPlan,
                    first_seen: Mapping[str, str] | None = None) -> RollingResult:
    """The rolling set for `day` (see the module docstring). `first_seen` ({case_id: ref}, from
    the store) keeps a case's `version_added` at the first rolling version that held it."""
    ref = DatasetRef(ROLLING, rolling_version_name(day))
    start = day - timedelta(days=plan.window_days - 1)
    first_seen = first_seen or {}
    outside = excluded = 0
    eligible: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for case in cases:
        check_case(case)
        if case["case_id"] in seen:
            continue
        seen.add(case["case_id"])
        source_date = case.get("source_date")
        if not source_date or not start <= date.fromisoformat(source_date) <= day:
            outside += 1
            continue
        trace_id = (case.get("source") or {}).get("trace_id")
        if case["case_id"] in plan.exclude_case_ids or (trace_id and trace_id in plan.exclude_trace_ids):
            excluded += 1
            continue
        eligible[stratum_of(case)].append(case)
    places = allocate({s: len(v) for s, v in eligible.items()}, plan.size, plan.seed)
    chosen = []
    for stratum, members in eligible.items():
        ranked = sorted(members, key=lambda c: _rank(plan.seed, c["case_id"]))
        for case in ranked[:places[stratum]]:
            copied = copy.deepcopy(dict(case))
            copied["version_added"] = first_seen.get(case["case_id"], str(ref))
            chosen.append(copied)
    chosen.sort(key=lambda c: c["case_id"])
    sampling = {"kind": "rolling", **plan.as_dict(), "window": [start.isoformat(), day.isoformat()],
                "offered": len(seen), "outside_window": outside, "excluded": excluded,
                "eligible": sum(len(v) for v in eligible.values()), "selected": len(chosen),
                "strata": {s: {"available": len(eligible[s]), "selected": places[s]} for s in sorted(eligible)}}
    return RollingResult(ref=ref, cases=chosen, sampling_plan=sampling)
