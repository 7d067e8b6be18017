"""The content of a dataset version: its cases, their canonical serialisation and hash, and the
checks every case passes before it is stored.

The serialisation (`SERIALISATION`, written into every manifest) is, exactly:

1. the cases sorted by `case_id` (Python string order: Unicode code points);
2. each case as `json.dumps(case, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
   allow_nan=False)`, encoded as UTF-8, followed by one newline byte (0x0A);
3. `content_sha256` = sha256 (hex) of the concatenation of those lines;
   `case_sha256` = sha256 (hex) of one case's line without its newline.

So the hash depends on the cases alone (not on the order they came in, the time of publication
or the manifest), and anyone can recompute it from an export with a few lines of any language.
NaN and infinities are refused (they are not JSON), and so is anything `json` cannot serialise:
a case must be plain JSON before it can be versioned.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any, Iterable, Mapping, Sequence

from evalflow.lib.judge.cases import is_holdout

SERIALISATION = (
    "evalflow-cases/1: cases sorted by case_id (Unicode code points); each case as "
    "json.dumps(case, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False) "
    "in UTF-8 followed by one newline (0x0A); content_sha256 = sha256 of the concatenation; "
    "case_sha256 = sha256 of one case's line without its newline"
)
SPLITS = ("dev", "holdout")


class InvalidCase(ValueError):
    """A case that cannot be versioned (no id, a wrong split, a bad source date, not JSON)."""


class SplitChanged(ValueError):
    """A case whose split differs from the one it has (or had in an earlier version)."""


def canonical_case(case: Mapping[str, Any]) -> str:
    """One case's canonical JSON text (see the module docstring)."""
    try:
        return json.dumps(case, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidCase(f"case {case.get('case_id')!r} is not plain JSON: {error}") from None


def case_sha256(case: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_case(case).encode("utf-8")).hexdigest()


def content_sha256(cases: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the canonical content: the cases sorted by id, one canonical JSON line each."""
    digest = hashlib.sha256()
    for case in sorted(cases, key=lambda c: c["case_id"]):
        digest.update(canonical_case(case).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def split_for(case_id: str) -> str:
    """"holdout" for the 20% of case ids `is_holdout` picks (evalflow/lib/judge/cases.py), else "dev"."""
    return "holdout" if is_holdout(case_id) else "dev"


def check_case(case: Any) -> None:
    """Raise InvalidCase / SplitChanged unless the case can be versioned: a mapping with a
    non-empty string `case_id`, `split` equal to split_for(case_id) (the split comes from the id
    alone and never moves), `source_date` null or a real YYYY-MM-DD date, plain JSON."""
    if not isinstance(case, Mapping):
        raise InvalidCase(f"a case must be a JSON object, got {type(case).__name__}")
    case_id = case.get("case_id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise InvalidCase(f"a case without a case_id: {str(case)[:80]}")
    split = case.get("split")
    if split != split_for(case_id):
        raise SplitChanged(f"case {case_id}: split {split!r}, but is_holdout(case_id) puts it in "
                           f"{split_for(case_id)!r}; a case's split comes from its id and never changes")
    source_date = case.get("source_date")
    if source_date is not None:
        try:
            if not isinstance(source_date, str) or len(source_date) != 10:
                raise ValueError
            date.fromisoformat(source_date)
        except ValueError:
            raise InvalidCase(f"case {case_id}: source_date {source_date!r} is not YYYY-MM-DD") from None
    canonical_case(case)


def check_cases(cases: Sequence[Mapping[str, Any]]) -> None:
    """check_case for each, and no case id twice."""
    seen: set[str] = set()
    for case in cases:
        check_case(case)
        if case["case_id"] in seen:
            raise InvalidCase(f"case {case['case_id']} appears twice in one version")
        seen.add(case["case_id"])


def check_splits_unchanged(previous: Mapping[str, str], cases: Iterable[Mapping[str, Any]], where: str) -> None:
    """Raise SplitChanged when a case's split differs from `previous` ({case_id: split}, what an
    earlier version stored): a case never changes side between versions."""
    for case in cases:
        before = previous.get(case["case_id"])
        if before is not None and before != case.get("split"):
            raise SplitChanged(f"case {case['case_id']} was {before!r} in {where} and would be "
                               f"{case.get('split')!r} now; a case never changes split between versions")
