"""What a detector reports: `Detection`, and how overlapping detections become one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    entity_type: str
    start: int
    end: int
    score: float


def resolve_overlaps(detections: Iterable[Detection]) -> list[Detection]:
    """Overlapping detections become one: the union of their spans, typed by the strongest
    (highest score, then longest). A union never leaves a character of either unmasked.
    Sorted by start."""
    ordered = sorted(detections, key=lambda d: (d.start, -d.end))
    out: list[Detection] = []
    group: list[Detection] = []
    group_end = -1
    for det in ordered:
        if group and det.start < group_end:
            group.append(det)
            group_end = max(group_end, det.end)
            continue
        if group:
            out.append(_merge(group))
        group, group_end = [det], det.end
    if group:
        out.append(_merge(group))
    return out


def _merge(group: list[Detection]) -> Detection:
    if len(group) == 1:
        return group[0]
    best = max(group, key=lambda d: (d.score, d.end - d.start))
    return Detection(best.entity_type, min(d.start for d in group), max(d.end for d in group), best.score)
