"""How stale a version is: its age and the age of what it holds.

The six-month rule: production traffic drifts (new products, new policies, new phrasings), so a
case whose source trace is more than six months old (`STALE_AFTER_DAYS` = 183 days before the
day asked about) tests what users asked then, not what they ask now. A version is due for review
when at least half its dated cases are that old (`due_for_review`): promote fresh cases from the
rolling set and retire the ones whose answers no longer hold. An old version of fresh cases is
not stale by this rule, and a new version of old cases is: what counts is the cases' source
dates, with the version's own age shown beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Sequence

STALE_AFTER_DAYS = 183
DUE_FOR_REVIEW_SHARE = 0.5


@dataclass(frozen=True)
class Staleness:
    ref: str
    age_days: int
    cases: int
    dated_cases: int
    stale_cases: int
    stale_share: float
    oldest_source_date: str | None
    newest_source_date: str | None
    due_for_review: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def staleness(manifest: Mapping[str, Any], cases: Sequence[Mapping[str, Any]], today: date) -> Staleness:
    """The version's age in days (created_at to `today`) and the share of its dated cases whose
    source_date is more than STALE_AFTER_DAYS days before `today` (cases without a source date
    are counted in `cases`, not in the share)."""
    created = datetime.fromisoformat(manifest["created_at"]).date()
    dates = sorted(date.fromisoformat(c["source_date"]) for c in cases if c.get("source_date"))
    stale = sum(1 for d in dates if (today - d).days > STALE_AFTER_DAYS)
    share = stale / len(dates) if dates else 0.0
    return Staleness(ref=manifest["ref"], age_days=(today - created).days, cases=len(cases), dated_cases=len(dates),
                     stale_cases=stale, stale_share=round(share, 6),
                     oldest_source_date=dates[0].isoformat() if dates else None,
                     newest_source_date=dates[-1].isoformat() if dates else None,
                     due_for_review=bool(dates) and share >= DUE_FOR_REVIEW_SHARE)
