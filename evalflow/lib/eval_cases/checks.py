"""Deterministic checks on an answer, run before any judge: cheap, exact, and the same every time.

Each case's `checks` is a list of definitions `{"name", "kind", ...}` (the schema's `$defs/check`):

| kind | fields | passes when |
|---|---|---|
| regex | pattern, ignore_case | `re.search(pattern, output)` finds a match |
| must_contain | values, ignore_case | every value occurs in the output |
| must_not_contain | values, ignore_case | no value occurs in the output |
| exact_match | value, ignore_case | output == value after normalisation |
| numeric_tolerance | value, abs_tol, rel_tol, pattern | the number read from the output is within tolerance |
| json_schema | schema, strip_code_fence | the output parses as JSON and the schema validates it |

Normalisation (exact_match, must_contain, must_not_contain): Unicode NFC, every run of white
space as one space, trimmed; `ignore_case` compares casefolded text.

numeric_tolerance reads the first number of the output (or, with `pattern`, of the text its
first group captured, or of its whole match when it has no group): an optional sign, digits
with optional thousands commas (1,234.5), a decimal part and an exponent; a number glued to a
word (`v2`, `ID-7`'s dash) is not read as one, a sign only counts where a number starts. It
passes when |x - value| <= max(abs_tol, rel_tol * |value|), computed in exact decimal
arithmetic (1.1 is within 0.1 of 1.0). Both tolerances default to 0 (exact).

json_schema validates with the `jsonschema` package, using the validator the schema's
`$schema` names (draft 2020-12 when it names none); `format` is annotation only, as the
specification says. Only references inside the schema (`#/...`) are allowed: a check never
fetches anything. `strip_code_fence` accepts an answer wrapped in one ``` fence.

A definition that cannot run (a regex that does not compile, a schema that is not one, a
reference out of the schema) is reported by `definition_errors`, which `validate_case` calls:
it is an error when the case is validated, never a surprise when the check runs. `run_checks`
refuses a case with such a definition (InvalidCase). A missing answer (None) fails every check.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import UnknownDialect, specification_with

from evalflow.lib.eval_cases.schema import InvalidCase

REGEX = "regex"
MUST_CONTAIN = "must_contain"
MUST_NOT_CONTAIN = "must_not_contain"
EXACT_MATCH = "exact_match"
NUMERIC_TOLERANCE = "numeric_tolerance"
JSON_SCHEMA = "json_schema"

_NUMBER = re.compile(r"(?<![\w.])([-+\u2212]?)((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)((?:[eE][-+]?\d+)?)")
_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```\s*\Z", re.DOTALL)
_SHOWN = 60  # characters of a value quoted in a detail


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    passed: bool
    detail: str  # why, in one line; quotes the check's own values, never the whole output


def normalise_text(text: str, ignore_case: bool = False) -> str:
    """NFC, white space collapsed to single spaces and trimmed; casefolded with ignore_case."""
    out = " ".join(unicodedata.normalize("NFC", text).split())
    return out.casefold() if ignore_case else out


def _short(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def first_number(text: str) -> Decimal | None:
    """The first number in a text (see the module docstring), exactly; None when there is none."""
    for match in _NUMBER.finditer(text):
        sign, digits, exponent = match.group(1, 2, 3)
        try:
            value = Decimal(digits.replace(",", "") + (exponent or ""))
        except InvalidOperation:  # pragma: no cover - the pattern only admits valid numerals
            continue
        return -value if sign in ("-", "\u2212") else value
    return None


# ------------------------------------------------------------------------ definitions
def _regex_error(pattern: Any, ignore_case: bool = False) -> str | None:
    if not isinstance(pattern, str):
        return None  # the schema reports the type
    try:
        re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        return f"does not compile: {exc}"
    return None


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _known_dialect(dialect: Any) -> bool:
    if not isinstance(dialect, str):
        return False
    try:
        specification_with(dialect)
    except UnknownDialect:
        return False
    return True


def _schema_errors(schema: Any) -> list[str]:
    if not isinstance(schema, (Mapping, bool)):
        return []  # the schema reports the type
    dialect = schema.get("$schema") if isinstance(schema, Mapping) else None
    if dialect is not None and not _known_dialect(dialect):
        return [f"$schema {dialect!r} names no JSON Schema draft the validator knows"]
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return [f"is not a valid JSON Schema{f' (at {where})' if where else ''}: {exc.message}"]
    if isinstance(schema, bool):
        return []
    out = []
    resource = specification_with(cls.META_SCHEMA["$schema"]).create_resource(schema)
    resolver = Registry().with_resource("", resource).resolver(base_uri="")
    for ref in sorted(set(_refs(schema))):
        if not ref.startswith("#"):
            out.append(f"$ref {ref!r} points outside the schema: only '#/...' references are allowed "
                       "(a check never fetches anything)")
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            out.append(f"$ref {ref!r} does not resolve inside the schema")
    return out


def definition_errors(check: Mapping[str, Any]) -> list[str]:
    """What keeps a check definition from running, as '<field>: <problem>' messages (structure is
    the schema's business; this compiles what the schema cannot)."""
    kind = check.get("kind")
    ignore_case = check.get("ignore_case") is True
    if kind == REGEX:
        error = _regex_error(check.get("pattern"), ignore_case)
        return [f"pattern: {error}"] if error else []
    if kind == NUMERIC_TOLERANCE and check.get("pattern") is not None:
        error = _regex_error(check.get("pattern"))
        return [f"pattern: {error}"] if error else []
    if kind == JSON_SCHEMA and "schema" in check:
        return [f"schema: {message}" for message in _schema_errors(check["schema"])]
    return []


# ------------------------------------------------------------------------ running
def _regex(check: Mapping[str, Any], output: str) -> tuple[bool, str]:
    flags = re.IGNORECASE if check.get("ignore_case") else 0
    match = re.search(check["pattern"], output, flags)
    if match:
        return True, f"pattern {_short(check['pattern'])} matched at {match.start()}"
    return False, f"pattern {_short(check['pattern'])} did not match"


def _contains(check: Mapping[str, Any], output: str, wanted: bool) -> tuple[bool, str]:
    ignore_case = bool(check.get("ignore_case"))
    text = normalise_text(output, ignore_case)
    found = [v for v in check["values"] if normalise_text(v, ignore_case) in text]
    if wanted:
        missing = [v for v in check["values"] if v not in found]
        if missing:
            return False, "missing: " + ", ".join(_short(v) for v in missing)
        return True, f"found all {len(found)}"
    if found:
        return False, "found: " + ", ".join(_short(v) for v in found)
    return True, f"none of {len(check['values'])} found"


def _exact(check: Mapping[str, Any], output: str) -> tuple[bool, str]:
    ignore_case = bool(check.get("ignore_case"))
    if normalise_text(output, ignore_case) == normalise_text(check["value"], ignore_case):
        return True, "equal after normalisation"
    return False, f"differs from {_short(check['value'])} after normalisation"


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))  # str(float) is its shortest repr: 0.1 -> Decimal('0.1')


def _numeric(check: Mapping[str, Any], output: str) -> tuple[bool, str]:
    text = output
    if check.get("pattern"):
        match = re.search(check["pattern"], output)
        if match is None:
            return False, f"pattern {_short(check['pattern'])} did not match"
        text = match.group(1) if match.re.groups else match.group(0)
        text = text or ""
    number = first_number(text)
    if number is None:
        return False, "no number in the output" + (" match" if check.get("pattern") else "")
    expected = _decimal(check["value"])
    tolerance = max(_decimal(check.get("abs_tol", 0)), _decimal(check.get("rel_tol", 0)) * abs(expected))
    off = abs(number - expected)
    verdict = off <= tolerance
    return verdict, f"read {number}, expected {expected} ± {tolerance} (off by {off})"


def _json_schema(check: Mapping[str, Any], output: str) -> tuple[bool, str]:
    text = output
    if check.get("strip_code_fence"):
        fenced = _FENCE.match(output)
        text = fenced.group(1) if fenced else output
    try:
        document = json.loads(text)
    except ValueError as exc:
        return False, f"not JSON: {exc}"
    schema = check["schema"]
    cls = validator_for(schema, default=Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return True, "valid"
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(root)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return False, f"{where}: {first.message[:200]}{more}"


_RUNNERS = {
    REGEX: _regex,
    MUST_CONTAIN: lambda check, output: _contains(check, output, True),
    MUST_NOT_CONTAIN: lambda check, output: _contains(check, output, False),
    EXACT_MATCH: _exact,
    NUMERIC_TOLERANCE: _numeric,
    JSON_SCHEMA: _json_schema,
}


def run_check(check: Mapping[str, Any], output: str | None) -> CheckResult:
    """One check on one answer (the definition is assumed valid: see run_checks)."""
    name, kind = str(check.get("name")), str(check.get("kind"))
    if output is None:
        return CheckResult(name, kind, False, "no output")
    passed, detail = _RUNNERS[kind](check, output)
    return CheckResult(name, kind, passed, detail)


def run_checks(case: Mapping[str, Any], output: str | None) -> list[CheckResult]:
    """Each of the case's checks on `output`, in the case's order. Raises InvalidCase when a
    definition is broken (validate_case reports the same earlier), rather than pass or fail it."""
    checks = list(case.get("checks") or [])
    problems = []
    for index, check in enumerate(checks):
        if not isinstance(check, Mapping) or check.get("kind") not in _RUNNERS:
            problems.append(f"checks[{index}].kind: not one of {sorted(_RUNNERS)}")
            continue
        problems += [f"checks[{index}].{message}" for message in definition_errors(check)]
    if problems:
        raise InvalidCase(case.get("case_id"), problems)
    return [run_check(check, output) for check in checks]
