"""Dataset version references: `golden@v3`, `rolling@2026-01-05`.

Two named sets exist:

- `golden`: versions `v1`, `v2`, ... in promotion order; only a promotion makes the next one.
- `rolling`: one version per day it was built, named by that date (`YYYY-MM-DD`).

A reference names exactly one version; nothing here ever means "the newest" (callers that want
the newest ask the store for it by name, and say so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

GOLDEN = "golden"
ROLLING = "rolling"
NAMES = (GOLDEN, ROLLING)

_GOLDEN_VERSION = re.compile(r"^v([1-9][0-9]{0,8})$")
_ROLLING_VERSION = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class BadReference(ValueError):
    """A dataset reference that does not parse, or names a set that does not exist."""


@dataclass(frozen=True, order=True)
class DatasetRef:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def sort_key(self) -> tuple:
        """Versions of one name in publication order (v2 before v10; dates in date order)."""
        if self.name == GOLDEN:
            return (self.name, golden_number(self.version), "")
        return (self.name, 0, self.version)


def check_version(name: str, version: str) -> None:
    """Raise BadReference unless `version` is a valid version of set `name`."""
    if name == GOLDEN:
        if not _GOLDEN_VERSION.match(version or ""):
            raise BadReference(f"golden versions are v1, v2, ...; got {version!r}")
    elif name == ROLLING:
        if not _ROLLING_VERSION.match(version or ""):
            raise BadReference(f"rolling versions are dates YYYY-MM-DD; got {version!r}")
        try:
            date.fromisoformat(version)
        except ValueError:
            raise BadReference(f"rolling version {version!r} is not a real date") from None
    else:
        raise BadReference(f"unknown dataset {name!r}: the sets are {', '.join(NAMES)}")


def parse_ref(text: str) -> DatasetRef:
    """'golden@v3' -> DatasetRef('golden', 'v3'). A bare name ('golden') is an error: a pin
    always names its version."""
    name, sep, version = (text or "").strip().partition("@")
    if not sep:
        raise BadReference(f"{text!r} names no version: write NAME@VERSION, e.g. golden@v1 or rolling@2026-01-05")
    check_version(name, version)
    return DatasetRef(name, version)


def golden_number(version: str) -> int:
    match = _GOLDEN_VERSION.match(version)
    if not match:
        raise BadReference(f"golden versions are v1, v2, ...; got {version!r}")
    return int(match.group(1))


def next_golden(latest: str | None) -> str:
    """The version after `latest` (None: the first, v1)."""
    return "v1" if latest is None else f"v{golden_number(latest) + 1}"


def rolling_version_name(day: date) -> str:
    return day.isoformat()
