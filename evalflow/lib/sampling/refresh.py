"""What the monthly refresh does besides re-running assets: which days to bring in, and which
eval candidates have gone stale.

A candidate is stale when what made it worth labelling no longer describes production:
- its intent is gone from the catalog (the intent died, or merged into another: the trace now
  belongs to a different intent, so it no longer represents the stratum it was drawn for);
- it is older than ``max_age_days`` (default 90): traffic moves on, and the drift set should be
  rebuilt from recent traffic rather than carry old requests forward;
- its trace is no longer in the warehouse (deleted upstream), so the annotator cannot see it.

Stale candidates that were not exported to annotators yet are retired (status "retired");
exported ones keep their status and get a ``stale_reason`` only, because someone may be labelling
them and a label is still worth importing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Mapping

DEFAULT_MAX_AGE_DAYS = 90


def days_to_refresh(ingested: Iterable[str], embedded: Iterable[str]) -> list[str]:
    """Partition keys (YYYY-MM-DD, sorted) the refresh's daily run covers: every ingested day whose
    embeddings are missing; when none is missing, the newest ingested day (its texts are cached,
    so re-running it is cheap) so that the window part of the refresh still runs."""
    ingested = sorted(set(ingested))
    missing = sorted(set(ingested) - set(embedded))
    if missing:
        return missing
    return ingested[-1:]


@dataclass(frozen=True)
class Staleness:
    trace_id: str
    reason: str


def stale_candidates(candidates: Iterable[Mapping], *, live_intents: set[str],
                     current_intent: Mapping[str, str | None], newest_day: date,
                     max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> list[Staleness]:
    """Candidates (dicts with trace_id, intent_id, event_date) that have gone stale, with the reason.

    ``current_intent``: trace_id -> its intent now (traces missing from it are gone from the
    warehouse); ``live_intents``: the ids in the current catalog.
    """
    if max_age_days < 1:
        raise ValueError("max_age_days must be at least 1")
    oldest = newest_day - timedelta(days=max_age_days - 1)
    out = []
    for row in candidates:
        trace_id, intent_id = row["trace_id"], row.get("intent_id")
        if trace_id not in current_intent:
            out.append(Staleness(trace_id, "trace no longer in the warehouse"))
        elif intent_id is not None and intent_id not in live_intents:
            out.append(Staleness(trace_id, f"intent {intent_id} is no longer in the catalog"))
        elif intent_id is not None and current_intent[trace_id] not in (None, intent_id):
            out.append(Staleness(trace_id, f"trace moved from intent {intent_id} to {current_intent[trace_id]}"))
        elif row["event_date"] < oldest:
            out.append(Staleness(trace_id, f"older than {max_age_days} days"))
    return out
