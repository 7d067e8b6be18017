"""Daily partitions by event time (UTC), shared by every per-day asset."""

import dagster as dg

from evalflow.lib.common.settings import load_settings

_PARTITIONS_START = load_settings().partitions_start  # read once: the code location loads this module

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_PARTITIONS_START,
    timezone="UTC",
    end_offset=1,  # today's partition exists, so traces arriving today can land
)


def _monday_on_or_before(day: str) -> str:
    from datetime import date, timedelta

    first = date.fromisoformat(day)
    return (first - timedelta(days=first.weekday())).isoformat()


# Weeks run Monday to Sunday, UTC (day_offset=1: Dagster's weeks start on Sunday otherwise); the
# first is the week of the first day with data. end_offset=1: the current week exists, so a
# report can be read mid-week (it says how many of its days hold traffic).
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=_monday_on_or_before(_PARTITIONS_START),
    day_offset=1,
    timezone="UTC",
    end_offset=1,
)
