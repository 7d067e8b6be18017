"""The eval case's schema (JSON Schema draft 2020-12, eval_case.schema.json beside this file) and
`validate_case`, the data contract every writer and reader of cases goes through.

The JSON file is the one source: `EVAL_CASE_SCHEMA` is that file read at import. Validation has
two parts, both reported as readable messages that start with the path to the field
(`labels.safety.verdict: 'pass' is not one of ['Pass', 'Fail']`):

1. the schema, with the maintained `jsonschema` validator (Draft202012Validator);
2. what a schema cannot say: each check definition compiles (a bad regex or a bad JSON Schema is
   an error here, never when the check runs), check names are unique within the case, `split`
   is `is_holdout(case_id)` (the split is never stored differently), a holdout case carries no
   judge label (the holdout never reaches the judge), and `source_date` is a real date.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from evalflow.lib.judge.cases import is_holdout

SCHEMA_FILE = Path(__file__).with_name("eval_case.schema.json")
EVAL_CASE_SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
# The schema's own version, for manifests: sha256 of its canonical JSON (sorted keys, no spaces).
SCHEMA_SHA256 = hashlib.sha256(json.dumps(EVAL_CASE_SCHEMA, sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False).encode("utf-8")).hexdigest()
SCHEMA_ID = EVAL_CASE_SCHEMA["$id"]

DIMENSIONS: tuple[str, ...] = tuple(EVAL_CASE_SCHEMA["properties"]["labels"]["propertyNames"]["enum"])
VERDICTS = ("Pass", "Fail")
LABEL_SOURCES = ("consensus", "expert", "judge")
SPLITS = ("dev", "holdout")
CHECK_KINDS: tuple[str, ...] = tuple(EVAL_CASE_SCHEMA["$defs"]["check"]["properties"]["kind"]["enum"])
FIELDS: tuple[str, ...] = tuple(EVAL_CASE_SCHEMA["required"])

Draft202012Validator.check_schema(EVAL_CASE_SCHEMA)  # a broken schema file fails at import, not later
_VALIDATOR = Draft202012Validator(EVAL_CASE_SCHEMA)


def split_for(case_id: str) -> str:
    """"holdout" or "dev": the 20% holdout by a hash of the case id (judge/cases.py is_holdout)."""
    return "holdout" if is_holdout(case_id) else "dev"


def field_path(parts: Iterable[Any]) -> str:
    """labels.safety.verdict, checks[0].pattern; "(case)" for the case itself."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(case)"


def _messages(error: ValidationError) -> list[str]:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value
                   if isinstance(error.instance, Mapping) and name not in error.instance]
        # jsonschema yields one error per missing name; naming them all here is deduplicated later.
        return [f"{field_path([*path, name])}: missing (required)" for name in missing] or [
            f"{field_path(path)}: {error.message}"]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set((error.schema.get("properties") or {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        if extra:
            return [f"{field_path([*path, name])}: unknown field" for name in extra]
    if "propertyNames" in error.schema_path:  # the error is about a key, not a value
        return [f"{field_path([*path, error.instance])}: not a known name ({error.message})"]
    if error.validator == "const" and path and path[-1] == "evaluation_type":
        return [f"evaluation_type: must be {error.validator_value!r} "
                f"({'a gold answer exists' if error.validator_value == 'reference_based' else 'no gold answer'})"]
    return [f"{field_path(path)}: {error.message}"]


_LONGEST = 300  # characters of a message: jsonschema quotes the offending value, which may be long


def schema_errors(case: Any) -> list[str]:
    """The schema's complaints about a case, one readable message each, sorted by field."""
    errors = sorted(_VALIDATOR.iter_errors(case), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    seen, out = set(), []
    for error in errors:
        for message in _messages(error):
            message = message if len(message) <= _LONGEST else message[:_LONGEST - 3] + "..."
            if message not in seen:
                seen.add(message)
                out.append(message)
    return out


def _semantic_errors(case: Mapping[str, Any]) -> list[str]:
    from evalflow.lib.eval_cases.checks import definition_errors

    out = []
    case_id = case.get("case_id")
    if isinstance(case_id, str) and case.get("split") in SPLITS and case["split"] != split_for(case_id):
        out.append(f"split: {case['split']!r} but is_holdout(case_id) says {split_for(case_id)!r}; "
                   "the split comes from the case id alone")
    if isinstance(case_id, str) and split_for(case_id) == "holdout":
        for dimension, label in sorted((case.get("labels") or {}).items()):
            if isinstance(label, Mapping) and label.get("source") == "judge":
                out.append(f"labels.{dimension}.source: a holdout case has no judge label "
                           "(the holdout never reaches the judge)")
    source_date = case.get("source_date")
    if isinstance(source_date, str):
        try:
            date.fromisoformat(source_date)
        except ValueError:
            out.append(f"source_date: {source_date!r} is not a date")
    names: dict[str, int] = {}
    for index, check in enumerate(case.get("checks") or []):
        if not isinstance(check, Mapping):
            continue
        name = check.get("name")
        if isinstance(name, str):
            if name in names:
                out.append(f"checks[{index}].name: duplicate check name {name!r} (also checks[{names[name]}])")
            names.setdefault(name, index)
        out += [f"checks[{index}].{message}" for message in definition_errors(check)]
    return out


def validate_case(case: Any) -> list[str]:
    """Every problem with a case as readable messages naming the field; empty when it is valid."""
    errors = schema_errors(case)
    if isinstance(case, Mapping):
        errors += _semantic_errors(case)
    return errors


class InvalidCase(ValueError):
    """A case that breaks the contract; `.problems` lists the messages."""

    def __init__(self, case_id: Any, problems: list[str]):
        self.case_id = case_id
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        super().__init__(f"eval case {case_id!r} is invalid: {shown}")


def require_valid(case: Any) -> None:
    """Raise InvalidCase when `validate_case` finds anything."""
    problems = validate_case(case)
    if problems:
        raise InvalidCase(case.get("case_id") if isinstance(case, Mapping) else None, problems)
