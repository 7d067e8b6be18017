"""Daily partitions by event time (UTC), shared by every per-day asset."""

import dagster as dg

from evalflow.lib.common.settings import load_settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partitions_start,
    timezone="UTC",
    end_offset=1,  # today's partition exists, so traces arriving today can land
)
