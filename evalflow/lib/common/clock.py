"""The one clock every stage stamps its writes with (UTC, timezone-aware)."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
