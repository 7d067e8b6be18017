"""Timestamps from any dialect to one UTC datetime, with the reason when that is impossible.

Exporters write ISO strings with or without a zone, epoch seconds, milliseconds, microseconds or
nanoseconds (OTLP), sometimes as numeric strings. We read the unit from the magnitude: the plausible
range of event times (2000..2100) does not overlap between units, so the guess is unambiguous.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from evalflow.lib.ingest import reasons

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)

# Epoch values for 2000-01-01 and 2100-01-01 in each unit; a value between the bounds of a unit
# is read in that unit. Seconds in this range never reach the millisecond range, and so on.
_UNITS = (
    ("s", 1.0, 946_684_800, 4_102_444_800),
    ("ms", 1e3, 946_684_800e3, 4_102_444_800e3),
    ("us", 1e6, 946_684_800e6, 4_102_444_800e6),
    ("ns", 1e9, 946_684_800e9, 4_102_444_800e9),
)


class TimestampError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _from_epoch(value: float) -> tuple[datetime, list[str]]:
    magnitude = abs(value)
    for unit, divisor, low, high in _UNITS:
        if low <= magnitude < high:
            flag = reasons.EPOCH_SECONDS if unit == "s" else reasons.EPOCH_MILLISECONDS
            return datetime.fromtimestamp(value / divisor, tz=timezone.utc), [flag]
    if 0 <= magnitude < _UNITS[0][2]:
        # Small epoch values are real dates before 2000 (or zero from a broken clock).
        raise TimestampError(reasons.TIMESTAMP_BEFORE_2000, "epoch timestamp before 2000")
    raise TimestampError(reasons.BAD_TIMESTAMP, "epoch timestamp out of any plausible unit range")


def _from_string(value: str) -> tuple[datetime, list[str]]:
    text = value.strip()
    if not text:
        raise TimestampError(reasons.MISSING_TIMESTAMP, "empty timestamp")
    if text.lstrip("-").replace(".", "", 1).isdigit():  # a numeric string: epoch in some unit
        return _from_epoch(float(text))
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise TimestampError(reasons.BAD_TIMESTAMP, "timestamp is not ISO-8601 or epoch") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc), [reasons.NAIVE_TIMESTAMP]
    return parsed.astimezone(timezone.utc), []


def parse_timestamp(value: object) -> tuple[datetime, list[str]]:
    """A UTC datetime and flags; raises TimestampError with a reason code.

    Range checks against "now" are separate (`check_range`) so a caller can parse an end time
    with the same rules.
    """
    if value is None:
        raise TimestampError(reasons.MISSING_TIMESTAMP, "no timestamp")
    if isinstance(value, bool):
        raise TimestampError(reasons.WRONG_TYPE, "timestamp is a boolean")
    if isinstance(value, (int, float)):
        if value != value:  # NaN
            raise TimestampError(reasons.BAD_TIMESTAMP, "timestamp is NaN")
        result, flags = _from_epoch(float(value))
    elif isinstance(value, str):
        result, flags = _from_string(value)
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            result, flags = value.replace(tzinfo=timezone.utc), [reasons.NAIVE_TIMESTAMP]
        else:
            result, flags = value.astimezone(timezone.utc), []
    else:
        raise TimestampError(reasons.WRONG_TYPE, f"timestamp is a {type(value).__name__}")
    return result, flags


def check_range(moment: datetime, now: datetime, skew_tolerance_s: float) -> list[str]:
    """Flags for a parsed time; raises for times before 2000 or too far in the future."""
    if moment < EARLIEST:
        raise TimestampError(reasons.TIMESTAMP_BEFORE_2000, "timestamp before 2000-01-01")
    if moment > now + timedelta(seconds=skew_tolerance_s):
        raise TimestampError(reasons.FUTURE_TIMESTAMP, "timestamp in the future beyond tolerance")
    if moment > now:
        return [reasons.CLOCK_SKEW]
    return []


def to_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
