"""Eval cases: stable ids, the holdout, the calibration split, and what the judge sees.

Every labelled item becomes an eval case with a stable `case_id`: a production trace gets
`case_id_for_trace(trace_id)`, a known-answer gold case keeps its own id. Which part of the
data a case belongs to is a hash of its id alone, so a case never changes part however the
set grows, and the next issue's golden snapshots use the same split:

- `is_holdout`: 20% of cases. They never reach the judge: not in calibration, not in prompt
  tuning, not when the judge labels (their labels stay human, so the judge can be audited
  on them later by someone who never tuned it on them).
- `calibration_split`: the other cases split half and half into "tune" (prompt variants are
  compared here) and "test" (only the chosen variant is measured here).

Each hash takes its own prefix (holdout / calibration), so the two splits are independent:
the tune/test halves of the non-holdout cases are each about 40% of all cases.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

HOLDOUT_PERCENT = 20
SPLITS = ("tune", "test", "holdout")
# The fields of a case the judge sees, besides its id (the rubric is optional).
CASE_FIELDS = ("input", "output", "expected_behavior", "rubric")
# The parts of a trace that make up a case's input (the same shape as the known answers').
TRACE_INPUT_FIELDS = ("user_query", "messages", "retrieved_context", "tool_calls")


def _hash_int(prefix: str, value: str) -> int:
    return int(hashlib.sha256(f"{prefix}\x1f{value}".encode("utf-8")).hexdigest()[:8], 16)


def case_id_for_trace(trace_id: str) -> str:
    """The case id of a labelled production trace: "case-" + 16 hex digits of a hash."""
    return "case-" + hashlib.sha256(f"trace\x1f{trace_id}".encode("utf-8")).hexdigest()[:16]


def is_holdout(case_id: str) -> bool:
    """Whether a case is in the 20% holdout (never sent to the judge)."""
    return _hash_int("holdout", case_id) % 100 < HOLDOUT_PERCENT


def calibration_split(case_id: str) -> str:
    """"tune" or "test" for a non-holdout case (the hash alone; callers check is_holdout first,
    or use `case_split`, which does)."""
    return "tune" if _hash_int("calibration", case_id) % 2 == 0 else "test"


def case_split(case_id: str) -> str:
    """"holdout", "tune" or "test"."""
    return "holdout" if is_holdout(case_id) else calibration_split(case_id)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same content always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def rubric_for(case: Mapping[str, Any], dimension: str | None) -> str | None:
    """The case's own rubric for a dimension: its `rubric` text, or its entry for the dimension
    when `rubric` is a {dimension: text} mapping; None when it has none."""
    rubric = case.get("rubric")
    if isinstance(rubric, Mapping):
        rubric = rubric.get(dimension) if dimension is not None else None
    return rubric if isinstance(rubric, str) and rubric.strip() else None


def case_sha256(case: Mapping[str, Any], dimension: str | None = None) -> str:
    """sha256 of what the judge sees of a case: its id (the prompt names it), input, output,
    expected behaviour and rubric (for `dimension`, when given, with the dimension itself).

    With the model and the prompt template's sha256 this keys the verdict cache: a case whose
    content changes is judged again, an unchanged one never is. The dimension is part of it
    because one template file may serve several dimensions (`--prompt FILE`)."""
    seen = {"case_id": case.get("case_id"), "input": case.get("input"), "output": case.get("output"),
            "expected_behavior": case.get("expected_behavior"), "rubric": rubric_for(case, dimension)}
    if dimension is not None:
        seen["dimension"] = dimension
    return hashlib.sha256(canonical_json(seen)).hexdigest()


def case_from_trace(trace: Mapping[str, Any], expected_behavior: Any = None,
                    rubric: str | Mapping[str, str] | None = None) -> dict[str, Any]:
    """An eval case from a redacted trace row (user_query, messages, retrieved_context,
    tool_calls, output) and what pass 1 said a correct answer does."""
    case = {"case_id": case_id_for_trace(trace["trace_id"]), "trace_id": trace["trace_id"],
            "input": {name: trace.get(name) for name in TRACE_INPUT_FIELDS if trace.get(name) not in (None, [], "")},
            "output": trace.get("output"), "expected_behavior": expected_behavior}
    if rubric is not None:
        case["rubric"] = rubric
    return case
