"""The tags every run a sensor or schedule starts carries: what started it and why.

The UI's run list then answers "why is this running?" without reading code or sensor logs:
`evalflow/started_by` is the sensor's or schedule's name, `evalflow/reason` one line ("3 new
landing files", "days 2026-10-05..2026-10-07 landed", "monthly refresh of 4 days").
"""

STARTED_BY_TAG = "evalflow/started_by"
REASON_TAG = "evalflow/reason"


def automation_tags(started_by: str, reason: str) -> dict[str, str]:
    return {STARTED_BY_TAG: started_by, REASON_TAG: reason}


def plural(count: int, noun: str) -> str:
    """'1 day', '4 days'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
