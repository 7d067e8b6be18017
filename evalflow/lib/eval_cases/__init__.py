"""Eval cases: one schema for every labelled production trace that becomes a repeatable eval.

- schema.py (+ eval_case.schema.json, JSON Schema draft 2020-12): `EVAL_CASE_SCHEMA`,
  `validate_case` (readable messages naming the field), the split rule (`split_for`).
- checks.py: deterministic checks run before any judge (`run_checks` -> `CheckResult`s): regex,
  must_contain, must_not_contain, exact_match, numeric_tolerance, json_schema.
- build.py: cases from consensus labels, pass-1 text, redacted traces and calibrated judge labels
  (`build_cases`), the safety edge set (`is_safety_case`), `case_sha256` over the canonical JSON.
- store.py: the `eval_cases` table (replaced whole, one transaction) and the build's inputs.
"""

from evalflow.lib.eval_cases.build import (
    SAFETY_FAILURE_MODES,
    CaseInputs,
    build_cases,
    canonical_case_json,
    case_sha256,
    is_safety_case,
)
from evalflow.lib.eval_cases.checks import CheckResult, run_checks
from evalflow.lib.eval_cases.schema import (
    DIMENSIONS,
    EVAL_CASE_SCHEMA,
    SCHEMA_SHA256,
    InvalidCase,
    split_for,
    validate_case,
)

__all__ = [
    "DIMENSIONS",
    "EVAL_CASE_SCHEMA",
    "SAFETY_FAILURE_MODES",
    "SCHEMA_SHA256",
    "CaseInputs",
    "CheckResult",
    "InvalidCase",
    "build_cases",
    "canonical_case_json",
    "case_sha256",
    "is_safety_case",
    "run_checks",
    "split_for",
    "validate_case",
]
