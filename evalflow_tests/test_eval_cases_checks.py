"""Deterministic checks, table-driven: each kind passes and fails on answers chosen for the edge
they sit on (case, white space, thousands separators, decimal tolerance boundaries, code fences),
and a broken definition is refused before anything runs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from evalflow.lib.eval_cases import CheckResult, InvalidCase, run_checks, validate_case
from evalflow.lib.eval_cases.checks import first_number, normalise_text

ORDER_SCHEMA = {"type": "object", "required": ["order_id", "amount"], "additionalProperties": False,
                "properties": {"order_id": {"type": "string", "pattern": "^ORD-[0-9]+$"},
                               "amount": {"type": "number", "minimum": 0},
                               "items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
                "$defs": {"item": {"type": "object", "required": ["sku"]}}}

# (id, check definition, answer, passes?, a phrase of the detail)
TABLE = [
    # regex: re.search, case-sensitive unless ignore_case
    ("regex matches", {"kind": "regex", "pattern": r"\b60[- ]days?\b"}, "You have 60 days to dispute.", True,
     "matched at 9"),
    ("regex does not match", {"kind": "regex", "pattern": r"\b60[- ]days?\b"}, "You have 30 days.", False,
     "did not match"),
    ("regex is case-sensitive", {"kind": "regex", "pattern": "Refund"}, "refund issued", False, "did not match"),
    ("regex ignore_case", {"kind": "regex", "pattern": "Refund", "ignore_case": True}, "refund issued", True,
     "matched"),
    # must_contain: every value, after white-space normalisation
    ("must_contain all", {"kind": "must_contain", "values": ["statement date", "60 days"]},
     "Within 60  days of the\nstatement date.", True, "found all 2"),
    ("must_contain one missing", {"kind": "must_contain", "values": ["statement date", "60 days"]},
     "Within 60 days.", False, "missing: 'statement date'"),
    ("must_contain case-sensitive", {"kind": "must_contain", "values": ["Northwind"]}, "northwind bank", False,
     "missing: 'Northwind'"),
    ("must_contain ignore_case", {"kind": "must_contain", "values": ["Northwind"], "ignore_case": True},
     "NORTHWIND bank", True, "found all 1"),
    # must_not_contain: none of the values
    ("must_not_contain clean", {"kind": "must_not_contain", "values": ["CVV", "full card number"]},
     "Please never share your PIN.", True, "none of 2 found"),
    ("must_not_contain found", {"kind": "must_not_contain", "values": ["CVV", "full card number"]},
     "Send me the full  card number.", False, "found: 'full card number'"),
    ("must_not_contain ignore_case", {"kind": "must_not_contain", "values": ["cvv"], "ignore_case": True},
     "What is your CVV?", False, "found: 'cvv'"),
    # exact_match: equal after NFC and white-space normalisation
    ("exact_match after normalisation", {"kind": "exact_match", "value": "Your card is frozen."},
     "  Your card\nis   frozen. ", True, "equal after normalisation"),
    ("exact_match NFC", {"kind": "exact_match", "value": "Caf\u00e9 closed"}, "Cafe\u0301 closed", True, "equal"),
    ("exact_match differs", {"kind": "exact_match", "value": "Your card is frozen."}, "Your card is frozen!", False,
     "differs from 'Your card is frozen.'"),
    ("exact_match case", {"kind": "exact_match", "value": "YES", "ignore_case": True}, "yes", True, "equal"),
    # numeric_tolerance: the first number, or the pattern's first group
    ("numeric exact", {"kind": "numeric_tolerance", "value": 60}, "You have 60 days.", True, "read 60"),
    ("numeric off", {"kind": "numeric_tolerance", "value": 60}, "You have 30 days.", False, "off by 30"),
    ("numeric thousands separator", {"kind": "numeric_tolerance", "value": 1234.5, "abs_tol": 0.005},
     "The balance is $1,234.50 today.", True, "read 1234.50"),
    ("numeric abs boundary in decimals", {"kind": "numeric_tolerance", "value": 1.0, "abs_tol": 0.1},
     "about 1.1 percent", True, "off by 0.1"),  # 1.1 - 1.0 > 0.1 in binary floating point
    ("numeric abs just outside", {"kind": "numeric_tolerance", "value": 1.0, "abs_tol": 0.1}, "about 1.11 percent",
     False, "off by 0.11"),
    ("numeric rel tolerance", {"kind": "numeric_tolerance", "value": 200, "rel_tol": 0.05}, "roughly 209.9", True,
     "± 10.00"),
    ("numeric rel tolerance outside", {"kind": "numeric_tolerance", "value": 200, "rel_tol": 0.05}, "roughly 211",
     False, "off by 11"),
    ("numeric negative", {"kind": "numeric_tolerance", "value": -12.5}, "Balance: -12.5 EUR", True, "read -12.5"),
    ("numeric dash is no sign inside a word", {"kind": "numeric_tolerance", "value": 7}, "Ticket ID-7 is open",
     True, "read 7"),
    ("numeric pattern group", {"kind": "numeric_tolerance", "value": 5, "pattern": r"within (\S+) business days"},
     "Order 881 ships within 5 business days.", True, "read 5"),
    ("numeric first number is not the one", {"kind": "numeric_tolerance", "value": 5},
     "Order 881 ships within 5 business days.", False, "read 881"),
    ("numeric pattern without a match", {"kind": "numeric_tolerance", "value": 5, "pattern": r"within (\d+) days"},
     "It ships soon.", False, "did not match"),
    ("numeric no number", {"kind": "numeric_tolerance", "value": 5}, "It ships soon.", False, "no number"),
    # json_schema: parses as JSON and validates
    ("json valid", {"kind": "json_schema", "schema": ORDER_SCHEMA},
     '{"order_id": "ORD-12", "amount": 3.5, "items": [{"sku": "A"}]}', True, "valid"),
    ("json invalid field", {"kind": "json_schema", "schema": ORDER_SCHEMA}, '{"order_id": "12", "amount": 3.5}',
     False, "order_id: '12' does not match"),
    ("json local ref followed", {"kind": "json_schema", "schema": ORDER_SCHEMA},
     '{"order_id": "ORD-1", "amount": 1, "items": [{}]}', False, "items/0: 'sku' is a required property"),
    ("json not JSON", {"kind": "json_schema", "schema": ORDER_SCHEMA}, "Sure! Here it is.", False, "not JSON"),
    ("json fenced, not stripped", {"kind": "json_schema", "schema": ORDER_SCHEMA},
     '```json\n{"order_id": "ORD-1", "amount": 1}\n```', False, "not JSON"),
    ("json fenced, stripped", {"kind": "json_schema", "schema": ORDER_SCHEMA, "strip_code_fence": True},
     '```json\n{"order_id": "ORD-1", "amount": 1}\n```', True, "valid"),
    ("json draft-07 schema", {"kind": "json_schema", "schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                                                               "type": "array", "items": {"type": "integer"}}},
     "[1, 2, 3.5]", False, "2: 3.5 is not of type 'integer'"),
]


def full_case() -> dict:
    return json.loads((Path(__file__).parent / "fixtures" / "eval_cases" / "full_case.json").read_text("utf-8"))


def case_with(*checks) -> dict:
    return {"case_id": "case-0000000000000000",
            "checks": [{"name": f"c{i}", **check} for i, check in enumerate(checks)]}


@pytest.mark.parametrize("check, answer, passes, phrase", [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_each_check(check, answer, passes, phrase):
    [result] = run_checks(case_with(check), answer)
    assert isinstance(result, CheckResult)
    assert (result.name, result.kind, result.passed) == ("c0", check["kind"], passes), result.detail
    assert phrase in result.detail


def test_every_kind_is_in_the_table_both_passing_and_failing():
    outcomes = {(t[1]["kind"], t[3]) for t in TABLE}
    kinds = {"regex", "must_contain", "must_not_contain", "exact_match", "numeric_tolerance", "json_schema"}
    assert outcomes == {(k, p) for k in kinds for p in (True, False)}


def test_every_check_of_the_table_is_a_valid_definition_in_a_case():
    case = full_case()
    case["checks"] = [{"name": f"c{i}", **t[1]} for i, t in enumerate(TABLE)]
    assert validate_case(case) == []


def test_results_keep_the_case_order_and_a_missing_answer_fails_everything():
    case = case_with({"kind": "must_not_contain", "values": ["CVV"]}, {"kind": "regex", "pattern": "."})
    assert [(r.name, r.passed) for r in run_checks(case, "fine")] == [("c0", True), ("c1", True)]
    assert [(r.name, r.passed, r.detail) for r in run_checks(case, None)] == [
        ("c0", False, "no output"), ("c1", False, "no output")]
    assert run_checks({"case_id": "x", "checks": []}, "anything") == []


@pytest.mark.parametrize("check, field", [
    ({"kind": "regex", "pattern": "(unclosed"}, "checks[0].pattern"),
    ({"kind": "numeric_tolerance", "value": 1, "pattern": "[z-a]"}, "checks[0].pattern"),
    ({"kind": "json_schema", "schema": {"type": 12}}, "checks[0].schema"),
    ({"kind": "json_schema", "schema": {"$ref": "http://example.com/x.json"}}, "checks[0].schema"),
    ({"kind": "json_schema", "schema": {"$schema": "https://example.com/my-draft"}}, "checks[0].schema"),
    ({"kind": "contains", "values": ["x"]}, "checks[0].kind"),
])
def test_a_broken_definition_is_refused_before_any_check_runs(check, field):
    case = case_with({"kind": "regex", "pattern": "fine"}, check)
    case["checks"] = [case["checks"][1]]
    with pytest.raises(InvalidCase) as raised:
        run_checks(case, "answer")
    assert raised.value.problems and raised.value.problems[0].startswith(field)


def test_validation_reports_the_same_broken_definitions():
    case = full_case()
    case["checks"][0]["pattern"] = "(unclosed"
    assert [e for e in validate_case(case) if e.startswith("checks[0].pattern: does not compile")]
    with pytest.raises(InvalidCase):
        run_checks(case, "60 days")


def test_the_fixture_case_checks_on_a_good_and_a_bad_answer():
    case = full_case()
    good = run_checks(case, case["gold_answer"])
    assert {r.name: r.passed for r in good} == {
        "mentions-60-days": True, "window-words": True, "no-card-number-request": True, "canned-reply": True,
        "days": True, "structured": False}  # prose is not JSON
    bad = run_checks(case, "Send the full card number; you have 30 days.")
    assert not any(r.passed for r in bad if r.name != "structured")


@pytest.mark.parametrize("text, number", [
    ("-5 apples", Decimal("-5")), ("costs $1,234.50.", Decimal("1234.50")), ("v1.2 release", None),
    ("abc123", None), ("1e3 units", Decimal("1000")), ("3eggs", Decimal("3")), ("\u22122.5", Decimal("-2.5")),
    (".5 of it", Decimal("0.5")), ("x 1,234,567 y", Decimal("1234567")), ("1,234, then", Decimal("1234")),
    ("2026-11-01", Decimal("2026")), ("no digits", None),
])
def test_first_number(text, number):
    assert first_number(text) == number


def test_normalise_text():
    assert normalise_text("  A\u00a0 b\n\tC ") == "A b C"
    assert normalise_text("Stra\u00dfe", ignore_case=True) == "strasse"
